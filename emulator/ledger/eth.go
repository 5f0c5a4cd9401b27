package ledgeremu

import (
	"encoding/binary"
	"encoding/hex"
	"math/big"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// The Ethereum app (CLA 0xE0, ledger.md §6).
const (
	insEthGetAddress     = 0x02
	insEthSignTx         = 0x04
	insEthGetConfig      = 0x06
	insEthSignPersonal   = 0x08
	insEthProvideERC20   = 0x0A
	insEthSignEIP712     = 0x0C
	insEthStructDef      = 0x1A
	insEthStructImpl     = 0x1C
	insEthFiltering      = 0x1E
	p1First              = 0x00
	p1More               = 0x80
	ethFlagBlindSigning  = 0x01
	ethFlagERC20Required = 0x02
)

// Caps.
const (
	maxEthPathSteps = 10
	maxEthTx        = 64 << 10 // streamed transaction bytes
	maxEthMessage   = 1 << 20
)

// ethState is the multi-APDU flow in progress (SIGN, SIGN_PERSONAL_MESSAGE).
type ethState struct {
	flow  byte // 0 none, insEthSignTx or insEthSignPersonal
	path  []uint32
	buf   []byte
	ends  []int // SIGN: len(buf) after each chunk
	total int   // personal message length
}

func (cn *conn) ethereum(a APDU) ([]byte, error) {
	if a.CLA != claETH {
		return nil, fail(swCLANotSupported, "cla %02x", a.CLA)
	}
	d := cn.d
	switch a.INS {
	case insEthGetConfig:
		flags := byte(ethFlagERC20Required)
		if d.blind {
			flags |= ethFlagBlindSigning
		}
		return []byte{flags, ethMajor, ethMinor, ethPatch}, nil
	case insEthGetAddress:
		return cn.ethAddress(a)
	case insEthSignTx:
		d.eip712 = nil
		out, err := cn.ethSignTx(a)
		if err != nil {
			d.assets = assetSlots{} // a refused transaction forgets the tokens too
		}
		return out, err
	case insEthSignPersonal:
		d.eip712 = nil
		return cn.ethSignPersonal(a)
	case insEthSignEIP712:
		return cn.ethSignEIP712(a)
	case insEthProvideERC20:
		return cn.ethProvideERC20(a)
	case insEthStructDef:
		return cn.eip712StructDef(a)
	case insEthStructImpl:
		return cn.eip712StructImpl(a)
	case insEthFiltering:
		return cn.eip712Filtering(a)
	}
	return nil, fail(swINSNotSupported, "ins %02x", a.INS)
}

// ethPath reads u8 n ‖ n×u32 and checks the app's derivation lock (44'/60'/…, 45'/…).
func ethPath(r *reader) ([]uint32, error) {
	p, ok := r.path(maxEthPathSteps)
	if !ok || len(p) == 0 {
		return nil, fail(swIncorrectData, "bad derivation path")
	}
	switch {
	case len(p) >= 2 && p[0] == 44|hardened && p[1] == 60|hardened:
	case p[0] == 45|hardened:
	default:
		return nil, fail(swIncorrectData, "path %s is outside the app's derivation lock", hdpath.Path(p))
	}
	return p, nil
}

func (cn *conn) ethAddress(a APDU) ([]byte, error) {
	if a.P1 > 1 || a.P2 > 1 {
		return nil, fail(swWrongP1P2, "p1 %02x p2 %02x", a.P1, a.P2)
	}
	r := &reader{b: a.Data}
	path, err := ethPath(r)
	if err != nil {
		return nil, err
	}
	var chainID uint64
	if r.left() == 8 {
		chainID = binary.BigEndian.Uint64(r.bytes(8))
	} else if r.left() != 0 {
		return nil, fail(swIncorrectData, "trailing bytes after the path")
	}
	k, err := cn.d.wallet.Derive(hdpath.Path(path))
	if err != nil {
		return nil, fail(swIncorrectData, "derive: %v", err)
	}
	pub, err := k.ECPubKey()
	if err != nil {
		return nil, fail(swIncorrectData, "derive: %v", err)
	}
	addr := common.BytesToAddress(crypto.Keccak256(pub.SerializeUncompressed()[1:])[12:])
	hexAddr := addr.Hex()[2:]
	if a.P1 == 1 {
		lines := []string{addr.Hex()}
		if chainID != 0 {
			lines = append(lines, "chain id: "+strconv.FormatUint(chainID, 10))
		}
		ok, err := cn.ask("Verify Ethereum address", lines...)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fail(swDeny, "rejected")
		}
	}
	out := append([]byte{65}, pub.SerializeUncompressed()...)
	out = append(out, byte(len(hexAddr)))
	out = append(out, hexAddr...)
	if a.P2 == 1 {
		out = append(out, k.ChainCode()...)
	}
	return out, nil
}

// ethSignTx streams a transaction: first chunk `u8 n ‖ path ‖ tx…`, then tx bytes; the
// device answers 9000 with no data until the outer RLP list is complete.
func (cn *conn) ethSignTx(a APDU) ([]byte, error) {
	d := cn.d
	switch {
	case a.P2 != 0:
		return nil, fail(swWrongP1P2, "p2 %02x", a.P2)
	case a.P1 == p1First:
		d.eth = ethState{}
		r := &reader{b: a.Data}
		path, err := ethPath(r)
		if err != nil {
			return nil, err
		}
		if r.left() == 0 {
			return nil, fail(swIncorrectData, "no transaction bytes")
		}
		if t := r.b[0]; t <= 0x7F && t != 0x01 && t != 0x02 {
			return nil, fail(swTxTypeNotSupport, "transaction type %d", t)
		}
		d.eth = ethState{flow: insEthSignTx, path: path, buf: append([]byte(nil), r.b...), ends: []int{r.left()}}
	case a.P1 == p1More:
		if d.eth.flow != insEthSignTx {
			return nil, fail(swCommandNotAllow, "continuation without a transaction")
		}
		if len(d.eth.buf)+len(a.Data) > maxEthTx {
			d.eth = ethState{}
			return nil, fail(swInsufficientMem, "transaction too large")
		}
		d.eth.buf = append(d.eth.buf, a.Data...)
		d.eth.ends = append(d.eth.ends, len(d.eth.buf))
	default:
		return nil, fail(swWrongP1P2, "p1 %02x", a.P1)
	}
	if err := cn.streamCheck(d.eth.buf, d.eth.ends); err != nil {
		d.eth = ethState{}
		return nil, err
	}
	tx := d.eth.buf
	body := tx
	if tx[0] <= 0x7F {
		body = tx[1:]
	}
	need, ok := rlpListSize(body)
	switch {
	case !ok || len(body) < need:
		return nil, nil // wait for more chunks
	case len(body) > need:
		d.eth = ethState{}
		return nil, fail(swIncorrectData, "bytes after the transaction")
	}
	path := d.eth.path
	d.eth = ethState{}
	return cn.ethFinishTx(path, tx)
}

// rlpListSize is the total size of the RLP list at the start of b, once its header is in.
func rlpListSize(b []byte) (int, bool) {
	if len(b) == 0 {
		return 0, false
	}
	switch h := b[0]; {
	case h >= 0xC0 && h <= 0xF7:
		return 1 + int(h-0xC0), true
	case h > 0xF7:
		n := int(h - 0xF7)
		if len(b) < 1+n {
			return 0, false
		}
		size := 0
		for _, c := range b[1 : 1+n] {
			size = size<<8 | int(c)
			if size > maxEthTx {
				return maxEthTx + 1, true
			}
		}
		return 1 + n + size, true
	}
	return 0, true // not a list: len(body) > 0 fails below as "bytes after"
}

// ethTx is the decoded fields the device shows.
type ethTx struct {
	typ      byte
	chainID  []byte // as encoded (big-endian, minimal)
	hasChain bool
	nonce    []byte
	gasPrice *big.Int // legacy/2930; max fee for 1559
	tip      *big.Int
	gas      *big.Int
	to       []byte
	value    *big.Int
	data     []byte
}

func decodeEthTx(tx []byte) (*ethTx, error) {
	t := &ethTx{}
	body := tx
	if tx[0] <= 0x7F {
		t.typ, body = tx[0], tx[1:]
	}
	var f []rlp.RawValue
	if err := rlp.DecodeBytes(body, &f); err != nil {
		return nil, fail(swIncorrectData, "transaction rlp: %v", err)
	}
	str := func(i int) ([]byte, error) {
		if i >= len(f) {
			return nil, fail(swIncorrectData, "transaction has %d fields", len(f))
		}
		var b []byte
		if err := rlp.DecodeBytes(f[i], &b); err != nil {
			return nil, fail(swIncorrectData, "transaction field %d: %v", i, err)
		}
		return b, nil
	}
	num := func(i int) (*big.Int, error) {
		b, err := str(i)
		if err != nil {
			return nil, err
		}
		if len(b) > 32 {
			return nil, fail(swIncorrectData, "transaction field %d too large", i)
		}
		return new(big.Int).SetBytes(b), nil
	}
	var err error
	var idx []int // nonce, gasPrice/maxFee, gas, to, value, data
	switch t.typ {
	case 0:
		if len(f) != 6 && len(f) != 9 {
			return nil, fail(swIncorrectData, "legacy transaction has %d fields", len(f))
		}
		idx = []int{0, 1, 2, 3, 4, 5}
		if len(f) == 9 {
			t.hasChain = true
			if t.chainID, err = str(6); err != nil {
				return nil, err
			}
		}
	case 1:
		if len(f) != 8 {
			return nil, fail(swIncorrectData, "eip-2930 transaction has %d fields", len(f))
		}
		idx = []int{1, 2, 3, 4, 5, 6}
	case 2:
		if len(f) != 9 {
			return nil, fail(swIncorrectData, "eip-1559 transaction has %d fields", len(f))
		}
		idx = []int{1, 3, 4, 5, 6, 7}
		if t.tip, err = num(2); err != nil {
			return nil, err
		}
	}
	if t.typ != 0 {
		t.hasChain = true
		if t.chainID, err = str(0); err != nil {
			return nil, err
		}
	}
	if t.nonce, err = str(idx[0]); err != nil {
		return nil, err
	}
	if t.gasPrice, err = num(idx[1]); err != nil {
		return nil, err
	}
	if t.gas, err = num(idx[2]); err != nil {
		return nil, err
	}
	if t.to, err = str(idx[3]); err != nil {
		return nil, err
	}
	if len(t.to) != 0 && len(t.to) != 20 {
		return nil, fail(swIncorrectData, "bad recipient")
	}
	if t.value, err = num(idx[4]); err != nil {
		return nil, err
	}
	if t.data, err = str(idx[5]); err != nil {
		return nil, err
	}
	return t, nil
}

func (cn *conn) ethFinishTx(path []uint32, raw []byte) ([]byte, error) {
	defer func() { cn.d.assets = assetSlots{} }() // the app forgets the tokens after each transaction
	t, err := decodeEthTx(raw)
	if err != nil {
		return nil, err
	}
	chain := new(big.Int).SetBytes(t.chainID)
	title := "Review transaction"
	tokTitle, tokLines, clear := cn.tokenScreen(t.to, t.data)
	var lines []string
	switch {
	case clear:
		title, lines = tokTitle, tokLines
	default:
		lines = append(lines, "amount: "+formatUnitsBig(t.value, 18)+" ETH")
		if len(t.to) == 0 {
			lines = append(lines, "to: contract creation")
		} else {
			lines = append(lines, "to: "+common.BytesToAddress(t.to).Hex())
		}
	}
	lines = append(lines, "max fee: "+formatUnitsBig(new(big.Int).Mul(t.gas, t.gasPrice), 18)+" ETH")
	if t.hasChain {
		lines = append(lines, "chain id: "+chain.String())
	}
	if len(t.data) > 0 && !clear {
		if !cn.d.blind {
			cn.show("Blind signing", "this transaction cannot be clear-signed",
				"enable blind signing in the Ethereum app settings")
			return nil, fail(swIncorrectData, "blind signing is disabled")
		}
		cn.show("Blind signing", "this transaction cannot be trusted", "data: "+hex.EncodeToString(t.data[:min(4, len(t.data))])+"…")
		lines = append(lines, "data hash: "+hex.EncodeToString(crypto.Keccak256(t.data)))
	}
	ok, err := cn.ask(title, lines...)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fail(swDeny, "rejected")
	}
	sig, err := cn.ethSign(path, crypto.Keccak256(raw))
	if err != nil {
		return nil, err
	}
	parity := sig[64]
	var v byte
	switch {
	case t.typ != 0:
		v = parity
	case t.hasChain:
		cb := t.chainID
		if len(cb) > 4 {
			cb = cb[:4]
		}
		var c uint32
		for _, x := range cb {
			c = c<<8 | uint32(x)
		}
		v = byte(c*2 + 35 + uint32(parity))
	default:
		v = 27 + parity
	}
	return append([]byte{v}, sig[:64]...), nil
}

// ethSign signs a 32-byte digest (RFC 6979, low S) and returns r ‖ s ‖ parity.
func (cn *conn) ethSign(path []uint32, digest []byte) ([]byte, error) {
	key, err := cn.d.wallet.EthKey(hdpath.Path(path))
	if err != nil {
		return nil, fail(swIncorrectData, "derive: %v", err)
	}
	sig, err := crypto.Sign(digest, key)
	if err != nil {
		return nil, fail(swBadState, "sign: %v", err)
	}
	return sig, nil
}

func (cn *conn) ethSignPersonal(a APDU) ([]byte, error) {
	d := cn.d
	switch {
	case a.P2 != 0:
		return nil, fail(swWrongP1P2, "p2 %02x", a.P2)
	case a.P1 == p1First:
		d.eth = ethState{}
		r := &reader{b: a.Data}
		path, err := ethPath(r)
		if err != nil {
			return nil, err
		}
		total := r.u32()
		if r.bad {
			return nil, fail(swIncorrectData, "short personal message header")
		}
		if total > maxEthMessage {
			return nil, fail(swInsufficientMem, "message of %d bytes", total)
		}
		d.eth = ethState{flow: insEthSignPersonal, path: path, total: int(total), buf: append([]byte(nil), r.b...)}
	case a.P1 == p1More:
		if d.eth.flow != insEthSignPersonal {
			return nil, fail(swCommandNotAllow, "continuation without a message")
		}
		d.eth.buf = append(d.eth.buf, a.Data...)
	default:
		return nil, fail(swWrongP1P2, "p1 %02x", a.P1)
	}
	st := d.eth
	if len(st.buf) < st.total {
		return nil, nil
	}
	d.eth = ethState{}
	if len(st.buf) > st.total {
		return nil, fail(swIncorrectData, "message longer than announced")
	}
	msg := st.buf
	shown := "0x" + hex.EncodeToString(msg)
	if printable(msg) {
		shown = string(msg)
	}
	if len(shown) > 640 {
		shown = shown[:640] + "…"
	}
	ok, err := cn.ask("Sign message", "path: "+hdpath.Path(st.path).String(), "message: "+shown)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fail(swDeny, "rejected")
	}
	digest := crypto.Keccak256([]byte("\x19Ethereum Signed Message:\n"+strconv.Itoa(len(msg))), msg)
	sig, err := cn.ethSign(st.path, digest)
	if err != nil {
		return nil, err
	}
	return append([]byte{27 + sig[64]}, sig[:64]...), nil
}

func (cn *conn) ethSignEIP712(a APDU) ([]byte, error) {
	if a.P1 != 0 || a.P2 > 1 {
		return nil, fail(swWrongP1P2, "p1 %02x p2 %02x", a.P1, a.P2)
	}
	if a.P2 == 1 {
		return cn.eip712SignFull(a)
	}
	// app-ethereum 1.22.0 cmd_sign_message_eip712.c: the blind-signing setting is checked
	// before the request is read, and bytes after the two hashes are ignored.
	if !cn.d.blind {
		cn.show("Blind signing", "this message cannot be clear-signed",
			"enable blind signing in the Ethereum app settings")
		return nil, fail(swIncorrectData, "blind signing is disabled")
	}
	r := &reader{b: a.Data}
	path, err := ethPath(r)
	if err != nil {
		return nil, err
	}
	domain := r.bytes(32)
	message := r.bytes(32)
	if r.bad {
		return nil, fail(swIncorrectData, "eip-712 v0 needs two 32-byte hashes")
	}
	ok, err := cn.ask("Sign typed data", "path: "+hdpath.Path(path).String(),
		"domain hash: "+hex.EncodeToString(domain), "message hash: "+hex.EncodeToString(message))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fail(swDeny, "rejected")
	}
	digest := crypto.Keccak256([]byte{0x19, 0x01}, domain, message)
	sig, err := cn.ethSign(path, digest)
	if err != nil {
		return nil, err
	}
	return append([]byte{27 + sig[64]}, sig[:64]...), nil
}

// formatUnits prints v/10^dec without trailing zeros ("0.001").
func formatUnits(v uint64, dec int) string {
	return formatUnitsBig(new(big.Int).SetUint64(v), dec)
}

func formatUnitsBig(v *big.Int, dec int) string {
	s := v.String()
	if len(s) <= dec {
		s = strings.Repeat("0", dec-len(s)+1) + s
	}
	whole, frac := s[:len(s)-dec], strings.TrimRight(s[len(s)-dec:], "0")
	if frac == "" {
		return whole
	}
	return whole + "." + frac
}
