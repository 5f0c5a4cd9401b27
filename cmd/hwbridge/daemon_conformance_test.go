package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hwbridge/hwbridge/daemon"
	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/devicetest"
	"github.com/hwbridge/hwbridge/device/trezor"
	"github.com/hwbridge/hwbridge/emulator"
	trezoremu "github.com/hwbridge/hwbridge/emulator/trezor"
	"github.com/hwbridge/hwbridge/internal/trezorpb"
	"github.com/hwbridge/hwbridge/transport"
)

// startInProcessDaemon runs hwbridged's daemon package on a temporary socket with an
// emulated Trezor behind its hub and returns a client holding the CLI's admin key.
func startInProcessDaemon(t *testing.T, policy emulator.Policy) *daemon.Client {
	t.Helper()
	emu, err := trezoremu.New(trezoremu.Options{Approver: emulator.NewApprover(policy)})
	if err != nil {
		t.Fatal(err)
	}
	const path = "udp:127.0.0.1:21324" // named only: the link is the emulator's in-process pipe
	hub := device.NewHub(device.HubConfig{
		Drivers: map[string]device.Driver{transport.KindTrezor: func(link transport.Link, em bool, prompt func()) (device.Device, error) {
			return device.Verify(trezor.New(link, trezor.Options{Emulator: em, OnButton: func(trezorpb.ButtonRequestType) { prompt() }})), nil
		}},
		Emulators: []string{path},
		Open:      func(ctx context.Context, _ string) (transport.Link, error) { return emu.Pipe(), nil },
	})
	dir, err := os.MkdirTemp("", "hwbc")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "d.sock")
	d, err := daemon.Open(daemon.Config{Socket: sock, DataDir: filepath.Join(dir, "data"), Hub: hub})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- hub.Run(ctx) }()
	go func() { done <- d.Serve(ctx) }()
	key, err := os.ReadFile(filepath.Join(dir, "data", daemon.CLIKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	c := &daemon.Client{Socket: sock, Key: strings.TrimSpace(string(key))}
	for i := 0; ; i++ {
		if _, err := c.Version(ctx); err == nil {
			break
		} else if i > 200 {
			t.Fatal(err)
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
	t.Cleanup(func() {
		c.Close()
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
		d.Close()
		emu.Close()
		os.RemoveAll(dir)
	})
	return c
}

// TestConformanceThroughDaemon runs the device conformance suite on the remote device the
// CLI uses in daemon mode: every scenario goes CLI → socket → daemon → hub → driver →
// emulator, and errors must keep their taxonomy on the way back.
func TestConformanceThroughDaemon(t *testing.T) {
	auto := startInProcessDaemon(t, emulator.PolicyAuto)
	reject := startInProcessDaemon(t, emulator.PolicyReject)
	devicetest.Run(t, func(t *testing.T) device.Device { return &remoteDevice{c: auto} }, devicetest.Capabilities{
		Taproot: true, EIP1559: true, EIP712: true, Multisig: true, NeedsNonWitnessUTXO: true,
		OpenRejecting: func(t *testing.T) device.Device { return &remoteDevice{c: reject} },
	})
}
