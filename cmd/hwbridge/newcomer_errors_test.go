package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/hwbridge/hwbridge/daemon"
	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/emulator"
	ledgeremu "github.com/hwbridge/hwbridge/emulator/ledger"
	trezoremu "github.com/hwbridge/hwbridge/emulator/trezor"
	"github.com/hwbridge/hwbridge/transport"
)

// serveTrezor serves a Trezor-class emulator with opts on a free loopback UDP port.
func serveTrezor(t *testing.T, opts trezoremu.Options) string {
	t.Helper()
	emu, err := trezoremu.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return serveTrezorDevice(t, emu)
}

// serveTrezorDevice serves emu on a free loopback UDP port until the test ends, then closes
// it, and returns its --device path.
func serveTrezorDevice(t *testing.T, emu *trezoremu.Device) string {
	t.Helper()
	srv, err := emu.ListenUDP("127.0.0.1:0")
	if err != nil {
		emu.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("trezor emulator: %v", err)
		}
		emu.Close()
	})
	return "udp:" + srv.Addr().String()
}

// serveLedger serves a Ledger-class emulator on a free loopback TCP port.
func serveLedger(t *testing.T, setup func(*ledgeremu.Device)) string {
	t.Helper()
	emu, err := ledgeremu.New(ledgeremu.Config{})
	if err != nil {
		t.Fatal(err)
	}
	setup(emu)
	return serveTCP(t, func(ctx context.Context, ln net.Listener) error { return emu.Serve(ctx, ln) }, func() { emu.Close() })
}

func serveTCP(t *testing.T, serve func(context.Context, net.Listener) error, closeFn func()) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		ln.Close()
		if err := <-done; err != nil {
			t.Errorf("tcp device: %v", err)
		}
		closeFn()
	})
	return "tcp:" + ln.Addr().String()
}

// serveOtherLedgerApp serves a Ledger over Speculos framing that runs app and, like an app
// that cannot be quit from the host, answers every command but "get app and version" with
// 0x6D00 (instruction not supported).
func serveOtherLedgerApp(t *testing.T, app string) string {
	t.Helper()
	serve := func(ctx context.Context, ln net.Listener) error {
		for {
			c, err := ln.Accept()
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			go func() {
				defer c.Close()
				for {
					apdu, err := transport.ReadSpeculosAPDU(c)
					if err != nil {
						return
					}
					if apdu[0] == 0xB0 && apdu[1] == 0x01 {
						info := append([]byte{1, byte(len(app))}, app...)
						info = append(info, 5, '1', '.', '0', '.', '0', 1, 0x02)
						err = transport.WriteSpeculosResponse(c, info, 0x9000)
					} else {
						err = transport.WriteSpeculosResponse(c, nil, 0x6D00)
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}
	return serveTCP(t, serve, func() {})
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// shortTempDir is a temporary directory with a short path, for unix sockets (108 bytes).
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hwbn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// daemonWithoutDevices runs the daemon on the default socket and data directory of the
// returned environment (HOME, XDG_RUNTIME_DIR), with a hub that has no device at all.
func daemonWithoutDevices(t *testing.T) map[string]string {
	t.Helper()
	dir := shortTempDir(t)
	env := map[string]string{"HOME": dir, "XDG_RUNTIME_DIR": dir}
	getenv := func(k string) string { return env[k] }
	hub := device.NewHub(device.HubConfig{Drivers: map[string]device.Driver{}})
	d, err := daemon.Open(daemon.Config{Socket: daemon.DefaultSocket(getenv), DataDir: daemon.DefaultDataDir(getenv), Hub: hub})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- hub.Run(ctx) }()
	go func() { done <- d.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
		d.Close()
	})
	return env
}

// staleSocket leaves a socket file at the default place of the returned environment, as a
// daemon killed with SIGKILL does: nothing listens on it.
func staleSocket(t *testing.T) map[string]string {
	t.Helper()
	dir := shortTempDir(t)
	env := map[string]string{"HOME": dir, "XDG_RUNTIME_DIR": dir}
	sock := daemon.DefaultSocket(func(k string) string { return env[k] })
	if err := os.MkdirAll(filepath.Dir(sock), 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	return env
}

// TestNewcomerErrors: each error a newcomer meets first says what to do next, with its exit
// code: no device (direct and through hwbridged), the wrong app open on a Ledger, a locked
// device, hwbridged not running, a node that does not answer. No permission on a USB device
// is transport's TestHIDOpenError: it needs a libusb device path and sysfs.
func TestNewcomerErrors(t *testing.T) {
	auto := startEmu(t, emulator.PolicyAuto)
	pinLocked := serveTrezor(t, trezoremu.Options{PIN: "1234"})
	ledgerLocked := serveLedger(t, func(d *ledgeremu.Device) { d.SetLocked(true) })
	solana := serveOtherLedgerApp(t, "Solana")
	closed := closedPort(t)
	noDevice := daemonWithoutDevices(t)
	stale := staleSocket(t)
	const xpub = "m/84'/0'/0'"
	btcTo, ethTo := demoRecipient(&chaincfg.RegressionNetParams)
	tests := []struct {
		name string
		env  map[string]string
		args []string
		code int
		want []string // in stderr
	}{
		{"no device", nil, []string{"xpub", xpub}, exitNoDevice,
			[]string{"no device found: connect and unlock a device, or name one with --device", "emulators are used only when named"}},
		{"no device through hwbridged", noDevice, []string{"xpub", xpub}, exitNoDevice,
			[]string{"hwbridged sees no device (connect one, or start hwbridged with --emulator"}},
		{"wrong app on the ledger", nil, []string{"--device", solana, "xpub", xpub}, exitNoDevice,
			[]string{"open the Bitcoin app on your Ledger and retry (the Solana app is open)"}},
		{"ledger locked", nil, []string{"--device", ledgerLocked, "xpub", xpub}, exitNoDevice,
			[]string{"unlock the ledger with its PIN and retry"}},
		{"trezor locked", nil, []string{"--device", pinLocked, "xpub", xpub}, exitNoDevice,
			[]string{"the trezor asks for its pin", "run hwbridge --direct in a terminal to enter it"}},
		{"hwbridged not running: --socket", nil, []string{"--socket", filepath.Join(t.TempDir(), "none.sock"), "devices"}, exitError,
			[]string{"no hwbridged socket at", "start hwbridged, or pass --direct"}},
		{"hwbridged not running: stale socket", stale, []string{"devices"}, exitError,
			[]string{"hwbridged is not running: nothing listens on", "start hwbridged, or pass --direct"}},
		{"bitcoin node unreachable: balance", nil, []string{"--device", auto, "btc", "balance", "--rpc", "http://u:p@" + closed, "--network", "regtest"}, exitError,
			[]string{"does not answer (is it running? is --rpc right?)"}},
		{"bitcoin node unreachable: send", nil, []string{"--device", auto, "btc", "send", "--to", btcTo.EncodeAddress(), "--amount", "0.1", "--rpc", "http://u:p@" + closed, "--network", "regtest", "--yes"}, exitError,
			[]string{"does not answer (is it running? is --rpc right?)"}},
		{"ethereum node unreachable: balance", nil, []string{"--device", auto, "eth", "balance", "--rpc", "http://" + closed}, exitError,
			[]string{"is the node running, and is --rpc its JSON-RPC URL?"}},
		{"ethereum node unreachable: send", nil, []string{"--device", auto, "eth", "send", "--to", ethTo.Hex(), "--value", "1", "--rpc", "http://" + closed, "--yes"}, exitError,
			[]string{"is the node running, and is --rpc its JSON-RPC URL?"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cli(t, "", tt.env, tt.args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, tt.code, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr %q lacks %q", r.stderr, w)
				}
			}
			for _, family := range []string{"ledger: ", "trezor: "} {
				if strings.Count(r.stderr, family) > 1 {
					t.Errorf("stderr %q says %q twice", r.stderr, family)
				}
			}
		})
	}
}

// TestNoUSBHint: a build without cgo (Go's default when no C compiler is found) says so
// when it finds no wallet, and what to do; other enumeration failures add nothing.
func TestNoUSBHint(t *testing.T) {
	noCgo := fmt.Errorf("transport: usb hid is unavailable in this build (it needs cgo): %w", errors.ErrUnsupported)
	if h := noUSBHint(noCgo); !strings.Contains(h, "built without cgo") || !strings.Contains(h, "CGO_ENABLED=1") {
		t.Errorf("hint %q", h)
	}
	for _, err := range []error{nil, errors.New("libusb: io error")} {
		if h := noUSBHint(err); h != "" {
			t.Errorf("noUSBHint(%v) = %q", err, h)
		}
	}
}
