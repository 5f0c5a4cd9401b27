package ledgeremu

// Full EIP-712 signing in the Ethereum app, as app-ethereum de18010 does it
// (doc/ethapp.adoc "EIP712 SEND STRUCT DEFINITION/IMPLEMENTATION", "SIGN ETH EIP 712";
// src/features/sign_message_eip712/commands_712.c, field_hash.c, encode_field.c,
// ui_logic.c):
//
//	E0 1A 00 00 name                                   a struct's name, then its fields:
//	E0 1A 00 FF TypeDesc [u8 n TypeName] [u8 size] [u8 levels (0 | 1 u8 n)…] u8 n KeyName
//	E0 1C 00 00 name                                   the root struct (EIP712Domain, then the primary type)
//	E0 1C 00 0F u8 count                               the length of the array that comes next
//	E0 1C P1 FF u16 len ‖ value                        the next atomic value (P1 01: more of it follows)
//	E0 0C 00 01 path                                   sign keccak(0x1901 ‖ domainHash ‖ messageHash)
//
// The device walks the types itself and hashes as it goes; values arrive depth first in
// the type's field order, arrays as their length then their elements. Display (a Nano,
// filtering "basic"): the domain's fields are always shown, the message's only with the
// "Verbose EIP-712" setting, else its hash at the end; when neither blind signing nor
// verbose EIP-712 is on, the first value shown is refused (0x6A80, the blind-signing error
// screen). Integers arrive minimal big-endian; an int of its full size with the top bit set
// is negative (sign-extended). Hand-written: no library speaks this protocol.

import (
	"encoding/binary"
	"encoding/hex"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// Solidity type codes of TypeDesc's low nibble.
const (
	sol712Custom   = 0
	sol712Int      = 1
	sol712Uint     = 2
	sol712Address  = 3
	sol712Bool     = 4
	sol712String   = 5
	sol712FixBytes = 6
	sol712DynBytes = 7
)

// Caps (the app's memory is far smaller; these only bound the emulator).
const (
	max712Structs = 64
	max712Fields  = 64
	max712Levels  = 8
	max712Depth   = 16
	max712Value   = 1 << 16
	max712Lines   = 256
)

type field712 struct {
	name   string
	kind   byte
	size   int    // bytes: int/uint/bytesN
	custom string // struct name (kind custom)
	levels []int  // array levels, outermost first: -1 dynamic, else the fixed size
}

// typeName is the field's type as encodeType writes it.
func (f *field712) typeName() string {
	var b strings.Builder
	switch f.kind {
	case sol712Custom:
		b.WriteString(f.custom)
	case sol712Int:
		b.WriteString("int" + strconv.Itoa(f.size*8))
	case sol712Uint:
		b.WriteString("uint" + strconv.Itoa(f.size*8))
	case sol712Address:
		b.WriteString("address")
	case sol712Bool:
		b.WriteString("bool")
	case sol712String:
		b.WriteString("string")
	case sol712FixBytes:
		b.WriteString("bytes" + strconv.Itoa(f.size))
	case sol712DynBytes:
		b.WriteString("bytes")
	}
	for _, l := range f.levels {
		if l < 0 {
			b.WriteString("[]")
		} else {
			b.WriteString("[" + strconv.Itoa(l) + "]")
		}
	}
	return b.String()
}

type struct712 struct {
	name   string
	fields []field712
}

// frame712 is one level of the walk: a struct being filled or an array level.
type frame712 struct {
	st  *struct712 // struct frame
	idx int        // next field

	f     *field712 // array frame: the field and its level
	level int
	count int
	done  int

	enc  []byte // struct: typeHash ‖ encoded fields; array: encoded elements
	name string // display path
}

type eip712Ctx struct {
	structs  map[string]*struct712
	cur      *struct712 // being defined
	defined  bool       // implementations started: no more definitions
	stack    []*frame712
	root     string
	domain   []byte
	message  []byte
	value    []byte // atomic value in progress
	want     int    // its announced length
	inValue  bool
	allowed  bool // the blind-signing/verbose check passed
	lines    []string
	verbose  bool
	chainID  string
	contract string
}

// fail712 drops the context, as the app does on an error, and answers sw.
func (cn *conn) fail712(sw uint16, format string, args ...any) error {
	cn.d.eip712 = nil
	return fail(sw, format, args...)
}

func (cn *conn) eip712StructDef(a APDU) ([]byte, error) {
	d := cn.d
	if a.P1 != 0 || (a.P2 != 0x00 && a.P2 != 0xFF) {
		return nil, fail(swWrongP1P2, "p1 %02x p2 %02x", a.P1, a.P2)
	}
	if d.eip712 == nil {
		d.eip712 = &eip712Ctx{structs: map[string]*struct712{}}
	}
	c := d.eip712
	if c.defined {
		return nil, cn.fail712(swIncorrectData, "struct definitions after the implementation started")
	}
	if a.P2 == 0x00 {
		name := string(a.Data)
		if len(a.Data) == 0 || !validName(name) {
			return nil, cn.fail712(swIncorrectData, "bad struct name")
		}
		if _, dup := c.structs[name]; dup || len(c.structs) >= max712Structs {
			return nil, cn.fail712(swIncorrectData, "struct %q defined twice or too many structs", name)
		}
		c.cur = &struct712{name: name}
		c.structs[name] = c.cur
		return nil, nil
	}
	if c.cur == nil {
		return nil, cn.fail712(swIncorrectData, "a field before any struct name")
	}
	f, err := parseField712(a.Data)
	if err != nil {
		cn.d.eip712 = nil
		return nil, err
	}
	if len(c.cur.fields) >= max712Fields {
		return nil, cn.fail712(swInsufficientMem, "too many fields in %s", c.cur.name)
	}
	c.cur.fields = append(c.cur.fields, *f)
	return nil, nil
}

func validName(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == '(' || r == ')' || r == ',' || r == '[' || r == ']' || r == 0x7F {
			return false
		}
	}
	return true
}

// parseField712 decodes a struct field definition (E0 1A 00 FF).
func parseField712(b []byte) (*field712, error) {
	r := &reader{b: b}
	desc := r.u8()
	f := &field712{kind: desc & 0x0F}
	isArray, hasSize := desc&0x80 != 0, desc&0x40 != 0
	if desc&0x30 != 0 || f.kind > sol712DynBytes {
		return nil, fail(swIncorrectData, "type description %02x", desc)
	}
	if f.kind == sol712Custom {
		n := int(r.u8())
		f.custom = string(r.bytes(n))
		if r.bad || n == 0 || !validName(f.custom) {
			return nil, fail(swIncorrectData, "bad custom type name")
		}
	}
	sized := f.kind == sol712Int || f.kind == sol712Uint || f.kind == sol712FixBytes
	if hasSize != sized {
		return nil, fail(swIncorrectData, "type %d with size flag %v", f.kind, hasSize)
	}
	if hasSize {
		f.size = int(r.u8())
		if f.size < 1 || f.size > 32 {
			return nil, fail(swIncorrectData, "type size %d", f.size)
		}
	}
	if isArray {
		n := int(r.u8())
		if n == 0 || n > max712Levels {
			return nil, fail(swIncorrectData, "%d array levels", n)
		}
		for range n {
			switch r.u8() {
			case 0:
				f.levels = append(f.levels, -1)
			case 1:
				f.levels = append(f.levels, int(r.u8()))
			default:
				return nil, fail(swIncorrectData, "bad array level")
			}
		}
	}
	n := int(r.u8())
	f.name = string(r.bytes(n))
	if r.bad || n == 0 || !validName(f.name) {
		return nil, fail(swIncorrectData, "bad field name")
	}
	if r.left() != 0 {
		return nil, fail(swIncorrectData, "trailing bytes in a field definition")
	}
	return f, nil
}

// typeHash is keccak(encodeType(name)): the struct, then the structs it uses, sorted.
func (c *eip712Ctx) typeHash(name string) ([]byte, error) {
	deps := map[string]bool{}
	var walk func(n string, depth int) error
	walk = func(n string, depth int) error {
		st, ok := c.structs[n]
		if !ok {
			return fail(swIncorrectData, "struct %q is not defined", n)
		}
		if depth > max712Depth {
			return fail(swIncorrectData, "structs nested too deeply")
		}
		for _, f := range st.fields {
			if f.kind == sol712Custom && !deps[f.custom] && f.custom != name {
				deps[f.custom] = true
				if err := walk(f.custom, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(name, 0); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(deps))
	for n := range deps {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range append([]string{name}, names...) {
		st := c.structs[n]
		b.WriteString(n + "(")
		for i, f := range st.fields {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(f.typeName() + " " + f.name)
		}
		b.WriteByte(')')
	}
	return crypto.Keccak256([]byte(b.String())), nil
}

func (cn *conn) eip712StructImpl(a APDU) ([]byte, error) {
	c := cn.d.eip712
	if c == nil {
		return nil, fail(swCommandNotAllow, "no eip-712 struct definitions")
	}
	switch a.P2 {
	case 0x00:
		if a.P1 != 0 {
			return nil, cn.fail712(swWrongP1P2, "p1 %02x", a.P1)
		}
		return nil, cn.eip712Root(string(a.Data))
	case 0x0F:
		if a.P1 != 0 {
			return nil, cn.fail712(swWrongP1P2, "p1 %02x", a.P1)
		}
		if len(a.Data) != 1 {
			return nil, cn.fail712(swIncorrectData, "array size of %d bytes", len(a.Data))
		}
		return nil, cn.eip712Array(int(a.Data[0]))
	case 0xFF:
		if a.P1 > 1 {
			return nil, cn.fail712(swWrongP1P2, "p1 %02x", a.P1)
		}
		return nil, cn.eip712Value(a.Data, a.P1 == 1)
	}
	return nil, cn.fail712(swWrongP1P2, "p2 %02x", a.P2)
}

func (cn *conn) eip712Root(name string) error {
	c := cn.d.eip712
	if len(c.stack) != 0 || c.inValue {
		return cn.fail712(swIncorrectData, "new root while %s is incomplete", c.root)
	}
	st, ok := c.structs[name]
	if !ok {
		return cn.fail712(swIncorrectData, "root struct %q is not defined", name)
	}
	th, err := c.typeHash(name)
	if err != nil {
		cn.d.eip712 = nil
		return err
	}
	c.defined, c.cur = true, nil
	c.root = name
	c.verbose = cn.d.verbose712
	if name == "EIP712Domain" {
		c.domain = nil
	} else {
		c.message = nil
	}
	if c.verbose && name != "EIP712Domain" {
		c.addLine("Review struct: " + name)
	}
	c.stack = append(c.stack, &frame712{st: st, enc: th, name: ""})
	if len(st.fields) == 0 {
		return cn.eip712Complete()
	}
	return cn.eip712Descend()
}

func (c *eip712Ctx) addLine(s string) {
	if len(c.lines) < max712Lines {
		c.lines = append(c.lines, s)
	}
}

// current is the field the walk stands at and the array level it expects next (-1: the
// field's value itself, a struct or an atomic value).
func (c *eip712Ctx) current() (f *field712, level int, name string) {
	top := c.stack[len(c.stack)-1]
	if top.st != nil {
		f = &top.st.fields[top.idx]
		name = joinName(top.name, f.name)
		if len(f.levels) > 0 {
			return f, 0, name
		}
		return f, -1, name
	}
	name = top.name + ".[]"
	if top.level+1 < len(top.f.levels) {
		return top.f, top.level + 1, name
	}
	return top.f, -1, name
}

func joinName(parent, n string) string {
	if parent == "" {
		return n
	}
	return parent + "." + n
}

// eip712Descend enters the structs the walk stands at, so that it waits for an array
// length or an atomic value.
func (cn *conn) eip712Descend() error {
	c := cn.d.eip712
	for len(c.stack) > 0 {
		f, level, name := c.current()
		if level >= 0 || f.kind != sol712Custom {
			return nil
		}
		if len(c.stack) >= max712Depth {
			return cn.fail712(swInsufficientMem, "structs nested too deeply")
		}
		st, ok := c.structs[f.custom]
		if !ok {
			return cn.fail712(swIncorrectData, "struct %q is not defined", f.custom)
		}
		th, err := c.typeHash(f.custom)
		if err != nil {
			cn.d.eip712 = nil
			return err
		}
		c.stack = append(c.stack, &frame712{st: st, enc: th, name: name})
		if c.verbose && c.root != "EIP712Domain" {
			c.addLine("Review struct: " + name + " (" + f.custom + ")")
		}
		if len(st.fields) == 0 {
			return cn.eip712Complete()
		}
	}
	return nil
}

func (cn *conn) eip712Array(n int) error {
	c := cn.d.eip712
	if len(c.stack) == 0 || c.inValue {
		return cn.fail712(swIncorrectData, "array size outside a struct")
	}
	f, level, name := c.current()
	if level < 0 {
		return cn.fail712(swIncorrectData, "array size for %s, which is no array", name)
	}
	if fixed := f.levels[level]; fixed >= 0 && fixed != n {
		return cn.fail712(swIncorrectData, "array %s of %d elements, its type says %d", name, n, fixed)
	}
	if len(c.stack) >= max712Depth {
		return cn.fail712(swInsufficientMem, "arrays nested too deeply")
	}
	c.stack = append(c.stack, &frame712{f: f, level: level, count: n, name: name})
	if n == 0 {
		return cn.eip712Complete()
	}
	return cn.eip712Descend()
}

func (cn *conn) eip712Value(data []byte, partial bool) error {
	c := cn.d.eip712
	if len(c.stack) == 0 {
		return cn.fail712(swIncorrectData, "a value outside a struct")
	}
	f, level, name := c.current()
	if level >= 0 || f.kind == sol712Custom {
		return cn.fail712(swIncorrectData, "a value where %s expects an array size or a struct", name)
	}
	if !c.inValue {
		if len(data) < 2 {
			return cn.fail712(swIncorrectData, "short value header")
		}
		c.want = int(binary.BigEndian.Uint16(data))
		data = data[2:]
		limit := max712Value
		switch f.kind {
		case sol712Int, sol712Uint, sol712FixBytes:
			limit = f.size
		case sol712Address:
			limit = 20
		case sol712Bool:
			limit = 1
		}
		if c.want > limit {
			return cn.fail712(swIncorrectData, "value of %d bytes for %s", c.want, f.typeName())
		}
		c.inValue, c.value = true, make([]byte, 0, c.want)
		if c.root == "EIP712Domain" || c.verbose {
			if !c.allowed && !cn.d.blind && !c.verbose {
				cn.show("Blind signing", "this message cannot be clear-signed",
					"enable blind signing or verbose EIP-712 in the Ethereum app settings")
				return cn.fail712(swIncorrectData, "blind signing and verbose eip-712 are off")
			}
			c.allowed = true
		}
	}
	if len(data) > c.want-len(c.value) {
		return cn.fail712(swIncorrectData, "more value bytes than announced")
	}
	c.value = append(c.value, data...)
	dynamic := f.kind == sol712String || f.kind == sol712DynBytes
	if len(c.value) < c.want {
		if !partial || !dynamic {
			return cn.fail712(swIncorrectData, "value incomplete without the partial flag")
		}
		return nil
	}
	if partial {
		return cn.fail712(swIncorrectData, "complete value marked partial")
	}
	v := c.value
	c.inValue, c.value = false, nil
	enc, shown, err := encode712(f, v)
	if err != nil {
		cn.d.eip712 = nil
		return err
	}
	if c.root == "EIP712Domain" {
		switch name {
		case "chainId":
			c.chainID = shown
		case "verifyingContract":
			c.contract = shown
		}
	}
	if c.root == "EIP712Domain" || c.verbose {
		c.addLine(name + ": " + shown)
	}
	top := c.stack[len(c.stack)-1]
	top.enc = append(top.enc, enc...)
	return cn.eip712Advance()
}

// encode712 encodes an atomic value to its 32-byte EIP-712 encoding (dynamic types hashed)
// and the text shown for it.
func encode712(f *field712, v []byte) (enc []byte, shown string, err error) {
	pad := func(b []byte, fill byte) []byte {
		out := make([]byte, 32)
		for i := range 32 - len(b) {
			out[i] = fill
		}
		copy(out[32-len(b):], b)
		return out
	}
	switch f.kind {
	case sol712Uint:
		return pad(v, 0), new(big.Int).SetBytes(v).String(), nil
	case sol712Int:
		if len(v) < 1 {
			return nil, "", fail(swIncorrectData, "empty int")
		}
		n := new(big.Int).SetBytes(v)
		if len(v) == f.size && v[0]&0x80 != 0 {
			n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(v))))
			return pad(v, 0xFF), n.String(), nil
		}
		return pad(v, 0), n.String(), nil
	case sol712Address:
		return pad(v, 0), common.BytesToAddress(v).Hex(), nil
	case sol712Bool:
		if len(v) != 1 || v[0] > 1 {
			return nil, "", fail(swIncorrectData, "bool of %x", v)
		}
		return pad(v, 0), strconv.FormatBool(v[0] == 1), nil
	case sol712FixBytes:
		out := make([]byte, 32)
		copy(out, v)
		return out, "0x" + hex.EncodeToString(v), nil
	case sol712String:
		s := string(v)
		if len(s) > 160 {
			s = s[:160] + "…"
		}
		return crypto.Keccak256(v), s, nil
	case sol712DynBytes:
		s := "0x" + hex.EncodeToString(v)
		if len(s) > 160 {
			s = s[:160] + "…"
		}
		return crypto.Keccak256(v), s, nil
	}
	return nil, "", fail(swIncorrectData, "type %d has no value", f.kind)
}

// eip712Advance moves past the value just added to the top frame, closing the frames it
// completes.
func (cn *conn) eip712Advance() error {
	c := cn.d.eip712
	top := c.stack[len(c.stack)-1]
	if top.st != nil {
		top.idx++
		if top.idx < len(top.st.fields) {
			return cn.eip712Descend()
		}
	} else {
		top.done++
		if top.done < top.count {
			return cn.eip712Descend()
		}
	}
	return cn.eip712Complete()
}

// eip712Complete closes the top frame (all its fields or elements are in): its hash goes to
// the parent, or becomes the domain or message hash.
func (cn *conn) eip712Complete() error {
	c := cn.d.eip712
	top := c.stack[len(c.stack)-1]
	h := crypto.Keccak256(top.enc)
	c.stack = c.stack[:len(c.stack)-1]
	if len(c.stack) == 0 {
		if c.root == "EIP712Domain" {
			c.domain = h
		} else {
			c.message = h
		}
		return nil
	}
	parent := c.stack[len(c.stack)-1]
	parent.enc = append(parent.enc, h...)
	return cn.eip712Advance()
}

// eip712Filtering answers EIP712 FILTERING (E0 1E): outside full filtering the app takes
// and ignores everything but the activation. Full filtering (Ledger-signed filters from
// the CAL service) is not emulated: its activation is refused.
func (cn *conn) eip712Filtering(a APDU) ([]byte, error) {
	if cn.d.eip712 == nil {
		return nil, fail(swCommandNotAllow, "no eip-712 flow")
	}
	if a.P2 == 0x00 {
		return nil, cn.fail712(swIncorrectData, "full eip-712 filtering (Ledger-signed filters) is not emulated")
	}
	return nil, nil
}

// eip712SignFull signs the streamed message (E0 0C 00 01 path).
func (cn *conn) eip712SignFull(a APDU) ([]byte, error) {
	c := cn.d.eip712
	if c == nil {
		return nil, fail(swCommandNotAllow, "no eip-712 structure was streamed")
	}
	if len(c.domain) == 0 || len(c.message) == 0 || len(c.stack) != 0 || c.inValue {
		return nil, cn.fail712(swIncorrectData, "the domain or the message is incomplete")
	}
	r := &reader{b: a.Data}
	path, err := ethPath(r)
	if err != nil {
		cn.d.eip712 = nil
		return nil, err
	}
	lines := append([]string{"path: " + hdpath.Path(path).String()}, c.lines...)
	if !c.verbose {
		lines = append(lines, "message hash: 0x"+hex.EncodeToString(c.message))
	}
	domain, message := c.domain, c.message
	cn.d.eip712 = nil
	ok, err := cn.ask("Sign typed message", lines...)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fail(swDeny, "rejected")
	}
	sig, err := cn.ethSign(path, crypto.Keccak256([]byte{0x19, 0x01}, domain, message))
	if err != nil {
		return nil, err
	}
	return append([]byte{27 + sig[64]}, sig[:64]...), nil
}
