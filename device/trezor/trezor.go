package trezor

import (
	"bytes"
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
	"github.com/hwbridge/hwbridge/internal/trezorpb"
	"github.com/hwbridge/hwbridge/transport"
)

// Defaults for Options.
const (
	// DefaultTimeout bounds one operation (including the time the user takes to confirm on
	// the device) when the caller's context has no earlier deadline.
	DefaultTimeout = 5 * time.Minute
	// DefaultLinkTimeout bounds every wait for the device that is not a wait for the person:
	// a reply that can come only after a confirmation (the message after a ButtonAck, or
	// after a PIN or passphrase the person entered) waits until the operation's deadline;
	// any other reply must start within DefaultLinkTimeout, or the call fails with
	// device.ErrLinkLost (a lost packet) and the next call re-syncs the session. A real
	// Trezor answers those in milliseconds; 3 s leaves room for a slow USB host.
	DefaultLinkTimeout = 3 * time.Second
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

// Vendors Trezor firmware reports in Features.vendor (trezorlib accepts exactly these).
var knownVendors = map[string]bool{"trezor.io": true, "bitcointrezor.com": true}

// Options configure a Driver. The zero value works: no PIN or passphrase entry on the host,
// no button notifications, DefaultTimeout, a discarding logger.
type Options struct {
	// Logger receives debug records of the exchanges (message names only, never bodies).
	Logger *slog.Logger
	// OnButton is called for every ButtonRequest, after ButtonAck was sent: the device is
	// now waiting for the user.
	OnButton func(code trezorpb.ButtonRequestType)
	// PIN returns the PIN as positions on the device's scrambled matrix (digits 1–9, layout
	// 7 8 9 / 4 5 6 / 1 2 3). Without it a PIN request fails with device.ErrLocked.
	PIN func(ctx context.Context) (string, error)
	// Passphrase returns the BIP-39 passphrase. Without it a passphrase request fails with
	// device.ErrLocked.
	Passphrase func(ctx context.Context) (string, error)
	// Timeout bounds each operation when ctx has no earlier deadline (DefaultTimeout if 0).
	Timeout time.Duration
	// LinkTimeout bounds each wait for a reply that no confirmation precedes
	// (DefaultLinkTimeout if 0).
	LinkTimeout time.Duration
	// Emulator marks the device as an emulator in Features (the caller knows from the path).
	Emulator bool
}

// Driver is one Trezor reached over one link. It implements device.Device. Methods are
// safe for concurrent use; exchanges are serialised.
type Driver struct {
	link transport.Link
	opts Options
	log  *slog.Logger

	mu       sync.Mutex // held for a whole operation; guards the fields below
	broken   error      // why the last exchange broke, or nil
	started  bool       // Initialize answered
	features *trezorpb.Features
	fp       *device.Fingerprint // cached master fingerprint for this session
	// sessionID is the device session (Features.session_id) a re-sync resumes, so that a
	// passphrase entered once outlives a broken link; ResetSession drops it.
	sessionID []byte
}

// ResetSession makes the next call start a new device session: the device forgets the
// passphrase it was given (hwbridged's forget, or a new unlock).
func (d *Driver) ResetSession() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.started, d.fp, d.sessionID = false, nil, nil
}

var _ device.Device = (*Driver)(nil)

// New returns a driver for a Trezor on link. It does not talk to the device until the
// first call. Close closes the link.
func New(link transport.Link, opts Options) *Driver {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.LinkTimeout <= 0 {
		opts.LinkTimeout = DefaultLinkTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Driver{link: link, opts: opts, log: log}
}

// Close releases the link.
func (d *Driver) Close() error { return d.link.Close() }

// session is the state of one operation holding the driver's lock.
type session struct {
	d   *Driver
	ctx context.Context
	op  string
	// person: the next reply may wait for the person (a screen after ButtonAck, or the
	// device working on a PIN or passphrase just entered); it gets ctx's whole deadline
	// instead of the link timeout.
	person bool
}

// do runs fn as one operation: it takes the lock, re-synchronises a broken session, starts
// the session with Initialize, and bounds every write and read by ctx (and each read that
// does not wait for the person by the link timeout). If fn's exchange breaks, the session
// is marked broken for the next call to repair.
func (d *Driver) do(ctx context.Context, op string, fn func(s *session) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.opts.Timeout)
		defer cancel()
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("trezor: %s: %w", op, err)
	}
	if d.broken != nil || !d.started {
		if err := d.resync(ctx); err != nil {
			return fmt.Errorf("trezor: %s: %w", op, err)
		}
	}
	s := &session{d: d, ctx: ctx, op: op}
	err := fn(s)
	if err == nil {
		return nil
	}
	if isLinkFailure(err) {
		d.broken = err
		d.started = false
		if ctx.Err() != nil && !errors.Is(err, transport.ErrClosed) {
			d.cancelAndDrain()
		}
	}
	return d.wrapErr(op, err)
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
func (d *Driver) wrapErr(op string, err error) error {
	var de *device.Error
	switch {
	case errors.As(err, &de):
		if de.Op == "" {
			de.Op = op
		}
		return err
	case errors.Is(err, device.ErrLinkLost):
		return fmt.Errorf("trezor: %s: %w", op, err)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("trezor: %s: cancelled: %w", op, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("trezor: %s: no reply from the device in time while a confirmation was pending on it (confirm sooner; the next call re-syncs): %w", op, err)
	case errors.Is(err, transport.ErrClosed), errors.Is(err, io.EOF), errors.Is(err, io.ErrClosedPipe):
		return fmt.Errorf("trezor: %s: %w: %w", op, device.ErrDisconnected, err)
	case errors.Is(err, device.ErrInvalidInput), errors.Is(err, errors.ErrUnsupported),
		errors.Is(err, device.ErrLocked), errors.Is(err, device.ErrProtocol), errors.Is(err, device.ErrUserRejected):
		return fmt.Errorf("trezor: %s: %w", op, err)
	}
	return fmt.Errorf("trezor: %s: %w: %w", op, device.ErrProtocol, err)
}

// cancelAndDrain tells the device to abandon the pending workflow after the caller's
// context ended, and reads its answer, so that the next call finds the session in step. On
// success the session is marked healthy again.
func (d *Driver) cancelAndDrain() {
	defer func() { _ = d.link.SetDeadline(time.Time{}) }()
	if err := d.link.SetDeadline(time.Now().Add(cancelTimeout)); err != nil {
		return
	}
	id, body, err := trezorpb.Marshal(&trezorpb.Cancel{})
	if err != nil {
		return
	}
	if err := transport.WriteV1(d.link, uint16(id), body); err != nil {
		return
	}
	for {
		typ, _, err := transport.ReadV1(d.link)
		if err != nil {
			return
		}
		// The device answers Cancel with Failure(ActionCancelled); anything before it is a
		// late reply to the abandoned request.
		if trezorpb.MessageType(typ) == trezorpb.MessageType_MessageType_Failure {
			break
		}
	}
	d.log.Debug("trezor: cancelled pending workflow")
	d.broken = nil
	// Keep started=false: Initialize again so that session state (fingerprint cache) is fresh.
}

// resync brings a fresh or broken session into step: it drops stale packets, then sends
// Initialize until Features arrives, skipping late replies to an abandoned exchange.
func (d *Driver) resync(ctx context.Context) error {
	if d.broken != nil {
		d.log.Debug("trezor: re-synchronising session", "after", d.broken.Error())
	}
	d.fp = nil
	var last error
	for attempt := 0; attempt < resyncAttempts; attempt++ {
		if d.broken != nil {
			d.drain(ctx)
		}
		actx, cancel := context.WithTimeout(ctx, resyncTimeout)
		var f *trezorpb.Features
		err := transport.DoContext(actx, d.link, func() error {
			var err error
			f, err = d.initialize()
			return err
		})
		cancel()
		if err == nil {
			if err := checkVendor(f); err != nil {
				return err
			}
			d.features, d.started, d.broken = f, true, nil
			if id := f.GetSessionId(); !bytes.Equal(id, d.sessionID) {
				d.sessionID, d.fp = bytes.Clone(id), nil // a new session: keys may differ
			}
			return nil
		}
		last = err
		if ctx.Err() != nil || errors.Is(err, transport.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) {
			break
		}
		d.broken = err
	}
	d.broken = last
	return d.wrapErr("initialize", last)
}

// initialize sends Initialize and waits for Features, ignoring anything else (late replies).
func (d *Driver) initialize() (*trezorpb.Features, error) {
	if err := d.write(&trezorpb.Initialize{SessionId: d.sessionID}); err != nil {
		return nil, err
	}
	for {
		typ, body, err := transport.ReadV1(d.link)
		if errors.Is(err, transport.ErrBadMagic) || errors.Is(err, transport.ErrUnexpectedV1) || errors.Is(err, transport.ErrShortPacket) {
			continue // the tail of an abandoned reply
		}
		if err != nil {
			return nil, err
		}
		if trezorpb.MessageType(typ) != trezorpb.MessageType_MessageType_Features {
			d.log.Debug("trezor: dropped stale message while re-syncing", "type", typ)
			continue
		}
		m, err := trezorpb.Unmarshal(trezorpb.MessageType(typ), body)
		if err != nil {
			return nil, err
		}
		return m.(*trezorpb.Features), nil
	}
}

// readRaw reads one message. Garbled packets are an error here (the exchange is broken);
// only a re-sync skips them.
func (d *Driver) readRaw() (uint16, []byte, error) {
	typ, body, err := transport.ReadV1(d.link)
	if errors.Is(err, transport.ErrBadMagic) || errors.Is(err, transport.ErrUnexpectedV1) || errors.Is(err, transport.ErrShortPacket) {
		return 0, nil, fmt.Errorf("%w: garbled packet from the device (the next call re-syncs the link): %w", device.ErrProtocol, err)
	}
	return typ, body, err
}

// drain reads and drops whatever the device still has to say, for a short while.
func (d *Driver) drain(ctx context.Context) {
	buf := make([]byte, transport.V1PacketSize+1)
	for ctx.Err() == nil {
		if err := d.link.SetDeadline(time.Now().Add(drainWait)); err != nil {
			return
		}
		if _, err := d.link.Read(buf); err != nil {
			break
		}
	}
	_ = d.link.SetDeadline(time.Time{})
}

func checkVendor(f *trezorpb.Features) error {
	if !knownVendors[f.GetVendor()] {
		return fmt.Errorf("%w: vendor %q is not trezor.io: this is not a trezor (or an emulator that does not pose as one); use the driver for its own family",
			device.ErrProtocol, f.GetVendor())
	}
	if f.GetBootloaderMode() {
		return fmt.Errorf("%w: the trezor is in bootloader mode: restart it normally (unplug and plug it back)", device.ErrLocked)
	}
	return nil
}

func (d *Driver) write(m proto.Message) error {
	id, body, err := trezorpb.Marshal(m)
	if err != nil {
		return err
	}
	d.log.Debug("trezor: send", "msg", m.ProtoReflect().Descriptor().Name())
	return transport.WriteV1(d.link, uint16(id), body)
}

// call sends m and returns the device's next answer that is not a ButtonRequest, PIN or
// passphrase request (those are answered on the way). A Failure becomes a *device.Error.
func (s *session) call(m proto.Message) (proto.Message, error) {
	d := s.d
	if err := s.write(m); err != nil {
		return nil, err
	}
	for {
		typ, body, err := s.read()
		if err != nil {
			return nil, err
		}
		reply, err := trezorpb.Unmarshal(trezorpb.MessageType(typ), body)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", device.ErrProtocol, err)
		}
		d.log.Debug("trezor: recv", "msg", reply.ProtoReflect().Descriptor().Name())
		switch r := reply.(type) {
		case *trezorpb.ButtonRequest:
			if err := s.write(&trezorpb.ButtonAck{}); err != nil {
				return nil, err
			}
			s.person = true // a screen is up: the next message comes when the person acts
			if d.opts.OnButton != nil {
				d.opts.OnButton(r.GetCode())
			}
		case *trezorpb.PinMatrixRequest:
			if ask, ok := device.PINFrom(s.ctx); ok {
				// Asked for this call (hwbridged's promptpin): positions on the device's matrix.
				pin, err := ask(s.ctx)
				if err != nil {
					return nil, s.refuse(fmt.Errorf("%w: the trezor asks for its pin: %w", device.ErrLocked, err))
				}
				if err := s.write(&trezorpb.PinMatrixAck{Pin: proto.String(pin)}); err != nil {
					return nil, err
				}
				s.person = true
				continue
			}
			if d.opts.PIN == nil {
				return nil, s.refuse(fmt.Errorf("%w: the trezor asks for its pin: unlock it first (enter the pin on the device or in trezor suite) and retry", device.ErrLocked))
			}
			pin, err := d.opts.PIN(s.ctx)
			if err != nil {
				return nil, s.refuse(fmt.Errorf("%w: the trezor asks for its pin: %w", device.ErrLocked, err))
			}
			if err := s.write(&trezorpb.PinMatrixAck{Pin: proto.String(pin)}); err != nil {
				return nil, err
			}
			s.person = true // unlocking (a Trezor One stretches the PIN for seconds)
		case *trezorpb.PassphraseRequest:
			if pp, ok := device.PassphraseFrom(s.ctx); ok {
				// Given for this call (hwbridged's unlock): the device keeps it for the
				// session, which the driver resumes (session_id) until it is reset.
				if err := s.write(&trezorpb.PassphraseAck{Passphrase: proto.String(pp), OnDevice: proto.Bool(false)}); err != nil {
					return nil, err
				}
				s.person = true
				continue
			}
			if d.opts.Passphrase == nil {
				// Only firmware with the PassphraseEntry capability (core) takes it on the
				// device; a Trezor One has no keyboard.
				where := "give it to hwbridge (run in a terminal, where it asks), or disable passphrase protection"
				if hasCapability(d.features, trezorpb.Capability_Capability_PassphraseEntry) {
					where = "enter it on the device, or disable passphrase protection"
				}
				return nil, s.refuse(fmt.Errorf("%w: the trezor asks for a passphrase: %s, and retry", device.ErrLocked, where))
			}
			pp, err := d.opts.Passphrase(s.ctx)
			if err != nil {
				return nil, s.refuse(fmt.Errorf("%w: the trezor asks for a passphrase: %w", device.ErrLocked, err))
			}
			if err := s.write(&trezorpb.PassphraseAck{Passphrase: proto.String(pp), OnDevice: proto.Bool(false)}); err != nil {
				return nil, err
			}
			s.person = true // deriving the seed from the passphrase takes seconds on a Trezor One
		case *trezorpb.Deprecated_PassphraseStateRequest:
			if err := s.write(&trezorpb.Deprecated_PassphraseStateAck{}); err != nil {
				return nil, err
			}
		case *trezorpb.Failure:
			return nil, failureError(s.op, r)
		default:
			return reply, nil
		}
	}
}

// refuse sends Cancel for a prompt the host cannot answer and reads the device's Failure, so
// the session stays in step; it returns cause marked as a host refusal.
func (s *session) refuse(cause error) error {
	if err := s.write(&trezorpb.Cancel{}); err != nil {
		return err
	}
	for {
		typ, _, err := s.read()
		if err != nil {
			return err
		}
		if trezorpb.MessageType(typ) == trezorpb.MessageType_MessageType_Failure {
			return fmt.Errorf("%w (%w)", cause, errRefusedByHost)
		}
	}
}

// write sends one message within the link timeout (a device that does not take a packet
// is not waiting for the person: Trezor firmware reads the host also while a screen is up).
func (s *session) write(m proto.Message) error {
	return s.bounded(false, func() error { return s.d.write(m) })
}

// read reads one message. It waits until ctx's deadline when the reply may follow a
// confirmation (s.person), and at most the link timeout otherwise.
func (s *session) read() (typ uint16, body []byte, err error) {
	person := s.person
	s.person = false
	err = s.bounded(person, func() error {
		var err error
		typ, body, err = s.d.readRaw()
		return err
	})
	return typ, body, err
}

// bounded runs one I/O on the link bounded by ctx and, unless person, by the link timeout;
// the link timeout firing becomes device.ErrLinkLost.
func (s *session) bounded(person bool, io func() error) error {
	ctx := s.ctx
	if !person {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.d.opts.LinkTimeout)
		defer cancel()
	}
	err := transport.DoContext(ctx, s.d.link, io)
	if err != nil && !person && !callerDone(s.ctx) && errors.Is(err, context.DeadlineExceeded) {
		// not wrapping err: the caller's deadline did not pass
		return fmt.Errorf("%w (no reply for %v; the last message was not one that waits for a confirmation): %v",
			device.ErrLinkLost, s.d.opts.LinkTimeout, err)
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

// expect is call with a check of the reply type.
func expect[T proto.Message](s *session, m proto.Message) (T, error) {
	reply, err := s.call(m)
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

// failureError maps a Failure onto the device taxonomy (STYLE rule 4).
func failureError(op string, f *trezorpb.Failure) error {
	e := &device.Error{Op: op, Family: device.FamilyTrezor, Code: int(f.GetCode()), Message: f.GetMessage()}
	switch f.GetCode() {
	case trezorpb.FailureType_Failure_ActionCancelled, trezorpb.FailureType_Failure_PinCancelled:
		e.Kind = device.ErrUserRejected
	case trezorpb.FailureType_Failure_PinExpected, trezorpb.FailureType_Failure_PinInvalid:
		e.Kind = device.ErrLocked
	case trezorpb.FailureType_Failure_Busy:
		e.Kind = device.ErrBusy
	case trezorpb.FailureType_Failure_DataError:
		e.Kind = device.ErrInvalidInput
	default:
		e.Kind = device.ErrProtocol
	}
	return e
}

// Ping sends a Ping and waits for the Success echo; it is the cheapest full exchange.
func (d *Driver) Ping(ctx context.Context, msg string) error {
	return d.do(ctx, "ping", func(s *session) error {
		r, err := expect[*trezorpb.Success](s, &trezorpb.Ping{Message: proto.String(msg)})
		if err != nil {
			return err
		}
		if r.GetMessage() != msg {
			return fmt.Errorf("%w: ping echoed %q, sent %q", device.ErrProtocol, r.GetMessage(), msg)
		}
		return nil
	})
}
