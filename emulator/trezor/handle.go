package trezoremu

import (
	"bytes"
	"context"
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
	id := pb.MessageType(f.typ)
	msg, err := pb.Unmarshal(id, f.body)
	if err != nil {
		if _, known := pb.New(id); !known {
			return nil, fail(pb.FailureType_Failure_UnexpectedMessage, "Unexpected message")
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
		return d.ethSignTypedHash(ctx, s, m)
	}
	// Answers out of place (ButtonAck, TxAck, PinMatrixAck, …) and device-to-host types.
	return nil, fail(pb.FailureType_Failure_UnexpectedMessage, "Unexpected message")
}

// initialize resumes the session whose id the host sends, or starts a new one.
func (d *Device) initialize(m *pb.Initialize) *pb.Features {
	d.mu.Lock()
	if id := m.GetSessionId(); len(id) == 0 || d.sessionID == nil || !bytes.Equal(id, d.sessionID) {
		d.sessionID, d.passphrase = newSessionID(), nil
	}
	d.mu.Unlock()
	return d.features()
}

func (d *Device) features() *pb.Features {
	d.mu.Lock()
	defer d.mu.Unlock()
	caps := []pb.Capability{pb.Capability_Capability_Bitcoin, pb.Capability_Capability_Ethereum}
	if d.opts.PassphraseProtection && d.opts.Passphrase != "" {
		caps = append(caps, pb.Capability_Capability_PassphraseEntry)
	}
	f := &pb.Features{
		Vendor:               proto.String("trezor.io"),
		MajorVersion:         proto.Uint32(Version[0]),
		MinorVersion:         proto.Uint32(Version[1]),
		PatchVersion:         proto.Uint32(Version[2]),
		BootloaderMode:       proto.Bool(false),
		DeviceId:             proto.String(d.deviceID),
		PinProtection:        proto.Bool(d.opts.PIN != ""),
		PassphraseProtection: proto.Bool(d.opts.PassphraseProtection),
		Language:             proto.String("en-US"),
		Label:                proto.String(d.opts.Label),
		Initialized:          proto.Bool(true),
		Imported:             proto.Bool(true),
		Unlocked:             proto.Bool(d.unlocked),
		Model:                proto.String("T"),
		InternalModel:        proto.String("T2T1"),
		UnfinishedBackup:     proto.Bool(false),
		NoBackup:             proto.Bool(false),
		Capabilities:         caps,
	}
	if d.sessionID != nil {
		f.SessionId = bytes.Clone(d.sessionID)
	}
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
	if !d.opts.PassphraseProtection {
		return d.base, nil
	}
	d.mu.Lock()
	cached := d.passphrase
	d.mu.Unlock()
	var pass string
	if cached != nil {
		pass = *cached
	} else {
		ack, err := expect[*pb.PassphraseAck](ctx, s, &pb.PassphraseRequest{}, pb.MessageType_MessageType_PassphraseAck)
		if err != nil {
			return nil, err
		}
		switch {
		case ack.GetOnDevice():
			if ack.Passphrase != nil {
				return nil, dataError("Passphrase provided when it should not be")
			}
			d.approver.Show(emulator.Screen{Device: "trezor", Title: "Enter passphrase", Lines: []string{"(typed on the device)"}})
			pass = d.opts.Passphrase
		default:
			pass = ack.GetPassphrase()
			if len(pass) > maxPassphrase {
				return nil, dataError("Maximum passphrase length is %d bytes", maxPassphrase)
			}
		}
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
