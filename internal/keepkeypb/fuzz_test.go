package keepkeypb

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"
)

// FuzzUnmarshal decodes arbitrary bodies as every known message (the id picked by typ):
// what decodes must re-encode and decode to an equal message.
func FuzzUnmarshal(f *testing.F) {
	ids := make([]MessageType, 0, len(messages))
	for id := range messages {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, m := range []proto.Message{
		&Features{Vendor: proto.String("keepkey.com"), MajorVersion: proto.Uint32(7), Policies: []*PolicyType{{PolicyName: proto.String("ShapeShift")}}},
		&TxRequest{RequestType: RequestType_TXINPUT.Enum(), Details: &TxRequestDetailsType{RequestIndex: proto.Uint32(1)}},
		&TxAck{Tx: &TransactionType{Inputs: []*TxInputType{{PrevHash: make([]byte, 32), Amount: proto.Uint64(1)}}}},
		&EthereumSignTx{AddressN: []uint32{0x8000002c}, ChainId: proto.Uint32(1), Type: proto.Uint32(2)},
		&EthereumTxRequest{SignatureV: proto.Uint32(37), SignatureR: make([]byte, 32)},
	} {
		id, b, err := Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint16(slices.Index(ids, id)), b)
	}
	f.Fuzz(func(t *testing.T, typ uint16, body []byte) {
		id := ids[int(typ)%len(ids)]
		m, err := Unmarshal(id, body)
		if err != nil {
			return
		}
		_, b2, err := Marshal(m)
		if err != nil {
			t.Fatalf("re-encode %v: %v", id, err)
		}
		m2, err := Unmarshal(id, b2)
		if err != nil || !proto.Equal(m, m2) {
			t.Fatalf("round trip of %v: %v", id, err)
		}
	})
}
