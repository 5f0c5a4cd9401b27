package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Errors for links and exchanges. Callers branch on them with errors.Is.
var (
	// ErrClosed: the link was closed, or the device went away (unplugged, emulator
	// stopped, connection reset). Reopen the device.
	ErrClosed = errors.New("transport: link closed or device gone")
	// ErrNoDevice: nothing answers at the path (nothing listening, no such HID device).
	ErrNoDevice = errors.New("transport: no device at this path")
	// ErrOutOfSync: an earlier exchange was interrupted half-way (cancelled, timed out,
	// garbled), so the next reply on the link may belong to it. Reopen the device.
	ErrOutOfSync = errors.New("transport: link out of step after an interrupted exchange: reopen the device")
)

// longAgo is a deadline in the past: it makes blocked and future I/O fail at once.
var longAgo = time.Unix(1, 0)

// DoContext runs fn, which does I/O on l, bounded by ctx: the link deadline is ctx's
// deadline (or none) while fn runs, and cancelling ctx sets a past deadline so that a
// blocked Read or Write returns. The deadline is cleared afterwards. When ctx ended, the
// error wraps ctx.Err() as well as the I/O error. Use it around WriteV1/ReadV1 too.
func DoContext(ctx context.Context, l Link, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dl, hasDL := ctx.Deadline() // zero without a deadline: clears any earlier one
	if err := l.SetDeadline(dl); err != nil {
		return fmt.Errorf("transport: set deadline: %w", goneErr("link", err))
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		_ = l.SetDeadline(longAgo) // a failure here surfaces as the I/O not being interrupted
	})
	err := fn()
	if !stop() {
		<-fired
	}
	_ = l.SetDeadline(time.Time{}) // a failure shows up on the next DoContext's SetDeadline
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w: %w", cerr, err)
	}
	if hasDL && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(dl) {
		return fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}
	return err
}

// APDUExchanger sends one command APDU and returns the reply, data‖SW1 SW2. Drivers own
// the status word.
type APDUExchanger interface {
	Exchange(ctx context.Context, apdu []byte) ([]byte, error)
}

// Exchanger is an APDUExchanger over a Link, with Speculos or Ledger HID framing.
// Exchanges are serialised. After an exchange fails half-way every later one returns
// ErrOutOfSync: a late reply could otherwise be taken for the answer to the next command.
type Exchanger struct {
	link    Link
	hid     bool
	channel uint16

	mu     sync.Mutex
	broken error
}

// NewSpeculosExchanger exchanges APDUs with Speculos framing over a stream link (a TCP
// connection to Speculos or hwemu, or one end of net.Pipe).
func NewSpeculosExchanger(link Link) *Exchanger { return &Exchanger{link: link} }

// NewLedgerHIDExchanger exchanges APDUs with Ledger HID framing on channel 0x0101 over a
// packet link (a HIDLink, or anything whose Write sends and Read returns one 64-byte report).
func NewLedgerHIDExchanger(link Link) *Exchanger {
	return &Exchanger{link: link, hid: true, channel: LedgerDefaultChannel}
}

// Exchange sends apdu (CLA INS P1 P2 Lc data, at most LedgerMaxCommand bytes) and returns
// data‖SW. Cancelling ctx interrupts a wait for the user; the link is then out of step.
func (e *Exchanger) Exchange(ctx context.Context, apdu []byte) ([]byte, error) {
	if len(apdu) > LedgerMaxCommand {
		return nil, fmt.Errorf("transport: exchange: %w: apdu of %d bytes (max %d)", ErrTooLarge, len(apdu), LedgerMaxCommand)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.broken != nil {
		return nil, fmt.Errorf("transport: exchange: %w (after: %w)", ErrOutOfSync, e.broken)
	}
	var resp []byte
	started := false
	err := DoContext(ctx, e.link, func() error {
		started = true
		var err error
		if e.hid {
			if err = WriteLedgerHID(e.link, e.channel, apdu); err == nil {
				resp, err = ReadLedgerHID(e.link, e.channel)
			}
		} else {
			if err = WriteSpeculosAPDU(e.link, apdu); err == nil {
				resp, err = ReadSpeculosResponse(e.link)
			}
		}
		return err
	})
	if err != nil {
		if !started {
			// ctx ended before any I/O: the link is still in step.
			return nil, fmt.Errorf("transport: exchange: %w", err)
		}
		e.broken = err
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%w: %w", ErrClosed, err)
		}
		return nil, fmt.Errorf("transport: exchange %x: %w", apduHeader(apdu), err)
	}
	if len(resp) < swLen {
		return nil, fmt.Errorf("transport: exchange %x: %w: reply of %d bytes has no status word", apduHeader(apdu), ErrTruncated, len(resp))
	}
	return resp, nil
}

// drainMax bounds one Drain: a device that keeps talking for longer is not draining.
const drainMax = 2 * time.Second

// Drain gets a link back in step after an interrupted exchange: it reads and drops whatever
// arrives (a late or partial reply to the abandoned command) until the link stays silent
// for quiet, at most drainMax and within ctx, then lets exchanges run again. A link that is
// gone fails with ErrClosed.
func (e *Exchanger) Drain(ctx context.Context, quiet time.Duration) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, drainMax)
	defer cancel()
	buf := make([]byte, 4096)
	for {
		qctx, qcancel := context.WithTimeout(ctx, quiet)
		err := DoContext(qctx, e.link, func() error {
			_, err := e.link.Read(buf)
			return err
		})
		qcancel()
		switch {
		case err == nil:
			continue // a stale packet or bytes: dropped
		case ctx.Err() != nil:
			return fmt.Errorf("transport: drain: the device kept sending: %w", ctx.Err())
		case errors.Is(err, context.DeadlineExceeded):
			e.broken = nil // silent: in step
			return nil
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrClosedPipe), errors.Is(err, ErrClosed):
			return fmt.Errorf("transport: drain: %w: %w", ErrClosed, err)
		}
		return fmt.Errorf("transport: drain: %w", err)
	}
}

// apduHeader is the part of an APDU safe to put in an error: CLA INS P1 P2, never data.
func apduHeader(apdu []byte) []byte { return apdu[:min(4, len(apdu))] }

// OpenExchanger opens a Ledger-class device at path and picks the framing its path implies:
// Speculos framing for tcp:HOST:PORT, Ledger HID framing for a hid: path of a Ledger. A udp:
// path (the Trezor emulator protocol) or a Trezor's hid: path fails with ErrInvalidPath.
// Close the exchanger to close the link.
func OpenExchanger(ctx context.Context, path string) (*Exchanger, error) {
	p, err := ParsePath(path)
	if err != nil {
		return nil, err
	}
	switch p.Scheme {
	case SchemeTCP:
		link, err := DialTCP(ctx, p.Addr)
		if err != nil {
			return nil, err
		}
		return NewSpeculosExchanger(link), nil
	case SchemeHID:
		link, err := OpenHID(ctx, p.Addr)
		if err != nil {
			return nil, err
		}
		if k := link.Info().Kind; k != KindLedger {
			link.Close()
			return nil, fmt.Errorf("%w: %s is a %s, which does not speak apdus", ErrInvalidPath, path, k)
		}
		return NewLedgerHIDExchanger(link), nil
	case SchemeUSB:
		return nil, fmt.Errorf("%w: %s is a raw-usb trezor, which does not speak apdus", ErrInvalidPath, path)
	}
	return nil, fmt.Errorf("%w: %s speaks the trezor emulator protocol, not apdus (use tcp:HOST:PORT for a ledger emulator)", ErrInvalidPath, path)
}

// Close closes the link.
func (e *Exchanger) Close() error { return e.link.Close() }
