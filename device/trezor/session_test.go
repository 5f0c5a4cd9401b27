package trezor_test

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/tyler-smith/go-bip39"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/trezor"
	"github.com/hwbridge/hwbridge/emulator"
	trezoremu "github.com/hwbridge/hwbridge/emulator/trezor"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// TestPassphraseSession: a passphrase given in one call's context (device.WithPassphrase)
// opens the device session; later calls on the driver need none (the device keeps it for
// the session the driver resumes); ResetSession starts a new session, which asks again.
func TestPassphraseSession(t *testing.T) {
	emu, err := trezoremu.New(trezoremu.Options{PassphraseProtection: true, Approver: emulator.NewApprover(emulator.PolicyAuto)})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	d := trezor.New(emu.Pipe(), trezor.Options{Emulator: true})
	defer d.Close()
	ctx := t.Context()
	req := device.XPubRequest{Path: hdpath.MustParse("m/84'/0'/0'")}
	if _, err := d.XPub(ctx, req); !errors.Is(err, device.ErrLocked) {
		t.Fatalf("without a passphrase: %v", err)
	}
	fp, err := d.Fingerprint(device.WithPassphrase(ctx, "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	master, err := hdkeychain.NewMaster(bip39.NewSeed(emulator.DefaultMnemonic, "s3cret"), &chaincfg.MainNetParams)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := master.ECPubKey()
	if want := binary.BigEndian.Uint32(btcutil.Hash160(pub.SerializeCompressed())[:4]); uint32(fp) != want {
		t.Fatalf("fingerprint %s, want the passphrase wallet's %08x", fp, want)
	}
	for range 3 {
		if _, err := d.XPub(ctx, req); err != nil {
			t.Fatalf("in the session: %v", err)
		}
	}
	d.ResetSession()
	if _, err := d.XPub(ctx, req); !errors.Is(err, device.ErrLocked) {
		t.Fatalf("after ResetSession: %v", err)
	}
}

// TestPINFromContext: a PIN provider in the call's context (device.WithPIN) answers the
// PIN matrix; a wrong PIN is device.ErrLocked.
func TestPINFromContext(t *testing.T) {
	emu, err := trezoremu.New(trezoremu.Options{Model: trezoremu.ModelOne, PIN: "4321", Approver: emulator.NewApprover(emulator.PolicyAuto)})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	d := trezor.New(emu.Pipe(), trezor.Options{Emulator: true})
	defer d.Close()
	pin := func(p string) func(ctx context.Context) (string, error) {
		return func(context.Context) (string, error) { return p, nil }
	}
	ctx := t.Context()
	if _, err := d.Fingerprint(device.WithPIN(ctx, pin("1111"))); !errors.Is(err, device.ErrLocked) {
		t.Fatalf("wrong pin: %v", err)
	}
	if _, err := d.Fingerprint(device.WithPIN(ctx, pin("4321"))); err != nil {
		t.Fatalf("right pin: %v", err)
	}
}
