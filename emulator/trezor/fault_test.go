package trezoremu

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/emulator"
	pb "github.com/hwbridge/hwbridge/internal/trezorpb"
	"github.com/hwbridge/hwbridge/transport"
)

func TestFaultDroppedPacketMidSignTx(t *testing.T) {
	d := newDevice(t, Options{})
	w, _ := emulator.NewWallet(emulator.DefaultMnemonic, "")
	c := newClient(t, d)
	c.timeout = 300 * time.Millisecond
	callAs[*pb.Features](c, &pb.Initialize{})
	job := p2wpkhJob(t, w, 2)
	// Let SignTx start, then lose the device's next packet.
	if err := c.write(&pb.SignTx{InputsCount: proto.Uint32(2), OutputsCount: proto.Uint32(2), Version: proto.Uint32(2)}); err != nil {
		t.Fatal(err)
	}
	req, err := c.read()
	if err != nil {
		t.Fatal(err)
	}
	d.Faults().DropNext(1)
	if err := c.write(&pb.TxAck{Tx: job.answer(t, req.(*pb.TxRequest))}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.read(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after a dropped packet: %v", err)
	}
	// The host gives up and opens a fresh session on a new link: it preempts the stuck flow.
	c.link.Close()
	c2 := newClient(t, d)
	callAs[*pb.Features](c2, &pb.Initialize{})
	res := c2.signTx(p2wpkhJob(t, w, 2))
	if res.failure != nil {
		t.Fatal(res.failure)
	}
	verifySigned(t, res.serialized, job.prevOut)
}

func TestFaultDisconnectMidSignTx(t *testing.T) {
	d := newDevice(t, Options{})
	w, _ := emulator.NewWallet(emulator.DefaultMnemonic, "")
	c := newClient(t, d)
	f := callAs[*pb.Features](c, &pb.Initialize{})
	d.Faults().DisconnectAt(3) // SignTx, TxAck(input 0), then the second TxAck
	res := txResult{}
	func() {
		defer func() { _ = recover() }()
		c.tb = &fatalCatcher{T: t}
		res = c.signTx(p2wpkhJob(t, w, 2))
	}()
	if res.serialized != nil {
		t.Fatal("signing finished despite the disconnect")
	}
	// The link is closed by the device.
	c.link.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.link.Read(make([]byte, 64)); err == nil {
		t.Fatal("link still open")
	}
	c2 := newClient(t, d)
	f2 := callAs[*pb.Features](c2, &pb.Initialize{SessionId: f.SessionId})
	if string(f2.SessionId) == string(f.SessionId) {
		t.Fatal("session survived the disconnect")
	}
	job := p2wpkhJob(t, w, 2)
	if res := c2.signTx(job); res.failure != nil {
		t.Fatal(res.failure)
	} else {
		verifySigned(t, res.serialized, job.prevOut)
	}
}

// fatalCatcher turns Fatal into a panic the test recovers from (the host sees an error).
type fatalCatcher struct{ *testing.T }

func (f *fatalCatcher) Fatal(args ...any)                 { panic("fatal") }
func (f *fatalCatcher) Fatalf(format string, args ...any) { panic("fatal") }

func TestFaultCorruptAndDelay(t *testing.T) {
	d := newDevice(t, Options{})
	c := newClient(t, d)
	d.Faults().CorruptNext(1)
	c.write(&pb.Ping{Message: proto.String("x")})
	if _, err := c.read(); !errors.Is(err, transport.ErrBadMagic) {
		t.Fatalf("corrupt packet read as %v", err)
	}
	d.Faults().SetDelay(20 * time.Millisecond)
	start := time.Now()
	callAs[*pb.Success](c, &pb.Ping{})
	if time.Since(start) < 20*time.Millisecond {
		t.Fatal("no delay")
	}
}

func udpDevice(t *testing.T, opts Options) (*Device, *UDPServer) {
	t.Helper()
	d := newDevice(t, opts)
	srv, err := d.ListenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(t.Context()) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return d, srv
}

func udpClient(t *testing.T, addr *net.UDPAddr) *testClient {
	t.Helper()
	conn, err := net.DialUDP("udp", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &testClient{tb: t, link: conn, timeout: 5 * time.Second}
}

func TestUDP(t *testing.T) {
	d, srv := udpDevice(t, Options{Approver: emulator.NewApprover(emulator.PolicyPrompt)})
	c := udpClient(t, srv.Addr())
	conn := c.link.(*net.UDPConn)
	pong := func() {
		t.Helper()
		conn.Write([]byte("PINGPING"))
		buf := make([]byte, 64)
		conn.SetDeadline(time.Now().Add(2 * time.Second))
		n, err := conn.Read(buf)
		if err != nil || string(buf[:n]) != "PONGPONG" {
			t.Fatalf("ping: %q %v", buf[:n], err)
		}
	}
	pong()
	callAs[*pb.Features](c, &pb.Initialize{})

	// A half-sent message from another sender is dropped when this one speaks.
	other := udpClient(t, srv.Addr())
	pkts, _ := transport.V1Packets(uint16(pb.MessageType_MessageType_Ping), make([]byte, 100))
	other.link.Write(pkts[0])
	callAs[*pb.Success](c, &pb.Ping{Message: proto.String("after")})

	// Waiting for a press: PINGPING still answered; a DebugLink decision presses.
	c.write(&pb.Ping{Message: proto.String("b"), ButtonProtection: proto.Bool(true)})
	mustRead(t, c)
	c.write(&pb.ButtonAck{})
	waitPending(t, d.Approver())
	pong()
	dbg, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: srv.Addr().IP, Port: srv.Addr().Port + 1})
	if err != nil {
		t.Fatal(err)
	}
	defer dbg.Close()
	id, body, _ := pb.Marshal(&pb.DebugLinkDecision{Button: proto.Bool(true)})
	transport.WriteV1(dbg, uint16(id), body)
	if s, ok := mustRead(t, c).(*pb.Success); !ok || s.GetMessage() != "b" {
		t.Fatal("debuglink decision did not approve")
	}

	// Disconnect fault on UDP: the exchange is forgotten, the next one works.
	d.Approver().SetPolicy(emulator.PolicyAuto)
	d.Faults().DisconnectAt(1)
	c.timeout = 300 * time.Millisecond
	c.write(&pb.Ping{Message: proto.String("lost")})
	if _, err := c.read(); err == nil {
		t.Fatal("disconnected exchange answered")
	}
	c.timeout = 5 * time.Second
	callAs[*pb.Features](c, &pb.Initialize{})
	callAs[*pb.Success](c, &pb.Ping{Message: proto.String("again")})
}
