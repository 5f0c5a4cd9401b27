package trezor_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/devicetest"
	"github.com/hwbridge/hwbridge/device/trezor"
	"github.com/hwbridge/hwbridge/emulator"
	trezoremu "github.com/hwbridge/hwbridge/emulator/trezor"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/internal/trezorpb"
	"github.com/hwbridge/hwbridge/transport"
)

// caps is what the emulated Trezor (model T, core 2.9.1) supports: EIP-712 by streaming only.
func caps(open func(t *testing.T, policy emulator.Policy) device.Device) devicetest.Capabilities {
	return devicetest.Capabilities{
		Taproot: true, EIP1559: true, EIP712: true, Multisig: true, NeedsNonWitnessUTXO: true,
		OpenRejecting: func(t *testing.T) device.Device { return open(t, emulator.PolicyReject) },
	}
}

func newEmu(t testing.TB, policy emulator.Policy) *trezoremu.Device {
	t.Helper()
	emu, err := trezoremu.New(trezoremu.Options{Approver: emulator.NewApprover(policy)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emu.Close() })
	return emu
}

// openPipe: the driver on the emulator's in-process pipe.
func openPipe(t *testing.T, policy emulator.Policy) device.Device {
	return device.Verify(trezor.New(newEmu(t, policy).Pipe(), trezor.Options{Emulator: true}))
}

// serveUDP starts the emulator on a free loopback UDP port pair and returns its path.
func serveUDP(t testing.TB, emu *trezoremu.Device) string {
	t.Helper()
	srv, err := emu.ListenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("emulator udp server: %v", err)
		}
	})
	return "udp:" + srv.Addr().String()
}

// openUDP: the driver over the emulator's UDP transport, opened by path as the CLI does.
func openUDP(t *testing.T, policy emulator.Policy) device.Device {
	path := serveUDP(t, newEmu(t, policy))
	link, err := transport.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	return device.Verify(trezor.New(link, trezor.Options{Emulator: true}))
}

func TestConformancePipe(t *testing.T) {
	devicetest.Run(t, func(t *testing.T) device.Device { return openPipe(t, emulator.PolicyAuto) }, caps(openPipe))
}

func TestConformanceUDP(t *testing.T) {
	devicetest.Run(t, func(t *testing.T) device.Device { return openUDP(t, emulator.PolicyAuto) }, caps(openUDP))
}

var wpkh = device.AddressRequest{Chain: device.ChainBTC, Path: hdpath.MustParse("m/84'/0'/0'/0/0"), Script: device.ScriptWPKH}

// TestFaultsMidSignTx: a dropped packet or a disconnect in the middle of SignTx gives a
// clear error, and the next call on the same device succeeds.
func TestFaultsMidSignTx(t *testing.T) {
	tests := []struct {
		name string
		arm  func(f *emulator.Faults)
		want func(err error) bool
	}{
		{"dropped packet", func(f *emulator.Faults) { f.DropNext(1) }, func(err error) bool { return errors.Is(err, device.ErrLinkLost) }},
		{"corrupted packet", func(f *emulator.Faults) { f.CorruptNext(1) }, func(err error) bool { return errors.Is(err, device.ErrProtocol) }},
		// Over UDP the host cannot see the device go away: the device forgets the
		// exchange and stops answering.
		{"disconnect", func(f *emulator.Faults) { f.DisconnectAt(3) }, func(err error) bool { return errors.Is(err, device.ErrLinkLost) }},
		// A caller's deadline shorter than the link timeout stays the caller's.
		{"dropped packet, caller deadline first", func(f *emulator.Faults) { f.DropNext(1) }, func(err error) bool {
			return errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, device.ErrLinkLost)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu := newEmu(t, emulator.PolicyAuto)
			path := serveUDP(t, emu)
			link, err := transport.Open(t.Context(), path)
			if err != nil {
				t.Fatal(err)
			}
			d := device.Verify(trezor.New(link, trezor.Options{Emulator: true}))
			defer d.Close()
			ctx := t.Context()
			p := devicetest.NewSpend(t, ctx, d, &chaincfg.MainNetParams, []device.ScriptType{device.ScriptWPKH, device.ScriptWPKH}, devicetest.SpendOptions{})
			tt.arm(emu.Faults())
			wait := 30 * time.Second
			if strings.Contains(tt.name, "caller deadline") {
				wait = time.Second
			}
			sctx, cancel := context.WithTimeout(ctx, wait)
			err = d.SignPSBT(sctx, p, &chaincfg.MainNetParams)
			cancel()
			if err == nil || !tt.want(err) {
				t.Fatalf("sign with a fault: err %v", err)
			}
			t.Logf("error: %v", err)
			emu.Faults().Clear()
			got, err := d.Address(ctx, wpkh)
			if err != nil || got != devicetest.VectorAddr84 {
				t.Fatalf("next call: %q, %v", got, err)
			}
			p = devicetest.NewSpend(t, ctx, d, &chaincfg.MainNetParams, []device.ScriptType{device.ScriptWPKH}, devicetest.SpendOptions{})
			if err := d.SignPSBT(ctx, p, &chaincfg.MainNetParams); err != nil {
				t.Fatalf("sign after the fault: %v", err)
			}
			if _, err := devicetest.FinalizeAndExecute(p); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestDisconnectPipe: a link that closes mid-SignTx is device.ErrDisconnected.
func TestDisconnectPipe(t *testing.T) {
	emu := newEmu(t, emulator.PolicyAuto)
	d := device.Verify(trezor.New(emu.Pipe(), trezor.Options{}))
	defer d.Close()
	p := devicetest.NewSpend(t, t.Context(), d, &chaincfg.MainNetParams, []device.ScriptType{device.ScriptWPKH}, devicetest.SpendOptions{})
	emu.Faults().DisconnectAt(2)
	err := d.SignPSBT(t.Context(), p, &chaincfg.MainNetParams)
	if !errors.Is(err, device.ErrDisconnected) {
		t.Fatalf("err %v, want device.ErrDisconnected", err)
	}
}

// TestPINAndPassphraseOnEmulator: the driver answers the emulator's PIN matrix and host
// passphrase prompts from its providers, and without providers says the device is locked.
func TestPINAndPassphraseOnEmulator(t *testing.T) {
	emu, err := trezoremu.New(trezoremu.Options{PIN: "1234", PassphraseProtection: true})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()

	locked := trezor.New(emu.Pipe(), trezor.Options{})
	defer locked.Close()
	if _, err := locked.Fingerprint(t.Context()); !errors.Is(err, device.ErrLocked) {
		t.Fatalf("no pin provider: err %v, want device.ErrLocked", err)
	}

	d := trezor.New(emu.Pipe(), trezor.Options{
		PIN:        func(context.Context) (string, error) { return "1234", nil },
		Passphrase: func(context.Context) (string, error) { return "TREZOR", nil },
	})
	defer d.Close()
	fp, err := d.Fingerprint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if fp == devicetest.VectorFingerprint {
		t.Errorf("fingerprint with a passphrase is the one without (%s)", fp)
	}
	f, err := d.Features(t.Context())
	if err != nil || !f.PINProtected || !f.Passphrase || !f.Unlocked {
		t.Errorf("features %+v, %v: want pin and passphrase protection, unlocked", f, err)
	}
}

// TestCancelOnEmulator: the user never answers a confirmation; cancelling the context sends
// Cancel, the emulator drops the screen, and the next request runs at once.
func TestCancelOnEmulator(t *testing.T) {
	emu := newEmu(t, emulator.PolicyPrompt)
	ctx, cancel := context.WithCancel(t.Context())
	d := trezor.New(emu.Pipe(), trezor.Options{OnButton: func(trezorpb.ButtonRequestType) { cancel() }})
	defer d.Close()
	_, err := d.SignMessage(ctx, device.MessageRequest{Chain: device.ChainBTC, Path: wpkh.Path, Script: device.ScriptWPKH, Message: []byte("never confirmed")})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	got, err := d.Address(t.Context(), wpkh)
	if err != nil || got != devicetest.VectorAddr84 {
		t.Fatalf("next call: %q, %v", got, err)
	}
	var outcomes []emulator.Outcome
	for _, e := range emu.Approver().Transcript() {
		outcomes = append(outcomes, e.Outcome)
	}
	if len(outcomes) == 0 || outcomes[0] != emulator.OutcomeCancelled {
		t.Errorf("screen outcomes %v: want the first cancelled", outcomes)
	}
}
