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
	"github.com/hwbridge/hwbridge/device/bitbox02"
	"github.com/hwbridge/hwbridge/device/devicetest"
	hwdrivers "github.com/hwbridge/hwbridge/device/drivers"
	"github.com/hwbridge/hwbridge/emulator"
	bitbox02emu "github.com/hwbridge/hwbridge/emulator/bitbox02"
	ledgeremu "github.com/hwbridge/hwbridge/emulator/ledger"
	trezoremu "github.com/hwbridge/hwbridge/emulator/trezor"
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
	t.Cleanup(func() { emu.Close() })
	// named only: the link is the emulator's in-process pipe
	return startDaemonOn(t, "udp:127.0.0.1:21324", func() transport.Link { return emu.Pipe() })
}

// startLedgerDaemon is startInProcessDaemon with an emulated Ledger (blind signing on, so
// that the suite's contract calls sign).
func startLedgerDaemon(t *testing.T, policy emulator.Policy) *daemon.Client {
	t.Helper()
	emu, err := ledgeremu.New(ledgeremu.Config{Mnemonic: devicetest.Mnemonic, BlindSigning: true, Approver: emulator.NewApprover(policy)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	return startDaemonOn(t, "tcp:127.0.0.1:9999", func() transport.Link { return emu.Pipe() })
}

// startBitBox02Daemon is startInProcessDaemon with an emulated BitBox02. The daemon pairs
// with it first (approved), then the approver takes policy: a rejecting BitBox02 still
// knows the host, as a person who paired once and later declines a request.
func startBitBox02Daemon(t *testing.T, policy emulator.Policy) *daemon.Client {
	t.Helper()
	appr := emulator.NewApprover(emulator.PolicyAuto)
	emu, err := bitbox02emu.New(bitbox02emu.Config{Mnemonic: devicetest.Mnemonic, Approver: appr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	c := startDaemonOn(t, "bitbox02:127.0.0.1:15423", func() transport.Link { return emu.Pipe() })
	if _, err := (&remoteDevice{c: c}).Fingerprint(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := appr.SetPolicy(policy); err != nil {
		t.Fatal(err)
	}
	return c
}

// startDaemonOn serves one emulator endpoint through the hub with hwbridged's own driver
// wiring (device/drivers); open gives a fresh in-process link to it (also for re-opens).
func startDaemonOn(t *testing.T, path string, open func() transport.Link) *daemon.Client {
	t.Helper()
	dir, err := os.MkdirTemp("", "hwbc")
	if err != nil {
		t.Fatal(err)
	}
	hub := device.NewHub(device.HubConfig{
		Drivers:   hwdrivers.Hub(hwdrivers.Options{BitBox02Store: &bitbox02.FileStore{Path: filepath.Join(dir, "bitbox02-noise.json")}}),
		Emulators: []string{path},
		Open:      func(ctx context.Context, _ string) (transport.Link, error) { return open(), nil },
	})
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
		os.RemoveAll(dir)
	})
	return c
}

// TestConformanceThroughDaemon runs the device conformance suite on the remote device the
// CLI uses in daemon mode: every scenario goes CLI → socket → daemon → hub → driver →
// emulator, and errors must keep their taxonomy on the way back.
func TestConformanceThroughDaemon(t *testing.T) {
	t.Run("trezor", func(t *testing.T) {
		auto := startInProcessDaemon(t, emulator.PolicyAuto)
		reject := startInProcessDaemon(t, emulator.PolicyReject)
		devicetest.Run(t, func(t *testing.T) device.Device { return &remoteDevice{c: auto} }, devicetest.Capabilities{
			Taproot: true, EIP1559: true, EIP712: true, Multisig: true, NeedsNonWitnessUTXO: true,
			OpenRejecting: func(t *testing.T) device.Device { return &remoteDevice{c: reject} },
		})
	})
	t.Run("bitbox02", func(t *testing.T) {
		auto := startBitBox02Daemon(t, emulator.PolicyAuto)
		reject := startBitBox02Daemon(t, emulator.PolicyReject)
		devicetest.Run(t, func(t *testing.T) device.Device { return &remoteDevice{c: auto} }, devicetest.Capabilities{
			Taproot: true, EIP1559: true, EIP712: true, NeedsNonWitnessUTXO: true, NoPKH: true, NoAccessList: true, NoContractCreation: true,
			OpenRejecting: func(t *testing.T) device.Device { return &remoteDevice{c: reject} },
		})
	})
	t.Run("ledger", func(t *testing.T) {
		auto := startLedgerDaemon(t, emulator.PolicyAuto)
		reject := startLedgerDaemon(t, emulator.PolicyReject)
		// EIP712Hash stays off: the Ledger app signs hashed EIP-712 only with a message hash,
		// and the suite also signs domain-only data (device/ledger TestTypedHash covers it).
		devicetest.Run(t, func(t *testing.T) device.Device { return noDomainOnly{&remoteDevice{c: auto}} }, devicetest.Capabilities{
			Taproot: true, EIP1559: true, Multisig: true, RefusesMalformedERC20: true,
			OpenRejecting: func(t *testing.T) device.Device { return noDomainOnly{&remoteDevice{c: reject}} },
		})
	})
}

// noDomainOnly hides the EIP-712 capability from the suite (see the ledger case above).
type noDomainOnly struct{ device.Device }

func (n noDomainOnly) Features(ctx context.Context) (device.Features, error) {
	f, err := n.Device.Features(ctx)
	f.Capabilities.EIP712Hash = false
	return f, err
}
