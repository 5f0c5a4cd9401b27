package trezoremu

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/hwbridge/hwbridge/internal/trezorpb"
	"github.com/hwbridge/hwbridge/transport"
)

// FuzzDeviceMessage feeds arbitrary messages to the device: the decoder must round-trip what
// it accepts, and the device must answer (or wait for its host) without panicking.
func FuzzDeviceMessage(f *testing.F) {
	for _, m := range []proto.Message{
		&pb.Initialize{}, &pb.Ping{Message: proto.String("hi"), ButtonProtection: proto.Bool(true)},
		&pb.GetAddress{AddressN: path("m/84'/0'/0'/0/0"), ScriptType: pb.InputScriptType_SPENDWITNESS.Enum()},
		&pb.GetPublicKey{AddressN: path("m/84'/0'/0'")},
		&pb.SignTx{InputsCount: proto.Uint32(1), OutputsCount: proto.Uint32(1)},
		&pb.SignMessage{AddressN: path("m/84'/0'/0'/0/0"), Message: []byte("x")},
		&pb.VerifyMessage{Address: proto.String("1LqBGSKuX5yYUonjxT5qGfpUsXKYYWeabA"), Signature: make([]byte, 65), Message: []byte("x")},
		&pb.EthereumSignTx{AddressN: path("m/44'/60'/0'/0/0"), GasPrice: []byte{1}, GasLimit: []byte{1}, ChainId: proto.Uint64(1), To: proto.String("0x1d1c328764a41bda0492b66baa30c4a339ff85ef")},
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
		// Decoder round trip: decode, encode, decode again, compare.
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
			if c := fm.(*pb.Failure).GetCode(); c < 1 || (c > 13 && c != 99) {
				t.Fatalf("failure code %d outside 1-13, 99", c)
			}
		}
	})
}

// FuzzSignTxAnswer answers one TxRequest of a valid SignTx with arbitrary bytes (as the
// body of TxAck, id 22), the others correctly: the signer must refuse or carry on, never
// panic.
func FuzzSignTxAnswer(f *testing.F) {
	good := &pb.TransactionType{Inputs: []*pb.TxInputType{{AddressN: path("m/84'/0'/0'/0/0"), PrevHash: make([]byte, 32), Amount: proto.Uint64(1)}}}
	b, _ := proto.Marshal(&pb.TxAck{Tx: good})
	f.Add(uint8(0), b)
	f.Add(uint8(3), []byte{0x0a, 0x02, 0x08, 0x01})
	f.Add(uint8(7), []byte{0x0a, 0x00})
	d, err := New(Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { d.Close() })
	w := d.base
	f.Fuzz(func(t *testing.T, step uint8, body []byte) {
		if len(body) > 4096 {
			return
		}
		job := p2wpkhJob(t, w, 2)
		l := d.Pipe()
		defer l.Close()
		c := &testClient{tb: t, link: l, timeout: 2 * time.Second}
		if err := c.write(&pb.SignTx{InputsCount: proto.Uint32(2), OutputsCount: proto.Uint32(2), Version: proto.Uint32(2)}); err != nil {
			t.Fatal(err)
		}
		for n := 0; ; n++ {
			r, err := c.read()
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			switch m := r.(type) {
			case *pb.ButtonRequest:
				c.write(&pb.ButtonAck{})
				continue
			case *pb.TxRequest:
				if m.GetRequestType() == pb.RequestType_TXFINISHED {
					return
				}
				if n == int(step%40) {
					l.SetDeadline(time.Now().Add(2 * time.Second))
					if err := transport.WriteV1(l, uint16(pb.MessageType_MessageType_TxAck), body); err != nil {
						t.Fatal(err)
					}
					continue
				}
				if err := c.write(&pb.TxAck{Tx: job.answer(t, m)}); err != nil {
					t.Fatal(err)
				}
			case *pb.Failure:
				if c := m.GetCode(); c < 1 || (c > 13 && c != 99) {
					t.Fatalf("failure code %d", c)
				}
				return
			default:
				t.Fatalf("unexpected %T", r)
			}
		}
	})
}

// FuzzTypedDataAnswers streams EIP-712 to the device with arbitrary host answers: every
// EthereumTypedDataStructRequest gets the fuzzed bytes as the StructAck body, every
// EthereumTypedDataValueRequest the fuzzed bytes as the value. The device must end with a
// signature or a Failure of a known code, never panic or stall.
func FuzzTypedDataAnswers(f *testing.F) {
	domain, _ := proto.Marshal(&pb.EthereumTypedDataStructAck{Members: []*pb.EthereumTypedDataStructAck_EthereumStructMember{
		{Name: proto.String("name"), Type: &pb.EthereumTypedDataStructAck_EthereumFieldType{DataType: pb.EthereumTypedDataStructAck_STRING.Enum()}},
	}})
	f.Add(domain, "EIP712Domain")
	f.Add([]byte{0x0a, 0x02, 0x0a, 0x00}, "Mail")
	d, err := New(Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { d.Close() })
	f.Fuzz(func(t *testing.T, answer []byte, primary string) {
		if len(answer) > 2048 {
			return
		}
		l := d.Pipe()
		defer l.Close()
		var req proto.Message = &pb.EthereumSignTypedData{AddressN: path("m/44'/60'/0'/0/0"), PrimaryType: proto.String(primary)}
		for range 256 {
			l.SetDeadline(time.Now().Add(2 * time.Second))
			id, body, err := pb.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			if id == pb.MessageType_MessageType_EthereumTypedDataStructAck {
				body = answer
			}
			if err := transport.WriteV1(l, uint16(id), body); err != nil {
				t.Fatalf("write: %v", err)
			}
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
				req = &pb.ButtonAck{}
			case *pb.EthereumTypedDataStructRequest:
				req = &pb.EthereumTypedDataStructAck{}
			case *pb.EthereumTypedDataValueRequest:
				req = &pb.EthereumTypedDataValueAck{Value: answer}
			case *pb.EthereumTypedDataSignature:
				return
			case *pb.Failure:
				if c := r.GetCode(); c < 1 || (c > 13 && c != 99) {
					t.Fatalf("failure code %d outside 1-13, 99", c)
				}
				return
			default:
				t.Fatalf("unexpected %T", m)
			}
		}
	})
}
