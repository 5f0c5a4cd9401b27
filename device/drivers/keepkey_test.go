package drivers_test

import (
	"context"
	"testing"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/devicetest"
	"github.com/hwbridge/hwbridge/device/drivers"
	keepkeyemu "github.com/hwbridge/hwbridge/emulator/keepkey"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/transport"
)

// TestHubKeepKey: the hub, wired as hwbridged wires it, serves a keepkey: emulator path with
// the KeepKey driver (wrapped in signature verification).
func TestHubKeepKey(t *testing.T) {
	const path = "keepkey:127.0.0.1:11044"
	emu := keepkeyemu.NewForTest(t, keepkeyemu.Options{Mnemonic: devicetest.Mnemonic})
	hub := device.NewHub(device.HubConfig{
		Drivers:   drivers.Hub(drivers.Options{}),
		Emulators: []string{path},
		Open:      func(context.Context, string) (transport.Link, error) { return emu.Pipe(), nil },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hub.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	f, err := hub.Features(t.Context(), path)
	if err != nil || f.Family != device.FamilyKeepKey || !f.Emulator {
		t.Fatalf("features %+v, %v", f, err)
	}
	var sig device.MessageSignature
	err = hub.Do(t.Context(), path, "test", func(ctx context.Context, d device.Device) error {
		var err error
		sig, err = d.SignMessage(ctx, device.MessageRequest{Chain: device.ChainETH, Path: hdpath.MustParse("m/44'/60'/0'/0/0"), Message: []byte("hub")})
		return err
	})
	if err != nil || sig.Address != devicetest.VectorETHAddr {
		t.Fatalf("eth message through the hub: %+v, %v", sig, err)
	}
}
