package bitbox02_test

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/bitbox02"
	"github.com/hwbridge/hwbridge/device/devicetest"
	"github.com/hwbridge/hwbridge/emulator"
	bb02emu "github.com/hwbridge/hwbridge/emulator/bitbox02"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/transport"
)

func caps() devicetest.Capabilities {
	return devicetest.Capabilities{Taproot: true, EIP1559: true, EIP712: true, NeedsNonWitnessUTXO: true, NoPKH: true, NoAccessList: true, NoContractCreation: true}
}

// openPipe drives an emulator over an in-process link, pairing through store.
func openPipe(t *testing.T, emu *bb02emu.Device, store bitbox02.Store, show func(string)) *bitbox02.Driver {
	t.Helper()
	d := bitbox02.New(emu.Pipe(), bitbox02.Options{Emulator: true, Pairing: bitbox02.Pairing{Store: store, ShowCode: show}})
	t.Cleanup(func() { d.Close() })
	return d
}

func TestConformancePipe(t *testing.T) {
	emu := bb02emu.NewForTest(t, bb02emu.Config{})
	store := &bitbox02.MemStore{}
	c := caps()
	c.OpenRejecting = func(t *testing.T) device.Device {
		appr := emulator.NewApprover(emulator.PolicyAuto)
		rej := bb02emu.NewForTest(t, bb02emu.Config{Approver: appr})
		d := openPipe(t, rej, &bitbox02.MemStore{}, nil)
		if _, err := d.Fingerprint(t.Context()); err != nil { // pairs while approving
			t.Fatal(err)
		}
		if err := appr.SetPolicy(emulator.PolicyReject); err != nil {
			t.Fatal(err)
		}
		return device.Verify(d)
	}
	devicetest.Run(t, func(t *testing.T) device.Device { return device.Verify(openPipe(t, emu, store, nil)) }, c)
}

// TestConformanceTCP runs the suite over the simulator's framing: 64-byte packets on TCP.
func TestConformanceTCP(t *testing.T) {
	emu := bb02emu.NewForTest(t, bb02emu.Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go emu.Serve(t.Context(), ln)
	store := &bitbox02.FileStore{Path: filepath.Join(t.TempDir(), "noise.json")}
	devicetest.Run(t, func(t *testing.T) device.Device {
		link, err := transport.Open(t.Context(), transport.SchemeBitBox02+":"+ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		d := bitbox02.New(link, bitbox02.Options{Emulator: true, Pairing: bitbox02.Pairing{Store: store}})
		t.Cleanup(func() { d.Close() })
		return device.Verify(d)
	}, devicetest.Capabilities{Taproot: true, EIP1559: true, EIP712: true, NeedsNonWitnessUTXO: true, NoPKH: true, NoAccessList: true, NoContractCreation: true, Groups: []devicetest.Group{devicetest.GroupBitcoinTest}})
}

// Pairing happens once per host: the first connection shows the code on both sides, the
// next one (same store, device remembers the host) shows nothing.
func TestPairingOnce(t *testing.T) {
	emu := bb02emu.NewForTest(t, bb02emu.Config{})
	store := &bitbox02.FileStore{Path: filepath.Join(t.TempDir(), "noise.json")}
	var codes []string
	show := func(c string) { codes = append(codes, c) }
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if _, err := openPipe(t, emu, store, show).Fingerprint(ctx); err != nil {
		t.Fatal(err)
	}
	if len(codes) != 1 {
		t.Fatalf("first connection showed %d pairing codes", len(codes))
	}
	var screen string
	for _, e := range emu.Approver().Transcript() {
		if e.Title == "Pairing code" {
			screen = strings.Join(e.Lines, "\n")
		}
	}
	if screen != codes[0] {
		t.Fatalf("device showed %q, host showed %q", screen, codes[0])
	}
	if _, err := openPipe(t, emu, store, show).Fingerprint(ctx); err != nil {
		t.Fatal(err)
	}
	if len(codes) != 1 {
		t.Fatalf("second connection paired again: %q", codes)
	}
	// A new host (empty store) pairs again; a rejected code fails with ErrUserRejected.
	if err := emu.Approver().SetPolicy(emulator.PolicyReject); err != nil {
		t.Fatal(err)
	}
	_, err := openPipe(t, emu, &bitbox02.MemStore{}, show).Fingerprint(ctx)
	if !errors.Is(err, device.ErrUserRejected) {
		t.Fatalf("rejected pairing: %v", err)
	}
}

func TestRefusals(t *testing.T) {
	emu := bb02emu.NewForTest(t, bb02emu.Config{})
	d := openPipe(t, emu, &bitbox02.MemStore{}, nil)
	ctx := t.Context()
	if _, err := d.SignTypedHash(ctx, hdpath.MustParse("m/44'/60'/0'/0/0"), [32]byte{}, nil); !errors.Is(err, bitbox02.ErrTypedHash) || !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("typed hash: %v", err)
	}
	if _, err := d.Address(ctx, device.AddressRequest{Chain: device.ChainBTC, Path: hdpath.MustParse("m/44'/0'/0'/0/0"), Script: device.ScriptPKH}); !errors.Is(err, bitbox02.ErrNoPKH) {
		t.Errorf("pkh: %v", err)
	}
	if _, err := d.SignMessage(ctx, device.MessageRequest{Chain: device.ChainBTC, Path: hdpath.MustParse("m/86'/0'/0'/0/0"), Script: device.ScriptTR, Message: []byte("x")}); !errors.Is(err, bitbox02.ErrTaprootMessage) {
		t.Errorf("taproot message: %v", err)
	}
	// A keypath the firmware refuses comes back as the device's invalid-input error.
	_, err := d.Address(ctx, device.AddressRequest{Chain: device.ChainBTC, Path: hdpath.MustParse("m/84'/0'/0'/7/0"), Script: device.ScriptWPKH})
	var de *device.Error
	if !errors.As(err, &de) || de.Code != 101 || !errors.Is(err, device.ErrInvalidInput) {
		t.Errorf("bad keypath: %v", err)
	}
}

// A call given up while the device shows a screen returns the context's error; the
// request stays on the device (ErrBusy, saying to answer it there) until the person does,
// and then the next call works on a new session.
func TestCancelDuringScreen(t *testing.T) {
	appr := emulator.NewApprover(emulator.PolicyAuto)
	emu := bb02emu.NewForTest(t, bb02emu.Config{Approver: appr})
	d := openPipe(t, emu, &bitbox02.MemStore{}, nil)
	if _, err := d.Fingerprint(t.Context()); err != nil { // pairs
		t.Fatal(err)
	}
	if err := appr.SetPolicy(emulator.PolicyPrompt); err != nil {
		t.Fatal(err)
	}
	req := device.AddressRequest{Chain: device.ChainBTC, Path: hdpath.MustParse("m/84'/0'/0'/0/0"), Script: device.ScriptWPKH, Display: true}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, err := d.Address(ctx, req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("given up: %v", err)
	}
	ctx2, cancel2 := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel2()
	if _, err := d.Fingerprint(ctx2); !errors.Is(err, device.ErrBusy) {
		t.Fatalf("while the screen is still up: %v, want device.ErrBusy", err)
	}
	if err := appr.Press(false); err != nil {
		t.Fatal(err)
	}
	if err := appr.SetPolicy(emulator.PolicyAuto); err != nil {
		t.Fatal(err)
	}
	// The press reaches the device's task a moment later, as on a real device: until then
	// it still answers NOT_READY, and the driver ErrBusy.
	fp, err := d.Fingerprint(ctx2)
	for errors.Is(err, device.ErrBusy) && ctx2.Err() == nil {
		time.Sleep(5 * time.Millisecond)
		fp, err = d.Fingerprint(ctx2)
	}
	if err != nil || fp != devicetest.VectorFingerprint {
		t.Fatalf("after the screen was answered: %s, %v", fp, err)
	}
}

// A device that goes away is device.ErrDisconnected.
func TestDisconnected(t *testing.T) {
	emu, err := bb02emu.New(bb02emu.Config{})
	if err != nil {
		t.Fatal(err)
	}
	d := openPipe(t, emu, &bitbox02.MemStore{}, nil)
	if _, err := d.Fingerprint(t.Context()); err != nil {
		t.Fatal(err)
	}
	emu.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := d.Features(ctx); !errors.Is(err, device.ErrDisconnected) {
		t.Fatalf("after the device went away: %v, want device.ErrDisconnected", err)
	}
}

// A device that reads but never answers fails each call with device.ErrLinkLost after the
// link timeout, not after the operation's.
func TestSilentLink(t *testing.T) {
	host, dev := net.Pipe()
	go func() { _, _ = io.Copy(io.Discard, dev) }()
	t.Cleanup(func() { dev.Close() })
	d := bitbox02.New(host, bitbox02.Options{LinkTimeout: 50 * time.Millisecond})
	defer d.Close()
	if _, err := d.Fingerprint(t.Context()); !errors.Is(err, device.ErrLinkLost) {
		t.Fatalf("silent device: %v, want device.ErrLinkLost", err)
	}
}
