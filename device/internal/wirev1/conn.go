// Package wirev1 is the host side of a Codec v1 session that the Trezor and KeepKey drivers
// share: one operation at a time under a lock, Initialize to start or re-synchronise a
// session (dropping stale packets and late replies), Cancel and drain when the caller gives
// up, the link timeout for replies that wait for no person, the call loop that answers
// ButtonRequest on the way, and the mapping of link errors onto the device sentinels. Both
// firmware families speak the same framing and the same session rules; what differs
// (message ids and types, the Failure codes, how a PIN or passphrase is asked for and where
// it comes from) comes in through Config. Hand-written; nothing here is shared with
// emulator/ (internal/deptest forbids it).
package wirev1

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/transport"
)

const (
	// resyncTimeout bounds each Initialize attempt while re-synchronising a broken session.
	resyncTimeout = 2 * time.Second
	// resyncAttempts is how many Initialize messages a re-sync sends before giving up: a
	// device still collecting a half-sent message swallows the first ones as continuations.
	resyncAttempts = 4
	// drainWait is how long a re-sync or a cancel waits for stale packets.
	drainWait = 50 * time.Millisecond
	// cancelTimeout bounds the Cancel sent after the caller's context ended.
	cancelTimeout = time.Second
)

// Codec encodes and decodes the family's messages by wire id (internal/trezorpb.Codec,
// internal/keepkeypb.Codec).
type Codec interface {
	MarshalWire(m proto.Message) (id uint16, body []byte, err error)
	UnmarshalWire(id uint16, body []byte) (proto.Message, error)
}

// Protocol is one family's message set, as the session needs it.
type Protocol struct {
	// Name starts every error and log line ("trezor").
	Name string
	// Codec encodes and decodes the family's messages.
	Codec Codec
	// Message ids the session branches on.
	Failure, Features, ButtonRequest uint16
	// Cancel and ButtonAck build those (empty) messages.
	Cancel, ButtonAck func() proto.Message
	// FailureError maps a Failure message onto the device taxonomy for operation op.
	FailureError func(op string, failure proto.Message) error
}

// Config is one driver's session: its protocol, timeouts and hooks.
type Config struct {
	Protocol *Protocol
	Log      *slog.Logger
	// Timeout bounds an operation whose ctx has no deadline; LinkTimeout each reply that
	// waits for no person.
	Timeout, LinkTimeout time.Duration
	// Initialize builds the Initialize message that starts or resumes a session.
	Initialize func() proto.Message
	// Resync is called as a re-sync starts (forget what the session cached).
	Resync func()
	// Started checks and keeps the Features that answered Initialize; an error ends the
	// re-sync with it.
	Started func(features proto.Message) error
	// Button is told of every ButtonRequest, after ButtonAck was sent.
	Button func(req proto.Message)
	// Prompt answers a PIN, passphrase or other request the device makes on the way to an
	// answer: handled is false for a message that is the answer (or a Failure).
	Prompt func(s *Session, m proto.Message) (handled bool, err error)
}

// Conn is one link's session with the device. Its lock is held for a whole operation and
// guards the driver's session state too (Do, Locked).
type Conn struct {
	link transport.Link
	p    *Protocol
	cfg  Config

	mu      sync.Mutex
	broken  error // why the last exchange broke, or nil
	started bool  // Initialize answered
}

// New returns a session on link; it sends nothing until the first Do.
func New(link transport.Link, cfg Config) *Conn {
	return &Conn{link: link, p: cfg.Protocol, cfg: cfg}
}

// Restart makes the next operation start with Initialize, running fn under the lock.
func (c *Conn) Restart(fn func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.started = false
	fn()
}

// Session is the state of one operation holding the lock.
type Session struct {
	c   *Conn
	Ctx context.Context
	Op  string
	// Person: the next reply may wait for the person (a screen after ButtonAck, or the
	// device working on a PIN or passphrase just entered); it gets Ctx's whole deadline
	// instead of the link timeout.
	Person bool
}

// Do runs fn as one operation: it takes the lock, re-synchronises a broken session, starts
// the session with Initialize, and bounds every write and read by ctx (and each read that
// does not wait for the person by the link timeout). If fn's exchange breaks, the session
// is marked broken for the next call to repair.
func (c *Conn) Do(ctx context.Context, op string, fn func(s *Session) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.Timeout)
		defer cancel()
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %s: %w", c.p.Name, op, err)
	}
	if c.broken != nil || !c.started {
		if err := c.resync(ctx); err != nil {
			return fmt.Errorf("%s: %s: %w", c.p.Name, op, err)
		}
	}
	s := &Session{c: c, Ctx: ctx, Op: op}
	err := fn(s)
	if err == nil {
		return nil
	}
	if isLinkFailure(err) {
		c.broken = err
		c.started = false
		if ctx.Err() != nil && !errors.Is(err, transport.ErrClosed) {
			c.cancelAndDrain()
		}
	}
	return c.wrapErr(op, err)
}

// isLinkFailure reports errors after which the device and the host may disagree on where
// the exchange stands.
func isLinkFailure(err error) bool {
	var de *device.Error
	if errors.As(err, &de) {
		return false // the device answered with a Failure: the session is in step
	}
	return !errors.Is(err, device.ErrInvalidInput) && !errors.Is(err, errors.ErrUnsupported) &&
		!errors.Is(err, errRefusedByHost)
}

// errRefusedByHost marks errors where the host refused to go on but answered the device
// properly (for example after sending Cancel itself); the session stays usable.
var errRefusedByHost = errors.New("hwbridge cancelled the device's request")

// wrapErr turns link errors into the device taxonomy.
func (c *Conn) wrapErr(op string, err error) error {
	name := c.p.Name
	var de *device.Error
	switch {
	case errors.As(err, &de):
		if de.Op == "" {
			de.Op = op
		}
		return err
	case errors.Is(err, device.ErrLinkLost):
		return fmt.Errorf("%s: %s: %w", name, op, err)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: %s: cancelled: %w", name, op, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("%s: %s: no reply from the device in time while a confirmation was pending on it (confirm sooner; the next call re-syncs): %w", name, op, err)
	case errors.Is(err, transport.ErrClosed), errors.Is(err, io.EOF), errors.Is(err, io.ErrClosedPipe):
		return fmt.Errorf("%s: %s: %w: %w", name, op, device.ErrDisconnected, err)
	case errors.Is(err, device.ErrInvalidInput), errors.Is(err, errors.ErrUnsupported),
		errors.Is(err, device.ErrLocked), errors.Is(err, device.ErrProtocol), errors.Is(err, device.ErrUserRejected):
		return fmt.Errorf("%s: %s: %w", name, op, err)
	}
	return fmt.Errorf("%s: %s: %w: %w", name, op, device.ErrProtocol, err)
}

// cancelAndDrain tells the device to abandon the pending workflow after the caller's
// context ended, and reads its answer, so that the next call finds the session in step. On
// success the session is marked healthy again.
func (c *Conn) cancelAndDrain() {
	defer func() { _ = c.link.SetDeadline(time.Time{}) }()
	if err := c.link.SetDeadline(time.Now().Add(cancelTimeout)); err != nil {
		return
	}
	id, body, err := c.p.Codec.MarshalWire(c.p.Cancel())
	if err != nil {
		return
	}
	if err := transport.WriteV1(c.link, id, body); err != nil {
		return
	}
	for {
		typ, _, err := transport.ReadV1(c.link)
		if err != nil {
			return
		}
		// The device answers Cancel with Failure(ActionCancelled); anything before it is a
		// late reply to the abandoned request.
		if typ == c.p.Failure {
			break
		}
	}
	c.cfg.Log.Debug(c.p.Name + ": cancelled pending workflow")
	c.broken = nil
	// Keep started=false: Initialize again so that session state (fingerprint cache) is fresh.
}

// resync brings a fresh or broken session into step: it drops stale packets, then sends
// Initialize until Features arrives, skipping late replies to an abandoned exchange.
func (c *Conn) resync(ctx context.Context) error {
	if c.broken != nil {
		c.cfg.Log.Debug(c.p.Name+": re-synchronising session", "after", c.broken.Error())
	}
	c.cfg.Resync()
	var last error
	for attempt := 0; attempt < resyncAttempts; attempt++ {
		if c.broken != nil {
			c.drain(ctx)
		}
		actx, cancel := context.WithTimeout(ctx, resyncTimeout)
		var f proto.Message
		err := transport.DoContext(actx, c.link, func() error {
			var err error
			f, err = c.initialize()
			return err
		})
		cancel()
		if err == nil {
			if err := c.cfg.Started(f); err != nil {
				return err
			}
			c.started, c.broken = true, nil
			return nil
		}
		last = err
		if ctx.Err() != nil || errors.Is(err, transport.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) {
			break
		}
		c.broken = err
	}
	c.broken = last
	return c.wrapErr("initialize", last)
}

// initialize sends Initialize and waits for Features, ignoring anything else (late replies).
func (c *Conn) initialize() (proto.Message, error) {
	if err := c.write(c.cfg.Initialize()); err != nil {
		return nil, err
	}
	for {
		typ, body, err := transport.ReadV1(c.link)
		if errors.Is(err, transport.ErrBadMagic) || errors.Is(err, transport.ErrUnexpectedV1) || errors.Is(err, transport.ErrShortPacket) {
			continue // the tail of an abandoned reply
		}
		if err != nil {
			return nil, err
		}
		if typ != c.p.Features {
			c.cfg.Log.Debug(c.p.Name+": dropped stale message while re-syncing", "type", typ)
			continue
		}
		return c.p.Codec.UnmarshalWire(typ, body)
	}
}

// readRaw reads one message. Garbled packets are an error here (the exchange is broken);
// only a re-sync skips them.
func (c *Conn) readRaw() (uint16, []byte, error) {
	typ, body, err := transport.ReadV1(c.link)
	if errors.Is(err, transport.ErrBadMagic) || errors.Is(err, transport.ErrUnexpectedV1) || errors.Is(err, transport.ErrShortPacket) {
		return 0, nil, fmt.Errorf("%w: garbled packet from the device (the next call re-syncs the link): %w", device.ErrProtocol, err)
	}
	return typ, body, err
}

// drain reads and drops whatever the device still has to say, for a short while.
func (c *Conn) drain(ctx context.Context) {
	buf := make([]byte, transport.V1PacketSize+1)
	for ctx.Err() == nil {
		if err := c.link.SetDeadline(time.Now().Add(drainWait)); err != nil {
			return
		}
		if _, err := c.link.Read(buf); err != nil {
			break
		}
	}
	_ = c.link.SetDeadline(time.Time{})
}

func (c *Conn) write(m proto.Message) error {
	id, body, err := c.p.Codec.MarshalWire(m)
	if err != nil {
		return err
	}
	c.cfg.Log.Debug(c.p.Name+": send", "msg", m.ProtoReflect().Descriptor().Name())
	return transport.WriteV1(c.link, id, body)
}

// Call sends m and returns the device's next answer that is not a ButtonRequest, PIN or
// passphrase request (those are answered on the way). A Failure becomes a *device.Error.
func (s *Session) Call(m proto.Message) (proto.Message, error) {
	c := s.c
	if err := s.Write(m); err != nil {
		return nil, err
	}
	for {
		typ, body, err := s.read()
		if err != nil {
			return nil, err
		}
		reply, err := c.p.Codec.UnmarshalWire(typ, body)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", device.ErrProtocol, err)
		}
		c.cfg.Log.Debug(c.p.Name+": recv", "msg", reply.ProtoReflect().Descriptor().Name())
		switch typ {
		case c.p.ButtonRequest:
			if err := s.Write(c.p.ButtonAck()); err != nil {
				return nil, err
			}
			s.Person = true // a screen is up: the next message comes when the person acts
			c.cfg.Button(reply)
			continue
		case c.p.Failure:
			return nil, c.p.FailureError(s.Op, reply)
		}
		handled, err := c.cfg.Prompt(s, reply)
		if err != nil {
			return nil, err
		}
		if !handled {
			return reply, nil
		}
	}
}

// Refuse sends Cancel for a prompt the host cannot answer and reads the device's Failure, so
// the session stays in step; it returns cause marked as a host refusal.
func (s *Session) Refuse(cause error) error {
	if err := s.Write(s.c.p.Cancel()); err != nil {
		return err
	}
	for {
		typ, _, err := s.read()
		if err != nil {
			return err
		}
		if typ == s.c.p.Failure {
			return fmt.Errorf("%w (%w)", cause, errRefusedByHost)
		}
	}
}

// Write sends one message within the link timeout (a device that does not take a packet
// is not waiting for the person: the firmware reads the host also while a screen is up).
func (s *Session) Write(m proto.Message) error {
	return s.bounded(false, func() error { return s.c.write(m) })
}

// read reads one message. It waits until Ctx's deadline when the reply may follow a
// confirmation (s.Person), and at most the link timeout otherwise.
func (s *Session) read() (typ uint16, body []byte, err error) {
	person := s.Person
	s.Person = false
	err = s.bounded(person, func() error {
		var err error
		typ, body, err = s.c.readRaw()
		return err
	})
	return typ, body, err
}

// bounded runs one I/O on the link bounded by Ctx and, unless person, by the link timeout;
// the link timeout firing becomes device.ErrLinkLost.
func (s *Session) bounded(person bool, io func() error) error {
	ctx := s.Ctx
	if !person {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.c.cfg.LinkTimeout)
		defer cancel()
	}
	err := transport.DoContext(ctx, s.c.link, io)
	if err != nil && !person && !callerDone(s.Ctx) && errors.Is(err, context.DeadlineExceeded) {
		// not wrapping err: the caller's deadline did not pass
		return fmt.Errorf("%w (no reply for %v; the last message was not one that waits for a confirmation): %v",
			device.ErrLinkLost, s.c.cfg.LinkTimeout, err)
	}
	return err
}

// callerDone reports whether the caller's context ended (its deadline may be reached a hair
// before its timer fires: the link's deadline is the same instant).
func callerDone(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// Expect is Call with a check of the reply type.
func Expect[T proto.Message](s *Session, m proto.Message) (T, error) {
	reply, err := s.Call(m)
	if err != nil {
		var zero T
		return zero, err
	}
	r, ok := reply.(T)
	if !ok {
		var zero T
		return zero, fmt.Errorf("%w: unexpected reply %s to %s", device.ErrProtocol,
			reply.ProtoReflect().Descriptor().Name(), m.ProtoReflect().Descriptor().Name())
	}
	return r, nil
}
