package bitbox02

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	pb "github.com/hwbridge/hwbridge/internal/bitbox02pb"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// EIP-712 as bitbox02-firmware hww/api/ethereum/sign_typed_msg.rs does it: the host sends the
// type definitions; the device hashes the domain, then the message (unless the primary type
// is EIP712Domain), asking the host for every atomic value and every dynamic array length by
// its path from the root (ETHTypedMessageValueResponse), and computes
// keccak256(0x19 0x01 ‖ domainSeparator ‖ hashStruct(message)) itself. The domain's chainId
// is asked first and must match the request's. Values are shown as informational screens
// here (one confirmation each on the device; the approver would answer each), then the
// address and "Sign data?" are confirmed, and the signature goes through anti-klepto.

type (
	dataType   = pb.ETHSignTypedMessageRequest_DataType
	memberType = pb.ETHSignTypedMessageRequest_MemberType
	structType = pb.ETHSignTypedMessageRequest_StructType
	rootObject = pb.ETHTypedMessageValueResponse_RootObject
)

const (
	maxTypedDepth  = 16
	maxTypedArray  = 1000
	maxTypedValues = 5000
	domainType     = "EIP712Domain"
)

type typedSigner struct {
	w       *apiWorker
	types   []*structType
	chainID *pb.ETHTypedMessageValueRequest // the domain's chainId, asked first
	chainAt int
	asked   int
}

func (s *typedSigner) typ(name string) *structType {
	for _, t := range s.types {
		if t.GetName() == name {
			return t
		}
	}
	return nil
}

// value asks the host for the value at path.
func (s *typedSigner) value(root rootObject, path []uint32) ([]byte, error) {
	if root == pb.ETHTypedMessageValueResponse_DOMAIN && s.chainID != nil && len(path) == 1 && int(path[0]) == s.chainAt {
		return s.chainID.GetValue(), nil
	}
	s.asked++
	if s.asked > maxTypedValues {
		return nil, errInvalidInput
	}
	req, err := s.w.next(ethResponse(&pb.ETHResponse{Response: &pb.ETHResponse_TypedMsgValue{TypedMsgValue: &pb.ETHTypedMessageValueResponse{
		RootObject: root, Path: slices.Clone(path),
	}}}))
	if err != nil {
		return nil, err
	}
	v := req.GetEth().GetTypedMsgValue()
	if v == nil || v.GetDataLength() != 0 { // streaming is not emulated
		return nil, errInvalidInput
	}
	return v.GetValue(), nil
}

// typeString formats a member type as encodeType writes it.
func typeString(t *memberType, depth int) (string, error) {
	if depth > maxTypedDepth || t == nil {
		return "", errInvalidInput
	}
	switch t.GetType() {
	case pb.ETHSignTypedMessageRequest_BYTES:
		if t.GetSize() == 0 {
			return "bytes", nil
		}
		if t.GetSize() > 32 {
			return "", errInvalidInput
		}
		return "bytes" + strconv.Itoa(int(t.GetSize())), nil
	case pb.ETHSignTypedMessageRequest_UINT, pb.ETHSignTypedMessageRequest_INT:
		if t.GetSize() == 0 || t.GetSize() > 32 {
			return "", errInvalidInput
		}
		p := "uint"
		if t.GetType() == pb.ETHSignTypedMessageRequest_INT {
			p = "int"
		}
		return p + strconv.Itoa(int(t.GetSize())*8), nil
	case pb.ETHSignTypedMessageRequest_BOOL:
		return "bool", nil
	case pb.ETHSignTypedMessageRequest_ADDRESS:
		return "address", nil
	case pb.ETHSignTypedMessageRequest_STRING:
		return "string", nil
	case pb.ETHSignTypedMessageRequest_STRUCT:
		return t.GetStructName(), nil
	case pb.ETHSignTypedMessageRequest_ARRAY:
		inner, err := typeString(t.GetArrayType(), depth+1)
		if err != nil {
			return "", err
		}
		if t.GetSize() > 0 {
			return inner + "[" + strconv.Itoa(int(t.GetSize())) + "]", nil
		}
		return inner + "[]", nil
	}
	return "", errInvalidInput
}

// deps collects the struct types name refers to, transitively.
func (s *typedSigner) deps(name string, seen map[string]bool, depth int) error {
	if seen[name] {
		return nil
	}
	if depth > maxTypedDepth {
		return errInvalidInput
	}
	t := s.typ(name)
	if t == nil {
		return errInvalidInput
	}
	seen[name] = true
	for _, m := range t.GetMembers() {
		mt := m.GetType()
		for mt.GetType() == pb.ETHSignTypedMessageRequest_ARRAY {
			mt = mt.GetArrayType()
		}
		if mt.GetType() == pb.ETHSignTypedMessageRequest_STRUCT {
			if err := s.deps(mt.GetStructName(), seen, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// encodeType is name(type member,…) followed by its dependencies sorted by name.
func (s *typedSigner) encodeType(name string) (string, error) {
	seen := map[string]bool{}
	if err := s.deps(name, seen, 0); err != nil {
		return "", err
	}
	var others []string
	for n := range seen {
		if n != name {
			others = append(others, n)
		}
	}
	slices.Sort(others)
	var b strings.Builder
	for _, n := range append([]string{name}, others...) {
		b.WriteString(n + "(")
		for i, m := range s.typ(n).GetMembers() {
			ts, err := typeString(m.GetType(), 0)
			if err != nil {
				return "", err
			}
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(ts + " " + m.GetName())
		}
		b.WriteString(")")
	}
	return b.String(), nil
}

func (s *typedSigner) hashStruct(name string, root rootObject, path []uint32) ([]byte, error) {
	if len(path) > maxTypedDepth {
		return nil, errInvalidInput
	}
	t := s.typ(name)
	if t == nil {
		return nil, errInvalidInput
	}
	et, err := s.encodeType(name)
	if err != nil {
		return nil, err
	}
	enc := crypto.Keccak256([]byte(et))
	for i, m := range t.GetMembers() {
		v, err := s.encodeMember(m.GetType(), root, append(slices.Clone(path), uint32(i)), m.GetName())
		if err != nil {
			return nil, err
		}
		enc = append(enc, v...)
	}
	return crypto.Keccak256(enc), nil
}

func (s *typedSigner) encodeMember(t *memberType, root rootObject, path []uint32, label string) ([]byte, error) {
	if t == nil || len(path) > maxTypedDepth {
		return nil, errInvalidInput
	}
	switch t.GetType() {
	case pb.ETHSignTypedMessageRequest_STRUCT:
		return s.hashStruct(t.GetStructName(), root, path)
	case pb.ETHSignTypedMessageRequest_ARRAY:
		n := t.GetSize()
		if n == 0 {
			b, err := s.value(root, path)
			if err != nil {
				return nil, err
			}
			if len(b) != 4 {
				return nil, errInvalidInput
			}
			n = binary.BigEndian.Uint32(b)
		}
		if n > maxTypedArray {
			return nil, errInvalidInput
		}
		var enc []byte
		for i := range n {
			v, err := s.encodeMember(t.GetArrayType(), root, append(slices.Clone(path), i), label+"["+strconv.Itoa(int(i))+"]")
			if err != nil {
				return nil, err
			}
			enc = append(enc, v...)
		}
		return crypto.Keccak256(enc), nil
	}
	b, err := s.value(root, path)
	if err != nil {
		return nil, err
	}
	enc, shown, err := encodeAtom(t, b)
	if err != nil {
		return nil, err
	}
	title := "Domain"
	if root == pb.ETHTypedMessageValueResponse_MESSAGE {
		title = "Message"
	}
	s.w.cn.show(title, label+": "+shown)
	return enc, nil
}

// encodeAtom encodes one atomic value as encodeData does (32 bytes) and formats it for the
// screen. The host sends uints and ints as minimal big-endian (two's complement for ints),
// addresses as "0x…" text, strings as text, bytes raw, bools as one byte.
func encodeAtom(t *memberType, v []byte) ([]byte, string, error) {
	pad := func(b []byte, fill byte) []byte {
		out := bytes.Repeat([]byte{fill}, 32-len(b))
		return append(out, b...)
	}
	switch t.GetType() {
	case pb.ETHSignTypedMessageRequest_BYTES:
		if t.GetSize() > 0 {
			if len(v) != int(t.GetSize()) {
				return nil, "", errInvalidInput
			}
			return append(slices.Clone(v), make([]byte, 32-len(v))...), "0x" + hex.EncodeToString(v), nil
		}
		return crypto.Keccak256(v), "0x" + hex.EncodeToString(v), nil
	case pb.ETHSignTypedMessageRequest_UINT:
		if len(v) > int(t.GetSize()) {
			return nil, "", errInvalidInput
		}
		return pad(v, 0), new(big.Int).SetBytes(v).String(), nil
	case pb.ETHSignTypedMessageRequest_INT:
		if len(v) > int(t.GetSize()) {
			return nil, "", errInvalidInput
		}
		x := new(big.Int).SetBytes(v)
		fill := byte(0)
		if len(v) > 0 && v[0]&0x80 != 0 {
			fill = 0xff
			x.Sub(x, new(big.Int).Lsh(big.NewInt(1), uint(8*len(v))))
		}
		return pad(v, fill), x.String(), nil
	case pb.ETHSignTypedMessageRequest_BOOL:
		if len(v) != 1 || v[0] > 1 {
			return nil, "", errInvalidInput
		}
		return pad(v, 0), strconv.FormatBool(v[0] == 1), nil
	case pb.ETHSignTypedMessageRequest_ADDRESS:
		s := string(v)
		if len(s) != 42 || (s[:2] != "0x" && s[:2] != "0X") {
			return nil, "", errInvalidInput
		}
		a, err := hex.DecodeString(s[2:])
		if err != nil {
			return nil, "", errInvalidInput
		}
		return pad(a, 0), common.BytesToAddress(a).Hex(), nil
	case pb.ETHSignTypedMessageRequest_STRING:
		for _, c := range v {
			if (c < 0x20 || c > 0x7e) && c != '\n' {
				return nil, "", errInvalidInput
			}
		}
		return crypto.Keccak256(v), string(v), nil
	}
	return nil, "", errInvalidInput
}

func (w *apiWorker) ethSignTypedMessage(r *pb.ETHSignTypedMessageRequest) (*pb.Response, error) {
	kp := r.GetKeypath()
	if !validEthPath(kp) {
		return nil, errInvalidInput
	}
	s := &typedSigner{w: w, types: r.GetTypes()}
	dom := s.typ(domainType)
	if dom == nil || (r.GetPrimaryType() != domainType && s.typ(r.GetPrimaryType()) == nil) {
		return nil, errInvalidInput
	}
	for _, t := range s.types {
		if _, err := s.encodeType(t.GetName()); err != nil {
			return nil, err
		}
	}
	// The domain's chainId, first and checked against the request.
	s.chainAt = slices.IndexFunc(dom.GetMembers(), func(m *pb.ETHSignTypedMessageRequest_Member) bool { return m.GetName() == "chainId" })
	if s.chainAt >= 0 {
		ct := dom.GetMembers()[s.chainAt].GetType()
		if ct.GetType() != pb.ETHSignTypedMessageRequest_UINT || ct.GetSize() == 0 || ct.GetSize() > 32 {
			return nil, errInvalidInput
		}
		v, err := s.value(pb.ETHTypedMessageValueResponse_DOMAIN, []uint32{uint32(s.chainAt)})
		if err != nil {
			return nil, err
		}
		if c := new(big.Int).SetBytes(v); !c.IsUint64() || c.Uint64() != r.GetChainId() {
			return nil, errInvalidInput
		}
		s.chainID = &pb.ETHTypedMessageValueRequest{Value: v}
	} else if err := w.ask("Warning", "Typed data has no chain ID. Message is valid for every chain."); err != nil {
		return nil, err
	}
	com := r.GetHostNonceCommitment().GetCommitment()
	if len(com) != 32 {
		return nil, errInvalidInput // signing without anti-klepto came with 9.26; this is 9.21
	}
	a, err := w.cn.d.wallet.EthAddress(hdpath.Path(kp))
	if err != nil {
		return nil, errGeneric
	}
	if err := w.ask("Ethereum", a.Hex()); err != nil {
		return nil, err
	}
	ds, err := s.hashStruct(domainType, pb.ETHTypedMessageValueResponse_DOMAIN, nil)
	if err != nil {
		return nil, err
	}
	digest := append([]byte{0x19, 0x01}, ds...)
	if r.GetPrimaryType() != domainType {
		mh, err := s.hashStruct(r.GetPrimaryType(), pb.ETHTypedMessageValueResponse_MESSAGE, nil)
		if err != nil {
			return nil, err
		}
		digest = append(digest, mh...)
	}
	if err := w.ask("Sign data?"); err != nil {
		return nil, err
	}
	return w.ethAntiKlepto(kp, crypto.Keccak256(digest), com)
}
