package trezorpb

import (
	"bytes"
	"encoding/hex"
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

// Bodies captured from trezorctl 0.12.4 (shared/protocols/trezor.md §14).
func TestCapturedBodies(t *testing.T) {
	h := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		msg  proto.Message
		want []byte
	}{
		{"ping", &Ping{Message: proto.String("hello")}, h("0a0568656c6c6f")},
		{"ping button", &Ping{Message: proto.String("hi"), ButtonProtection: proto.Bool(true)}, h("0a0268691001")},
		{"get address", &GetAddress{
			AddressN:    []uint32{0x80000054, 0x80000000, 0x80000000, 0, 0},
			CoinName:    proto.String("Bitcoin"),
			ShowDisplay: proto.Bool(false),
			ScriptType:  InputScriptType_SPENDWITNESS.Enum(),
		}, h("08d48080800808808080800808808080800808000800120742697463" + "6f696e18002803")},
		{"pin ack", &PinMatrixAck{Pin: proto.String("1234")}, h("0a0431323334")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got, err := Marshal(tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("got %x want %x", got, tt.want)
			}
		})
	}
}
