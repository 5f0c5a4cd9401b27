package trezoremu

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"
	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/emulator"
	pb "github.com/hwbridge/hwbridge/internal/trezorpb"
)

// TestAddressRejectByModel: NO on an address screen cancels on core; on the Trezor One it
// toggles to the QR code and asks again (a new ButtonRequest Address) until the host
// sends Cancel.
func TestAddressRejectByModel(t *testing.T) {
	get := &pb.GetAddress{AddressN: path("m/84'/0'/0'/0/0"), ScriptType: pb.InputScriptType_SPENDWITNESS.Enum(), ShowDisplay: proto.Bool(true)}
	c := newClient(t, newDevice(t, Options{Approver: emulator.NewApprover(emulator.PolicyReject)}))
	if f := failureOf(c, get); f.GetCode() != pb.FailureType_Failure_ActionCancelled {
		t.Fatal(f)
	}
	d := newDevice(t, Options{Model: ModelOne, Approver: emulator.NewApprover(emulator.PolicyReject)})
	c = newClient(t, d)
	if err := c.write(get); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		r, err := c.read()
		if err != nil {
			t.Fatal(err)
		}
		if br, ok := r.(*pb.ButtonRequest); !ok || br.GetCode() != pb.ButtonRequestType_ButtonRequest_Address {
			t.Fatalf("screen %d: got %T %v, want ButtonRequest Address", i, r, r)
		}
		if err := c.write(&pb.ButtonAck{}); err != nil {
			t.Fatal(err)
		}
	}
	if f := failureOf(c, &pb.Cancel{}); f.GetCode() != pb.FailureType_Failure_ActionCancelled {
		t.Fatal(f)
	}
	// The screens alternated between the address and its QR code.
	tr := d.Approver().Transcript()
	if len(tr) < 2 || tr[0].Title == tr[1].Title {
		t.Fatalf("transcript %+v", tr)
	}
}

func TestApplySettings(t *testing.T) {
	for _, m := range []Model{ModelOne, ModelT} {
		c := newClient(t, newDevice(t, Options{Model: m}))
		callAs[*pb.Success](c, &pb.ApplySettings{Label: proto.String("renamed"), UsePassphrase: proto.Bool(true)})
		f := callAs[*pb.Features](c, &pb.GetFeatures{})
		if f.GetLabel() != "renamed" || !f.GetPassphraseProtection() {
			t.Fatalf("model %s: %v", m, f)
		}
		if fl := failureOf(c, &pb.ApplySettings{}); fl.GetCode() == pb.FailureType_Failure_UnexpectedMessage {
			t.Fatalf("model %s: %v", m, fl)
		}
		if fl := failureOf(c, &pb.ApplySettings{Label: proto.String(string(bytes.Repeat([]byte("x"), 33)))}); fl.GetCode() != pb.FailureType_Failure_DataError {
			t.Fatalf("model %s: %v", m, fl)
		}
		// Only core has on-device passphrase entry to enforce.
		always := &pb.ApplySettings{PassphraseAlwaysOnDevice: proto.Bool(true)}
		if m == ModelOne {
			if fl := failureOf(c, always); fl.GetCode() != pb.FailureType_Failure_DataError {
				t.Fatalf("model 1 always-on-device: %v", fl)
			}
		} else {
			callAs[*pb.Success](c, always)
			if f := callAs[*pb.Features](c, &pb.GetFeatures{}); !f.GetPassphraseAlwaysOnDevice() {
				t.Fatalf("model %s: %v", m, f)
			}
		}
		callAs[*pb.Success](c, &pb.ApplyFlags{Flags: proto.Uint32(4)})
		if f := callAs[*pb.Features](c, &pb.GetFeatures{}); m != ModelOne && f.GetFlags() != 4 {
			t.Fatalf("flags %v", f)
		}
	}
}

// TestTypedDataStreaming drives EthereumSignTypedData with a host written here from the
// firmware's request order, and checks the signature against go-ethereum's hashing.
func TestTypedDataStreaming(t *testing.T) {
	const doc = `{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"chainId","type":"uint256"}],
	  "Item":[{"name":"id","type":"uint8"},{"name":"ok","type":"bool"}],
	  "Order":[{"name":"who","type":"address"},{"name":"items","type":"Item[]"},{"name":"delta","type":"int8"},{"name":"note","type":"bytes"}]},
	  "primaryType":"Order","domain":{"name":"Shop","chainId":"1"},
	  "message":{"who":"0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826","items":[{"id":"7","ok":true},{"id":"9","ok":false}],"delta":"-2","note":"0x00ff"}}`
	var td apitypes.TypedData
	if err := json.Unmarshal([]byte(doc), &td); err != nil {
		t.Fatal(err)
	}
	u := func(dt pb.EthereumTypedDataStructAck_EthereumDataType, size uint32) *fieldType {
		f := &fieldType{DataType: dt.Enum()}
		if size > 0 {
			f.Size = proto.Uint32(size)
		}
		return f
	}
	mem := func(name string, f *fieldType) *pb.EthereumTypedDataStructAck_EthereumStructMember {
		return &pb.EthereumTypedDataStructAck_EthereumStructMember{Name: proto.String(name), Type: f}
	}
	item := &fieldType{DataType: edtStruct.Enum(), StructName: proto.String("Item"), Size: proto.Uint32(2)}
	structs := map[string][]*pb.EthereumTypedDataStructAck_EthereumStructMember{
		"EIP712Domain": {mem("name", u(edtString, 0)), mem("chainId", u(edtUint, 32))},
		"Item":         {mem("id", u(edtUint, 1)), mem("ok", u(edtBool, 0))},
		"Order":        {mem("who", u(edtAddress, 0)), mem("items", &fieldType{DataType: edtArray.Enum(), EntryType: item}), mem("delta", u(edtInt, 1)), mem("note", u(edtBytes, 0))},
	}
	who, _ := hex.DecodeString("cd2a3d9f938e13cd947ec05abc7fe734df8dd826")
	values := map[string][]byte{
		"0,0": []byte("Shop"), "0,1": append(make([]byte, 31), 1),
		"1,0": who, "1,1": {0, 2}, "1,1,0,0": {7}, "1,1,0,1": {1}, "1,1,1,0": {9}, "1,1,1,1": {0},
		"1,2": {0xfe}, "1,3": {0x00, 0xff},
	}
	c := newClient(t, newDevice(t, Options{}))
	var req proto.Message = &pb.EthereumSignTypedData{AddressN: path("m/44'/60'/0'/0/0"), PrimaryType: proto.String("Order")}
	var asked []string
	for {
		r := c.call(req)
		switch r := r.(type) {
		case *pb.EthereumTypedDataStructRequest:
			asked = append(asked, r.GetName())
			req = &pb.EthereumTypedDataStructAck{Members: structs[r.GetName()]}
			continue
		case *pb.EthereumTypedDataValueRequest:
			key := ""
			for i, p := range r.MemberPath {
				if i > 0 {
					key += ","
				}
				key += strconv.Itoa(int(p))
			}
			v, ok := values[key]
			if !ok {
				t.Fatalf("device asked for %v", r.MemberPath)
			}
			req = &pb.EthereumTypedDataValueAck{Value: v}
			continue
		case *pb.EthereumTypedDataSignature:
			ds, err := td.HashStruct("EIP712Domain", td.Domain.Map())
			if err != nil {
				t.Fatal(err)
			}
			mh, err := td.HashStruct("Order", td.Message)
			if err != nil {
				t.Fatal(err)
			}
			digest := crypto.Keccak256([]byte{0x19, 0x01}, ds, mh)
			sig := bytes.Clone(r.Signature)
			sig[64] -= 27
			pub, err := crypto.SigToPub(digest, sig)
			if err != nil || crypto.PubkeyToAddress(*pub).Hex() != ethAddr0 {
				t.Fatalf("signature does not recover %s over go-ethereum's digest", ethAddr0)
			}
			if got := []string{"EIP712Domain", "Order", "Item"}; !slices.Equal(asked, got) {
				t.Fatalf("struct requests %v, want %v (depth first from the domain)", asked, got)
			}
			return
		default:
			t.Fatalf("got %T %v", r, r)
		}
	}
}

// TestPublicKeyDescriptor: core fills PublicKey.descriptor, the Trezor One does not; the
// checksum is BIP-380's (vector from the BIP).
func TestPublicKeyDescriptor(t *testing.T) {
	if got := descriptorChecksum("raw(deadbeef)"); got != "89f8spxm" {
		t.Fatalf("checksum %q, BIP-380 says 89f8spxm", got)
	}
	get := &pb.GetPublicKey{AddressN: path("m/84'/0'/0'"), ScriptType: pb.InputScriptType_SPENDWITNESS.Enum()}
	pk := callAs[*pb.PublicKey](newClient(t, newDevice(t, Options{})), get)
	const xpub = "xpub6CatWdiZiodmUeTDp8LT5or8nmbKNcuyvz7WyksVFkKB4RHwCD3XyuvPEbvqAQY3rAPshWcMLoP2fMFMKHPJ4ZeZXYVUhLv1VMrjPC7PW6V" // BIP-84 account 0
	want := "wpkh([73c5da0a/84h/0h/0h]" + xpub + "/<0;1>/*)"
	if d := pk.GetDescriptor_(); d != want+"#"+descriptorChecksum(want) {
		t.Fatalf("descriptor %q", d)
	}
	if pk := callAs[*pb.PublicKey](newClient(t, newDevice(t, Options{Model: ModelOne})), get); pk.Descriptor_ != nil {
		t.Fatalf("model 1 sent a descriptor: %v", pk)
	}
}
