package trezoremu

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/emulator"
	pb "github.com/hwbridge/hwbridge/internal/trezorpb"
)

// BenchmarkPingPipe is the host-side cost of one message exchange (Ping → Success) over the
// in-process pipe: framing, protobuf both ways, the device's dispatch.
func BenchmarkPingPipe(b *testing.B) {
	d := newDevice(b, Options{})
	c := newClient(b, d)
	m := &pb.Ping{Message: proto.String("hello")}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := c.call(m).(*pb.Success); !ok {
			b.Fatal("no success")
		}
	}
}

// BenchmarkSignTx100P2WPKH signs a 100-input p2wpkh spend with change, streamed the way
// trezorlib does (every previous transaction included), over the in-process pipe.
func BenchmarkSignTx100P2WPKH(b *testing.B) {
	d := newDevice(b, Options{})
	c := newClient(b, d)
	w, _ := emulator.NewWallet(emulator.DefaultMnemonic, "")
	job := p2wpkhJob(b, w, 100)
	d.Approver().ClearTranscript()
	b.ReportAllocs()
	var requests int
	for b.Loop() {
		res := c.signTx(job)
		if res.failure != nil || len(res.sigs) != 100 {
			b.Fatalf("failure %v, %d signatures", res.failure, len(res.sigs))
		}
		requests = len(res.requests)
		d.Approver().ClearTranscript()
	}
	b.ReportMetric(float64(requests), "requests/op")
}
