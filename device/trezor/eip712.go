package trezor

// EIP-712 on a Trezor, by firmware: core (model T, Safe 3, Safe 5, firmware ≥ 2.4.3) takes
// the whole document by struct streaming (EthereumSignTypedData; the device asks
// EthereumTypedDataStructRequest for each type and EthereumTypedDataValueRequest for each
// value by member path, [0, …] in the domain and [1, …] in the message, an array's length
// first as a 2-byte uint) and has no hash-only message; the Trezor One (legacy ≥ 1.10.5)
// signs only the hashes (EthereumSignTypedHash). Source: trezor-firmware
// core/src/apps/ethereum/sign_typed_data.py and legacy/firmware/fsm_msg_ethereum.h.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/signer/core/apitypes"
	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/internal/trezorpb"
)

type (
	fieldType = trezorpb.EthereumTypedDataStructAck_EthereumFieldType
	member    = trezorpb.EthereumTypedDataStructAck_EthereumStructMember
	dataType  = trezorpb.EthereumTypedDataStructAck_EthereumDataType
)

// maxTypedRequests bounds one streaming exchange (a device that keeps asking is broken).
const maxTypedRequests = 1 << 16

// SignTypedData signs an EIP-712 document: streamed on core firmware, as hashes on the
// Trezor One. Both give the same signature for the same document.
func (d *Driver) SignTypedData(ctx context.Context, path hdpath.Path, td *device.TypedData) ([]byte, error) {
	if td == nil {
		return nil, fmt.Errorf("trezor: sign typed data: %w: no typed data", device.ErrInvalidInput)
	}
	var out []byte
	err := d.do(ctx, "sign typed data", func(s *session) error {
		if s.legacy() {
			if !s.caps().EIP712Hash {
				return fmt.Errorf("eip-712 signing needs firmware 1.10.5 on a trezor one: %w", errors.ErrUnsupported)
			}
			var err error
			out, err = s.signTypedHash(path, td.DomainSeparator, td.MessageHash)
			return err
		}
		if !s.caps().EIP712 {
			return fmt.Errorf("eip-712 signing needs firmware 2.4.3: %w", errors.ErrUnsupported)
		}
		var err error
		out, err = s.streamTypedData(path, &td.Data)
		return err
	})
	return out, err
}

func (s *session) streamTypedData(path hdpath.Path, td *apitypes.TypedData) ([]byte, error) {
	var req proto.Message = &trezorpb.EthereumSignTypedData{
		AddressN:         path,
		PrimaryType:      proto.String(td.PrimaryType),
		MetamaskV4Compat: proto.Bool(true), // apitypes hashes arrays of structs as MetaMask v4
	}
	domain := apitypes.TypedDataMessage(td.Domain.Map())
	for range maxTypedRequests {
		reply, err := s.Call(req)
		if err != nil {
			return nil, err
		}
		switch r := reply.(type) {
		case *trezorpb.EthereumTypedDataStructRequest:
			members, err := structMembers(td, r.GetName())
			if err != nil {
				return nil, s.Refuse(err) // Cancel, so the device leaves the flow
			}
			req = &trezorpb.EthereumTypedDataStructAck{Members: members}
		case *trezorpb.EthereumTypedDataValueRequest:
			v, err := typedValue(td, domain, r.GetMemberPath())
			if err != nil {
				return nil, s.Refuse(err)
			}
			req = &trezorpb.EthereumTypedDataValueAck{Value: v}
		case *trezorpb.EthereumTypedDataSignature:
			if len(r.GetSignature()) != 65 {
				return nil, fmt.Errorf("%w: typed data signature of %d bytes, want 65", device.ErrProtocol, len(r.GetSignature()))
			}
			return r.GetSignature(), nil
		default:
			return nil, fmt.Errorf("%w: unexpected reply %s while streaming typed data", device.ErrProtocol, reply.ProtoReflect().Descriptor().Name())
		}
	}
	return nil, fmt.Errorf("%w: the device asked for more than %d typed data items", device.ErrProtocol, maxTypedRequests)
}

func structMembers(td *apitypes.TypedData, name string) ([]*member, error) {
	fields, ok := td.Types[name]
	if !ok {
		return nil, fmt.Errorf("%w: the device asked for type %q, which the typed data does not define", device.ErrProtocol, name)
	}
	out := make([]*member, 0, len(fields))
	for _, f := range fields {
		ft, err := parseFieldType(td, f.Type, 0)
		if err != nil {
			return nil, fmt.Errorf("%w: type %s, member %s: %w", device.ErrInvalidInput, name, f.Name, err)
		}
		out = append(out, &member{Type: ft, Name: proto.String(f.Name)})
	}
	return out, nil
}

// parseFieldType turns an EIP-712 type string into the firmware's EthereumFieldType.
func parseFieldType(td *apitypes.TypedData, t string, depth int) (*fieldType, error) {
	if depth > 8 {
		return nil, errors.New("arrays nested too deeply")
	}
	if strings.HasSuffix(t, "]") {
		i := strings.LastIndexByte(t, '[')
		if i <= 0 {
			return nil, fmt.Errorf("malformed array type %q", t)
		}
		entry, err := parseFieldType(td, t[:i], depth+1)
		if err != nil {
			return nil, err
		}
		ft := &fieldType{DataType: trezorpb.EthereumTypedDataStructAck_ARRAY.Enum(), EntryType: entry}
		if n := t[i+1 : len(t)-1]; n != "" {
			size, err := strconv.ParseUint(n, 10, 16)
			if err != nil {
				return nil, fmt.Errorf("array size in %q: %w", t, err)
			}
			ft.Size = proto.Uint32(uint32(size))
		}
		return ft, nil
	}
	sized := func(dt dataType, prefix string, bits bool) (*fieldType, error) {
		n := 32
		if rest := strings.TrimPrefix(t, prefix); rest != "" {
			v, err := strconv.Atoi(rest)
			if err != nil {
				return nil, fmt.Errorf("unknown type %q", t)
			}
			n = v
			if bits {
				if v%8 != 0 {
					return nil, fmt.Errorf("unknown type %q", t)
				}
				n = v / 8
			}
		}
		if n < 1 || n > 32 {
			return nil, fmt.Errorf("unknown type %q", t)
		}
		return &fieldType{DataType: dt.Enum(), Size: proto.Uint32(uint32(n))}, nil
	}
	switch {
	case t == "string":
		return &fieldType{DataType: trezorpb.EthereumTypedDataStructAck_STRING.Enum()}, nil
	case t == "bool":
		return &fieldType{DataType: trezorpb.EthereumTypedDataStructAck_BOOL.Enum()}, nil
	case t == "address":
		return &fieldType{DataType: trezorpb.EthereumTypedDataStructAck_ADDRESS.Enum()}, nil
	case t == "bytes":
		return &fieldType{DataType: trezorpb.EthereumTypedDataStructAck_BYTES.Enum()}, nil
	case strings.HasPrefix(t, "bytes"):
		return sized(trezorpb.EthereumTypedDataStructAck_BYTES, "bytes", false)
	case strings.HasPrefix(t, "uint"):
		return sized(trezorpb.EthereumTypedDataStructAck_UINT, "uint", true)
	case strings.HasPrefix(t, "int"):
		return sized(trezorpb.EthereumTypedDataStructAck_INT, "int", true)
	}
	if fields, ok := td.Types[t]; ok {
		return &fieldType{DataType: trezorpb.EthereumTypedDataStructAck_STRUCT.Enum(), StructName: proto.String(t), Size: proto.Uint32(uint32(len(fields)))}, nil
	}
	return nil, fmt.Errorf("unknown type %q", t)
}

// typedValue answers an EthereumTypedDataValueRequest: it walks the member path from the
// domain ([0, …]) or the message ([1, …]) and encodes the atomic value it reaches, or the
// length of a dynamic array as a 2-byte big-endian uint.
func typedValue(td *apitypes.TypedData, domain apitypes.TypedDataMessage, path []uint32) ([]byte, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: member path %v: %s", device.ErrProtocol, path, fmt.Sprintf(format, a...))
	}
	if len(path) < 2 {
		return nil, bad("too short")
	}
	var typ string
	var val any
	switch path[0] {
	case 0:
		typ, val = "EIP712Domain", map[string]any(domain)
	case 1:
		typ, val = td.PrimaryType, map[string]any(td.Message)
	default:
		return nil, bad("root %d is neither domain (0) nor message (1)", path[0])
	}
	for _, idx := range path[1:] {
		if strings.HasSuffix(typ, "]") {
			arr, ok := val.([]any)
			if !ok || int(idx) >= len(arr) {
				return nil, bad("no element %d in %s", idx, typ)
			}
			typ, val = typ[:strings.LastIndexByte(typ, '[')], arr[idx]
			continue
		}
		fields, ok := td.Types[typ]
		if !ok || int(idx) >= len(fields) {
			return nil, bad("no member %d in %s", idx, typ)
		}
		obj, ok := val.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w: %s is not an object", device.ErrInvalidInput, typ)
		}
		typ, val = fields[idx].Type, obj[fields[idx].Name]
	}
	if strings.HasSuffix(typ, "]") {
		arr, ok := val.([]any)
		if !ok {
			return nil, fmt.Errorf("%w: %s value is not an array", device.ErrInvalidInput, typ)
		}
		if len(arr) > 0xffff {
			return nil, fmt.Errorf("%w: array of %d elements", device.ErrInvalidInput, len(arr))
		}
		return []byte{byte(len(arr) >> 8), byte(len(arr))}, nil
	}
	ft, err := parseFieldType(td, typ, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", device.ErrInvalidInput, err)
	}
	b, err := encodeTypedValue(ft, val)
	if err != nil {
		return nil, fmt.Errorf("%w: %s value %v: %w", device.ErrInvalidInput, typ, val, err)
	}
	return b, nil
}

// encodeTypedValue encodes an atomic value as the firmware reads it: integers big-endian
// in exactly size bytes (two's complement for int), bytesN right-padded to N, addresses as
// 20 bytes, strings as UTF-8, bools as one byte.
func encodeTypedValue(ft *fieldType, v any) ([]byte, error) {
	switch ft.GetDataType() {
	case trezorpb.EthereumTypedDataStructAck_STRING:
		s, err := device.TypedString(v)
		return []byte(s), err
	case trezorpb.EthereumTypedDataStructAck_BOOL:
		b, err := device.TypedBool(v)
		if err != nil {
			return nil, err
		}
		if b {
			return []byte{1}, nil
		}
		return []byte{0}, nil
	case trezorpb.EthereumTypedDataStructAck_ADDRESS:
		a, err := device.TypedAddress(v)
		return a.Bytes(), err
	case trezorpb.EthereumTypedDataStructAck_BYTES:
		if ft.Size == nil {
			return device.TypedBytes(v, 0)
		}
		b, err := device.TypedBytes(v, int(ft.GetSize()))
		if err != nil {
			return nil, err
		}
		return append(b, make([]byte, int(ft.GetSize())-len(b))...), nil
	case trezorpb.EthereumTypedDataStructAck_UINT, trezorpb.EthereumTypedDataStructAck_INT:
		size := int(ft.GetSize())
		n, err := device.TypedInteger(v, size, ft.GetDataType() == trezorpb.EthereumTypedDataStructAck_INT)
		if err != nil {
			return nil, err
		}
		return device.TwosComplement(n, size), nil
	}
	return nil, errors.New("not an atomic type")
}
