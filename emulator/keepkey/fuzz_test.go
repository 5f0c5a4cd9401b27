package keepkeyemu

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/internal/hdpath"
	pb "github.com/hwbridge/hwbridge/internal/keepkeypb"
	"github.com/hwbridge/hwbridge/transport"
)

func path(s string) []uint32 { return hdpath.MustParse(s) }

// validFailure: KeepKey's FailureType values (types.proto).
func validFailure(c pb.FailureType) bool { return c >= 1 && c <= 12 || c == 99 }

// FuzzDeviceMessage feeds arbitrary messages to the device: the decoder must round-trip
// what it accepts, and the device must answer (or wait for its host) without panicking.
func FuzzDeviceMessage(f *testing.F) {
	for _, m := range []proto.Message{
		&pb.Initialize{}, &pb.Ping{Message: proto.String("hi"), ButtonProtection: proto.Bool(true)},
		&pb.GetAddress{AddressN: path("m/84'/0'/0'/0/0"), ScriptType: pb.InputScriptType_SPENDWITNESS.Enum()},
		&pb.GetPublicKey{AddressN: path("m/84'/0'/0'")},
		&pb.SignTx{InputsCount: proto.Uint32(1), OutputsCount: proto.Uint32(1)},
		&pb.SignMessage{AddressN: path("m/84'/0'/0'/0/0"), Message: []byte("x")},
		&pb.EthereumSignTx{AddressN: path("m/44'/60'/0'/0/0"), GasPrice: []byte{1}, GasLimit: []byte{1}, ChainId: proto.Uint32(1), To: make([]byte, 20)},
		&pb.EthereumSignTx{AddressN: path("m/44'/60'/0'/0/0"), MaxFeePerGas: []byte{2}, MaxPriorityFeePerGas: []byte{1}, GasLimit: []byte{1}, ChainId: proto.Uint32(1), Type: proto.Uint32(2), DataLength: proto.Uint32(2000), DataInitialChunk: make([]byte, 1024)},
		&pb.EthereumSignMessage{AddressN: path("m/44'/60'/0'/0/0"), Message: []byte("x")},
		&pb.EthereumSignTypedHash{AddressN: path("m/44'/60'/0'/0/0"), DomainSeparatorHash: make([]byte, 32)},
		&pb.TxAck{Tx: &pb.TransactionType{Inputs: []*pb.TxInputType{{PrevHash: make([]byte, 32)}}}},
	} {
		id, body, err := pb.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint16(id), body)
	}
	f.Add(uint16(999), []byte{0xff, 0xff})
	d, err := New(Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { d.Close() })
	f.Fuzz(func(t *testing.T, typ uint16, body []byte) {
		if len(body) > 4096 {
			return
		}
		if m, err := pb.Unmarshal(pb.MessageType(typ), body); err == nil {
			_, b2, err := pb.Marshal(m)
			if err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			m2, err := pb.Unmarshal(pb.MessageType(typ), b2)
			if err != nil || !proto.Equal(m, m2) {
				t.Fatalf("round trip: %v", err)
			}
		}
		l := d.Pipe()
		defer l.Close()
		l.SetDeadline(time.Now().Add(200 * time.Millisecond))
		if err := transport.WriteV1(l, typ, body); err != nil {
			return
		}
		rtyp, rbody, err := transport.ReadV1(l)
		if err != nil {
			return
		}
		if pb.MessageType(rtyp) == pb.MessageType_MessageType_Failure {
			fm, err := pb.Unmarshal(pb.MessageType(rtyp), rbody)
			if err != nil {
				t.Fatal(err)
			}
			if c := fm.(*pb.Failure).GetCode(); !validFailure(c) {
				t.Fatalf("failure code %d is not KeepKey's", c)
			}
		}
	})
}

// FuzzSignTxAnswer answers the step-th TxRequest of a valid SignTx (one p2wpkh input, one
// output) with arbitrary bytes as the TxAck body and the others correctly: the signer must
// refuse (Failure) or carry on, never panic or stall.
func FuzzSignTxAnswer(f *testing.F) {
	in := &pb.TxInputType{AddressN: path("m/84'/0'/0'/0/0"), PrevHash: make([]byte, 32), ScriptType: pb.InputScriptType_SPENDWITNESS.Enum(), Amount: proto.Uint64(100000)}
	out := &pb.TxOutputType{Address: proto.String("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"), Amount: proto.Uint64(90000), ScriptType: pb.OutputScriptType_PAYTOADDRESS.Enum()}
	b, _ := proto.Marshal(&pb.TxAck{Tx: &pb.TransactionType{Inputs: []*pb.TxInputType{in}}})
	f.Add(uint8(0), b)
	f.Add(uint8(1), []byte{0x0a, 0x02, 0x08, 0x01})
	f.Add(uint8(3), []byte{0x0a, 0x00})
	d, err := New(Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { d.Close() })
	f.Fuzz(func(t *testing.T, step uint8, body []byte) {
		if len(body) > 4096 {
			return
		}
		l := d.Pipe()
		defer l.Close()
		send := func(id uint16, b []byte) {
			l.SetDeadline(time.Now().Add(2 * time.Second))
			if err := transport.WriteV1(l, id, b); err != nil {
				t.Fatalf("write: %v", err)
			}
		}
		write := func(m proto.Message) {
			id, b, err := pb.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			send(uint16(id), b)
		}
		write(&pb.SignTx{InputsCount: proto.Uint32(1), OutputsCount: proto.Uint32(1)})
		for n := 0; n < 64; n++ {
			rtyp, rbody, err := transport.ReadV1(l)
			if err != nil {
				t.Fatalf("the device stalled: %v", err)
			}
			m, err := pb.Unmarshal(pb.MessageType(rtyp), rbody)
			if err != nil {
				t.Fatal(err)
			}
			switch r := m.(type) {
			case *pb.ButtonRequest:
				write(&pb.ButtonAck{})
			case *pb.TxRequest:
				if r.GetRequestType() == pb.RequestType_TXFINISHED {
					return
				}
				if n == int(step%16) {
					send(uint16(pb.MessageType_MessageType_TxAck), body)
					continue
				}
				tx := &pb.TransactionType{Inputs: []*pb.TxInputType{in}}
				if r.GetRequestType() == pb.RequestType_TXOUTPUT {
					tx = &pb.TransactionType{Outputs: []*pb.TxOutputType{out}}
				}
				write(&pb.TxAck{Tx: tx})
			case *pb.Failure:
				if !validFailure(r.GetCode()) {
					t.Fatalf("failure code %d", r.GetCode())
				}
				return
			default:
				t.Fatalf("unexpected %T", m)
			}
		}
		t.Fatal("no end after 64 messages")
	})
}
