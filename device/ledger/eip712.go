package ledger

// Full EIP-712 on the Ethereum app (app ≥ 1.9.19): the host streams the type definitions
// (EIP712 SEND STRUCT DEFINITION, E0 1A) and the values (EIP712 SEND STRUCT
// IMPLEMENTATION, E0 1C), the app hashes them itself and shows them, then SIGN ETH EIP 712
// in full mode (E0 0C 00 01 path). Byte formats: app-ethereum doc/ethapp.adoc @ de18010;
// the order and the value encodings are hw-app-eth 7.9.0's (lib/modules/EIP712):
//
//	E0 1A 00 00 name, then per field E0 1A 00 FF TypeDesc [u8 n name] [u8 size] [u8 levels …] u8 n key
//	   (types sorted by name, fields in declared order)
//	E0 1C 00 00 "EIP712Domain", its values; E0 1C 00 00 primaryType, its values
//	   value: E0 1C P1 FF u16 len ‖ bytes, cut at 255 bytes (P1 01 while more follows)
//	   array: E0 1C 00 0F u8 count, then its elements
//
// Integers go minimal big-endian (0 as one zero byte; a negative int as two's complement
// over its full size), addresses as 20 bytes, bools as one byte, bytesN as their N bytes,
// strings as UTF-8. Apps older than 1.9.19, or that answer 0x6D00 to E0 1A, get the v0
// hashes (SignTypedHash). Both modes need the message hash: the app signs
// 0x1901 ‖ domain ‖ message and refuses domain-only data. Hand-written: no Go library
// speaks this protocol.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

const (
	insEthStructDef  byte = 0x1A
	insEthStructImpl byte = 0x1C
	p2EthEIP712Full  byte = 0x01
)

// minEthEIP712Full is the first app version with full EIP-712 (ethapp.adoc).
var minEthEIP712Full = [3]int{1, 9, 19}

// maxTyped712Depth bounds nesting of structs and arrays in a document.
const maxTyped712Depth = 32

var _ device.TypedDataSigner = (*Driver)(nil)

// SignTypedData signs an EIP-712 document: streamed in full where the app can (it shows
// the domain, and the message's fields with "Verbose EIP-712" on, else its hash), as v0
// hashes on older apps. It returns r‖s‖v with v 27 or 28.
func (d *Driver) SignTypedData(ctx context.Context, path hdpath.Path, td *device.TypedData) ([]byte, error) {
	if td == nil {
		return nil, fmt.Errorf("ledger: %s: %w: no typed data", opEthTyped, device.ErrInvalidInput)
	}
	if td.MessageHash == nil {
		return nil, fmt.Errorf("ledger: %s: the ethereum app signs eip-712 data only with a message (0x1901 ‖ domain ‖ message): domain-only data (primaryType EIP712Domain) cannot be signed on a ledger: %w", opEthTyped, errors.ErrUnsupported)
	}
	pb, err := encodePath(path)
	if err != nil {
		return nil, fmt.Errorf("ledger: %s: %w", opEthTyped, err)
	}
	defs, err := structDefs(&td.Data)
	if err != nil {
		return nil, fmt.Errorf("ledger: %s: %w", opEthTyped, err)
	}
	impl, err := structImpls(&td.Data)
	if err != nil {
		return nil, fmt.Errorf("ledger: %s: %w", opEthTyped, err)
	}
	var sig []byte
	v0 := false
	err = d.do(ctx, opEthTyped, AppEthereum, func(s *session) error {
		if v, ok := parseVersion(s.info.Version); ok && versionLess(v, minEthEIP712Full) {
			v0 = true
			return nil
		}
		for i, c := range defs {
			data, sw, err := s.exchange(c)
			if err != nil {
				return err
			}
			if i == 0 && sw == swINSNotSupported {
				v0 = true // an app without full EIP-712
				return nil
			}
			if sw != swOK {
				return s.statusError(sw, data)
			}
		}
		for _, c := range impl {
			data, sw, err := s.exchange(c)
			if err != nil {
				return err
			}
			if sw == swIncorrectData {
				return fmt.Errorf("%w: %w", ErrBlindSigningDisabled, &device.Error{Op: s.op, Family: device.FamilyLedger, Code: int(sw), Kind: device.ErrInvalidInput,
					Message: "the ethereum app refused the typed data: turn on \"Verbose EIP-712\" (shows every field) or blind signing in its settings"})
			}
			if sw != swOK {
				return s.statusError(sw, data)
			}
		}
		reply, err := s.call(command{cla: claETH, ins: insEthEIP712, p2: p2EthEIP712Full, data: pb, screen: true})
		if err != nil {
			return err
		}
		sig, err = parseEthSignature(reply)
		return err
	})
	if err != nil {
		return nil, err
	}
	if v0 {
		return d.SignTypedHash(ctx, path, td.DomainSeparator, td.MessageHash)
	}
	return sig, nil
}

// structDefs are the E0 1A commands for every type, sorted by name as hw-app-eth sends them.
func structDefs(td *apitypes.TypedData) ([]command, error) {
	names := make([]string, 0, len(td.Types))
	for n := range td.Types {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []command
	for _, n := range names {
		if len(n) == 0 || len(n) > maxAPDUData {
			return nil, fmt.Errorf("%w: type name %q", device.ErrInvalidInput, n)
		}
		out = append(out, command{cla: claETH, ins: insEthStructDef, p2: 0x00, data: []byte(n)})
		for _, f := range td.Types[n] {
			b, err := fieldDef(td, f)
			if err != nil {
				return nil, fmt.Errorf("%w: type %s, field %s: %w", device.ErrInvalidInput, n, f.Name, err)
			}
			out = append(out, command{cla: claETH, ins: insEthStructDef, p2: 0xFF, data: b})
		}
	}
	return out, nil
}

// typeSpec is a parsed EIP-712 type: base name, its size, array levels outermost first.
type typeSpec struct {
	base   string
	kind   byte // TypeDesc type code
	size   int  // bytes, for int/uint/bytesN
	levels []int
}

func parseType(td *apitypes.TypedData, t string) (typeSpec, error) {
	var ts typeSpec
	base := t
	if i := strings.IndexByte(t, '['); i >= 0 {
		base = t[:i]
		rest := t[i:]
		for rest != "" {
			j := strings.IndexByte(rest, ']')
			if rest[0] != '[' || j < 0 {
				return ts, fmt.Errorf("malformed array type %q", t)
			}
			if n := rest[1:j]; n == "" {
				ts.levels = append(ts.levels, -1)
			} else {
				v, err := strconv.Atoi(n)
				if err != nil || v < 0 || v > 255 {
					return ts, fmt.Errorf("array size in %q", t)
				}
				ts.levels = append(ts.levels, v)
			}
			rest = rest[j+1:]
		}
	}
	ts.base = base
	sized := func(prefix string, bits bool) error {
		n := 32
		if r := strings.TrimPrefix(base, prefix); r != "" {
			v, err := strconv.Atoi(r)
			if err != nil || (bits && v%8 != 0) {
				return fmt.Errorf("unknown type %q", base)
			}
			n = v
			if bits {
				n = v / 8
			}
		}
		if n < 1 || n > 32 {
			return fmt.Errorf("unknown type %q", base)
		}
		ts.size = n
		return nil
	}
	var err error
	switch {
	case base == "address":
		ts.kind = 3
	case base == "bool":
		ts.kind = 4
	case base == "string":
		ts.kind = 5
	case base == "bytes":
		ts.kind = 7
	case strings.HasPrefix(base, "bytes"):
		ts.kind, err = 6, sized("bytes", false)
	case strings.HasPrefix(base, "uint"):
		ts.kind, err = 2, sized("uint", true)
	case strings.HasPrefix(base, "int"):
		ts.kind, err = 1, sized("int", true)
	default:
		if _, ok := td.Types[base]; !ok {
			return ts, fmt.Errorf("unknown type %q", base)
		}
		ts.kind = 0
	}
	return ts, err
}

// fieldDef encodes one field definition: TypeDesc [name] [size] [levels] key.
func fieldDef(td *apitypes.TypedData, f apitypes.Type) ([]byte, error) {
	ts, err := parseType(td, f.Type)
	if err != nil {
		return nil, err
	}
	desc := ts.kind
	if len(ts.levels) > 0 {
		desc |= 0x80
	}
	if ts.size > 0 {
		desc |= 0x40
	}
	b := []byte{desc}
	if ts.kind == 0 {
		if len(ts.base) > 255 {
			return nil, errors.New("type name too long")
		}
		b = append(append(b, byte(len(ts.base))), ts.base...)
	}
	if ts.size > 0 {
		b = append(b, byte(ts.size))
	}
	if len(ts.levels) > 0 {
		b = append(b, byte(len(ts.levels)))
		for _, l := range ts.levels {
			if l < 0 {
				b = append(b, 0)
			} else {
				b = append(b, 1, byte(l))
			}
		}
	}
	if len(f.Name) == 0 || len(f.Name) > 255 {
		return nil, errors.New("bad field name")
	}
	b = append(append(b, byte(len(f.Name))), f.Name...)
	if len(b) > maxAPDUData {
		return nil, errors.New("field definition longer than one apdu")
	}
	return b, nil
}

// structImpls are the E0 1C commands: the domain, then the message, values depth first.
func structImpls(td *apitypes.TypedData) ([]command, error) {
	var out []command
	root := func(name string, val map[string]any) error {
		out = append(out, command{cla: claETH, ins: insEthStructImpl, p2: 0x00, data: []byte(name)})
		return implStruct(td, name, val, &out, 0)
	}
	if err := root("EIP712Domain", td.Domain.Map()); err != nil {
		return nil, fmt.Errorf("%w: domain: %w", device.ErrInvalidInput, err)
	}
	if err := root(td.PrimaryType, td.Message); err != nil {
		return nil, fmt.Errorf("%w: message: %w", device.ErrInvalidInput, err)
	}
	return out, nil
}

func implStruct(td *apitypes.TypedData, name string, val map[string]any, out *[]command, depth int) error {
	if depth > maxTyped712Depth {
		return errors.New("nested too deeply")
	}
	for _, f := range td.Types[name] {
		ts, err := parseType(td, f.Type)
		if err != nil {
			return err
		}
		if err := implValue(td, ts, 0, f.Name, val[f.Name], out, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func implValue(td *apitypes.TypedData, ts typeSpec, level int, name string, v any, out *[]command, depth int) error {
	if depth > maxTyped712Depth {
		return errors.New("nested too deeply")
	}
	if level < len(ts.levels) {
		arr, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s is not an array", name)
		}
		if len(arr) > 255 || (ts.levels[level] >= 0 && ts.levels[level] != len(arr)) {
			return fmt.Errorf("%s has %d elements", name, len(arr))
		}
		*out = append(*out, command{cla: claETH, ins: insEthStructImpl, p2: 0x0F, data: []byte{byte(len(arr))}})
		for i, e := range arr {
			if err := implValue(td, ts, level+1, name+"["+strconv.Itoa(i)+"]", e, out, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if ts.kind == 0 {
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s is not an object", name)
		}
		return implStruct(td, ts.base, m, out, depth)
	}
	b, err := value712(ts, v)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if len(b) > 0xFFFF {
		return fmt.Errorf("%s: value of %d bytes", name, len(b))
	}
	data := binary.BigEndian.AppendUint16(nil, uint16(len(b)))
	data = append(data, b...)
	for len(data) > 0 {
		n := min(maxAPDUData, len(data))
		p1 := byte(0x00)
		if n < len(data) {
			p1 = 0x01
		}
		*out = append(*out, command{cla: claETH, ins: insEthStructImpl, p1: p1, p2: 0xFF, data: data[:n], screen: true})
		data = data[n:]
	}
	return nil
}

// value712 encodes an atomic value as hw-app-eth does: integers in their shortest
// big-endian form (zero as one byte; negative ints in two's complement of the type's
// width), bytesN unpadded.
func value712(ts typeSpec, v any) ([]byte, error) {
	switch ts.kind {
	case 5: // string
		s, err := device.TypedString(v)
		return []byte(s), err
	case 4: // bool
		b, err := device.TypedBool(v)
		if err != nil {
			return nil, err
		}
		if b {
			return []byte{1}, nil
		}
		return []byte{0}, nil
	case 3: // address
		a, err := device.TypedAddress(v)
		return a.Bytes(), err
	case 6: // bytesN
		return device.TypedBytes(v, ts.size)
	case 7: // bytes
		return device.TypedBytes(v, 0)
	case 1, 2: // int, uint
		n, err := device.TypedInteger(v, ts.size, ts.kind == 1)
		switch {
		case err != nil:
			return nil, err
		case n.Sign() < 0:
			return device.TwosComplement(n, ts.size), nil
		case n.Sign() == 0:
			return []byte{0}, nil
		}
		return n.Bytes(), nil
	}
	return nil, errors.New("not an atomic type")
}
