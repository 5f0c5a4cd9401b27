package bitbox02

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common/math"

	"github.com/hwbridge/hwbridge/device"
	pb "github.com/hwbridge/hwbridge/internal/bitbox02pb"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// EIP-712 on the BitBox02 (ETHSignTypedMessageRequest, firmware 9.12 on): the host sends the
// type definitions, the device asks for each value by its path from the domain or message
// root (ETHTypedMessageValueResponse: member indexes and array indexes) and for each dynamic
// array's length, shows the values, hashes the document itself and signs with anti-klepto.
// Values are encoded as bitbox-api-rs src/eth.rs encode_value does: uints minimal
// big-endian, ints two's complement, bools one byte, addresses and strings as text, bytes
// raw ("0x…" hex decoded), array lengths as 4-byte big-endian.

var _ device.TypedDataSigner = (*Driver)(nil)

// maxTypedValue is the largest value sent inline (the firmware streams longer bytes).
const maxTypedValue = 6144

type (
	memberType = pb.ETHSignTypedMessageRequest_MemberType
)

// parseType maps an EIP-712 type string onto the device's member type.
func parseType(typ string, types map[string]bool) (*memberType, error) {
	if strings.HasSuffix(typ, "]") {
		i := strings.LastIndexByte(typ, '[')
		if i < 0 {
			return nil, fmt.Errorf("%w: eip-712 type %q", device.ErrInvalidInput, typ)
		}
		var size uint64
		if n := typ[i+1 : len(typ)-1]; n != "" {
			var err error
			if size, err = strconv.ParseUint(n, 10, 32); err != nil {
				return nil, fmt.Errorf("%w: eip-712 type %q", device.ErrInvalidInput, typ)
			}
		}
		inner, err := parseType(typ[:i], types)
		if err != nil {
			return nil, err
		}
		return &memberType{Type: pb.ETHSignTypedMessageRequest_ARRAY, Size: uint32(size), ArrayType: inner}, nil
	}
	sized := func(prefix string, t pb.ETHSignTypedMessageRequest_DataType, div uint64) (*memberType, bool, error) {
		rest, ok := strings.CutPrefix(typ, prefix)
		if !ok {
			return nil, false, nil
		}
		if rest == "" {
			if t == pb.ETHSignTypedMessageRequest_BYTES {
				return &memberType{Type: t}, true, nil
			}
			return nil, true, fmt.Errorf("%w: eip-712 type %q has no size", device.ErrInvalidInput, typ)
		}
		n, err := strconv.ParseUint(rest, 10, 16)
		if err != nil || n == 0 || n%div != 0 || n/div > 32 {
			return nil, true, fmt.Errorf("%w: eip-712 type %q", device.ErrInvalidInput, typ)
		}
		return &memberType{Type: t, Size: uint32(n / div)}, true, nil
	}
	for _, p := range []struct {
		prefix string
		t      pb.ETHSignTypedMessageRequest_DataType
		div    uint64
	}{{"bytes", pb.ETHSignTypedMessageRequest_BYTES, 1}, {"uint", pb.ETHSignTypedMessageRequest_UINT, 8}, {"int", pb.ETHSignTypedMessageRequest_INT, 8}} {
		if types[typ] {
			break
		}
		if mt, ok, err := sized(p.prefix, p.t, p.div); ok {
			return mt, err
		}
	}
	switch {
	case typ == "bool":
		return &memberType{Type: pb.ETHSignTypedMessageRequest_BOOL}, nil
	case typ == "address":
		return &memberType{Type: pb.ETHSignTypedMessageRequest_ADDRESS}, nil
	case typ == "string":
		return &memberType{Type: pb.ETHSignTypedMessageRequest_STRING}, nil
	case types[typ]:
		return &memberType{Type: pb.ETHSignTypedMessageRequest_STRUCT, StructName: typ}, nil
	}
	return nil, fmt.Errorf("%w: eip-712 type %q is unknown", device.ErrInvalidInput, typ)
}

// typedValue finds the value the device asks for and encodes it.
func typedValue(td *device.TypedData, structs map[string]bool, root pb.ETHTypedMessageValueResponse_RootObject, path []uint32) ([]byte, error) {
	var v any
	var typ string
	switch root {
	case pb.ETHTypedMessageValueResponse_DOMAIN:
		v, typ = td.Data.Domain.Map(), "EIP712Domain"
	case pb.ETHTypedMessageValueResponse_MESSAGE:
		v, typ = map[string]any(td.Data.Message), td.Data.PrimaryType
	default:
		return nil, fmt.Errorf("%w: eip-712 root %v", device.ErrProtocol, root)
	}
	for _, el := range path {
		mt, err := parseType(typ, structs)
		if err != nil {
			return nil, err
		}
		switch mt.GetType() {
		case pb.ETHSignTypedMessageRequest_STRUCT:
			members := td.Data.Types[typ]
			m, ok := v.(map[string]any)
			if int(el) >= len(members) || !ok {
				return nil, fmt.Errorf("%w: eip-712 path %v: no member %d of %s", device.ErrProtocol, path, el, typ)
			}
			if v, ok = m[members[el].Name]; !ok {
				return nil, fmt.Errorf("%w: eip-712: %s has no value for %s", device.ErrInvalidInput, typ, members[el].Name)
			}
			typ = members[el].Type
		case pb.ETHSignTypedMessageRequest_ARRAY:
			a, ok := v.([]any)
			if !ok || int(el) >= len(a) {
				return nil, fmt.Errorf("%w: eip-712 path %v: no element %d", device.ErrProtocol, path, el)
			}
			v, typ = a[el], typ[:strings.LastIndexByte(typ, '[')]
		default:
			return nil, fmt.Errorf("%w: eip-712 path %v goes through an atomic value", device.ErrProtocol, path)
		}
	}
	mt, err := parseType(typ, structs)
	if err != nil {
		return nil, err
	}
	return encodeTyped(mt, v)
}

// bigOf reads a JSON number or numeric string.
func bigOf(v any) (*big.Int, error) {
	switch x := v.(type) {
	case *math.HexOrDecimal256:
		return (*big.Int)(x), nil
	case *big.Int:
		return x, nil
	case float64:
		if x != float64(int64(x)) {
			return nil, fmt.Errorf("%w: %v is not an integer", device.ErrInvalidInput, x)
		}
		return big.NewInt(int64(x)), nil
	case json.Number:
		v, ok := new(big.Int).SetString(string(x), 10)
		if !ok {
			return nil, fmt.Errorf("%w: %q is not an integer", device.ErrInvalidInput, x)
		}
		return v, nil
	case string:
		v, ok := math.ParseBig256(x)
		if !ok {
			if n, ok2 := new(big.Int).SetString(x, 10); ok2 { // negative ints
				return n, nil
			}
			return nil, fmt.Errorf("%w: %q is not an integer", device.ErrInvalidInput, x)
		}
		return v, nil
	}
	return nil, fmt.Errorf("%w: %T is not an integer", device.ErrInvalidInput, v)
}

func encodeTyped(mt *memberType, v any) ([]byte, error) {
	switch mt.GetType() {
	case pb.ETHSignTypedMessageRequest_ARRAY:
		a, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("%w: eip-712: %T is not an array", device.ErrInvalidInput, v)
		}
		return binary.BigEndian.AppendUint32(nil, uint32(len(a))), nil
	case pb.ETHSignTypedMessageRequest_BYTES:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("%w: eip-712: bytes must be a string", device.ErrInvalidInput)
		}
		if h, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
			return hex.DecodeString(h)
		}
		return []byte(s), nil
	case pb.ETHSignTypedMessageRequest_UINT:
		n, err := bigOf(v)
		if err != nil || n.Sign() < 0 {
			return nil, fmt.Errorf("%w: eip-712: %v is not a uint", device.ErrInvalidInput, v)
		}
		return n.Bytes(), nil
	case pb.ETHSignTypedMessageRequest_INT:
		n, err := bigOf(v)
		if err != nil {
			return nil, err
		}
		return signedBytes(n), nil
	case pb.ETHSignTypedMessageRequest_BOOL:
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("%w: eip-712: %v is not a bool", device.ErrInvalidInput, v)
		}
		if b {
			return []byte{1}, nil
		}
		return []byte{0}, nil
	case pb.ETHSignTypedMessageRequest_ADDRESS, pb.ETHSignTypedMessageRequest_STRING:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("%w: eip-712: %v is not a string", device.ErrInvalidInput, v)
		}
		return []byte(s), nil
	}
	return nil, fmt.Errorf("%w: eip-712: a struct is not a value", device.ErrProtocol)
}

// signedBytes is the shortest two's complement big-endian form of n (empty for zero).
func signedBytes(n *big.Int) []byte {
	if n.Sign() >= 0 {
		b := n.Bytes()
		if len(b) > 0 && b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return b
	}
	// -n in k bytes: 2^(8k) + n, with k the smallest that keeps the sign bit set.
	for k := 1; ; k++ {
		m := new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), uint(8*k)), n)
		if m.Sign() > 0 && m.BitLen() == 8*k {
			return m.FillBytes(make([]byte, k))
		}
	}
}

// SignTypedData implements device.TypedDataSigner: the device gets the whole document.
func (d *Driver) SignTypedData(ctx context.Context, path hdpath.Path, td *device.TypedData) ([]byte, error) {
	if td == nil {
		return nil, fmt.Errorf("bitbox02: sign typed data: %w: no document", device.ErrInvalidInput)
	}
	structs := map[string]bool{}
	for name := range td.Data.Types {
		structs[name] = true
	}
	if !structs["EIP712Domain"] {
		return nil, fmt.Errorf("bitbox02: sign typed data: %w: no EIP712Domain type", device.ErrInvalidInput)
	}
	var types []*pb.ETHSignTypedMessageRequest_StructType
	for name, members := range td.Data.Types {
		st := &pb.ETHSignTypedMessageRequest_StructType{Name: name}
		for _, m := range members {
			mt, err := parseType(m.Type, structs)
			if err != nil {
				return nil, fmt.Errorf("bitbox02: sign typed data: %w", err)
			}
			st.Members = append(st.Members, &pb.ETHSignTypedMessageRequest_Member{Name: m.Name, Type: mt})
		}
		types = append(types, st)
	}
	chainID := uint64(1)
	if c := td.Data.Domain.ChainId; c != nil {
		if !(*big.Int)(c).IsUint64() {
			return nil, fmt.Errorf("bitbox02: sign typed data: %w: chain id %v", device.ErrInvalidInput, (*big.Int)(c))
		}
		chainID = (*big.Int)(c).Uint64()
	}
	nonce, com, err := newHostNonce()
	if err != nil {
		return nil, err
	}
	var sig []byte
	err = d.do(ctx, "sign typed data", func(c *channel) error {
		r, err := ethCall(ctx, c, "sign typed data", &pb.ETHRequest{Request: &pb.ETHRequest_SignTypedMsg{SignTypedMsg: &pb.ETHSignTypedMessageRequest{
			ChainId: chainID, Keypath: path, Types: types, PrimaryType: td.Data.PrimaryType,
			HostNonceCommitment: &pb.AntiKleptoHostNonceCommitment{Commitment: com},
		}}})
		for steps := 0; err == nil && r.GetTypedMsgValue() != nil; steps++ {
			if steps > 100000 {
				return fmt.Errorf("%w: the device asked for too many eip-712 values", device.ErrProtocol)
			}
			q := r.GetTypedMsgValue()
			v, verr := typedValue(td, structs, q.GetRootObject(), q.GetPath())
			if verr != nil {
				return verr
			}
			if len(v) > maxTypedValue {
				return fmt.Errorf("%w: eip-712 value of %d bytes (this driver sends at most %d)", device.ErrInvalidInput, len(v), maxTypedValue)
			}
			r, err = ethCall(ctx, c, "sign typed data", &pb.ETHRequest{Request: &pb.ETHRequest_TypedMsgValue{TypedMsgValue: &pb.ETHTypedMessageValueRequest{Value: v}}})
		}
		if err != nil {
			return err
		}
		signer := r.GetAntikleptoSignerCommitment().GetCommitment()
		if signer == nil {
			return fmt.Errorf("%w: sign typed data: no anti-klepto signer commitment (%T)", device.ErrProtocol, r.GetResponse())
		}
		r, err = ethCall(ctx, c, "sign typed data", &pb.ETHRequest{Request: &pb.ETHRequest_AntikleptoSignature{
			AntikleptoSignature: &pb.AntiKleptoSignatureRequest{HostNonce: nonce},
		}})
		if err != nil {
			return err
		}
		s := r.GetSign().GetSignature()
		if len(s) != 65 || s[64] > 1 {
			return fmt.Errorf("%w: sign typed data: signature of %d bytes", device.ErrProtocol, len(s))
		}
		if err := verifyAntiKlepto(nonce, signer, s); err != nil {
			return err
		}
		sig = append(s[:64:64], s[64]+27)
		return nil
	})
	return sig, err
}
