package keepkeyemu

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/emulator/internal/v1emu"
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

	core *v1emu.Core

	// mu guards the field below. Lock order: a workflow (core's flow lock) before mu.
	mu        sync.Mutex
	pinCached bool
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
	d.core = v1emu.NewCore(v1emu.Config{
		Protocol: protocol,
		Approver: d.approver,
		Faults:   d.faults,
		Log:      d.log,
		Bind: func(vs *v1emu.Session) v1emu.Handler {
			s := &session{Session: vs, d: d}
			return func(ctx context.Context, f frame) (proto.Message, error) { return d.handle(ctx, s, f) }
		},
		DropState: d.dropState,
	})
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
	d.core.Close()
	return nil
}

// Pipe returns the host end of an in-process link served by the device: one Write or Read
// is one 64-byte packet, as on USB. Closing it ends the device side too.
func (d *Device) Pipe() transport.Link { return d.core.Pipe() }

// UDPServer serves the device over UDP as the KeepKey emulator does (lib/emulator/udp.c;
// see v1emu.UDPServer).
type UDPServer = v1emu.UDPServer

// ListenUDP binds addr (HOST:PORT) and the debug link port PORT+1. Port 0 picks a free
// pair. The debug port reads DebugLinkDecision (id 100) as a button press when the policy
// is prompt.
func (d *Device) ListenUDP(addr string) (*UDPServer, error) { return d.core.ListenUDP(addr) }

// frame is one whole v1 message.
type frame = v1emu.Frame

// session is one link's conversation with the device (v1emu.Session: call, reply, confirm).
type session struct {
	*v1emu.Session
	d *Device
}

// protocol is the KeepKey message set for v1emu.
var protocol = &v1emu.Protocol{
	Prefix:     "keepkeyemu",
	Device:     "keepkey",
	Cancel:     uint16(keepkeypb.MessageType_MessageType_Cancel),
	Initialize: uint16(keepkeypb.MessageType_MessageType_Initialize),
	ButtonAck:  uint16(keepkeypb.MessageType_MessageType_ButtonAck),
	Codec:      keepkeypb.Codec(),
	TypeName:   func(id uint16) string { return keepkeypb.MessageType(id).String() },
	Failure: func(code int32, msg string) proto.Message {
		return &keepkeypb.Failure{Code: keepkeypb.FailureType(code).Enum(), Message: proto.String(msg)}
	},
	ButtonRequest: func(code int32) proto.Message {
		return &keepkeypb.ButtonRequest{Code: keepkeypb.ButtonRequestType(code).Enum()}
	},
	BadMessage: syntaxError("Could not parse protocol buffer message"),
	DebugPress: func(id uint16, body []byte) (yes, press bool) {
		if keepkeypb.MessageType(id) != keepkeypb.MessageType_MessageType_DebugLinkDecision {
			return false, false
		}
		m, err := keepkeypb.Unmarshal(keepkeypb.MessageType(id), body)
		if err != nil {
			return false, false
		}
		dec := m.(*keepkeypb.DebugLinkDecision)
		return dec.GetYesNo(), dec.YesNo != nil
	},
}

func fail(code keepkeypb.FailureType, format string, a ...any) error {
	return v1emu.Fail(int32(code), format, a...)
}

// syntaxError is how KeepKey firmware refuses a malformed or unsupported request
// (FailureType_Failure_SyntaxError; it has no DataError).
func syntaxError(format string, a ...any) error {
	return fail(keepkeypb.FailureType_Failure_SyntaxError, format, a...)
}

// errCancelled is a host Cancel; errRejected the user pressing NO (both ActionCancelled).
var (
	errCancelled = v1emu.ErrCancelled
	errRejected  = v1emu.ErrRejected
)

// dropState forgets the session, as a device that lost power would: the PIN is asked again.
func (d *Device) dropState() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pinCached = false
}

// expect calls and decodes an answer of type want; any other message is UnexpectedMessage.
func expect[T proto.Message](ctx context.Context, s *session, m proto.Message, want keepkeypb.MessageType) (T, error) {
	return v1emu.Expect[T](ctx, s.Session, m, uint16(want))
}

// confirm shows a screen the way the firmware does: ButtonRequest, wait for ButtonAck,
// then the user decides (the approver). A Cancel from the host, also while the user
// decides, ends the flow with ActionCancelled; a rejection gives errRejected.
func (s *session) confirm(ctx context.Context, code keepkeypb.ButtonRequestType, sc emulator.Screen) error {
	return s.Confirm(ctx, int32(code), sc)
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
