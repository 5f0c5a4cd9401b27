package ethwire

import (
	"bytes"
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/device"
	pb "github.com/hwbridge/hwbridge/internal/trezorpb"
)

// script plays a device that asks for the given chunk sizes, then signs.
func script(t *testing.T, data []byte, first int, asks ...uint32) ([]byte, []byte, error) {
	t.Helper()
	var got []byte
	got = append(got, data[:first]...)
	i := 0
	call := func(req proto.Message) (*pb.EthereumTxRequest, error) {
		if a, ok := req.(*pb.EthereumTxAck); ok {
			got = append(got, a.GetDataChunk()...)
		}
		if i < len(asks) {
			i++
			return &pb.EthereumTxRequest{DataLength: proto.Uint32(asks[i-1])}, nil
		}
		return &pb.EthereumTxRequest{SignatureV: proto.Uint32(1)}, nil
	}
	sig, err := StreamTx(&pb.EthereumSignTx{}, data, first, 4, call,
		func(c []byte) proto.Message { return &pb.EthereumTxAck{DataChunk: c} },
		func(r *pb.EthereumTxRequest) ([]byte, error) { return []byte{byte(r.GetSignatureV())}, nil })
	return got, sig, err
}

func TestStreamTx(t *testing.T) {
	data := []byte("0123456789")
	got, sig, err := script(t, data, 2, 4, 4)
	if err != nil || !bytes.Equal(got, data) || !bytes.Equal(sig, []byte{1}) {
		t.Fatalf("got %q sig %x err %v", got, sig, err)
	}
	for name, asks := range map[string][]uint32{
		"signs early":    {4},
		"chunk too big":  {5},
		"zero chunk":     {0},
		"past the end":   {4, 4, 4},
		"asks past data": {4, 3, 2},
	} {
		if _, _, err := script(t, data, 2, asks...); !errors.Is(err, device.ErrProtocol) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
