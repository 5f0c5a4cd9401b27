package keepkeyemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/internal/keepkeypb"
	"github.com/hwbridge/hwbridge/transport"
)

// DefaultPort is the KeepKey emulator's wire port (lib/emulator/udp.c KEEPKEY_UDP_PORT); the
// debug link is DefaultPort+1.
const DefaultPort = 11044

// Options configure a device.
type Options struct {
	// Mnemonic is the BIP-39 seed phrase; empty means emulator.DefaultMnemonic.
	Mnemonic string
	// Label is Features.label; empty means "hwemu".
	Label string
	// PIN, when not empty, protects the device: the host is asked with PinMatrixRequest
	// before the seed is used, once per session ("Pin Caching" policy). 1 to 9 digits 1–9;
	// the matrix is the identity, so the positions the host sends are the digits.
	PIN string
	// Approver decides confirmation screens; nil means a new auto approver.
	Approver *emulator.Approver
	// Faults are the armed faults; nil means a fresh, unarmed set.
	Faults *emulator.Faults
	// Logger gets debug lines per message (type names only, never bodies); nil discards.
	Logger *slog.Logger
}

// Device is one emulated KeepKey. It is safe for concurrent use: several links may be open,
// but one workflow runs at a time, and a message on another link preempts a workflow that
// is waiting for its host.
type Device struct {
	opts     Options
	approver *emulator.Approver
	faults   *emulator.Faults
	log      *slog.Logger
	wallet   *emulator.Wallet
	deviceID string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// mu guards the fields below. Lock order: flow (channel) before mu.
	mu        sync.Mutex
	curOwner  *session
	curCancel context.CancelFunc
	pinCached bool

	flow chan struct{} // capacity 1: held while a workflow runs
}

// New builds a device. Close it to stop every link it serves.
func New(opts Options) (*Device, error) {
	if opts.Mnemonic == "" {
		opts.Mnemonic = emulator.DefaultMnemonic
	}
	if opts.Label == "" {
		opts.Label = "hwemu"
	}
	if n := len(opts.PIN); n > 9 || strings.Trim(opts.PIN, "123456789") != "" {
		return nil, fmt.Errorf("keepkeyemu: pin must be 1 to 9 digits 1-9 (got %d characters)", n)
	}
	w, err := emulator.NewWallet(opts.Mnemonic, "")
	if err != nil {
		return nil, err
	}
	d := &Device{
		opts:     opts,
		approver: opts.Approver,
		faults:   opts.Faults,
		log:      opts.Logger,
		wallet:   w,
		// storage_getUuidStr: 24 upper-case hex digits of the STM32 id; ours comes from the seed.
		deviceID: fmt.Sprintf("EMU%021X", uint64(w.Fingerprint())),
		flow:     make(chan struct{}, 1),
	}
	if d.approver == nil {
		d.approver = emulator.NewApprover(emulator.PolicyAuto)
	}
	if d.faults == nil {
		d.faults = new(emulator.Faults)
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	return d, nil
}

// Approver returns the device's approver (policy and transcript).
func (d *Device) Approver() *emulator.Approver { return d.approver }

// Faults returns the device's fault set.
func (d *Device) Faults() *emulator.Faults { return d.faults }

// Fingerprint is the master fingerprint.
func (d *Device) Fingerprint() uint32 { return d.wallet.Fingerprint() }

// Close stops every link and waits for their goroutines.
func (d *Device) Close() error {
	d.cancel()
	d.wg.Wait()
	return nil
}

// Pipe returns the host end of an in-process link served by the device: one Write or Read
// is one 64-byte packet, as on USB. Closing it ends the device side too.
func (d *Device) Pipe() transport.Link {
	host, dev := net.Pipe()
	if d.ctx.Err() != nil {
		dev.Close()
		host.Close()
		return host
	}
	s := d.newSession("pipe", &pipeWire{conn: dev})
	d.wg.Go(func() {
		defer dev.Close()
		ctx, cancel := context.WithCancel(d.ctx)
		defer cancel()
		stop := context.AfterFunc(ctx, func() { dev.Close() })
		defer stop()
		d.wg.Go(func() { s.readPipe(ctx, dev) })
		s.run(ctx)
	})
	return host
}

// frame is one whole v1 message.
type frame struct {
	typ  uint16
	body []byte
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

// session is one link's conversation with the device.
type session struct {
	d    *Device
	name string
	in   chan frame // closed when the link ends
	w    packetWire
}

func (d *Device) newSession(name string, w packetWire) *session {
	return &session{d: d, name: name, in: make(chan frame, 4), w: w}
}

// readPipe reassembles packets from an in-process link. Garbage packets are dropped, as the
// firmware drops them.
func (s *session) readPipe(ctx context.Context, conn net.Conn) {
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
			s.d.log.Debug("keepkeyemu: dropped packet", "link", s.name, "err", err)
			continue
		}
		if !done {
			continue
		}
		typ, body := rd.Message()
		select {
		case s.in <- frame{typ, body}:
		case <-ctx.Done():
			return
		}
	}
}

// Errors inside a workflow.
var (
	// errLinkGone: the link ended; nobody to answer.
	errLinkGone = errors.New("keepkeyemu: link closed")
	// errDisconnect: a fault said to drop the link now.
	errDisconnect = errors.New("keepkeyemu: injected disconnect")
)

// failure is answered with a Failure message.
type failure struct {
	code keepkeypb.FailureType
	msg  string
}

func (f *failure) Error() string { return fmt.Sprintf("failure %d: %s", f.code, f.msg) }

func fail(code keepkeypb.FailureType, format string, a ...any) error {
	return &failure{code: code, msg: fmt.Sprintf(format, a...)}
}

// syntaxError is how KeepKey firmware refuses a malformed or unsupported request
// (FailureType_Failure_SyntaxError; it has no DataError).
func syntaxError(format string, a ...any) error {
	return fail(keepkeypb.FailureType_Failure_SyntaxError, format, a...)
}

var errCancelled = &failure{code: keepkeypb.FailureType_Failure_ActionCancelled, msg: "Cancelled"}

// errRejected is the user pressing NO: answered like a host Cancel (ActionCancelled), but
// a screen that does not cancel on NO (the Trezor One's address screens) tells them apart.
var errRejected = &failure{code: keepkeypb.FailureType_Failure_ActionCancelled, msg: "Cancelled"}

// interrupt: a message that starts a new workflow (Initialize) arrived mid-flow; the flow
// ends silently and the message is handled from the top.
type interrupt struct{ f frame }

func (i *interrupt) Error() string { return fmt.Sprintf("interrupted by message %d", i.f.typ) }

// run is the session's main loop: one top-level message at a time.
func (s *session) run(ctx context.Context) {
	var pending *frame
	for {
		var f frame
		if pending != nil {
			f, pending = *pending, nil
		} else {
			var err error
			f, err = s.next(ctx)
			if err != nil {
				if errors.Is(err, errDisconnect) {
					s.d.dropState()
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
			s.d.dropState()
			s.w.close()
			return
		case errors.Is(err, errLinkGone):
			return
		case ctx.Err() != nil:
			return
		default:
			// Preempted by another link, or a write failed: the flow is over.
			s.d.log.Debug("keepkeyemu: workflow ended", "link", s.name, "err", err)
		}
	}
}

// workflow runs one top-level message under the device's flow lock, preempting a
// workflow of another link.
func (s *session) workflow(ctx context.Context, f frame) error {
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := s.d.acquire(fctx, s, cancel); err != nil {
		return err
	}
	defer s.d.release(s)
	reply, err := s.d.handle(fctx, s, f)
	var fl *failure
	switch {
	case err == nil:
		if reply == nil {
			return nil
		}
		return s.reply(fctx, reply)
	case errors.As(err, &fl):
		return s.reply(fctx, &keepkeypb.Failure{Code: fl.code.Enum(), Message: proto.String(fl.msg)})
	}
	return err
}

func (d *Device) acquire(ctx context.Context, s *session, cancel context.CancelFunc) error {
	for {
		select {
		case d.flow <- struct{}{}:
			d.mu.Lock()
			d.curOwner, d.curCancel = s, cancel
			d.mu.Unlock()
			return nil
		default:
		}
		d.mu.Lock()
		if d.curOwner != nil && d.curOwner != s && d.curCancel != nil {
			d.curCancel() // a new host takes over; the old flow ends without an answer
		}
		d.mu.Unlock()
		select {
		case d.flow <- struct{}{}:
			d.mu.Lock()
			d.curOwner, d.curCancel = s, cancel
			d.mu.Unlock()
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (d *Device) release(s *session) {
	d.mu.Lock()
	if d.curOwner == s {
		d.curOwner, d.curCancel = nil, nil
	}
	d.mu.Unlock()
	<-d.flow
}

// dropState forgets the session, as a device that lost power would: the PIN is asked again.
func (d *Device) dropState() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pinCached = false
}

// next returns the next whole message from the host, applying the disconnect fault.
func (s *session) next(ctx context.Context) (frame, error) {
	select {
	case f, ok := <-s.in:
		if !ok {
			return frame{}, errLinkGone
		}
		if s.d.faults.Incoming() {
			s.d.log.Debug("keepkeyemu: injected disconnect", "link", s.name, "type", f.typ)
			return frame{}, errDisconnect
		}
		s.d.log.Debug("keepkeyemu: <- message", "link", s.name, "type", keepkeypb.MessageType(f.typ).String())
		return f, nil
	case <-ctx.Done():
		return frame{}, ctx.Err()
	}
}

// reply sends one message, after the injected delay, packet by packet through the faults.
func (s *session) reply(ctx context.Context, m proto.Message) error {
	id, body, err := keepkeypb.Marshal(m)
	if err != nil {
		return err
	}
	if d := s.d.faults.Delay(); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	pkts, err := transport.V1Packets(uint16(id), body)
	if err != nil {
		return err
	}
	s.d.log.Debug("keepkeyemu: -> message", "link", s.name, "type", id.String())
	for _, p := range pkts {
		out, ok := s.d.faults.Outgoing(p)
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

// call sends m and returns the host's answer. Cancel becomes errCancelled (answered with
// Failure ActionCancelled); Initialize ends the flow and starts over.
func (s *session) call(ctx context.Context, m proto.Message) (frame, error) {
	if err := s.reply(ctx, m); err != nil {
		return frame{}, err
	}
	f, err := s.next(ctx)
	if err != nil {
		return frame{}, err
	}
	return f, checkAnswer(f)
}

func checkAnswer(f frame) error {
	switch keepkeypb.MessageType(f.typ) {
	case keepkeypb.MessageType_MessageType_Cancel:
		return errCancelled
	case keepkeypb.MessageType_MessageType_Initialize:
		return &interrupt{f}
	}
	return nil
}

// expect calls and decodes an answer of type want; any other message is UnexpectedMessage.
func expect[T proto.Message](ctx context.Context, s *session, m proto.Message, want keepkeypb.MessageType) (T, error) {
	var zero T
	f, err := s.call(ctx, m)
	if err != nil {
		return zero, err
	}
	if keepkeypb.MessageType(f.typ) != want {
		return zero, fail(keepkeypb.FailureType_Failure_UnexpectedMessage, "Unexpected message")
	}
	msg, err := keepkeypb.Unmarshal(want, f.body)
	if err != nil {
		return zero, syntaxError("Could not parse protocol buffer message")
	}
	return msg.(T), nil
}

// confirm shows a screen the way the firmware does: ButtonRequest, wait for ButtonAck,
// then the user decides (the approver). A Cancel from the host, also while the user
// decides, ends the flow with ActionCancelled; a rejection gives ActionCancelled too.
func (s *session) confirm(ctx context.Context, code keepkeypb.ButtonRequestType, sc emulator.Screen) error {
	if _, err := expect[*keepkeypb.ButtonAck](ctx, s, &keepkeypb.ButtonRequest{Code: code.Enum()}, keepkeypb.MessageType_MessageType_ButtonAck); err != nil {
		return err
	}
	sc.Device = "keepkey"
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		ok  bool
		err error
	}
	done := make(chan result, 1)
	go func() {
		ok, err := s.d.approver.Ask(actx, sc)
		done <- result{ok, err}
	}()
	for {
		select {
		case r := <-done:
			if r.err != nil {
				return r.err
			}
			if !r.ok {
				return errRejected
			}
			return nil
		case f, ok := <-s.in:
			cancel()
			<-done
			if !ok {
				return errLinkGone
			}
			if s.d.faults.Incoming() {
				return errDisconnect
			}
			if err := checkAnswer(f); err != nil {
				return err
			}
			// Anything else while the user decides: the firmware aborts the screen.
			return fail(keepkeypb.FailureType_Failure_UnexpectedMessage, "Unexpected message")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// confirmAddress shows an address for the user to compare (ButtonRequest_Address); NO
// cancels, as fsm_msgGetAddress does ("Show address cancelled").
func (s *session) confirmAddress(ctx context.Context, sc emulator.Screen) error {
	return s.confirm(ctx, keepkeypb.ButtonRequestType_ButtonRequest_Address, sc)
}

// TB is the part of testing.TB that NewForTest uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// NewForTest builds a device for a test (httptest style): it fails the test on a bad
// option and closes the device when the test ends. Use Pipe for links.
func NewForTest(tb TB, opts Options) *Device {
	tb.Helper()
	d, err := New(opts)
	if err != nil {
		tb.Fatalf("%v", err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}
