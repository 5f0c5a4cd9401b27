// Package trezoremu is a Trezor-class emulated device speaking Codec v1 with the real message
// ids and fields: over UDP exactly as the Trezor emulator does (ListenUDP: one 64-byte packet
// per datagram, PINGPING/PONGPONG, DebugLink on port+1), or in-process over net.Pipe
// (Device.Pipe) for Go tests.
//
// # Personas
//
// Options.Model (hwemu --trezor-model) selects which firmware the device plays. Each
// persona's Features, message set and behaviours were read from the firmware tag named
// here (trezor/trezor-firmware), and its revision is that tag's commit, which is the
// firmware_revision @trezor/connect 9.7.3 bundles for the version:
//
//	model   internal  firmware  source
//	1       (none)    1.13.1    legacy/v1.13.1: legacy/firmware/fsm_msg_common.h get_features,
//	                            fsm.c fsm_layoutAddress, protect.c protectPassphrase,
//	                            fsm_msg_ethereum.h (EthereumSignTypedHash)
//	T       T2T1      2.9.1     core/v2.9.1: core/src/apps/base.py get_features,
//	                            core/embed/models/T2T1, core/site_scons/models/T2T1
//	Safe 3  T2B1      2.9.1     the same, core/embed/models/T2B1, site_scons/models/T2B1
//	Safe 5  T3T1      2.9.1     the same, core/embed/models/T3T1, site_scons/models/T3T1
//
// What differs between them:
//   - Features: core sends internal_model, homescreen format and size, language_version_matches,
//     sd_card_present, and only while unlocked passphrase_protection, backup, safety and
//     display settings; the Trezor One sends bootloader_hash, safety_checks and the backup
//     flags always, auto_lock_delay_ms and wipe_code_protection while unlocked, and no
//     internal_model. None sends bootloader_mode, firmware_present or imported. Capabilities:
//     the Trezor One lists Bitcoin, Bitcoin_like, Crypto, Ethereum, NEM, Stellar, U2F; core
//     lists its universal set plus NEM, EOS and Brightness on the T, Haptic and Brightness on
//     the Safe 5; the Safe 3 and 5 report optiga_sec, the Safe 5 haptic_feedback.
//   - EIP-712: core streams the document (EthereumSignTypedData with
//     EthereumTypedDataStructRequest/Ack and EthereumTypedDataValueRequest/Ack, arrays,
//     nested structs, metamask_v4_compat; core/src/apps/ethereum/sign_typed_data.py) and
//     answers EthereumSignTypedHash with UnexpectedMessage (no handler in
//     core/src/apps/workflow_handlers.py); the Trezor One has only EthereumSignTypedHash.
//   - NO on an address screen: core cancels (ActionCancelled); the Trezor One moves to the
//     QR code (then the cosigners' xpubs for multisig) and asks again with a new
//     ButtonRequest, until YES or a host Cancel.
//   - Passphrase: core advertises PassphraseEntry and takes PassphraseAck{on_device} (or
//     passphrase_always_on_device, without asking the host); the Trezor One answers
//     on_device with DataError "This firmware is incapable of passphrase entry on the device."
//   - Screens: the Trezor One asks every Ethereum transaction screen with ButtonRequest
//     SignTx (recipient, data, then one fee screen, or three for EIP-1559), shows the
//     signing address before a message (ButtonRequest Other), and warns before
//     EthereumSignTypedHash (ProtectCall, then address, domain hash, message hash); core
//     asks ConfirmOutput then SignTx. The Trezor One's answers are pinned to transcripts
//     recorded from its firmware (device/trezor/testdata/trezor-one-1.13.1).
//   - SignTx: the Trezor One leaves out an empty TxRequest.serialized and the details of
//     TXFINISHED, and without serialization asks no segwit input in the signing stage
//     but every input in the witness stage (legacy/firmware/signing.c, as recorded).
//     Both firmwares count an output as change only when every input has its script
//     type and account (core sign_tx/matchcheck.py).
//   - ApplySettings: the Trezor One takes label, language, use_passphrase, homescreen,
//     auto_lock_delay_ms and safety_checks and refuses passphrase_always_on_device; core
//     also takes display_rotation, experimental_features, hide_passphrase_from_host and
//     haptic_feedback (Safe 5) (core/src/apps/management/apply_settings.py).
//
// It implements the session and features messages, ApplySettings and ApplyFlags, PIN
// (PinMatrixRequest with an identity matrix, so PIN digits are their own positions) and
// host or on-device passphrase entry, ButtonRequest/ButtonAck with the approval decided
// after the ack, Bitcoin public keys, addresses, message signing and the full SignTx
// streaming flow of current core firmware (legacy, p2sh-p2wpkh, p2wpkh and taproot key-path
// inputs), and Ethereum addresses, keys, legacy/EIP-155 and EIP-1559 transactions,
// personal_sign and EIP-712 as above. Any other message is answered with Failure
// UnexpectedMessage, as both firmwares answer a message they have no handler for. Facts
// come from ../../shared/protocols/trezor.md and the firmware sources above; nothing here
// is shared with device/trezor.
//
// Multisig follows core's apps/bitcoin (multisig.py, scripts.py, sign_tx): GetAddress and
// SignTx accept the multisig field (MultisigRedeemScriptType, keys as pubkeys[i].node +
// address_n or as nodes + one address_n) for p2sh (SPENDMULTISIG, or SPENDADDRESS in
// GetAddress), p2wsh (SPENDWITNESS) and p2sh-p2wsh (SPENDP2SHWITNESS). The keys are derived
// and used in the order sent, never sorted, and the device's own key must be among them
// (DataError "Pubkey not found in multisig script"). Each pass signs for the one key the
// input's address_n names: the signature comes back in TxRequest.serialized, and the
// serialized transaction carries the scriptSig or witness with the host's signatures
// (multisig.signatures) and the device's, OP_0 first and no placeholder for missing ones.
// A multisig output of the device's key is change, and not shown, when every input is
// multisig of the same wallet (same fingerprint, script type and account).
//
// Faults (emulator.Faults) apply to every v1 packet the device sends and every whole
// message it receives, on both links; PINGPING/PONGPONG liveness datagrams are exempt. An
// injected disconnect closes a pipe link; on UDP it forgets the exchange and the session.
//
// Deliberate limits: external inputs, RBF replacement (orig_hash) and Wanchain
// transactions are refused with Failure DataError; a homescreen image in ApplySettings is
// refused as an undecodable one (DataError "Wrong homescreen format"); the Bitcoin flows
// follow core on every persona (the Trezor One's legacy signing.c differs in screens only);
// Ethereum definitions (network/token blobs) are ignored.
package trezoremu

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/emulator/internal/v1emu"
	"github.com/hwbridge/hwbridge/internal/trezorpb"
	"github.com/hwbridge/hwbridge/transport"
)

// Options configure a device.
type Options struct {
	// Model selects the persona (Features, message set, behaviours); empty means ModelT.
	Model Model
	// Mnemonic is the BIP-39 seed phrase; empty means emulator.DefaultMnemonic.
	Mnemonic string
	// PIN, when not empty, protects the device: the host is asked with PinMatrixRequest.
	// Digits 1–9 only (the matrix is the identity, so the digits are the positions).
	PIN string
	// PassphraseProtection makes the device ask PassphraseRequest before the first use of
	// the seed in a session; the host answers with the passphrase (host entry) or with
	// on_device, which gives Passphrase (what the emulated user types on the device).
	PassphraseProtection bool
	// Passphrase is what on-device entry yields. When set, the device advertises the
	// PassphraseEntry capability (17), so trezorctl chooses on-device entry unless run with -P.
	Passphrase string
	// Label is Features.label; empty means "hwemu".
	Label string
	// Approver decides confirmation screens; nil means a new auto approver.
	Approver *emulator.Approver
	// Faults are the armed faults; nil means a fresh, unarmed set.
	Faults *emulator.Faults
	// Logger gets debug lines per message (type names only, never bodies); nil discards.
	Logger *slog.Logger
}

// Device is one emulated Trezor. It is safe for concurrent use: several links may be open,
// but one workflow runs at a time, and a message on another link preempts a workflow that
// is waiting for its host, as a new client does on a real device.
type Device struct {
	opts     Options
	approver *emulator.Approver
	faults   *emulator.Faults
	log      *slog.Logger
	base     *emulator.Wallet // no passphrase: fingerprint, device id
	deviceID string
	persona  *persona

	core *v1emu.Core

	// mu guards the fields below. Lock order: a workflow (core's flow lock) before mu.
	mu         sync.Mutex
	unlocked   bool
	sessionID  []byte
	passphrase *string // cached for the session
	wallets    map[string]*emulator.Wallet
	settings   settings
}

// New builds a device. Close it to stop every link it serves.
func New(opts Options) (*Device, error) {
	if opts.Mnemonic == "" {
		opts.Mnemonic = emulator.DefaultMnemonic
	}
	if opts.Label == "" {
		opts.Label = "hwemu"
	}
	model, err := ParseModel(string(opts.Model))
	if err != nil {
		return nil, err
	}
	opts.Model = model
	for _, c := range opts.PIN {
		if c < '1' || c > '9' {
			return nil, fmt.Errorf("trezoremu: pin must be digits 1-9 (got %d characters)", len(opts.PIN))
		}
	}
	if len(opts.PIN) > 50 {
		return nil, fmt.Errorf("trezoremu: pin longer than 50 digits")
	}
	if len(opts.Passphrase) > maxPassphrase {
		return nil, fmt.Errorf("trezoremu: passphrase longer than %d bytes", maxPassphrase)
	}
	w, err := emulator.NewWallet(opts.Mnemonic, "")
	if err != nil {
		return nil, err
	}
	d := &Device{
		opts:    opts,
		persona: personas[model],
		settings: settings{
			label:                opts.Label,
			passphraseProtection: opts.PassphraseProtection,
			autoLockDelayMs:      defaultAutoLockMs,
			haptic:               true,
		},
		approver: opts.Approver,
		faults:   opts.Faults,
		log:      opts.Logger,
		base:     w,
		deviceID: fmt.Sprintf("EMU%08X", w.Fingerprint()),
		unlocked: opts.PIN == "",
		wallets:  map[string]*emulator.Wallet{"": w},
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

// settings are what ApplySettings and ApplyFlags change (guarded by Device.mu).
type settings struct {
	label                    string
	passphraseProtection     bool
	passphraseAlwaysOnDevice bool
	hidePassphraseFromHost   bool
	experimental             bool
	haptic                   bool
	autoLockDelayMs          uint32
	safetyChecks             trezorpb.SafetyCheckLevel
	displayRotation          trezorpb.DisplayRotation
	flags                    uint32
}

// defaultAutoLockMs is the firmware's default auto-lock delay (10 minutes, core
// storage/device.py AUTOLOCK_DELAY_DEFAULT; legacy config.c autoLockDelayMsDefault).
const defaultAutoLockMs = 10 * 60 * 1000

// Model is the persona the device plays.
func (d *Device) Model() Model { return d.persona.model }

// Approver returns the device's approver (policy and transcript).
func (d *Device) Approver() *emulator.Approver { return d.approver }

// Faults returns the device's fault set.
func (d *Device) Faults() *emulator.Faults { return d.faults }

// Fingerprint is the master fingerprint without passphrase.
func (d *Device) Fingerprint() uint32 { return d.base.Fingerprint() }

// Close stops every link and waits for their goroutines.
func (d *Device) Close() error {
	d.core.Close()
	return nil
}

// Pipe returns the host end of an in-process link served by the device: one Write or Read
// is one 64-byte packet, as on USB. Closing it ends the device side too.
func (d *Device) Pipe() transport.Link { return d.core.Pipe() }

// UDPServer serves the device over UDP as the Trezor emulator does (see v1emu.UDPServer).
type UDPServer = v1emu.UDPServer

// ListenUDP binds addr (HOST:PORT) and the DebugLink port PORT+1. Port 0 picks a free pair.
// The DebugLink port reads DebugLinkDecision (id 100) as a button press when the policy is
// prompt.
func (d *Device) ListenUDP(addr string) (*UDPServer, error) { return d.core.ListenUDP(addr) }

// frame is one whole v1 message.
type frame = v1emu.Frame

// session is one link's conversation with the device (v1emu.Session: call, reply, confirm).
type session struct {
	*v1emu.Session
	d *Device
}

// protocol is the Trezor message set for v1emu.
var protocol = &v1emu.Protocol{
	Prefix:     "trezoremu",
	Device:     "trezor",
	Cancel:     uint16(trezorpb.MessageType_MessageType_Cancel),
	Initialize: uint16(trezorpb.MessageType_MessageType_Initialize),
	ButtonAck:  uint16(trezorpb.MessageType_MessageType_ButtonAck),
	Codec:      trezorpb.Codec(),
	TypeName:   func(id uint16) string { return trezorpb.MessageType(id).String() },
	Failure: func(code int32, msg string) proto.Message {
		return &trezorpb.Failure{Code: trezorpb.FailureType(code).Enum(), Message: proto.String(msg)}
	},
	ButtonRequest: func(code int32) proto.Message {
		return &trezorpb.ButtonRequest{Code: trezorpb.ButtonRequestType(code).Enum()}
	},
	BadMessage: dataError("Failed to decode message"),
	DebugPress: func(id uint16, body []byte) (yes, press bool) {
		if trezorpb.MessageType(id) != trezorpb.MessageType_MessageType_DebugLinkDecision {
			return false, false
		}
		m, err := trezorpb.Unmarshal(trezorpb.MessageType(id), body)
		if err != nil {
			return false, false
		}
		dec := m.(*trezorpb.DebugLinkDecision)
		return dec.GetButton(), dec.Button != nil
	},
}

func fail(code trezorpb.FailureType, format string, a ...any) error {
	return v1emu.Fail(int32(code), format, a...)
}

func dataError(format string, a ...any) error {
	return fail(trezorpb.FailureType_Failure_DataError, format, a...)
}

// errCancelled is a host Cancel; errRejected the user pressing NO (both ActionCancelled).
var (
	errCancelled = v1emu.ErrCancelled
	errRejected  = v1emu.ErrRejected
)

// dropState forgets the session, as a device that lost power would.
func (d *Device) dropState() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sessionID, d.passphrase = nil, nil
	d.unlocked = d.opts.PIN == ""
}

// expect calls and decodes an answer of type want; any other message is UnexpectedMessage.
func expect[T proto.Message](ctx context.Context, s *session, m proto.Message, want trezorpb.MessageType) (T, error) {
	return v1emu.Expect[T](ctx, s.Session, m, uint16(want))
}

// confirm shows a screen the way the firmware does: ButtonRequest, wait for ButtonAck,
// then the user decides (the approver). A Cancel from the host, also while the user
// decides, ends the flow with ActionCancelled; a rejection gives errRejected.
func (s *session) confirm(ctx context.Context, code trezorpb.ButtonRequestType, sc emulator.Screen) error {
	return s.Confirm(ctx, int32(code), sc)
}

// confirmAddress shows an address for the user to compare. Core firmware cancels on NO
// (ActionCancelled). The Trezor One's fsm_layoutAddress (legacy/firmware/fsm.c, 1.13.1) does
// not: NO moves to the next screen — the QR code, then each cosigner's xpub (two pages) for
// multisig, then the address again — with a new ButtonRequest Address each time; only a
// host Cancel (or Initialize) ends it, with ActionCancelled.
func (s *session) confirmAddress(ctx context.Context, sc emulator.Screen, more ...emulator.Screen) error {
	code := trezorpb.ButtonRequestType_ButtonRequest_Address
	if !s.d.persona.legacy {
		return s.confirm(ctx, code, sc)
	}
	qr := sc
	qr.Title = sc.Title + " (QR code)"
	screens := append([]emulator.Screen{sc, qr}, more...)
	for i := 0; ; i = (i + 1) % len(screens) {
		err := s.confirm(ctx, code, screens[i])
		if err != errRejected {
			return err
		}
	}
}

// newSessionID returns 32 random bytes.
func newSessionID() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return b
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
		tb.Fatalf("trezoremu: %v", err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}
