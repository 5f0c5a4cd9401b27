package daemon

import (
	"context"
	"errors"
	"testing"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/trezor"
	"github.com/hwbridge/hwbridge/emulator"
	trezoremu "github.com/hwbridge/hwbridge/emulator/trezor"
	"github.com/hwbridge/hwbridge/transport"
)

// TestPINAndPassphraseSession: v1PromptPin leaves a locked Trezor One's PIN matrix waiting
// for v1SendPin (a wrong PIN answers unlocked false); v1Unlock opens a passphrase session
// that later calls share; v1Forget ends it.
func TestPINAndPassphraseSession(t *testing.T) {
	emu, err := trezoremu.New(trezoremu.Options{Model: trezoremu.ModelOne, PIN: "1234", PassphraseProtection: true, Approver: emulator.NewApprover(emulator.PolicyAuto)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	hub := device.NewHub(device.HubConfig{
		Drivers: map[string]device.Driver{transport.KindTrezor: func(link transport.Link, c device.DriverConfig) (device.Device, error) {
			return device.Verify(trezor.New(link, trezor.Options{Emulator: c.Emulator})), nil
		}},
		Emulators: []string{emuPath},
		Open:      func(ctx context.Context, path string) (transport.Link, error) { return emu.Pipe(), nil },
	})
	hctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go hub.Run(hctx)
	td := startDaemon(t, func(c *Config) { c.Hub = hub })
	c := td.admin(t)
	ctx := t.Context()
	var sent SendPINResult
	if err := c.Call(ctx, "v1SendPin", SendPINParams{PIN: "1234"}, &sent); err == nil {
		t.Fatal("sendpin without a prompt")
	}
	for _, step := range []struct {
		pin  string
		want bool
	}{{"9999", false}, {"1234", true}} {
		var pr PromptPINResult
		if err := c.Call(ctx, "v1PromptPin", DeviceParams{}, &pr); err != nil || !pr.Prompted {
			t.Fatalf("promptpin: %+v %v", pr, err)
		}
		if err := c.Call(ctx, "v1SendPin", SendPINParams{PIN: step.pin}, &sent); err != nil || sent.Unlocked != step.want {
			t.Fatalf("sendpin %s: %+v %v", step.pin, sent, err)
		}
	}
	var pr PromptPINResult
	if err := c.Call(ctx, "v1PromptPin", DeviceParams{}, &pr); err == nil && pr.Prompted {
		t.Fatalf("promptpin on an unlocked device: %+v", pr)
	}

	var fp FingerprintResult
	if err := c.Call(ctx, "v1Fingerprint", DeviceParams{}, &fp); !errors.Is(err, device.ErrLocked) {
		t.Fatalf("fingerprint before the passphrase: %+v %v", fp, err)
	}
	var un UnlockResult
	if err := c.Call(ctx, "v1Unlock", UnlockParams{Passphrase: "pp"}, &un); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := c.Call(ctx, "v1Fingerprint", DeviceParams{}, &fp); err != nil || fp.Fingerprint != un.Fingerprint {
			t.Fatalf("in the session: %+v %v, want %s", fp, err, un.Fingerprint)
		}
		var x XPubResult
		if err := c.Call(ctx, "v1Xpub", XPubParams{Path: "m/84'/0'/0'"}, &x); err != nil {
			t.Fatalf("xpub in the session: %v", err)
		}
	}
	var fr ForgetResult
	if err := c.Call(ctx, "v1Forget", ForgetParams{}, &fr); err != nil || fr.Sessions != 1 {
		t.Fatalf("forget: %+v %v", fr, err)
	}
	if err := c.Call(ctx, "v1Fingerprint", DeviceParams{}, &fp); !errors.Is(err, device.ErrLocked) {
		t.Fatalf("fingerprint after forget: %+v %v", fp, err)
	}
}
