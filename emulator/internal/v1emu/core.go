// Package v1emu is the part of an emulated Codec v1 device that the Trezor and KeepKey
// emulators share: links (in-process pipe, UDP wire port and debug port), one workflow at a
// time with preemption by another link, faults on every packet and message, the
// call/answer loop with Cancel and Initialize, and ButtonRequest/ButtonAck confirmation.
// Both firmware families speak the same framing and these same session rules
// (trezor-firmware legacy/firmware and keepkey-firmware lib/firmware both grew from the
// same fsm.c/messages.c); what differs (message ids and types, failure texts, the debug
// decision's field) comes in through Protocol. It is hand-written: nothing is shared with
// device/ (internal/deptest forbids it), so driver and emulator still agree only on the
// wire.
package v1emu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/transport"
)

// Failure codes both trezor-common's and keepkey's messages.proto give the same number.
const (
	FailureUnexpectedMessage int32 = 1
	FailureActionCancelled   int32 = 4
)

// Codec encodes and decodes the family's messages by wire id (internal/trezorpb.Codec,
// internal/keepkeypb.Codec).
type Codec interface {
	MarshalWire(m proto.Message) (id uint16, body []byte, err error)
	UnmarshalWire(id uint16, body []byte) (proto.Message, error)
}

// Protocol is what one firmware family puts in: its message ids and how its messages are
// built and read.
type Protocol struct {
	// Prefix starts every error and log line ("trezoremu").
	Prefix string
	// Device is emulator.Screen.Device on every confirmation screen ("trezor").
	Device string
	// Message ids the session itself branches on.
	Cancel, Initialize, ButtonAck uint16
	// Codec encodes and decodes the family's messages.
	Codec Codec
	// TypeName names a message id for debug logs.
	TypeName func(id uint16) string
	// Failure builds the family's Failure message.
	Failure func(code int32, msg string) proto.Message
	// ButtonRequest builds the family's ButtonRequest with code.
	ButtonRequest func(code int32) proto.Message
	// BadMessage is the error for an answer of the right type that does not decode.
	BadMessage error
	// DebugPress reads one whole message from the debug port: press is true when it is a
	// debug decision that names a button, yes that button.
	DebugPress func(id uint16, body []byte) (yes, press bool)
}

// Handler answers one top-level message: a reply, nil for none, a *Failure, or an error
// that ends the flow without an answer.
type Handler func(ctx context.Context, f Frame) (proto.Message, error)

// Config builds a Core.
type Config struct {
	Protocol *Protocol
	Approver *emulator.Approver
	Faults   *emulator.Faults
	Log      *slog.Logger
	// Bind gives a new link's session its handler.
	Bind func(s *Session) Handler
	// DropState forgets the device's session state after an injected disconnect, as a
	// device that lost power would.
	DropState func()
}

// Core serves the links of one device.
type Core struct {
	p   *Protocol
	cfg Config

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	curOwner  *Session
	curCancel context.CancelFunc

	flow chan struct{} // capacity 1: held while a workflow runs
}

// NewCore starts a core; Close stops it.
func NewCore(cfg Config) *Core {
	c := &Core{p: cfg.Protocol, cfg: cfg, flow: make(chan struct{}, 1)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

// Close stops every link and waits for their goroutines.
func (c *Core) Close() {
	c.cancel()
	c.wg.Wait()
}

// Frame is one whole v1 message.
type Frame struct {
	Typ  uint16
	Body []byte
}

// packetWire sends one 64-byte packet to the host.
type packetWire interface {
	send(ctx context.Context, pkt []byte) error
	close()
}

type pipeWire struct {
	conn net.Conn
}

func (p *pipeWire) send(ctx context.Context, pkt []byte) error {
	stop := context.AfterFunc(ctx, func() { _ = p.conn.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	_, err := p.conn.Write(pkt)
	return err
}

func (p *pipeWire) close() { p.conn.Close() }

// Session is one link's conversation with the device.
type Session struct {
	c      *Core
	name   string
	in     chan Frame // closed when the link ends
	w      packetWire
	handle Handler
}

func (c *Core) newSession(name string, w packetWire) *Session {
	s := &Session{c: c, name: name, in: make(chan Frame, 4), w: w}
	s.handle = c.cfg.Bind(s)
	return s
}

// Pipe returns the host end of an in-process link served by the device: one Write or Read
// is one 64-byte packet, as on USB. Closing it ends the device side too.
func (c *Core) Pipe() transport.Link {
	host, dev := net.Pipe()
	if c.ctx.Err() != nil {
		dev.Close()
		host.Close()
		return host
	}
	s := c.newSession("pipe", &pipeWire{conn: dev})
	c.wg.Go(func() {
		defer dev.Close()
		ctx, cancel := context.WithCancel(c.ctx)
		defer cancel()
		stop := context.AfterFunc(ctx, func() { dev.Close() })
		defer stop()
		c.wg.Go(func() { s.readPipe(ctx, dev) })
		s.run(ctx)
	})
	return host
}

// readPipe reassembles packets from an in-process link. Garbage packets are dropped, as the
// firmware drops them.
func (s *Session) readPipe(ctx context.Context, conn net.Conn) {
	defer close(s.in)
	var rd transport.V1Reader
	buf := make([]byte, transport.V1PacketSize+1)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return
		}
		done, err := rd.Add(buf[:n])
		if err != nil {
			s.c.cfg.Log.Debug(s.c.p.Prefix+": dropped packet", "link", s.name, "err", err)
			continue
		}
		if !done {
			continue
		}
		typ, body := rd.Message()
		select {
		case s.in <- Frame{typ, body}:
		case <-ctx.Done():
			return
		}
	}
}

// Errors inside a workflow.
var (
	// errLinkGone: the link ended; nobody to answer.
	errLinkGone = errors.New("v1emu: link closed")
	// errDisconnect: a fault said to drop the link now.
	errDisconnect = errors.New("v1emu: injected disconnect")
)

// Failure is answered with the family's Failure message.
type Failure struct {
	Code int32
	Msg  string
}

func (f *Failure) Error() string { return fmt.Sprintf("failure %d: %s", f.Code, f.Msg) }

// Fail returns a *Failure.
func Fail(code int32, format string, a ...any) error {
	return &Failure{Code: code, Msg: fmt.Sprintf(format, a...)}
}

// ErrCancelled is a host Cancel: answered with Failure ActionCancelled.
var ErrCancelled = &Failure{Code: FailureActionCancelled, Msg: "Cancelled"}

// ErrRejected is the user pressing NO: answered like a host Cancel (ActionCancelled), but
// a screen that does not cancel on NO (the Trezor One's address screens) tells them apart.
var ErrRejected = &Failure{Code: FailureActionCancelled, Msg: "Cancelled"}

// interrupt: a message that starts a new workflow (Initialize) arrived mid-flow; the flow
// ends silently and the message is handled from the top.
type interrupt struct{ f Frame }

func (i *interrupt) Error() string { return fmt.Sprintf("interrupted by message %d", i.f.Typ) }

// run is the session's main loop: one top-level message at a time.
func (s *Session) run(ctx context.Context) {
	var pending *Frame
	for {
		var f Frame
		if pending != nil {
			f, pending = *pending, nil
		} else {
			var err error
			f, err = s.next(ctx)
			if err != nil {
				if errors.Is(err, errDisconnect) {
					s.c.cfg.DropState()
					s.w.close()
				}
				return
			}
		}
		err := s.workflow(ctx, f)
		var intr *interrupt
		switch {
		case err == nil:
		case errors.As(err, &intr):
			pending = &intr.f
		case errors.Is(err, errDisconnect):
			s.c.cfg.DropState()
			s.w.close()
			return
		case errors.Is(err, errLinkGone):
			return
		case ctx.Err() != nil:
			return
		default:
			// Preempted by another link, or a write failed: the flow is over.
			s.c.cfg.Log.Debug(s.c.p.Prefix+": workflow ended", "link", s.name, "err", err)
		}
	}
}

// workflow runs one top-level message under the device's flow lock, preempting a
// workflow of another link.
func (s *Session) workflow(ctx context.Context, f Frame) error {
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := s.c.acquire(fctx, s, cancel); err != nil {
		return err
	}
	defer s.c.release(s)
	reply, err := s.handle(fctx, f)
	var fl *Failure
	switch {
	case err == nil:
		if reply == nil {
			return nil
		}
		return s.Reply(fctx, reply)
	case errors.As(err, &fl):
		return s.Reply(fctx, s.c.p.Failure(fl.Code, fl.Msg))
	}
	return err
}

func (c *Core) acquire(ctx context.Context, s *Session, cancel context.CancelFunc) error {
	for {
		select {
		case c.flow <- struct{}{}:
			c.mu.Lock()
			c.curOwner, c.curCancel = s, cancel
			c.mu.Unlock()
			return nil
		default:
		}
		c.mu.Lock()
		if c.curOwner != nil && c.curOwner != s && c.curCancel != nil {
			c.curCancel() // a new host takes over; the old flow ends without an answer
		}
		c.mu.Unlock()
		select {
		case c.flow <- struct{}{}:
			c.mu.Lock()
			c.curOwner, c.curCancel = s, cancel
			c.mu.Unlock()
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (c *Core) release(s *Session) {
	c.mu.Lock()
	if c.curOwner == s {
		c.curOwner, c.curCancel = nil, nil
	}
	c.mu.Unlock()
	<-c.flow
}

// next returns the next whole message from the host, applying the disconnect fault.
func (s *Session) next(ctx context.Context) (Frame, error) {
	select {
	case f, ok := <-s.in:
		if !ok {
			return Frame{}, errLinkGone
		}
		if s.c.cfg.Faults.Incoming() {
			s.c.cfg.Log.Debug(s.c.p.Prefix+": injected disconnect", "link", s.name, "type", f.Typ)
			return Frame{}, errDisconnect
		}
		s.c.cfg.Log.Debug(s.c.p.Prefix+": <- message", "link", s.name, "type", s.c.p.TypeName(f.Typ))
		return f, nil
	case <-ctx.Done():
		return Frame{}, ctx.Err()
	}
}

// Reply sends one message, after the injected delay, packet by packet through the faults.
func (s *Session) Reply(ctx context.Context, m proto.Message) error {
	id, body, err := s.c.p.Codec.MarshalWire(m)
	if err != nil {
		return err
	}
	if d := s.c.cfg.Faults.Delay(); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	pkts, err := transport.V1Packets(id, body)
	if err != nil {
		return err
	}
	s.c.cfg.Log.Debug(s.c.p.Prefix+": -> message", "link", s.name, "type", s.c.p.TypeName(id))
	for _, p := range pkts {
		out, ok := s.c.cfg.Faults.Outgoing(p)
		if !ok {
			continue
		}
		if err := s.w.send(ctx, out); err != nil {
			if errors.Is(err, io.ErrClosedPipe) || errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("%w: %w", errLinkGone, err)
			}
			return err
		}
	}
	return nil
}

// Call sends m and returns the host's answer. Cancel becomes ErrCancelled (answered with
// Failure ActionCancelled); Initialize ends the flow and starts over.
func (s *Session) Call(ctx context.Context, m proto.Message) (Frame, error) {
	if err := s.Reply(ctx, m); err != nil {
		return Frame{}, err
	}
	f, err := s.next(ctx)
	if err != nil {
		return Frame{}, err
	}
	return f, s.checkAnswer(f)
}

func (s *Session) checkAnswer(f Frame) error {
	switch f.Typ {
	case s.c.p.Cancel:
		return ErrCancelled
	case s.c.p.Initialize:
		return &interrupt{f}
	}
	return nil
}

// Expect calls and decodes an answer of type want; any other message is UnexpectedMessage,
// one that does not decode Protocol.BadMessage.
func Expect[T proto.Message](ctx context.Context, s *Session, m proto.Message, want uint16) (T, error) {
	var zero T
	f, err := s.Call(ctx, m)
	if err != nil {
		return zero, err
	}
	if f.Typ != want {
		return zero, Fail(FailureUnexpectedMessage, "Unexpected message")
	}
	msg, err := s.c.p.Codec.UnmarshalWire(want, f.Body)
	if err != nil {
		return zero, s.c.p.BadMessage
	}
	return msg.(T), nil
}

// Confirm shows a screen the way the firmware does: ButtonRequest, wait for ButtonAck,
// then the user decides (the approver). A Cancel from the host, also while the user
// decides, ends the flow with ActionCancelled; a rejection gives ErrRejected.
func (s *Session) Confirm(ctx context.Context, code int32, sc emulator.Screen) error {
	if _, err := Expect[proto.Message](ctx, s, s.c.p.ButtonRequest(code), s.c.p.ButtonAck); err != nil {
		return err
	}
	sc.Device = s.c.p.Device
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		ok  bool
		err error
	}
	done := make(chan result, 1)
	go func() {
		ok, err := s.c.cfg.Approver.Ask(actx, sc)
		done <- result{ok, err}
	}()
	for {
		select {
		case r := <-done:
			if r.err != nil {
				return r.err
			}
			if !r.ok {
				return ErrRejected
			}
			return nil
		case f, ok := <-s.in:
			cancel()
			<-done
			if !ok {
				return errLinkGone
			}
			if s.c.cfg.Faults.Incoming() {
				return errDisconnect
			}
			if err := s.checkAnswer(f); err != nil {
				return err
			}
			// Anything else while the user decides: the firmware aborts the screen.
			return Fail(FailureUnexpectedMessage, "Unexpected message")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
