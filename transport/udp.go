package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

// The Trezor emulator's UDP transport (trezor.md §2): one 64-byte v1 packet per datagram in
// both directions, on a connected socket (the emulator replies to the source of the last
// datagram it received). The host may send the 8 bytes PINGPING at any time; the emulator
// answers PONGPONG at once without disturbing message reassembly.
const (
	// UDPPingTimeout bounds PingUDP when ctx has no earlier deadline (trezord-go waits
	// 1000 ms; an emulator answers in microseconds).
	UDPPingTimeout = time.Second
	// udpResend is how often PingUDP repeats an unanswered ping within the timeout.
	udpResend = 250 * time.Millisecond
	// udpMaxDatagram sizes the read buffer: anything longer than a v1 packet is read whole
	// and refused rather than silently cut.
	udpMaxDatagram = 2048
)

var (
	udpPing = []byte("PINGPING")
	udpPong = []byte("PONGPONG")
)

// PingUDP sends PINGPING to the emulator at HOST:PORT from a fresh socket and waits for
// PONGPONG, within ctx and at most UDPPingTimeout. Nothing listening gives ErrNoDevice,
// usually at once (the ICMP "port unreachable" reaches the connected socket).
func PingUDP(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return fmt.Errorf("transport: ping udp:%s: %w", addr, err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, UDPPingTimeout)
	defer cancel()
	err = DoContext(ctx, c, func() error {
		buf := make([]byte, udpMaxDatagram)
		end, _ := ctx.Deadline()
		for {
			if _, err := c.Write(udpPing); err != nil {
				return err
			}
			dl := end
			if next := time.Now().Add(udpResend); next.Before(dl) {
				dl = next
			}
			if err := c.SetReadDeadline(dl); err != nil {
				return err
			}
			for {
				n, err := c.Read(buf)
				if err != nil {
					if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() && time.Now().Before(end) && ctx.Err() == nil {
						break // resend
					}
					return err
				}
				if bytes.Equal(buf[:n], udpPong) {
					return nil
				}
			}
		}
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("transport: nothing listening on udp:%s (start hwemu or the trezor emulator, or check the path): %w: %w", addr, ErrNoDevice, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("transport: no answer to ping from udp:%s (is a trezor emulator listening there?): %w: %w", addr, ErrNoDevice, err)
	}
	return fmt.Errorf("transport: ping udp:%s: %w", addr, err)
}

// UDPLink is a connected UDP socket to a Trezor emulator. Each Write sends one datagram (a
// 64-byte v1 packet); each Read returns one, skipping stray PONGPONG answers to pings.
type UDPLink struct {
	conn net.Conn

	mu  sync.Mutex // guards buf: Reads are serialised
	buf []byte
}

// DialUDP pings the emulator at HOST:PORT (see PingUDP), then opens the session socket.
func DialUDP(ctx context.Context, addr string) (*UDPLink, error) {
	if err := PingUDP(ctx, addr); err != nil {
		return nil, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return nil, fmt.Errorf("transport: dial udp:%s: %w", addr, err)
	}
	return NewUDPLink(c), nil
}

// NewUDPLink wraps a connected UDP socket (from net.Dial("udp", ...) or net.DialUDP).
func NewUDPLink(c net.Conn) *UDPLink { return &UDPLink{conn: c} }

// Read returns the next datagram other than PONGPONG. A datagram longer than b fails with
// io.ErrShortBuffer (it is consumed).
func (l *UDPLink) Read(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf == nil {
		l.buf = make([]byte, udpMaxDatagram)
	}
	for {
		n, err := l.conn.Read(l.buf)
		if err != nil {
			return 0, goneErr("udp read", err)
		}
		if bytes.Equal(l.buf[:n], udpPong) {
			continue
		}
		if n > len(b) {
			return 0, fmt.Errorf("transport: udp read: datagram of %d bytes into %d: %w", n, len(b), io.ErrShortBuffer)
		}
		return copy(b, l.buf[:n]), nil
	}
}

// Write sends b as one datagram.
func (l *UDPLink) Write(b []byte) (int, error) {
	n, err := l.conn.Write(b)
	return n, goneErr("udp write", err)
}

// Close closes the socket; a blocked Read returns an error wrapping ErrClosed.
func (l *UDPLink) Close() error { return l.conn.Close() }

// SetDeadline sets the read and write deadline; past deadlines interrupt blocked calls with
// an error wrapping os.ErrDeadlineExceeded.
func (l *UDPLink) SetDeadline(t time.Time) error { return l.conn.SetDeadline(t) }

// RemoteAddr is the emulator's address.
func (l *UDPLink) RemoteAddr() net.Addr { return l.conn.RemoteAddr() }
