package trezor_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/devicetest"
	"github.com/hwbridge/hwbridge/device/trezor"
	"github.com/hwbridge/hwbridge/emulator"
	trezoremu "github.com/hwbridge/hwbridge/emulator/trezor"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

func openModel(t *testing.T, opts trezoremu.Options) *trezor.Driver {
	t.Helper()
	emu, err := trezoremu.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emu.Close() })
	d := trezor.New(emu.Pipe(), trezor.Options{Emulator: true})
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// TestTypedDataBothPaths: the Trezor One signs EIP-712 from the hashes, the model T and the
// Safes by streaming the document; the same document gives the same signature either way
// (RFC 6979 nonces), and each model refuses the other path as its firmware does.
func TestTypedDataBothPaths(t *testing.T) {
	ctx := context.Background()
	path := hdpath.MustParse("m/44'/60'/0'/0/0")
	td := devicetest.TypedData(t)
	var want []byte
	for _, m := range []trezoremu.Model{trezoremu.ModelOne, trezoremu.ModelT, trezoremu.ModelSafe3, trezoremu.ModelSafe5} {
		d := openModel(t, trezoremu.Options{Model: m})
		f, err := d.Features(ctx)
		if err != nil {
			t.Fatal(err)
		}
		legacy := m == trezoremu.ModelOne
		if f.Capabilities.EIP712Hash != legacy || !f.Capabilities.EIP712 {
			t.Fatalf("model %s: capabilities %+v", m, f.Capabilities)
		}
		sig, err := device.SignTypedData(ctx, device.Verify(d), path, td)
		if err != nil {
			t.Fatalf("model %s: %v", m, err)
		}
		if want == nil {
			want = sig
		} else if !bytes.Equal(sig, want) {
			t.Fatalf("model %s signed %x, the Trezor One (hash path) %x", m, sig, want)
		}
		_, err = d.SignTypedHash(ctx, path, td.DomainSeparator, td.MessageHash)
		if legacy && err != nil {
			t.Fatalf("model 1 hash path: %v", err)
		}
		if !legacy && !errors.Is(err, errors.ErrUnsupported) {
			t.Fatalf("model %s: SignTypedHash err %v, want errors.ErrUnsupported (core has no hash message)", m, err)
		}
	}
}

// TestPassphraseMessageByModel: without a passphrase provider the driver refuses, and says
// where the passphrase can go: on the device only where the firmware has on-device entry.
func TestPassphraseMessageByModel(t *testing.T) {
	for _, tt := range []struct {
		model    trezoremu.Model
		onDevice bool
	}{{trezoremu.ModelOne, false}, {trezoremu.ModelT, true}, {trezoremu.ModelSafe3, true}} {
		d := openModel(t, trezoremu.Options{Model: tt.model, PassphraseProtection: true, Approver: emulator.NewApprover(emulator.PolicyAuto)})
		_, err := d.Address(context.Background(), device.AddressRequest{Chain: device.ChainETH, Path: hdpath.MustParse("m/44'/60'/0'/0/0")})
		if !errors.Is(err, device.ErrLocked) {
			t.Fatalf("model %s: err %v, want device.ErrLocked", tt.model, err)
		}
		if got := strings.Contains(err.Error(), "on the device"); got != tt.onDevice {
			t.Fatalf("model %s: %q (mentions entry on the device: %v, want %v)", tt.model, err, got, tt.onDevice)
		}
	}
}

// TestConformanceModelOne runs the device suite on hwemu's Trezor One persona (legacy
// 1.13.1: EIP-712 by hash). The rejection scenarios are left out: NO on the Trezor One's
// address screen does not reject (TestAddressNoModelOne).
func TestConformanceModelOne(t *testing.T) {
	devicetest.Run(t, func(t *testing.T) device.Device {
		return device.Verify(openModel(t, trezoremu.Options{Model: trezoremu.ModelOne}))
	}, devicetest.Capabilities{Taproot: true, EIP1559: true, EIP712Hash: true, EIP712: true, Multisig: true, NeedsNonWitnessUTXO: true})
}

// TestAddressNoModelOne: a person pressing NO on a Trezor One's address screen gets the QR
// code and the address again, never a rejection; the driver waits until its context ends,
// then sends Cancel, and the session stays usable.
func TestAddressNoModelOne(t *testing.T) {
	emu, err := trezoremu.New(trezoremu.Options{Model: trezoremu.ModelOne, Approver: emulator.NewApprover(emulator.PolicyReject)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emu.Close() })
	d := trezor.New(emu.Pipe(), trezor.Options{Emulator: true})
	t.Cleanup(func() { _ = d.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req := device.AddressRequest{Chain: device.ChainBTC, Path: hdpath.MustParse("m/84'/0'/0'/0/0"), Script: device.ScriptWPKH, Display: true}
	_, err = d.Address(ctx, req)
	if errors.Is(err, device.ErrUserRejected) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the context's deadline (NO does not reject on a Trezor One)", err)
	}
	titles := map[string]bool{}
	for _, e := range emu.Approver().Transcript() {
		titles[e.Title] = true
	}
	if !titles["Receive address"] || !titles["Receive address (QR code)"] {
		t.Fatalf("screens %v: want the address and its QR code", titles)
	}
	req.Display = false
	if a, err := d.Address(context.Background(), req); err != nil || a != devicetest.VectorAddr84 {
		t.Fatalf("after the cancel: %q, %v", a, err)
	}
}
