package transport

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// udpResponder is a tiny stand-in for the Trezor emulator's socket: it answers PINGPING
// with PONGPONG, and echoes every other datagram back to its sender, first sending a stray
// PONGPONG when strayPong is set. With silent set it reads and never answers.
type udpResponder struct {
	conn      *net.UDPConn
	strayPong bool
	silent    bool
	wg        sync.WaitGroup
}

func newUDPResponder(t testing.TB, strayPong, silent bool) *udpResponder {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	r := &udpResponder{conn: c, strayPong: strayPong, silent: silent}
	r.wg.Go(r.serve)
	t.Cleanup(func() {
		c.Close()
		r.wg.Wait()
	})
	return r
}

func (r *udpResponder) addr() string { return r.conn.LocalAddr().String() }

func (r *udpResponder) serve() {
	buf := make([]byte, 2048)
	for {
		n, from, err := r.conn.ReadFromUDP(buf)
		if err != nil {
			return // closed by the test's cleanup
		}
		if r.silent {
			continue
		}
		if bytes.Equal(buf[:n], udpPing) {
			_, _ = r.conn.WriteToUDP(udpPong, from)
			continue
		}
		if r.strayPong {
			_, _ = r.conn.WriteToUDP(udpPong, from)
		}
		_, _ = r.conn.WriteToUDP(buf[:n], from)
	}
}

// freeUDPAddr returns a loopback address where nothing listens.
func freeUDPAddr(t *testing.T) string {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	c.Close()
	return addr
}

func TestUDPLinkMessages(t *testing.T) {
	for _, stray := range []bool{false, true} {
		r := newUDPResponder(t, stray, false)
		link, err := Open(t.Context(), "udp:"+r.addr())
		if err != nil {
			t.Fatal(err)
		}
		defer link.Close()
		for _, n := range []int{0, 55, 56, 300} {
			body := bytes.Repeat([]byte{byte(n)}, n)
			if err := WriteV1(link, 17, body); err != nil {
				t.Fatal(err)
			}
			typ, got, err := ReadV1(link)
			if err != nil {
				t.Fatalf("stray=%v n=%d: %v", stray, n, err)
			}
			if typ != 17 || !bytes.Equal(got, body) {
				t.Fatalf("stray=%v n=%d: got type %d body %x", stray, n, typ, got)
			}
		}
	}
}

func TestUDPLinkShortBuffer(t *testing.T) {
	r := newUDPResponder(t, false, false)
	link, err := DialUDP(t.Context(), r.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer link.Close()
	if _, err := link.Write(make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
	if _, err := link.Read(make([]byte, 10)); err == nil {
		t.Fatal("64-byte datagram read into 10 bytes without error")
	}
}

func TestPingUDP(t *testing.T) {
	live := newUDPResponder(t, false, false)
	silent := newUDPResponder(t, false, true)
	deadCtx, cancel := context.WithCancel(t.Context())
	cancel()
	shortCtx, cancelShort := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancelShort()
	tests := []struct {
		name string
		ctx  context.Context
		addr string
		want error // nil: success
	}{
		{"answers", t.Context(), live.addr(), nil},
		{"nothing listening", t.Context(), freeUDPAddr(t), ErrNoDevice},
		{"never answers", shortCtx, silent.addr(), ErrNoDevice},
		{"cancelled", deadCtx, live.addr(), context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := PingUDP(tt.ctx, tt.addr)
			if tt.want == nil && err != nil || !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := Open(t.Context(), "udp:"+freeUDPAddr(t)); !errors.Is(err, ErrNoDevice) {
		t.Fatalf("open with nothing listening: %v", err)
	}
}

// A Read blocked on a device that never answers returns on a deadline, on a context being
// cancelled (DoContext), and on Close.
func TestUDPLinkInterrupt(t *testing.T) {
	r := newUDPResponder(t, false, false)
	link, err := DialUDP(t.Context(), r.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer link.Close()
	buf := make([]byte, 64)

	if err := link.SetDeadline(time.Now().Add(10 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := link.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		time.Sleep(10 * time.Millisecond)
		cancel()
	}()
	err = DoContext(ctx, link, func() error { _, err := link.Read(buf); return err })
	if !errors.Is(err, context.Canceled) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("cancel: %v", err)
	}

	ctx, cancel = context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	err = DoContext(ctx, link, func() error { _, err := link.Read(buf); return err })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ctx timeout: %v", err)
	}

	// DoContext cleared the deadline: the link works again.
	if _, err := link.Write(make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
	if n, err := link.Read(buf); err != nil || n != 64 {
		t.Fatalf("after interrupts: %d %v", n, err)
	}

	go func() {
		time.Sleep(10 * time.Millisecond)
		link.Close()
	}()
	if _, err := link.Read(buf); !errors.Is(err, ErrClosed) {
		t.Fatalf("close: %v", err)
	}
}

func BenchmarkUDPRoundTrip(b *testing.B) {
	r := newUDPResponder(b, false, false)
	link, err := DialUDP(b.Context(), r.addr())
	if err != nil {
		b.Fatal(err)
	}
	defer link.Close()
	pkt := make([]byte, V1PacketSize)
	buf := make([]byte, V1PacketSize)
	b.SetBytes(V1PacketSize)
	for b.Loop() {
		if _, err := link.Write(pkt); err != nil {
			b.Fatal(err)
		}
		if _, err := link.Read(buf); err != nil {
			b.Fatal(err)
		}
	}
}
