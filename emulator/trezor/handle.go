package trezoremu

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"

	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/emulator"
	pb "github.com/hwbridge/hwbridge/internal/trezorpb"
)

// maxPassphrase is the firmware's passphrase limit (bytes).
const maxPassphrase = 50

// handle answers one top-level message. It returns the reply, or a *failure, or an error
// that ends the flow without an answer.
func (d *Device) handle(ctx context.Context, s *session, f frame) (proto.Message, error) {
	id := pb.MessageType(f.Typ)
	// Both firmwares answer a message they have no handler for with UnexpectedMessage:
	// core "Unexpected message", legacy "Unknown message" (legacy/firmware/messages.c).
	unexpected := fail(pb.FailureType_Failure_UnexpectedMessage, "Unexpected message")
	if d.persona.legacy {
		unexpected = fail(pb.FailureType_Failure_UnexpectedMessage, "Unknown message")
	}
	msg, err := pb.Unmarshal(id, f.Body)
	if err != nil {
		if _, known := pb.New(id); !known {
			return nil, unexpected
		}
		return nil, dataError("Failed to decode message")
	}
	switch m := msg.(type) {
	case *pb.Initialize:
		return d.initialize(m), nil
	case *pb.GetFeatures:
		return d.features(), nil
	case *pb.Ping:
		if m.GetButtonProtection() {
			if err := s.confirm(ctx, pb.ButtonRequestType_ButtonRequest_ProtectCall, emulator.Screen{Title: "Confirm ping", Lines: []string{m.GetMessage()}}); err != nil {
				return nil, err
			}
		}
		return &pb.Success{Message: proto.String(m.GetMessage())}, nil
	case *pb.Cancel:
		if d.persona.legacy {
			return nil, unexpected // the Trezor One has no Cancel handler outside a workflow
		}
		return nil, errCancelled
	case *pb.LockDevice:
		d.mu.Lock()
		d.unlocked = d.opts.PIN == ""
		d.mu.Unlock()
		return &pb.Success{Message: proto.String("Locked")}, nil
	case *pb.EndSession:
		d.mu.Lock()
		d.sessionID, d.passphrase = nil, nil
		d.mu.Unlock()
		return &pb.Success{Message: proto.String("Session ended")}, nil
	case *pb.GetPublicKey:
		return d.getPublicKey(ctx, s, m)
	case *pb.GetAddress:
		return d.getAddress(ctx, s, m)
	case *pb.SignMessage:
		return d.signMessage(ctx, s, m)
	case *pb.VerifyMessage:
		return d.verifyMessage(ctx, s, m)
	case *pb.SignTx:
		return d.signTx(ctx, s, m)
	case *pb.EthereumGetAddress:
		return d.ethGetAddress(ctx, s, m)
	case *pb.EthereumGetPublicKey:
		return d.ethGetPublicKey(ctx, s, m)
	case *pb.EthereumSignTx:
		return d.ethSignTx(ctx, s, m)
	case *pb.EthereumSignTxEIP1559:
		return d.ethSignTx1559(ctx, s, m)
	case *pb.EthereumSignMessage:
		return d.ethSignMessage(ctx, s, m)
	case *pb.EthereumVerifyMessage:
		return d.ethVerifyMessage(ctx, s, m)
	case *pb.EthereumSignTypedHash:
		if !d.persona.legacy {
			break // core has no handler for it (core/src/apps/workflow_handlers.py)
		}
		return d.ethSignTypedHash(ctx, s, m)
	case *pb.EthereumSignTypedData:
		if d.persona.legacy {
			break // legacy firmware has no struct streaming (legacy/firmware/messages.c)
		}
		return d.ethSignTypedData(ctx, s, m)
	case *pb.ApplySettings:
		return d.applySettings(ctx, s, m)
	case *pb.ApplyFlags:
		return d.applyFlags(ctx, s, m)
	}
	// Answers out of place (ButtonAck, TxAck, PinMatrixAck, …) and device-to-host types.
	return nil, unexpected
}

// initialize resumes the session whose id the host sends, or starts a new one. Only the
// answer to Initialize carries session_id (core handle_Initialize, legacy
// fsm_msgInitialize); GetFeatures never does.
func (d *Device) initialize(m *pb.Initialize) *pb.Features {
	d.mu.Lock()
	if id := m.GetSessionId(); len(id) == 0 || d.sessionID == nil || !bytes.Equal(id, d.sessionID) {
		d.sessionID, d.passphrase = newSessionID(), nil
	}
	id := bytes.Clone(d.sessionID)
	d.mu.Unlock()
	f := d.features()
	f.SessionId = id
	return f
}

// bootloaderHash stands for Features.bootloader_hash of the Trezor One (the firmware
// hashes its bootloader flash; an emulator has none): a fixed value, so that clients
// comparing it across sessions see one device.
var bootloaderHash = sha256.Sum256([]byte("hwemu: emulated Trezor One, no bootloader"))

// features builds Features field by field as the persona's firmware does: core 2.9.1
// core/src/apps/base.py get_features (the "private" fields only while unlocked), legacy
// 1.13.1 legacy/firmware/fsm_msg_common.h get_features. Fields the firmware leaves unset
// are absent: never bootloader_mode, firmware_present or imported (a seed from reset or
// recovery with the wordlist), no unit_* or bootloader_locked (unset on an emulator build).
func (d *Device) features() *pb.Features {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, st := d.persona, d.settings
	f := &pb.Features{
		Vendor:        proto.String("trezor.io"),
		FwVendor:      proto.String("EMULATOR"), // what the firmware's own emulator build reports
		MajorVersion:  proto.Uint32(p.version[0]),
		MinorVersion:  proto.Uint32(p.version[1]),
		PatchVersion:  proto.Uint32(p.version[2]),
		Revision:      p.revisionBytes(),
		Model:         proto.String(string(p.model)),
		DeviceId:      proto.String(d.deviceID),
		Label:         proto.String(st.label),
		Language:      proto.String("en-US"),
		PinProtection: proto.Bool(d.opts.PIN != ""),
		Unlocked:      proto.Bool(d.unlocked),
		Busy:          proto.Bool(false),
		Initialized:   proto.Bool(true),
		Capabilities:  append([]pb.Capability{}, p.caps...),
	}
	if p.legacy {
		f.PassphraseProtection = proto.Bool(st.passphraseProtection)
		f.BootloaderHash = bootloaderHash[:]
		f.BackupAvailability = pb.BackupAvailability_NotAvailable.Enum()
		f.UnfinishedBackup = proto.Bool(false)
		f.NoBackup = proto.Bool(false)
		f.SafetyChecks = st.safetyChecks.Enum()
		if d.unlocked {
			f.WipeCodeProtection = proto.Bool(false)
			f.AutoLockDelayMs = proto.Uint32(st.autoLockDelayMs)
		}
		return f
	}
	f.InternalModel = proto.String(p.internalModel)
	f.LanguageVersionMatches = proto.Bool(true)
	f.HomescreenFormat = p.homescreenFormat.Enum()
	f.HomescreenWidth = proto.Uint32(p.homescreenW)
	f.HomescreenHeight = proto.Uint32(p.homescreenH)
	f.SdCardPresent = proto.Bool(false)
	if p.haptic {
		f.HapticFeedback = proto.Bool(st.haptic)
	}
	if p.optiga {
		f.OptigaSec = proto.Uint32(0)
	}
	if !d.unlocked {
		return f // passphrase_protection and the rest are private (trezor-firmware #1807)
	}
	f.PassphraseProtection = proto.Bool(st.passphraseProtection)
	f.BackupAvailability = pb.BackupAvailability_NotAvailable.Enum()
	f.UnfinishedBackup = proto.Bool(false)
	f.NoBackup = proto.Bool(false)
	f.Flags = proto.Uint32(st.flags)
	f.RecoveryStatus = pb.RecoveryStatus_Nothing.Enum()
	f.BackupType = pb.BackupType_Bip39.Enum()
	if p.sdCard {
		f.SdProtection = proto.Bool(false)
	}
	f.WipeCodeProtection = proto.Bool(false)
	f.PassphraseAlwaysOnDevice = proto.Bool(st.passphraseAlwaysOnDevice)
	f.SafetyChecks = st.safetyChecks.Enum()
	f.AutoLockDelayMs = proto.Uint32(st.autoLockDelayMs)
	f.DisplayRotation = st.displayRotation.Enum()
	f.ExperimentalFeatures = proto.Bool(st.experimental)
	f.HidePassphraseFromHost = proto.Bool(st.hidePassphraseFromHost)
	return f
}

// unlock asks for the PIN if the device is locked.
func (d *Device) unlock(ctx context.Context, s *session) error {
	d.mu.Lock()
	unlocked := d.unlocked
	d.mu.Unlock()
	if unlocked {
		return nil
	}
	ack, err := expect[*pb.PinMatrixAck](ctx, s, &pb.PinMatrixRequest{Type: pb.PinMatrixRequestType_PinMatrixRequestType_Current.Enum()}, pb.MessageType_MessageType_PinMatrixAck)
	if err == errCancelled {
		return fail(pb.FailureType_Failure_PinCancelled, "PIN entry cancelled")
	}
	if err != nil {
		return err
	}
	// Identity matrix: position k holds digit k, so the positions are the PIN.
	if subtle.ConstantTimeCompare([]byte(ack.GetPin()), []byte(d.opts.PIN)) != 1 {
		return fail(pb.FailureType_Failure_PinInvalid, "PIN invalid")
	}
	d.mu.Lock()
	d.unlocked = true
	d.mu.Unlock()
	return nil
}

// wallet unlocks the device and returns the seed of this session, asking for the
// passphrase once per session when passphrase protection is on.
func (d *Device) wallet(ctx context.Context, s *session) (*emulator.Wallet, error) {
	if err := d.unlock(ctx, s); err != nil {
		return nil, err
	}
	d.mu.Lock()
	cached, st := d.passphrase, d.settings
	d.mu.Unlock()
	if !st.passphraseProtection {
		return d.base, nil
	}
	var pass string
	switch {
	case cached != nil:
		pass = *cached
	case st.passphraseAlwaysOnDevice && !d.persona.legacy:
		// core: no PassphraseRequest, the user types it on the device.
		d.approver.Show(emulator.Screen{Device: "trezor", Title: "Enter passphrase", Lines: []string{"(typed on the device)"}})
		pass = d.opts.Passphrase
	default:
		ack, err := expect[*pb.PassphraseAck](ctx, s, &pb.PassphraseRequest{}, pb.MessageType_MessageType_PassphraseAck)
		if err != nil {
			return nil, err
		}
		switch {
		case ack.GetOnDevice() && d.persona.legacy:
			// legacy/firmware/protect.c protectPassphrase: a Trezor One has no keyboard.
			return nil, dataError("This firmware is incapable of passphrase entry on the device.")
		case ack.GetOnDevice():
			if ack.Passphrase != nil {
				return nil, dataError("Passphrase provided when it should not be")
			}
			d.approver.Show(emulator.Screen{Device: "trezor", Title: "Enter passphrase", Lines: []string{"(typed on the device)"}})
			pass = d.opts.Passphrase
		case ack.Passphrase == nil && d.persona.legacy:
			return nil, dataError("No passphrase provided. Use empty string to set an empty passphrase.")
		case ack.Passphrase == nil:
			return nil, dataError("Passphrase not provided and on_device is False. Use empty string to set an empty passphrase.")
		default:
			pass = ack.GetPassphrase()
			if len(pass) > maxPassphrase {
				return nil, dataError("Maximum passphrase length is %d bytes", maxPassphrase)
			}
			if d.persona.legacy && pass != "" {
				// legacy/firmware/config.c config_getSeed: "Access hidden wallet?", then the
				// passphrase itself on the screen (not copied into the transcript here).
				for _, sc := range []emulator.Screen{
					{Title: "Access hidden wallet?", Lines: []string{"Next screen will show the passphrase!"}},
					{Title: "Passphrase", Lines: []string{"(shown on the device)"}},
				} {
					if err := s.confirm(ctx, pb.ButtonRequestType_ButtonRequest_Other, sc); err != nil {
						if err == errRejected {
							return nil, fail(pb.FailureType_Failure_ActionCancelled, "Passphrase dismissed")
						}
						return nil, err
					}
				}
			}
		}
	}
	if cached == nil {
		d.mu.Lock()
		d.passphrase = &pass
		if d.sessionID == nil {
			d.sessionID = newSessionID()
		}
		d.mu.Unlock()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if w, ok := d.wallets[pass]; ok {
		return w, nil
	}
	w, err := emulator.NewWallet(d.opts.Mnemonic, pass)
	if err != nil {
		return nil, fail(pb.FailureType_Failure_ProcessError, "Seed derivation failed")
	}
	if len(d.wallets) > 16 {
		d.wallets = map[string]*emulator.Wallet{"": d.base}
	}
	d.wallets[pass] = w
	return w, nil
}
