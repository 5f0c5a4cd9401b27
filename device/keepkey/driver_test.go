package keepkey_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/devicetest"
	"github.com/hwbridge/hwbridge/device/keepkey"
	"github.com/hwbridge/hwbridge/emulator"
	keepkeyemu "github.com/hwbridge/hwbridge/emulator/keepkey"
	trezoremu "github.com/hwbridge/hwbridge/emulator/trezor"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/transport"
)

var wpkh = device.AddressRequest{Chain: device.ChainBTC, Path: hdpath.MustParse("m/84'/0'/0'/0/0"), Script: device.ScriptWPKH}

// TestMixedInputs: p2pkh, p2sh-p2wpkh and p2wpkh inputs in one transaction, with change and
// an OP_RETURN output (KeepKey 7.10 allows mixing segwit and non-segwit inputs).
func TestMixedInputs(t *testing.T) {
	d := openPipe(t, emulator.PolicyAuto)
	ctx := t.Context()
	p := devicetest.NewSpend(t, ctx, d, &chaincfg.MainNetParams, []device.ScriptType{device.ScriptWPKH, device.ScriptPKH, device.ScriptSHWPKH},
		devicetest.SpendOptions{Change: device.ScriptSHWPKH, OpReturn: []byte("hwbridge")})
	if err := d.SignPSBT(ctx, p, &chaincfg.MainNetParams); err != nil {
		t.Fatal(err)
	}
	if _, err := devicetest.FinalizeAndExecute(p); err != nil {
		t.Fatal(err)
	}
	// Without the previous transaction a p2pkh input is refused before the device is asked;
	// segwit inputs do not need it.
	p = devicetest.NewSpend(t, ctx, d, &chaincfg.MainNetParams, []device.ScriptType{device.ScriptWPKH}, devicetest.SpendOptions{OmitNonWitnessUTXO: true})
	if err := d.SignPSBT(ctx, p, &chaincfg.MainNetParams); err != nil {
		t.Fatalf("p2wpkh without its previous tx: %v", err)
	}
	p = devicetest.NewSpend(t, ctx, d, &chaincfg.MainNetParams, []device.ScriptType{device.ScriptPKH}, devicetest.SpendOptions{})
	p.Inputs[0].NonWitnessUtxo = nil
	p.Inputs[0].WitnessUtxo = nil
	if err := d.SignPSBT(ctx, p, &chaincfg.MainNetParams); !errors.Is(err, device.ErrInvalidInput) {
		t.Fatalf("p2pkh without its previous tx: err %v, want device.ErrInvalidInput", err)
	}
}

// TestNotAKeepKey: the driver refuses a device whose Features name another vendor (a
// Trezor emulator speaks the same framing on the same kind of UDP port).
func TestNotAKeepKey(t *testing.T) {
	emu, err := trezoremu.New(trezoremu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emu.Close() })
	d := keepkey.New(emu.Pipe(), keepkey.Options{})
	defer d.Close()
	_, err = d.Features(t.Context())
	if !errors.Is(err, device.ErrProtocol) || !strings.Contains(err.Error(), "not keepkey.com") {
		t.Fatalf("err %v, want device.ErrProtocol naming the vendor", err)
	}
}

// TestFaults: a dropped packet, a corrupted one and a device that forgets the exchange in
// the middle of SignTx give clear errors, and the next call on the same link succeeds.
func TestFaults(t *testing.T) {
	for _, tt := range []struct {
		name string
		arm  func(f *emulator.Faults)
		want error
	}{
		{"dropped packet", func(f *emulator.Faults) { f.DropNext(1) }, device.ErrLinkLost},
		{"corrupted packet", func(f *emulator.Faults) { f.CorruptNext(1) }, device.ErrProtocol},
		{"disconnect", func(f *emulator.Faults) { f.DisconnectAt(3) }, device.ErrLinkLost},
	} {
		t.Run(tt.name, func(t *testing.T) {
			emu := keepkeyemu.NewForTest(t, keepkeyemu.Options{})
			srv, err := emu.ListenUDP("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			sctx, stop := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- srv.Serve(sctx) }()
			t.Cleanup(func() { stop(); <-done })
			link, err := transport.Open(t.Context(), "keepkey:"+srv.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			d := device.Verify(keepkey.New(link, keepkey.Options{Emulator: true, LinkTimeout: 500 * time.Millisecond}))
			defer d.Close()
			ctx := t.Context()
			p := devicetest.NewSpend(t, ctx, d, &chaincfg.MainNetParams, []device.ScriptType{device.ScriptWPKH, device.ScriptPKH}, devicetest.SpendOptions{})
			tt.arm(emu.Faults())
			if err := d.SignPSBT(ctx, p, &chaincfg.MainNetParams); !errors.Is(err, tt.want) {
				t.Fatalf("sign with a fault: err %v, want %v", err, tt.want)
			}
			emu.Faults().Clear()
			if got, err := d.Address(ctx, wpkh); err != nil || got != devicetest.VectorAddr84 {
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

// TestCancelledContext: a caller that gives up while a screen is up gets context.Canceled;
// the driver sends Cancel, and the next call works.
func TestCancelledContext(t *testing.T) {
	emu := keepkeyemu.NewForTest(t, keepkeyemu.Options{Approver: emulator.NewApprover(emulator.PolicyPrompt)})
	d := device.Verify(keepkey.New(emu.Pipe(), keepkey.Options{Emulator: true}))
	defer d.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := d.SignMessage(ctx, device.MessageRequest{Chain: device.ChainBTC, Path: wpkh.Path, Script: device.ScriptWPKH, Message: []byte("x")})
		done <- err
	}()
	for {
		if _, ok := emu.Approver().Pending(); ok {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if err := emu.Approver().SetPolicy(emulator.PolicyAuto); err != nil {
		t.Fatal(err)
	}
	if got, err := d.Address(t.Context(), wpkh); err != nil || got != devicetest.VectorAddr84 {
		t.Fatalf("next call: %q, %v", got, err)
	}
}

// TestPIN: a PIN-protected KeepKey asks once per session; without a PIN provider the call
// fails with device.ErrLocked (the driver cancels the request), a wrong PIN too, the right
// one unlocks it.
func TestPIN(t *testing.T) {
	emu := keepkeyemu.NewForTest(t, keepkeyemu.Options{PIN: "2589"})
	noPIN := device.Verify(keepkey.New(emu.Pipe(), keepkey.Options{}))
	defer noPIN.Close()
	if _, err := noPIN.Address(t.Context(), wpkh); !errors.Is(err, device.ErrLocked) {
		t.Fatalf("without a pin provider: err %v, want device.ErrLocked", err)
	}
	f, err := noPIN.Features(t.Context())
	if err != nil || !f.PINProtected || f.Unlocked {
		t.Fatalf("features of a locked keepkey %+v, %v", f, err)
	}
	pin := "1111"
	d := device.Verify(keepkey.New(emu.Pipe(), keepkey.Options{PIN: func(context.Context) (string, error) { return pin, nil }}))
	defer d.Close()
	if _, err := d.Address(t.Context(), wpkh); !errors.Is(err, device.ErrLocked) {
		t.Fatalf("wrong pin: err %v, want device.ErrLocked", err)
	}
	pin = "2589"
	if got, err := d.Address(t.Context(), wpkh); err != nil || got != devicetest.VectorAddr84 {
		t.Fatalf("right pin: %q, %v", got, err)
	}
	pin = "wrong, and not asked again"
	if got, err := d.Address(t.Context(), wpkh); err != nil || got != devicetest.VectorAddr84 {
		t.Fatalf("cached pin: %q, %v", got, err)
	}
	if f, err := d.Features(t.Context()); err != nil || !f.Unlocked {
		t.Fatalf("features after unlocking %+v, %v", f, err)
	}
}
