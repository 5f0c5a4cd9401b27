package trezor

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/internal/wirev1"
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

	conn     *wirev1.Conn // its lock, held for a whole operation, guards the fields below
	features *trezorpb.Features
	fp       *device.Fingerprint // cached master fingerprint for this session
	// sessionID is the device session (Features.session_id) a re-sync resumes, so that a
	// passphrase entered once outlives a broken link; ResetSession drops it.
	sessionID []byte
}

// ResetSession makes the next call start a new device session: the device forgets the
// passphrase it was given (hwbridged's forget, or a new unlock).
func (d *Driver) ResetSession() {
	d.conn.Restart(func() { d.fp, d.sessionID = nil, nil })
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
	d := &Driver{link: link, opts: opts, log: log}
	d.conn = wirev1.New(link, wirev1.Config{
		Protocol:    protocol,
		Log:         log,
		Timeout:     opts.Timeout,
		LinkTimeout: opts.LinkTimeout,
		Initialize:  func() proto.Message { return &trezorpb.Initialize{SessionId: d.sessionID} },
		Resync:      func() { d.fp = nil },
		Started:     d.started,
		Button: func(m proto.Message) {
			if d.opts.OnButton != nil {
				d.opts.OnButton(m.(*trezorpb.ButtonRequest).GetCode())
			}
		},
		Prompt: d.prompt,
	})
	return d
}

// Close releases the link.
func (d *Driver) Close() error { return d.link.Close() }

// protocol is the Trezor message set for the shared v1 session.
var protocol = &wirev1.Protocol{
	Name:          "trezor",
	Codec:         trezorpb.Codec(),
	Failure:       uint16(trezorpb.MessageType_MessageType_Failure),
	Features:      uint16(trezorpb.MessageType_MessageType_Features),
	ButtonRequest: uint16(trezorpb.MessageType_MessageType_ButtonRequest),
	Cancel:        func() proto.Message { return &trezorpb.Cancel{} },
	ButtonAck:     func() proto.Message { return &trezorpb.ButtonAck{} },
	FailureError: func(op string, m proto.Message) error {
		return failureError(op, m.(*trezorpb.Failure))
	},
}

// session is one operation holding the driver's lock (wirev1.Session: Call, Refuse).
type session struct {
	*wirev1.Session
	d *Driver
}

// do runs fn as one operation (wirev1.Conn.Do: lock, re-sync, Initialize, timeouts).
func (d *Driver) do(ctx context.Context, op string, fn func(s *session) error) error {
	return d.conn.Do(ctx, op, func(ws *wirev1.Session) error { return fn(&session{Session: ws, d: d}) })
}

// expect is Call with a check of the reply type.
func expect[T proto.Message](s *session, m proto.Message) (T, error) {
	return wirev1.Expect[T](s.Session, m)
}

// started keeps the Features that answered Initialize; a new session id drops the
// fingerprint cache (a new session: keys may differ).
func (d *Driver) started(m proto.Message) error {
	f := m.(*trezorpb.Features)
	if err := checkVendor(f); err != nil {
		return err
	}
	d.features = f
	if id := f.GetSessionId(); !bytes.Equal(id, d.sessionID) {
		d.sessionID, d.fp = bytes.Clone(id), nil
	}
	return nil
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

// prompt answers the PIN and passphrase requests a call meets on the way.
func (d *Driver) prompt(s *wirev1.Session, reply proto.Message) (bool, error) {
	switch reply.(type) {
	case *trezorpb.PinMatrixRequest:
		if ask, ok := device.PINFrom(s.Ctx); ok {
			// Asked for this call (hwbridged's promptpin): positions on the device's matrix.
			pin, err := ask(s.Ctx)
			if err != nil {
				return true, s.Refuse(fmt.Errorf("%w: the trezor asks for its pin: %w", device.ErrLocked, err))
			}
			if err := s.Write(&trezorpb.PinMatrixAck{Pin: proto.String(pin)}); err != nil {
				return true, err
			}
			s.Person = true
			return true, nil
		}
		if d.opts.PIN == nil {
			return true, s.Refuse(fmt.Errorf("%w: the trezor asks for its pin: unlock it first (enter the pin on the device or in trezor suite) and retry", device.ErrLocked))
		}
		pin, err := d.opts.PIN(s.Ctx)
		if err != nil {
			return true, s.Refuse(fmt.Errorf("%w: the trezor asks for its pin: %w", device.ErrLocked, err))
		}
		if err := s.Write(&trezorpb.PinMatrixAck{Pin: proto.String(pin)}); err != nil {
			return true, err
		}
		s.Person = true // unlocking (a Trezor One stretches the PIN for seconds)
	case *trezorpb.PassphraseRequest:
		if pp, ok := device.PassphraseFrom(s.Ctx); ok {
			// Given for this call (hwbridged's unlock): the device keeps it for the
			// session, which the driver resumes (session_id) until it is reset.
			if err := s.Write(&trezorpb.PassphraseAck{Passphrase: proto.String(pp), OnDevice: proto.Bool(false)}); err != nil {
				return true, err
			}
			s.Person = true
			return true, nil
		}
		if d.opts.Passphrase == nil {
			// Only firmware with the PassphraseEntry capability (core) takes it on the
			// device; a Trezor One has no keyboard.
			where := "give it to hwbridge (run in a terminal, where it asks), or disable passphrase protection"
			if hasCapability(d.features, trezorpb.Capability_Capability_PassphraseEntry) {
				where = "enter it on the device, or disable passphrase protection"
			}
			return true, s.Refuse(fmt.Errorf("%w: the trezor asks for a passphrase: %s, and retry", device.ErrLocked, where))
		}
		pp, err := d.opts.Passphrase(s.Ctx)
		if err != nil {
			return true, s.Refuse(fmt.Errorf("%w: the trezor asks for a passphrase: %w", device.ErrLocked, err))
		}
		if err := s.Write(&trezorpb.PassphraseAck{Passphrase: proto.String(pp), OnDevice: proto.Bool(false)}); err != nil {
			return true, err
		}
		s.Person = true // deriving the seed from the passphrase takes seconds on a Trezor One
	case *trezorpb.Deprecated_PassphraseStateRequest:
		if err := s.Write(&trezorpb.Deprecated_PassphraseStateAck{}); err != nil {
			return true, err
		}
	default:
		return false, nil
	}
	return true, nil
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
