package drivers_test

import (
	"context"
	"testing"
	"time"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/bitbox02"
	"github.com/hwbridge/hwbridge/device/devicetest"
	"github.com/hwbridge/hwbridge/device/drivers"
	bitbox02emu "github.com/hwbridge/hwbridge/emulator/bitbox02"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/transport"
)

// The hub serves a BitBox02 endpoint with the production wiring: the first use pairs and
// subscribers hear EventPairing with the code the device shows, then EventPrompt for the
// address screen; the second use of the same device pairs no more.
func TestHubBitBox02(t *testing.T) {
	const path = "bitbox02:127.0.0.1:15423"
	emu := bitbox02emu.NewForTest(t, bitbox02emu.Config{Mnemonic: devicetest.Mnemonic})
	hub := device.NewHub(device.HubConfig{
		Drivers:   drivers.Hub(drivers.Options{BitBox02Store: &bitbox02.MemStore{}}),
		Emulators: []string{path},
		Open:      func(context.Context, string) (transport.Link, error) { return emu.Pipe(), nil },
	})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	events, stop := hub.Subscribe(16)
	defer stop()
	fp, err := hub.Fingerprint(ctx, path)
	if err != nil || fp != devicetest.VectorFingerprint {
		t.Fatalf("fingerprint %s, %v", fp, err)
	}
	var addr string
	if err := hub.Do(ctx, path, "test", func(ctx context.Context, d device.Device) error {
		addr, err = d.Address(ctx, device.AddressRequest{Chain: device.ChainBTC, Path: hdpath.MustParse("m/84'/0'/0'/0/0"), Script: device.ScriptWPKH, Display: true})
		return err
	}); err != nil || addr != devicetest.VectorAddr84 {
		t.Fatalf("address %s, %v", addr, err)
	}
	var got []device.Event
	for len(got) < 2 {
		select {
		case e := <-events:
			if e.Type == device.EventPairing || e.Type == device.EventPrompt {
				got = append(got, e)
			}
		case <-ctx.Done():
			t.Fatalf("events %+v", got)
		}
	}
	var screen string
	for _, e := range emu.Approver().Transcript() {
		if e.Title == "Pairing code" {
			screen = e.Lines[0]
		}
	}
	if got[0].Type != device.EventPairing || got[0].Code == "" || got[0].Code != screen || got[1].Type != device.EventPrompt {
		t.Fatalf("events %+v, device showed %q", got, screen)
	}
	for _, in := range hub.Devices() {
		if in.Path == path && (in.Kind != transport.KindBitBox02 || !in.Emulator) {
			t.Fatalf("device info %+v", in)
		}
	}
}
