package transport

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// fakeLedger serves APDUs on one end of a link: it replies data = the APDU's data field and
// status 9000, except INS 0xFF (never answers: a confirmation the user never gives) and INS
// 0xFE (answers one byte, no status word) and INS 0xFD (answers once late is closed: a
// reply that comes after the host gave up).
type fakeLedger struct {
	conn net.Conn
	hid  bool
	late chan struct{}
	wg   sync.WaitGroup
}

func startFakeLedger(t *testing.T, hid bool) (host net.Conn) {
	t.Helper()
	return startFakeLedgerLate(t, hid, nil)
}

func startFakeLedgerLate(t *testing.T, hid bool, late chan struct{}) (host net.Conn) {
	t.Helper()
	host, dev := net.Pipe()
	f := &fakeLedger{conn: dev, hid: hid, late: late}
	f.wg.Go(f.serve)
	t.Cleanup(func() {
		host.Close()
		dev.Close()
		f.wg.Wait()
	})
	return host
}

func (f *fakeLedger) serve() {
	for {
		var apdu []byte
		var ch uint16
		var err error
		if f.hid {
			apdu, ch, err = ReadLedgerHIDCommand(f.conn)
		} else {
			apdu, err = ReadSpeculosAPDU(f.conn)
		}
		if err != nil {
			return // the test closed the pipe
		}
		reply := append(bytes.Clone(apdu[min(5, len(apdu)):]), 0x90, 0x00)
		switch {
		case len(apdu) > 1 && apdu[1] == 0xff:
			continue
		case len(apdu) > 1 && apdu[1] == 0xfe:
			reply = []byte{0x42}
		case len(apdu) > 1 && apdu[1] == 0xfd:
			<-f.late
		}
		if f.hid {
			err = WriteLedgerHID(f.conn, ch, reply)
		} else if len(reply) < 2 {
			_, err = f.conn.Write([]byte{0, 0, 0, 0}) // only a length, then the pipe stalls
		} else {
			err = WriteSpeculosResponse(f.conn, reply[:len(reply)-2], 0x9000)
		}
		if err != nil {
			return
		}
	}
}

func newTestExchanger(t *testing.T, hid bool) *Exchanger {
	host := startFakeLedger(t, hid)
	if hid {
		return NewLedgerHIDExchanger(host)
	}
	return NewSpeculosExchanger(host)
}

func TestExchange(t *testing.T) {
	for _, hid := range []bool{false, true} {
		e := newTestExchanger(t, hid)
		for _, n := range []int{0, 1, 52, 53, 200, 255} {
			apdu := append([]byte{0xe0, 0x02, 0, 0, byte(n)}, bytes.Repeat([]byte{0x33}, n)...)
			resp, err := e.Exchange(t.Context(), apdu)
			if err != nil {
				t.Fatalf("hid=%v n=%d: %v", hid, n, err)
			}
			if want := append(bytes.Clone(apdu[5:]), 0x90, 0x00); !bytes.Equal(resp, want) {
				t.Fatalf("hid=%v n=%d: got %x", hid, n, resp)
			}
		}
	}
}

func TestExchangeErrors(t *testing.T) {
	apdu := []byte{0xe0, 0x06, 0, 0, 0}
	for _, hid := range []bool{false, true} {
		t.Run("too large", func(t *testing.T) {
			e := newTestExchanger(t, hid)
			if _, err := e.Exchange(t.Context(), make([]byte, LedgerMaxCommand+1)); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("hid=%v: %v", hid, err)
			}
			if _, err := e.Exchange(t.Context(), apdu); err != nil {
				t.Fatalf("hid=%v: refused apdu broke the link: %v", hid, err)
			}
		})
		t.Run("cancelled before", func(t *testing.T) {
			e := newTestExchanger(t, hid)
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			if _, err := e.Exchange(ctx, apdu); !errors.Is(err, context.Canceled) {
				t.Fatalf("hid=%v: %v", hid, err)
			}
			if _, err := e.Exchange(t.Context(), apdu); err != nil {
				t.Fatalf("hid=%v: early cancel broke the link: %v", hid, err)
			}
		})
		t.Run("cancelled while waiting", func(t *testing.T) {
			e := newTestExchanger(t, hid)
			ctx, cancel := context.WithCancel(t.Context())
			time.AfterFunc(20*time.Millisecond, cancel)
			if _, err := e.Exchange(ctx, []byte{0xe0, 0xff, 0, 0, 0}); !errors.Is(err, context.Canceled) {
				t.Fatalf("hid=%v: %v", hid, err)
			}
			if _, err := e.Exchange(t.Context(), apdu); !errors.Is(err, ErrOutOfSync) {
				t.Fatalf("hid=%v: after interrupted exchange: %v", hid, err)
			}
		})
		t.Run("timeout while waiting", func(t *testing.T) {
			e := newTestExchanger(t, hid)
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
			defer cancel()
			if _, err := e.Exchange(ctx, []byte{0xe0, 0xff, 0, 0, 0}); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("hid=%v: %v", hid, err)
			}
		})
		t.Run("device gone", func(t *testing.T) {
			host, dev := net.Pipe()
			dev.Close()
			var e *Exchanger
			if hid {
				e = NewLedgerHIDExchanger(host)
			} else {
				e = NewSpeculosExchanger(host)
			}
			if _, err := e.Exchange(t.Context(), apdu); !errors.Is(err, ErrClosed) {
				t.Fatalf("hid=%v: %v", hid, err)
			}
		})
	}
	t.Run("late reply drained", func(t *testing.T) {
		for _, hid := range []bool{false, true} {
			late := make(chan struct{})
			host := startFakeLedgerLate(t, hid, late)
			e := NewSpeculosExchanger(host)
			if hid {
				e = NewLedgerHIDExchanger(host)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
			defer cancel()
			if _, err := e.Exchange(ctx, []byte{0xe0, 0xfd, 0, 0, 1, 0x77}); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("hid=%v: %v", hid, err)
			}
			close(late) // the reply comes now, after the host gave up
			if err := e.Drain(t.Context(), 500*time.Millisecond); err != nil {
				t.Fatalf("hid=%v: drain: %v", hid, err)
			}
			resp, err := e.Exchange(t.Context(), []byte{0xe0, 0x02, 0, 0, 1, 0x55})
			if err != nil || !bytes.Equal(resp, []byte{0x55, 0x90, 0x00}) {
				t.Fatalf("hid=%v: after drain: %x %v (the late reply taken for this one?)", hid, resp, err)
			}
		}
	})
	t.Run("drain a closed link", func(t *testing.T) {
		host, dev := net.Pipe()
		dev.Close()
		if err := NewSpeculosExchanger(host).Drain(t.Context(), 10*time.Millisecond); !errors.Is(err, ErrClosed) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("no status word", func(t *testing.T) {
		e := newTestExchanger(t, true)
		if _, err := e.Exchange(t.Context(), []byte{0xe0, 0xfe, 0, 0, 0}); !errors.Is(err, ErrTruncated) {
			t.Fatalf("%v", err)
		}
	})
}

// A Speculos exchange over real TCP through Open.
func TestExchangeTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait() // runs last: the server has returned once ln and the conn are closed
	defer ln.Close()
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		for {
			apdu, err := ReadSpeculosAPDU(c)
			if err != nil {
				return
			}
			if err := WriteSpeculosResponse(c, []byte{0xf5, 0xac, 0xc2, 0xfd, apdu[1]}, 0x9000); err != nil {
				return
			}
		}
	})
	e, err := OpenExchanger(t.Context(), "tcp:"+ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	resp, err := e.Exchange(t.Context(), []byte{0xe1, 0x05, 0, 0, 0})
	if err != nil || !bytes.Equal(resp, []byte{0xf5, 0xac, 0xc2, 0xfd, 0x05, 0x90, 0x00}) {
		t.Fatalf("%x %v", resp, err)
	}

	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	free := ln2.Addr().String()
	ln2.Close()
	if _, err := Open(t.Context(), "tcp:"+free); !errors.Is(err, ErrNoDevice) {
		t.Fatalf("nothing listening: %v", err)
	}
}

func TestOpenExchangerPaths(t *testing.T) {
	tests := []struct {
		path string
		want error
	}{
		{"udp:127.0.0.1:21324", ErrInvalidPath},
		{"tcp:127.0.0.1", ErrInvalidPath},
		{"hid:/no/such/device", ErrNoDevice},
	}
	for _, tt := range tests {
		_, err := OpenExchanger(t.Context(), tt.path)
		if !errors.Is(err, tt.want) && !(tt.want == ErrNoDevice && errors.Is(err, errors.ErrUnsupported)) {
			t.Errorf("%s: err = %v, want %v", tt.path, err, tt.want)
		}
	}
}
