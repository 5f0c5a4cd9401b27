package keepkeypb

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"
)

func TestEveryMessageHasDistinctID(t *testing.T) {
	seen := map[string]MessageType{}
	for id, mk := range messages {
		name := string(mk().ProtoReflect().Descriptor().FullName())
		if prev, ok := seen[name]; ok {
			t.Fatalf("%s listed under %d and %d", name, prev, id)
		}
		seen[name] = id
		got, err := TypeOf(mk())
		if err != nil || got != id {
			t.Fatalf("TypeOf(%s) = %d, %v; want %d", name, got, err, id)
		}
	}
}

// The ids where KeepKey parts from Trezor (keepkey/device-protocol messages.proto).
func TestKeepKeyIDs(t *testing.T) {
	for m, want := range map[proto.Message]MessageType{
		&EthereumSignMessage{}:        108,
		&EthereumMessageSignature{}:   110,
		&EthereumSignTypedHash{}:      112,
		&EthereumTypedDataSignature{}: 113,
		&ClearSession{}:               24,
		&SignTx{}:                     15,
	} {
		if got, err := TypeOf(m); err != nil || got != want {
			t.Errorf("%s: id %d, %v; want %d", m.ProtoReflect().Descriptor().Name(), got, err, want)
		}
	}
}

// Defaults that the flows rely on when a peer leaves a field out (types.proto).
func TestDefaults(t *testing.T) {
	in := new(TxInputType)
	if in.GetSequence() != 0xffffffff || in.GetScriptType() != InputScriptType_SPENDADDRESS {
		t.Fatalf("TxInputType defaults: sequence %x script %v", in.GetSequence(), in.GetScriptType())
	}
	if s := new(SignTx); s.GetVersion() != 1 || s.GetCoinName() != "Bitcoin" {
		t.Fatalf("SignTx defaults: version %d coin %q", s.GetVersion(), s.GetCoinName())
	}
}

func TestMarshalFieldOrder(t *testing.T) {
	_, got, err := Marshal(&EthereumSignTx{AddressN: []uint32{1}, ChainId: proto.Uint32(1), Type: proto.Uint32(2)})
	if err != nil {
		t.Fatal(err)
	}
	// address_n (1) packed? proto2 repeated is unpacked: 08 01; chain_id 12: 60 01; type 104: c0 06 02.
	want := []byte{0x08, 0x01, 0x60, 0x01, 0xc0, 0x06, 0x02}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %x want %x", got, want)
	}
}

func TestUnmarshalCaps(t *testing.T) {
	if _, err := Unmarshal(9999, nil); err == nil {
		t.Fatal("unknown id accepted")
	}
	if _, err := Unmarshal(MessageType_MessageType_EthereumTxAck, make([]byte, MaxMessageSize+1)); err == nil {
		t.Fatal("oversized body accepted")
	}
}
