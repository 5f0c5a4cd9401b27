package coldcard_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/coldcard"
	"github.com/hwbridge/hwbridge/device/devicetest"
	"github.com/hwbridge/hwbridge/emulator"
	coldcardemu "github.com/hwbridge/hwbridge/emulator/coldcard"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/transport"
)

// sockDir is a short directory for sockets (sun_path holds 108 bytes).
func sockDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// serve starts an emulated Coldcard on a unix datagram socket, as hwemu --coldcard does.
func serve(t *testing.T, chain string, policy emulator.Policy) (string, *emulator.Approver) {
	t.Helper()
	ap := emulator.NewApprover(policy)
	return serveOpts(t, coldcardemu.Options{Chain: chain, Approver: ap}), ap
}

func serveOpts(t *testing.T, o coldcardemu.Options) string {
	t.Helper()
	emu, err := coldcardemu.New(o)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(sockDir(t), "sim.sock")
	srv, err := emu.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		_ = emu.Close()
	})
	return path
}

func open(t *testing.T, path string) device.Device {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	link, err := transport.Open(ctx, transport.SchemeUnix+":"+path)
	if err != nil {
		t.Fatal(err)
	}
	d := device.Verify(coldcard.New(link, coldcard.Options{Emulator: true, Poll: 5 * time.Millisecond}))
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// The conformance suite, once per chain setting: mainnet scenarios on a BTC Coldcard,
// testnet and regtest ones on an XTN Coldcard (the driver refuses a network whose
// addresses the device would show otherwise).
func TestConformance(t *testing.T) {
	for _, tt := range []struct {
		chain string
		group devicetest.Group
	}{{"BTC", devicetest.GroupBitcoin}, {"XTN", devicetest.GroupBitcoinTest}} {
		t.Run(tt.chain, func(t *testing.T) {
			path, _ := serve(t, tt.chain, emulator.PolicyAuto)
			devicetest.Run(t, func(t *testing.T) device.Device { return open(t, path) }, devicetest.Capabilities{
				Groups:  []devicetest.Group{tt.group},
				Taproot: true,
			})
		})
	}
}

func TestRefusals(t *testing.T) {
	path, ap := serve(t, "XTN", emulator.PolicyReject)
	d := open(t, path)
	ctx := t.Context()
	if _, err := d.SignEthTx(ctx, hdpath.MustParse("m/44'/60'/0'/0/0"), types.NewTx(&types.LegacyTx{}), nil); !errors.Is(err, coldcard.ErrBitcoinOnly) || !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("eth tx: %v", err)
	}
	if _, err := d.Address(ctx, device.AddressRequest{Chain: device.ChainETH, Path: hdpath.MustParse("m/44'/60'/0'/0/0")}); !errors.Is(err, coldcard.ErrBitcoinOnly) {
		t.Fatalf("eth address: %v", err)
	}
	if _, err := d.SignTypedHash(ctx, hdpath.MustParse("m/44'/60'/0'/0/0"), [32]byte{}, nil); !errors.Is(err, coldcard.ErrBitcoinOnly) {
		t.Fatalf("typed hash: %v", err)
	}
	// the person declines: the PSBT stays unsigned
	p := devicetest.NewSpend(t, ctx, d, &chaincfg.TestNet3Params, []device.ScriptType{device.ScriptWPKH}, devicetest.SpendOptions{})
	if err := d.SignPSBT(ctx, p, &chaincfg.TestNet3Params); !errors.Is(err, device.ErrUserRejected) {
		t.Fatalf("sign psbt: %v", err)
	}
	if len(p.Inputs[0].PartialSigs) != 0 {
		t.Fatal("a refused PSBT got signatures")
	}
	msg := device.MessageRequest{Chain: device.ChainBTC, Path: hdpath.MustParse("m/84'/1'/0'/0/0"), Script: device.ScriptWPKH, Network: &chaincfg.TestNet3Params, Message: []byte("hello")}
	if _, err := d.SignMessage(ctx, msg); !errors.Is(err, device.ErrUserRejected) {
		t.Fatalf("sign message: %v", err)
	}
	// the chain setting: a mainnet address shown on an XTN Coldcard is refused before the screen
	if _, err := d.Address(ctx, device.AddressRequest{Chain: device.ChainBTC, Path: hdpath.MustParse("m/84'/0'/0'/0/0"), Script: device.ScriptWPKH, Display: true}); !errors.Is(err, device.ErrInvalidInput) {
		t.Fatalf("mainnet display on XTN: %v", err)
	}
	if err := d.SignPSBT(ctx, p, &chaincfg.MainNetParams); !errors.Is(err, device.ErrInvalidInput) {
		t.Fatalf("mainnet psbt on XTN: %v", err)
	}
	// a PSBT none of whose keys are the device's: the device's own error, as invalid input
	other := devicetest.NewSpend(t, ctx, d, &chaincfg.TestNet3Params, []device.ScriptType{device.ScriptWPKH}, devicetest.SpendOptions{})
	other.Inputs[0].Bip32Derivation[0].MasterKeyFingerprint ^= 1
	if err := d.SignPSBT(ctx, other, &chaincfg.TestNet3Params); !errors.Is(err, device.ErrInvalidInput) {
		t.Fatalf("foreign psbt: %v", err)
	}
	// messages a Coldcard cannot sign
	msg.Message = []byte("line\nbreak")
	if _, err := d.SignMessage(ctx, msg); !errors.Is(err, device.ErrInvalidInput) {
		t.Fatalf("non-printable message: %v", err)
	}
	var screens []string
	for _, e := range ap.Transcript() {
		screens = append(screens, e.Title+"="+string(e.Outcome))
	}
	if len(screens) != 2 || screens[0] != "OK TO SEND?=rejected" || screens[1] != "Ok to sign this?=rejected" {
		t.Fatalf("transcript: %v", screens)
	}
}

// A PSBT signed while the person takes their time (prompt policy): the driver polls stok
// until the press, and the screen lists the payment and the fee.
func TestPromptedSign(t *testing.T) {
	path, ap := serve(t, "XTN", emulator.PolicyPrompt)
	d := open(t, path)
	ctx := t.Context()
	p := devicetest.NewSpend(t, ctx, d, &chaincfg.TestNet3Params, []device.ScriptType{device.ScriptWPKH, device.ScriptTR, device.ScriptPKH, device.ScriptSHWPKH}, devicetest.SpendOptions{})
	done := make(chan error, 1)
	go func() { done <- d.SignPSBT(ctx, p, &chaincfg.TestNet3Params) }()
	for {
		if s, ok := ap.Pending(); ok {
			if s.Title != "OK TO SEND?" || len(s.Lines) < 4 {
				t.Fatalf("screen: %+v", s)
			}
			break
		}
		select {
		case err := <-done:
			t.Fatalf("signed without a press: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := ap.Press(true); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := devicetest.FinalizeAndExecute(p); err != nil {
		t.Fatal(err)
	}
}

// Another program opening its own session (as ckcc does on every run, and ncry version 1
// allows) leaves this driver's keystreams out of step: it re-keys and the call still works.
func TestAnotherSessionInBetween(t *testing.T) {
	path, _ := serve(t, "XTN", emulator.PolicyAuto)
	a, b := open(t, path), open(t, path)
	ctx := t.Context()
	req := device.XPubRequest{Path: hdpath.MustParse("m/84'/1'/0'"), Network: &chaincfg.TestNet3Params}
	first, err := a.XPub(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := b.XPub(ctx, req); err != nil { // b's ncry replaces a's session on the device
			t.Fatal(err)
		}
		again, err := a.XPub(ctx, req)
		if err != nil || again != first {
			t.Fatalf("after another session: %q %v", again, err)
		}
	}
}

// A PSBT of several upload and download blocks (2048 bytes each).
func TestLargePSBT(t *testing.T) {
	path, _ := serve(t, "XTN", emulator.PolicyAuto)
	d := open(t, path)
	ctx := t.Context()
	kinds := make([]device.ScriptType, 14)
	for i := range kinds {
		kinds[i] = []device.ScriptType{device.ScriptWPKH, device.ScriptPKH, device.ScriptTR, device.ScriptSHWPKH}[i%4]
	}
	p := devicetest.NewSpend(t, ctx, d, &chaincfg.TestNet3Params, kinds, devicetest.SpendOptions{OwnFunding: true})
	var b bytes.Buffer
	if err := p.Serialize(&b); err != nil || b.Len() <= 2048 {
		t.Fatalf("psbt of %d bytes (%v), want two upload blocks or more", b.Len(), err)
	}
	if err := d.SignPSBT(ctx, p, &chaincfg.TestNet3Params); err != nil {
		t.Fatal(err)
	}
	if _, err := devicetest.FinalizeAndExecute(p); err != nil {
		t.Fatal(err)
	}
}

// A lost or garbled reply packet, or a device that forgot the session: the call is
// answered after a re-key or fails with device.ErrLinkLost, and the next one works.
func TestFaults(t *testing.T) {
	faults := new(emulator.Faults)
	path := serveOpts(t, coldcardemu.Options{Chain: "XTN", Faults: faults})
	ctx := t.Context()
	link, err := transport.Open(ctx, transport.SchemeUnix+":"+path)
	if err != nil {
		t.Fatal(err)
	}
	d := device.Verify(coldcard.New(link, coldcard.Options{Emulator: true, Poll: 5 * time.Millisecond, LinkTimeout: 300 * time.Millisecond}))
	t.Cleanup(func() { _ = d.Close() })
	req := device.XPubRequest{Path: hdpath.MustParse("m/84'/1'/0'"), Network: &chaincfg.TestNet3Params}
	want, err := d.XPub(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range []emulator.FaultSpec{{DropAt: 1}, {CorruptAt: 2}, {DisconnectAt: 1}} {
		if err := faults.Apply(spec); err != nil {
			t.Fatal(err)
		}
		// the reply's tail alone decrypts to garbage: the driver re-keys and asks again;
		// with nothing arriving it gives up with ErrLinkLost
		got, err := d.XPub(ctx, req)
		if err != nil && !errors.Is(err, device.ErrLinkLost) || err == nil && got != want || spec.DisconnectAt > 0 && err == nil {
			t.Fatalf("%+v: %q %v, want the xpub or ErrLinkLost", spec, got, err)
		}
		got, err = d.XPub(ctx, req)
		if err != nil || got != want {
			t.Fatalf("%+v, the call after: %q %v", spec, got, err)
		}
	}
	p := devicetest.NewSpend(t, ctx, d, &chaincfg.TestNet3Params, []device.ScriptType{device.ScriptWPKH}, devicetest.SpendOptions{})
	if err := d.SignPSBT(ctx, p, &chaincfg.TestNet3Params); err != nil {
		t.Fatal(err)
	}
}
