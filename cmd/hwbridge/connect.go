package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/bitbox02"
	hwdrivers "github.com/hwbridge/hwbridge/device/drivers"
	"github.com/hwbridge/hwbridge/transport"
)

// A driver opens one device family on an open link. emulator says the path named an
// emulator (udp: or tcp:), which the device then reports in its Features; reopen opens the
// path again (a Ledger link is re-opened after a failed exchange).
type driver func(e *env, link transport.Link, emulator bool, reopen func(context.Context) (transport.Link, error)) device.Device

// drivers maps a transport kind to its driver, wired as in hwbridged (device/drivers).
var drivers = map[string]driver{
	transport.KindTrezor: openTrezor,
	transport.KindLedger: openLedger,
	transport.KindColdcard: func(e *env, link transport.Link, emulator bool, _ func(context.Context) (transport.Link, error)) device.Device {
		return hwdrivers.Coldcard(link, device.DriverConfig{Emulator: emulator, Prompt: e.onButton("Coldcard")}, e.driverOptions())
	},
	transport.KindKeepKey: func(e *env, link transport.Link, emulator bool, _ func(context.Context) (transport.Link, error)) device.Device {
		return hwdrivers.KeepKey(link, device.DriverConfig{Emulator: emulator, Prompt: e.onButton("KeepKey")}, e.driverOptions())
	},
	transport.KindBitBox02: openBitBox02,
}

// openBitBox02 prints the pairing code of a first connection for the person to compare
// with the device's screen.
// The pairing keys live beside the config file ($XDG_CONFIG_HOME/hwbridge/).
func openBitBox02(e *env, link transport.Link, emulator bool, _ func(context.Context) (transport.Link, error)) device.Device {
	o := e.driverOptions()
	if cfg, _ := e.configPath(""); cfg != "" {
		o.BitBox02Store = &bitbox02.FileStore{Path: filepath.Join(filepath.Dir(cfg), "bitbox02-noise.json")}
	}
	return hwdrivers.BitBox02(link, device.DriverConfig{Emulator: emulator, Prompt: e.onButton("BitBox02"), PairingCode: func(code string) {
		fmt.Fprintf(e.stderr, "hwbridge: pairing with this BitBox02: check that it shows\n\n%s\n\nand confirm it there (once per computer)\n", code)
	}}, o)
}

func openLedger(e *env, link transport.Link, emulator bool, reopen func(context.Context) (transport.Link, error)) device.Device {
	return hwdrivers.Ledger(link, device.DriverConfig{Emulator: emulator, Prompt: e.onButton("Ledger"), Reopen: reopen}, e.driverOptions())
}

func openTrezor(e *env, link transport.Link, emulator bool, _ func(context.Context) (transport.Link, error)) device.Device {
	return hwdrivers.Trezor(link, device.DriverConfig{Emulator: emulator, Prompt: e.onButton("Trezor")}, e.driverOptions())
}

// driverOptions: the host side of the drivers (the terminal's PIN and passphrase entry).
// HWBRIDGE_LEDGER_TEST_TOKEN_KEY=1 (a development switch, as hwbridged
// --ledger-test-token-key) describes dev-chain tokens to Ledger-class emulators with
// hwbridge's test-key descriptors.
func (e *env) driverOptions() hwdrivers.Options {
	return hwdrivers.Options{Logger: e.log, PIN: e.trezorPIN(), Passphrase: e.trezorPassphrase(),
		LedgerTestTokenKey: e.getenv("HWBRIDGE_LEDGER_TEST_TOKEN_KEY") == "1"}
}

// kindOf says which family speaks at a path: udp: is the Trezor emulator protocol, tcp:
// the Speculos APDU protocol (Ledger), hid: and usb: whatever enumeration found there.
func kindOf(ctx context.Context, p transport.Path) (string, error) {
	switch p.Scheme {
	case transport.SchemeUDP:
		return transport.KindTrezor, nil
	case transport.SchemeTCP:
		return transport.KindLedger, nil
	case transport.SchemeBitBox02:
		return transport.KindBitBox02, nil
	case transport.SchemeUnix:
		return transport.KindColdcard, nil
	case transport.SchemeKeepKey:
		return transport.KindKeepKey, nil
	}
	infos, err := transport.Enumerate(ctx)
	if err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return "", err
	}
	for _, in := range infos {
		if in.Path == p.String() {
			if in.Unsupported != nil {
				return "", in.Unsupported
			}
			return in.Kind, nil
		}
	}
	if err != nil {
		return "", err // no HID in this build, and nothing at p on raw USB
	}
	return "", fmt.Errorf("nothing at %s (unplugged? run hwbridge devices): %w", p, device.ErrNoDevice)
}

// openPath opens the device at a path and wraps it with signature verification.
func (e *env) openPath(ctx context.Context, path string) (device.Device, error) {
	p, err := transport.ParsePath(path)
	if err != nil {
		return nil, usagef("--device: %v", err)
	}
	kind, err := kindOf(ctx, p)
	if err != nil {
		return nil, err
	}
	drv, ok := drivers[kind]
	if !ok {
		return nil, fmt.Errorf("%s: this hwbridge has no %s driver: %w", path, kind, errors.ErrUnsupported)
	}
	link, err := transport.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	d := device.Verify(drv(e, link, !p.USB(), func(ctx context.Context) (transport.Link, error) {
		return transport.Open(ctx, path)
	}))
	e.opened = append(e.opened, d)
	return d, nil
}

// usable lists the USB wallets hwbridge can drive. Emulators never appear here: they are
// used only when named.
func (e *env) usable(ctx context.Context) ([]transport.DeviceInfo, error) {
	infos, err := transport.Enumerate(ctx)
	if errors.Is(err, errors.ErrUnsupported) {
		e.log.Debug("usb enumeration unavailable", "err", err)
		e.noUSB = err // infos still holds what raw USB found
		err = nil
	}
	if err != nil {
		return nil, err
	}
	var out []transport.DeviceInfo
	for _, in := range infos {
		if _, ok := drivers[in.Kind]; ok && in.Unsupported == nil {
			out = append(out, in)
		}
	}
	return out, nil
}

// noUSBHint says why no USB wallet can be found when this build cannot reach USB: it was
// built without cgo (Go turns cgo off when it finds no C compiler).
func noUSBHint(enumErr error) string {
	if !errors.Is(enumErr, errors.ErrUnsupported) {
		return ""
	}
	return "this hwbridge was built without cgo, so it cannot reach USB HID wallets (Ledger, Trezor One with firmware up to 1.6.3; raw-USB Trezors on Linux need no cgo): install a C compiler (Debian: apt-get install gcc libc6-dev) and reinstall it with CGO_ENABLED=1, see the README's Install; "
}

func parseFingerprint(s string) (device.Fingerprint, bool) {
	if len(s) != 8 {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 16, 32)
	return device.Fingerprint(v), err == nil
}

// open picks the device the command runs on (design.md "Device paths"): --device or
// $HWBRIDGE_DEVICE as a path or fingerprint, else the only USB wallet attached.
func (e *env) open(ctx context.Context) (device.Device, error) {
	if d, ok, err := e.openDaemon(ctx); ok {
		return d, err // hwbridged owns the devices (client.go)
	}
	sel := e.device
	if sel == "" {
		sel = strings.TrimSpace(e.getenv("HWBRIDGE_DEVICE"))
	}
	if strings.Contains(sel, ":") {
		return e.openPath(ctx, sel)
	}
	want, byFP := parseFingerprint(sel)
	if sel != "" && !byFP {
		return nil, usagef("--device %q: give a path (hid:PATH, usb:BUS-PORT, udp:HOST:PORT, tcp:HOST:PORT, unix:PATH) or a master fingerprint (8 hex digits)", sel)
	}
	infos, err := e.usable(ctx)
	if err != nil {
		return nil, err
	}
	if !byFP {
		switch len(infos) {
		case 0:
			return nil, fmt.Errorf("%w (%semulators are used only when named, e.g. --device udp:127.0.0.1:21324)", device.ErrNoDevice, noUSBHint(e.noUSB))
		case 1:
			return e.openPath(ctx, infos[0].Path)
		}
		return nil, fmt.Errorf("%d wallets are connected: name one with --device (hwbridge devices lists them)", len(infos))
	}
	for _, in := range infos {
		d, err := e.openPath(ctx, in.Path)
		if err != nil {
			e.log.Info("skipping device", "path", in.Path, "err", err)
			continue
		}
		fp, err := d.Fingerprint(ctx)
		if err == nil && fp == want {
			return d, nil
		}
	}
	return nil, fmt.Errorf("no connected wallet has master fingerprint %s (locked devices cannot tell theirs): %w", want, device.ErrNoDevice)
}

// switchIf returns ctx allowing the device to switch apps (device.WithAppSwitch) when the
// person asked for an action at the device (display): read-only lookups never close the
// app the person has open.
func switchIf(ctx context.Context, atDevice bool) context.Context {
	if atDevice {
		return device.WithAppSwitch(ctx)
	}
	return ctx
}
