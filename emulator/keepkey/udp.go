package keepkeyemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/hwbridge/hwbridge/internal/keepkeypb"
	"github.com/hwbridge/hwbridge/transport"
)

var (
	udpPing = []byte("PINGPING")
	udpPong = []byte("PONGPONG")
)

// udpQueue bounds whole messages waiting for the device; more are dropped (a host does not
// send ahead of the replies it waits for).
const udpQueue = 64

// UDPServer serves a Device the way the KeepKey emulator does (lib/emulator/udp.c): the wire port takes one
// 64-byte v1 packet per datagram and replies to the last sender; PINGPING is answered with
// PONGPONG at any time; a datagram from a new sender address drops a half-received
// message. The DebugLink port (wire port + 1) answers PINGPING, reads DebugLinkDecision
// (id 100) as a button press when the policy is prompt, and drains everything else.
type UDPServer struct {
	d     *Device
	wire  *net.UDPConn
	debug *net.UDPConn

	mu     sync.Mutex
	last   *net.UDPAddr
	resync bool // set by an injected disconnect: drop the half-received message
}

// ListenUDP binds addr (HOST:PORT) and the DebugLink port PORT+1. Port 0 picks a free pair.
func (d *Device) ListenUDP(addr string) (*UDPServer, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("keepkeyemu: udp address %q: %w", addr, err)
	}
	for range 50 {
		w, err := net.ListenUDP("udp", ua)
		if err != nil {
			return nil, fmt.Errorf("keepkeyemu: listen udp:%s (is another emulator running?): %w", addr, err)
		}
		wa := w.LocalAddr().(*net.UDPAddr)
		dbg, err := net.ListenUDP("udp", &net.UDPAddr{IP: wa.IP, Port: wa.Port + 1, Zone: wa.Zone})
		if err == nil {
			return &UDPServer{d: d, wire: w, debug: dbg}, nil
		}
		w.Close()
		if ua.Port != 0 {
			return nil, fmt.Errorf("keepkeyemu: listen on the debuglink port udp:%s:%d (is another emulator running?): %w", wa.IP, wa.Port+1, err)
		}
	}
	return nil, fmt.Errorf("keepkeyemu: no free udp port pair on %s", ua.IP)
}

// Addr is the wire port's address.
func (u *UDPServer) Addr() *net.UDPAddr { return u.wire.LocalAddr().(*net.UDPAddr) }

// Close stops Serve.
func (u *UDPServer) Close() error {
	err := u.wire.Close()
	return errors.Join(err, u.debug.Close())
}

// Serve runs until ctx ends, Close is called or the device is closed.
func (u *UDPServer) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(u.d.ctx, cancel)
	defer stop()
	context.AfterFunc(ctx, func() { u.Close() })

	s := u.d.newSession("udp", u)
	s.in = make(chan frame, udpQueue)
	var wg sync.WaitGroup
	wg.Go(func() { u.serveDebug() })
	wg.Go(func() {
		// One exchange at a time; an injected disconnect ends the session's loop, the
		// device forgets its state, and the next message starts afresh.
		for ctx.Err() == nil {
			s.run(ctx)
		}
	})
	err := u.readLoop(ctx, s)
	cancel()
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (u *UDPServer) readLoop(ctx context.Context, s *session) error {
	var rd transport.V1Reader
	buf := make([]byte, 2048)
	for {
		n, from, err := u.wire.ReadFromUDP(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("keepkeyemu: udp read: %w", err)
		}
		pkt := buf[:n]
		if bytes.Equal(pkt, udpPing) {
			_, _ = u.wire.WriteToUDP(udpPong, from)
			continue
		}
		u.mu.Lock()
		if u.last == nil || !u.last.IP.Equal(from.IP) || u.last.Port != from.Port || u.resync {
			rd.Reset()
			u.resync = false
		}
		u.last = from
		u.mu.Unlock()
		done, err := rd.Add(pkt)
		if err != nil {
			u.d.log.Debug("keepkeyemu: dropped datagram", "from", from.String(), "err", err)
			continue
		}
		if !done {
			continue
		}
		typ, body := rd.Message()
		select {
		case s.in <- frame{typ, body}:
		default:
			u.d.log.Debug("keepkeyemu: message queue full, dropped", "type", typ)
		}
	}
}

// send implements packetWire: reply to the last sender.
func (u *UDPServer) send(_ context.Context, pkt []byte) error {
	u.mu.Lock()
	to := u.last
	u.mu.Unlock()
	if to == nil {
		return nil
	}
	_, err := u.wire.WriteToUDP(pkt, to)
	return err
}

// close implements packetWire: on UDP an injected disconnect only forgets the exchange.
func (u *UDPServer) close() {
	u.mu.Lock()
	u.resync = true
	u.mu.Unlock()
}

func (u *UDPServer) serveDebug() {
	var rd transport.V1Reader
	var last *net.UDPAddr
	buf := make([]byte, 2048)
	for {
		n, from, err := u.debug.ReadFromUDP(buf)
		if err != nil {
			return
		}
		pkt := buf[:n]
		if bytes.Equal(pkt, udpPing) {
			_, _ = u.debug.WriteToUDP(udpPong, from)
			continue
		}
		if last == nil || last.Port != from.Port || !last.IP.Equal(from.IP) {
			rd.Reset()
			last = from
		}
		done, err := rd.Add(pkt)
		if err != nil || !done {
			continue
		}
		typ, body := rd.Message()
		if keepkeypb.MessageType(typ) != keepkeypb.MessageType_MessageType_DebugLinkDecision {
			continue
		}
		m, err := keepkeypb.Unmarshal(keepkeypb.MessageType(typ), body)
		if err != nil {
			continue
		}
		if dec := m.(*keepkeypb.DebugLinkDecision); dec.YesNo != nil {
			// Only meaningful under the prompt policy; otherwise the screen was decided
			// already and Press refuses.
			_ = u.d.approver.Press(dec.GetYesNo())
		}
	}
}
