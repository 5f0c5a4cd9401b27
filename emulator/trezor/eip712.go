package trezoremu

// EIP-712 struct streaming (EthereumSignTypedData), as core 2.9.1 serves it:
// core/src/apps/ethereum/sign_typed_data.py. The device asks for every struct type
// (EthereumTypedDataStructRequest, depth first from EIP712Domain, then the primary type),
// then for the domain's name and version, then for every atomic value by member path
// (EthereumTypedDataValueRequest: [0, …] in the domain, [1, …] in the message; an array
// without a fixed size is asked for its length first, as a 2-byte uint), and hashes as it
// goes. The user is not asked to page through the fields ("show full message" declined).

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/crypto"
	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/emulator"
	pb "github.com/hwbridge/hwbridge/internal/trezorpb"
)

type (
	structAck = pb.EthereumTypedDataStructAck
	fieldType = pb.EthereumTypedDataStructAck_EthereumFieldType
)

const (
	edtUint    = pb.EthereumTypedDataStructAck_UINT
	edtInt     = pb.EthereumTypedDataStructAck_INT
	edtBytes   = pb.EthereumTypedDataStructAck_BYTES
	edtString  = pb.EthereumTypedDataStructAck_STRING
	edtBool    = pb.EthereumTypedDataStructAck_BOOL
	edtAddress = pb.EthereumTypedDataStructAck_ADDRESS
	edtArray   = pb.EthereumTypedDataStructAck_ARRAY
	edtStruct  = pb.EthereumTypedDataStructAck_STRUCT
)

// Bounds on what a host may make the emulator hold (the firmware is bounded by its RAM).
const (
	maxTypedTypes   = 64
	maxTypedMembers = 64
	maxTypedArray   = 1024
	maxTypedDepth   = 16
	maxTypedValue   = 16 * 1024
)

type typedEnvelope struct {
	s          *session
	primary    string
	metamaskV4 bool
	types      map[string]*structAck
	requests   int
}

func (d *Device) ethSignTypedData(ctx context.Context, s *session, m *pb.EthereumSignTypedData) (*pb.EthereumTypedDataSignature, error) {
	if m.PrimaryType == nil {
		return nil, dataError("Missing field: primary_type")
	}
	w, p, a, err := d.ethAddress(ctx, s, m.AddressN)
	if err != nil {
		return nil, err
	}
	if err := s.confirm(ctx, pb.ButtonRequestType_ButtonRequest_SignTx, emulator.Screen{Title: "Signing address", Lines: []string{a.Hex(), p.String()}}); err != nil {
		return nil, err
	}
	env := &typedEnvelope{s: s, primary: m.GetPrimaryType(), metamaskV4: m.GetMetamaskV4Compat(), types: map[string]*structAck{}}
	if err := env.collect(ctx, "EIP712Domain", 0); err != nil {
		return nil, err
	}
	if err := env.collect(ctx, env.primary, 0); err != nil {
		return nil, err
	}
	name, version := []byte("unknown"), []byte("unknown")
	for i, mem := range env.types["EIP712Domain"].Members {
		switch mem.GetName() {
		case "name":
			if name, err = env.value(ctx, mem.GetType(), []uint32{0, uint32(i)}); err != nil {
				return nil, err
			}
		case "version":
			if version, err = env.value(ctx, mem.GetType(), []uint32{0, uint32(i)}); err != nil {
				return nil, err
			}
		}
	}
	if err := s.confirm(ctx, pb.ButtonRequestType_ButtonRequest_Other, emulator.Screen{Title: "Typed data domain", Lines: []string{string(name), string(version)}}); err != nil {
		return nil, err
	}
	domain, err := env.hashStruct(ctx, "EIP712Domain", []uint32{0}, 0)
	if err != nil {
		return nil, err
	}
	var msgHash []byte
	if env.primary != "EIP712Domain" {
		if err := s.confirm(ctx, pb.ButtonRequestType_ButtonRequest_Other, emulator.Screen{Title: "Confirm message", Lines: []string{env.primary}}); err != nil {
			return nil, err
		}
		if msgHash, err = env.hashStruct(ctx, env.primary, []uint32{1}, 0); err != nil {
			return nil, err
		}
	}
	if m.ShowMessageHash != nil && string(m.ShowMessageHash) != string(msgHash) {
		return nil, dataError("Message hash mismatch")
	}
	digest := crypto.Keccak256(append(append([]byte{0x19, 0x01}, domain...), msgHash...))
	if err := s.confirm(ctx, pb.ButtonRequestType_ButtonRequest_SignTx, emulator.Screen{Title: "Sign typed data", Lines: []string{a.Hex(), "Digest: 0x" + fmt.Sprintf("%x", digest)}}); err != nil {
		return nil, err
	}
	sig, err := ethSign(w, p, digest)
	if err != nil {
		return nil, err
	}
	sig[64] += 27
	return &pb.EthereumTypedDataSignature{Signature: sig, Address: proto.String(a.Hex())}, nil
}

// collect asks for one struct type and, depth first, every struct type it refers to.
func (e *typedEnvelope) collect(ctx context.Context, name string, depth int) error {
	if depth > maxTypedDepth || len(e.types) >= maxTypedTypes {
		return dataError("Too many types")
	}
	ack, err := expect[*structAck](ctx, e.s, &pb.EthereumTypedDataStructRequest{Name: proto.String(name)}, pb.MessageType_MessageType_EthereumTypedDataStructAck)
	if err != nil {
		return err
	}
	if len(ack.Members) > maxTypedMembers {
		return dataError("Too many members")
	}
	e.types[name] = ack
	for _, mem := range ack.Members {
		t := mem.GetType()
		if err := validateFieldType(t, 0); err != nil {
			return err
		}
		for t.GetDataType() == edtArray {
			t = t.GetEntryType()
		}
		if t.GetDataType() == edtStruct {
			if _, ok := e.types[t.GetStructName()]; !ok {
				if err := e.collect(ctx, t.GetStructName(), depth+1); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func validateFieldType(f *fieldType, depth int) error {
	if f == nil {
		return dataError("Missing field: type")
	}
	if depth > maxTypedDepth {
		return dataError("Too deeply nested arrays")
	}
	dt := f.GetDataType()
	if dt == edtArray {
		if f.EntryType == nil {
			return dataError("Missing entry_type in array")
		}
		if err := validateFieldType(f.EntryType, depth+1); err != nil {
			return err
		}
	} else if f.EntryType != nil {
		return dataError("Unexpected entry_type in nonarray")
	}
	if dt == edtStruct {
		if f.StructName == nil {
			return dataError("Missing struct_name in struct")
		}
	} else if f.StructName != nil {
		return dataError("Unexpected struct_name in nonstruct")
	}
	switch dt {
	case edtStruct:
		if f.Size == nil {
			return dataError("Missing size in struct")
		}
	case edtBytes:
		if f.Size != nil && (f.GetSize() < 1 || f.GetSize() > 32) {
			return dataError("Invalid size in bytes")
		}
	case edtUint, edtInt:
		if f.Size == nil || f.GetSize() < 1 || f.GetSize() > 32 {
			return dataError("Invalid size in int/uint")
		}
	case edtString, edtBool, edtAddress:
		if f.Size != nil {
			return dataError("Unexpected size in str/bool/addr")
		}
	case edtArray:
	default:
		return dataError("Invalid data type")
	}
	return nil
}

// typeName is the EIP-712 name of a field type (get_type_name).
func typeName(f *fieldType) string {
	switch f.GetDataType() {
	case edtUint:
		return "uint" + strconv.Itoa(int(f.GetSize())*8)
	case edtInt:
		return "int" + strconv.Itoa(int(f.GetSize())*8)
	case edtBytes:
		if f.Size != nil {
			return "bytes" + strconv.Itoa(int(f.GetSize()))
		}
		return "bytes"
	case edtString:
		return "string"
	case edtBool:
		return "bool"
	case edtAddress:
		return "address"
	case edtArray:
		if f.Size != nil {
			return typeName(f.GetEntryType()) + "[" + strconv.Itoa(int(f.GetSize())) + "]"
		}
		return typeName(f.GetEntryType()) + "[]"
	case edtStruct:
		return f.GetStructName()
	}
	return "?"
}

func (e *typedEnvelope) deps(name string, out map[string]bool) {
	if out[name] || e.types[name] == nil {
		return
	}
	out[name] = true
	for _, mem := range e.types[name].Members {
		t := mem.GetType()
		for t.GetDataType() == edtArray {
			t = t.GetEntryType()
		}
		if t.GetDataType() == edtStruct {
			e.deps(t.GetStructName(), out)
		}
	}
}

// encodeType is name(type1 name1,…) followed by the referenced structs sorted by name.
func (e *typedEnvelope) encodeType(primary string) []byte {
	set := map[string]bool{}
	e.deps(primary, set)
	delete(set, primary)
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range append([]string{primary}, names...) {
		b.WriteString(n + "(")
		for i, mem := range e.types[n].Members {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(typeName(mem.GetType()) + " " + mem.GetName())
		}
		b.WriteByte(')')
	}
	return []byte(b.String())
}

func (e *typedEnvelope) hashStruct(ctx context.Context, name string, path []uint32, depth int) ([]byte, error) {
	t := e.types[name]
	if t == nil {
		return nil, dataError("Unknown struct %s", name)
	}
	buf := crypto.Keccak256(e.encodeType(name))
	buf, err := e.encodeData(ctx, buf, name, path, depth)
	if err != nil {
		return nil, err
	}
	return crypto.Keccak256(buf), nil
}

// encodeData appends enc(value) of every member of struct name at path (get_and_encode_data).
func (e *typedEnvelope) encodeData(ctx context.Context, w []byte, name string, path []uint32, depth int) ([]byte, error) {
	if depth > maxTypedDepth {
		return nil, dataError("Too deeply nested structs")
	}
	for i, mem := range e.types[name].Members {
		mp := append(append([]uint32{}, path...), uint32(i))
		ft := mem.GetType()
		switch ft.GetDataType() {
		case edtStruct:
			h, err := e.hashStruct(ctx, ft.GetStructName(), mp, depth+1)
			if err != nil {
				return nil, err
			}
			w = append(w, h...)
		case edtArray:
			n := int(ft.GetSize())
			if ft.Size == nil {
				v, err := e.value(ctx, &fieldType{DataType: edtUint.Enum(), Size: proto.Uint32(2)}, mp)
				if err != nil {
					return nil, err
				}
				n = int(v[0])<<8 | int(v[1])
			}
			if n > maxTypedArray {
				return nil, dataError("Array too long")
			}
			et := ft.GetEntryType()
			var arr []byte
			for j := range n {
				ep := append(append([]uint32{}, mp...), uint32(j))
				switch et.GetDataType() {
				case edtStruct:
					var err error
					if e.metamaskV4 {
						var h []byte
						if h, err = e.hashStruct(ctx, et.GetStructName(), ep, depth+1); err == nil {
							arr = append(arr, h...)
						}
					} else {
						arr, err = e.encodeData(ctx, arr, et.GetStructName(), ep, depth+1)
					}
					if err != nil {
						return nil, err
					}
				case edtArray:
					return nil, dataError("Arrays of arrays are not supported")
				default:
					v, err := e.value(ctx, et, ep)
					if err != nil {
						return nil, err
					}
					arr = encodeField(arr, et, v)
				}
			}
			w = append(w, crypto.Keccak256(arr)...)
		default:
			v, err := e.value(ctx, ft, mp)
			if err != nil {
				return nil, err
			}
			w = encodeField(w, ft, v)
		}
	}
	return w, nil
}

func encodeField(w []byte, f *fieldType, v []byte) []byte {
	switch f.GetDataType() {
	case edtBytes:
		if f.Size == nil {
			return append(w, crypto.Keccak256(v)...)
		}
		return append(append(w, v...), make([]byte, 32-len(v))...)
	case edtString:
		return append(w, crypto.Keccak256(v)...)
	case edtInt:
		pad := byte(0)
		if len(v) > 0 && v[0]&0x80 != 0 {
			pad = 0xff
		}
		for range 32 - len(v) {
			w = append(w, pad)
		}
		return append(w, v...)
	}
	return append(append(w, make([]byte, 32-len(v))...), v...)
}

// value asks for one atomic value and checks it as _validate_value does.
func (e *typedEnvelope) value(ctx context.Context, f *fieldType, path []uint32) ([]byte, error) {
	e.requests++
	if e.requests > 1<<16 {
		return nil, dataError("Too many values")
	}
	ack, err := expect[*pb.EthereumTypedDataValueAck](ctx, e.s, &pb.EthereumTypedDataValueRequest{MemberPath: path}, pb.MessageType_MessageType_EthereumTypedDataValueAck)
	if err != nil {
		return nil, err
	}
	v := ack.GetValue()
	if len(v) > maxTypedValue {
		return nil, dataError("Value too long")
	}
	if f.Size != nil && uint32(len(v)) != f.GetSize() {
		return nil, dataError("Invalid length")
	}
	switch f.GetDataType() {
	case edtBool:
		if len(v) != 1 || v[0] > 1 {
			return nil, dataError("Invalid boolean value")
		}
	case edtAddress:
		if len(v) != 20 {
			return nil, dataError("Invalid address")
		}
	case edtString:
		if !utf8.Valid(v) {
			return nil, dataError("Invalid UTF-8")
		}
	}
	return v, nil
}
