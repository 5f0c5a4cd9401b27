package transport

import (
	"bytes"
	"context"
	"errors"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fakeUSB is a scripted device at the usbHandle seam: what usbfs would return. It answers
// each complete Codec v1 message it receives on the OUT endpoint with respond's reply on the
// IN endpoint, and injects the faults a real bus has: lost packets, stalls, unplugging.
type fakeUSB struct {
	t       *testing.T
	respond func(typ uint16, body []byte) (uint16, []byte)

	in   chan []byte   // packets the device has queued for the host
	gone chan struct{} // closed when unplugged

	mu         sync.Mutex
	rd         V1Reader
	out        [][]byte // packets the device received
	claimErr   error
	claimed    []uint8
	released   []uint8
	closed     int
	clears     []uint8
	halted     map[uint8]bool
	stallNext  map[uint8]int // stall ep for its next n transfers (a clear halt ends each)
	sticky     bool          // a clear halt does not help
	dropIn     map[int]bool  // reply packets (0-based, over the device's life) that are lost
	sentIn     int
	unplugOut  int // unplug when this many OUT packets have arrived (0: never)
	unplugged  bool
	zlpBefore  bool // send a zero-length packet before each reply
	transfers  int
	maxTimeout time.Duration
}

func newFakeUSB(t *testing.T) *fakeUSB {
	return &fakeUSB{
		t: t, in: make(chan []byte, 1024), gone: make(chan struct{}),
		halted: map[uint8]bool{}, stallNext: map[uint8]int{}, dropIn: map[int]bool{},
		respond: func(typ uint16, body []byte) (uint16, []byte) { return typ + 1, slices.Clone(body) }, // echo
	}
}

func (f *fakeUSB) unplug() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.unplugged {
		f.unplugged = true
		close(f.gone)
	}
}

func (f *fakeUSB) claim(iface uint8) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.claimErr != nil {
		return f.claimErr
	}
	f.claimed = append(f.claimed, iface)
	return nil
}

func (f *fakeUSB) release(iface uint8) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.released = append(f.released, iface)
	if f.unplugged {
		return syscall.ENODEV
	}
	return nil
}

func (f *fakeUSB) close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed++
	return nil
}

func (f *fakeUSB) clearHalt(ep uint8) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.unplugged {
		return syscall.ENODEV
	}
	f.clears = append(f.clears, ep)
	if !f.sticky {
		f.halted[ep] = false
	}
	return nil
}

func (f *fakeUSB) transfer(ep uint8, buf []byte, timeout time.Duration) (int, error) {
	f.mu.Lock()
	f.transfers++
	f.maxTimeout = max(f.maxTimeout, timeout)
	if f.unplugged {
		f.mu.Unlock()
		return 0, syscall.ENODEV
	}
	if f.stallNext[ep] > 0 {
		f.stallNext[ep]--
		f.halted[ep] = true
	}
	if f.halted[ep] {
		f.mu.Unlock()
		return 0, syscall.EPIPE
	}
	if ep&usbEndpointIn == 0 {
		defer f.mu.Unlock()
		if len(buf) != V1PacketSize {
			f.t.Errorf("OUT transfer of %d bytes, want %d", len(buf), V1PacketSize)
		}
		f.out = append(f.out, slices.Clone(buf))
		if f.unplugOut > 0 && len(f.out) >= f.unplugOut {
			f.unplugged = true
			close(f.gone)
			return len(buf), nil // the packet went out; the device is gone after it
		}
		done, err := f.rd.Add(buf)
		if err != nil {
			f.t.Errorf("device got a bad packet: %v", err)
		}
		if done {
			typ, body := f.rd.Message()
			rtyp, rbody := f.respond(typ, body)
			pkts, err := V1Packets(rtyp, rbody)
			if err != nil {
				f.t.Errorf("reply: %v", err)
			}
			if f.zlpBefore {
				f.in <- nil
			}
			for _, p := range pkts {
				if !f.dropIn[f.sentIn] {
					f.in <- p
				}
				f.sentIn++
			}
		}
		return len(buf), nil
	}
	f.mu.Unlock()
	tm := time.NewTimer(timeout)
	defer tm.Stop()
	select {
	case p := <-f.in:
		return copy(buf, p), nil
	case <-f.gone:
		return 0, syscall.ENODEV
	case <-tm.C:
		return 0, syscall.ETIMEDOUT
	}
}

var trezorWire = rawWire{Interface: 0, In: 0x81, Out: 0x01, MaxPacket: 64}

func openFake(t *testing.T, f *fakeUSB) *RawLink {
	t.Helper()
	l, err := openRawLink(f, DeviceInfo{Path: "usb:1-3", Kind: KindTrezor}, trezorWire)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// exchange sends one message and reads one reply within ctx, as the Trezor driver does.
func exchange(ctx context.Context, l Link, typ uint16, body []byte) (rtyp uint16, rbody []byte, err error) {
	err = DoContext(ctx, l, func() error {
		if err := WriteV1(l, typ, body); err != nil {
			return err
		}
		var err error
		rtyp, rbody, err = ReadV1(l)
		return err
	})
	return rtyp, rbody, err
}

func TestRawLinkExchange(t *testing.T) {
	f := newFakeUSB(t)
	l := openFake(t, f)
	body := bytes.Repeat([]byte{0x5a}, 200) // 1 + 3 packets each way
	typ, got, err := exchange(t.Context(), l, 7, body)
	if err != nil || typ != 8 || !bytes.Equal(got, body) {
		t.Fatalf("exchange: type %d, %d bytes, %v", typ, len(got), err)
	}
	// A short write is padded to the packet size (the firmware drops anything shorter).
	if n, err := l.Write([]byte("?##")); n != 3 || err != nil {
		t.Fatalf("short write: %d, %v", n, err)
	}
	if _, err := l.Write(make([]byte, 65)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("65-byte write: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal("second close:", err)
	}
	if _, err := l.Read(make([]byte, 64)); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Equal(f.claimed, []uint8{0}) || !slices.Equal(f.released, []uint8{0}) || f.closed != 1 {
		t.Fatalf("claimed %v released %v closed %d", f.claimed, f.released, f.closed)
	}
	if f.maxTimeout > rawPoll {
		t.Fatalf("a transfer waited up to %v, more than rawPoll", f.maxTimeout)
	}
}

func TestRawLinkZeroLengthPacket(t *testing.T) {
	f := newFakeUSB(t)
	f.zlpBefore = true
	l := openFake(t, f)
	if typ, got, err := exchange(t.Context(), l, 0, []byte("hi")); err != nil || typ != 1 || string(got) != "hi" {
		t.Fatalf("exchange: %d %q %v", typ, got, err)
	}
}

func TestRawLinkStall(t *testing.T) {
	for _, ep := range []uint8{0x81, 0x01} {
		f := newFakeUSB(t)
		f.stallNext[ep] = 1
		l := openFake(t, f)
		if _, _, err := exchange(t.Context(), l, 1, []byte("x")); err != nil {
			t.Fatalf("ep %#x stalled once: %v", ep, err)
		}
		f.mu.Lock()
		clears := slices.Clone(f.clears)
		f.mu.Unlock()
		if !slices.Equal(clears, []uint8{ep}) {
			t.Fatalf("ep %#x: clear halt on %x", ep, clears)
		}
	}
	// A halt that clearing does not end: the link gives up after one retry.
	f := newFakeUSB(t)
	f.stallNext[0x81] = 1
	f.sticky = true
	l := openFake(t, f)
	_, _, err := exchange(t.Context(), l, 1, []byte("x"))
	if !errors.Is(err, ErrClosed) || !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("sticky stall: %v", err)
	}
}

func TestRawLinkPacketLoss(t *testing.T) {
	f := newFakeUSB(t)
	f.dropIn[1] = true // the second packet of the first reply never arrives
	l := openFake(t, f)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, _, err := exchange(ctx, l, 1, bytes.Repeat([]byte{1}, 100))
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("lost packet: %v", err)
	}
	// The link itself is fine: the next exchange (a fresh reader) works.
	if typ, got, err := exchange(t.Context(), l, 3, []byte("again")); err != nil || typ != 4 || string(got) != "again" {
		t.Fatalf("after the loss: %d %q %v", typ, got, err)
	}
}

func TestRawLinkUnplug(t *testing.T) {
	// Unplugged while the host writes the second of three packets.
	f := newFakeUSB(t)
	f.unplugOut = 2
	l := openFake(t, f)
	_, _, err := exchange(t.Context(), l, 1, bytes.Repeat([]byte{2}, 100))
	if !errors.Is(err, ErrClosed) || !errors.Is(err, syscall.ENODEV) {
		t.Fatalf("unplugged mid-write: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("close of an unplugged device: %v", err)
	}

	// Unplugged while the host waits for the reply (the user never confirms).
	f = newFakeUSB(t)
	f.respond = func(uint16, []byte) (uint16, []byte) { go f.unplug(); return 0, nil }
	l = openFake(t, f)
	f.dropIn[0] = true // no reply: the device is "waiting for the user"
	_, _, err = exchange(t.Context(), l, 1, nil)
	if !errors.Is(err, ErrClosed) || !errors.Is(err, syscall.ENODEV) {
		t.Fatalf("unplugged while waiting: %v", err)
	}
}

func TestRawLinkCancel(t *testing.T) {
	f := newFakeUSB(t)
	f.dropIn[0] = true // the reply never comes
	l := openFake(t, f)
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, _, err := exchange(ctx, l, 1, nil)
		errc <- err
	}()
	// Cancel once the request is out and the host is blocked reading.
	for {
		f.mu.Lock()
		n := len(f.out)
		f.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("cancelled read: %v", err)
	}
	// Close while a reader is blocked with no deadline: it returns ErrClosed.
	go func() {
		_, err := l.Read(make([]byte, 64))
		errc <- err
	}()
	time.Sleep(5 * time.Millisecond)
	l.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("read across close: %v", err)
	}
}

func TestRawLinkClaimed(t *testing.T) {
	f := newFakeUSB(t)
	f.claimErr = syscall.EBUSY
	_, err := openRawLink(f, DeviceInfo{Path: "usb:1-3"}, trezorWire)
	if !errors.Is(err, ErrClaimed) || !errors.Is(err, syscall.EBUSY) {
		t.Fatalf("claimed: %v", err)
	}
	f.claimErr = syscall.ENODEV
	if _, err := openRawLink(f, DeviceInfo{Path: "usb:1-3"}, trezorWire); !errors.Is(err, ErrNoDevice) {
		t.Fatalf("gone at claim: %v", err)
	}
	if f.closed != 2 {
		t.Fatalf("handle closed %d times after failed claims, want 2", f.closed)
	}
}

// TestRawLinkTrezorFlow runs a multi-message conversation the way the Trezor driver does
// (ButtonRequest, ButtonAck, the answer), across a stall and a lost packet with recovery.
func TestRawLinkTrezorFlow(t *testing.T) {
	const (
		msgInitialize    = 0
		msgFeatures      = 17
		msgButtonRequest = 26
		msgButtonAck     = 27
		msgGetAddress    = 29
		msgAddress       = 30
	)
	f := newFakeUSB(t)
	f.respond = func(typ uint16, body []byte) (uint16, []byte) {
		switch typ {
		case msgInitialize:
			return msgFeatures, []byte("\x0a\x09trezor.io")
		case msgGetAddress:
			return msgButtonRequest, nil
		case msgButtonAck:
			return msgAddress, []byte("\x0a\x2abc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu")
		}
		return 3, nil // Failure
	}
	l := openFake(t, f)
	steps := []struct{ send, want uint16 }{
		{msgInitialize, msgFeatures}, {msgGetAddress, msgButtonRequest}, {msgButtonAck, msgAddress},
	}
	f.stallNext[0x81] = 1
	for _, s := range steps {
		typ, _, err := exchange(t.Context(), l, s.send, nil)
		if err != nil || typ != s.want {
			t.Fatalf("send %d: got %d, %v", s.send, typ, err)
		}
	}
}
