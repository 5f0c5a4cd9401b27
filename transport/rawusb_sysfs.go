package transport

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// SchemeUSB names a wallet interface reached with raw USB transfers: usb:BUS-PORT[.PORT…],
// the device's name under /sys/bus/usb/devices (e.g. usb:1-3.2, bus 1, port 3 of the root
// hub, port 2 of the hub there). The name follows the physical port, so it survives a
// replug into the same port, unlike the /dev/bus/usb/BBB/DDD device number.
const SchemeUSB = "usb"

// rawWallet is one USB identity whose wallet interface is vendor-class (trezor.md §1.1).
type rawWallet struct {
	vendor, product uint16
	kind            string
	iface           uint8 // the wire interface; the debug link is the next (debug builds only)
}

// rawWallets: Trezor One from firmware 1.7.0, Model T, Safe 3 and 5 (0x53C1), and their
// bootloaders (0x53C0); KeepKey firmware 7.x (0x2B24:0x0002, keepkey-firmware
// lib/board/usb.c: the same layout as the Trezor One's). The Trezor One with HID firmware
// (0x534C:0x0001) and older KeepKeys (0x2B24:0x0001) stay on hid:.
var rawWallets = []rawWallet{
	{trezorUSBVendor, trezorUSBProduct, KindTrezor, 0},
	{trezorUSBVendor, trezorUSBBootloader, KindTrezor, 0},
	{keepkeyVendor, keepkeyUSBProduct, KindKeepKey, 0},
}

// usbSysfs enumerates USB devices from sysfs and opens them through usbfs device nodes.
type usbSysfs struct {
	sysfs string // "/sys"
	devfs string // "/dev": nodes are devfs/bus/usb/BBB/DDD
	// open opens a device node for usbfs ioctls.
	open func(node string) (usbHandle, error)
}

// sysfsDev is one USB device as sysfs lists it.
type sysfsDev struct {
	name         string // "1-3.2"
	busnum       int
	devnum       int
	config       uint8 // bConfigurationValue: the active configuration
	product      string
	serial       string
	desc         usbDevice
	wallet       rawWallet
	wire         rawWire
	unsupported  error
	vendor, prod uint16
}

// enumerate lists the raw-USB wallets, sorted by path.
func (u usbSysfs) enumerate(ctx context.Context) ([]DeviceInfo, error) {
	devs, err := u.scan(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]DeviceInfo, 0, len(devs))
	for _, d := range devs {
		out = append(out, d.info())
	}
	return out, nil
}

func (d sysfsDev) info() DeviceInfo {
	in := DeviceInfo{
		Path: SchemeUSB + ":" + d.name, Kind: d.wallet.kind, VendorID: d.vendor, ProductID: d.prod,
		Product: d.product, Serial: d.serial, Interface: int(d.wallet.iface), Unsupported: d.unsupported,
	}
	// bcdDevice: 1.xx is the Trezor One's legacy firmware (legacy/firmware/usb.c), 2.xx the
	// core firmware of the T and the Safes (core/src/usb.py), which Features tell apart.
	switch {
	case d.wallet.kind == KindKeepKey:
		in.Model = "keepkey"
	case d.prod == trezorUSBProduct && d.desc.Release>>8 == 1:
		in.Model = "trezor1"
	}
	return in
}

// scan reads sysfs' USB device directories and keeps the raw-USB wallets.
func (u usbSysfs) scan(ctx context.Context) ([]sysfsDev, error) {
	dir := filepath.Join(u.sysfs, "bus", "usb", "devices")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // no USB bus here (a container without /sys/bus/usb)
	}
	if err != nil {
		return nil, fmt.Errorf("transport: enumerate usb devices: %w", err)
	}
	var out []sysfsDev
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !validUSBName(e.Name()) {
			continue // root hubs (usb1) and interfaces (1-3.2:1.0)
		}
		d, ok := u.read(filepath.Join(dir, e.Name()))
		if !ok {
			continue
		}
		d.name = e.Name()
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b sysfsDev) int { return cmp.Compare(a.name, b.name) })
	return out, nil
}

// read reads one device directory; ok is false for devices that are not raw-USB wallets or
// that vanished while being read.
func (u usbSysfs) read(dir string) (d sysfsDev, ok bool) {
	attr := func(name string) (string, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		return strings.TrimSpace(string(b)), err
	}
	hex16 := func(name string) (uint16, error) {
		s, err := attr(name)
		if err != nil {
			return 0, err
		}
		v, err := strconv.ParseUint(s, 16, 16)
		return uint16(v), err
	}
	vid, err1 := hex16("idVendor")
	pid, err2 := hex16("idProduct")
	if err1 != nil || err2 != nil {
		return d, false
	}
	i := slices.IndexFunc(rawWallets, func(w rawWallet) bool { return w.vendor == vid && w.product == pid })
	if i < 0 {
		return d, false
	}
	d.wallet, d.vendor, d.prod = rawWallets[i], vid, pid
	d.product, _ = attr("product") // string descriptors are optional
	d.serial, _ = attr("serial")
	num := func(name string) (int, error) {
		s, err := attr(name)
		if err != nil {
			return 0, err
		}
		return strconv.Atoi(s)
	}
	var err error
	if d.busnum, err = num("busnum"); err != nil {
		return d, false
	}
	if d.devnum, err = num("devnum"); err != nil {
		return d, false
	}
	cfg, err := num("bConfigurationValue")
	if err != nil || cfg < 1 || cfg > 255 {
		// Unconfigured (empty file) or unreadable: nothing to claim yet.
		d.unsupported = fmt.Errorf("transport: usb:%s is not configured yet (replug it): %w", filepath.Base(dir), errors.ErrUnsupported)
		return d, true
	}
	d.config = uint8(cfg)
	raw, err := os.ReadFile(filepath.Join(dir, "descriptors"))
	if err != nil {
		return d, false
	}
	if len(raw) > usbMaxDescriptors {
		raw = raw[:usbMaxDescriptors]
	}
	if d.desc, err = parseUSBDescriptors(raw); err != nil {
		d.unsupported = fmt.Errorf("transport: usb:%s: %w: %w", filepath.Base(dir), err, errors.ErrUnsupported)
		return d, true
	}
	if d.wire, err = d.desc.wireInterface(d.config, d.wallet.iface); err != nil {
		d.unsupported = fmt.Errorf("transport: usb:%s has no wallet interface: %w: %w", filepath.Base(dir), err, errors.ErrUnsupported)
	}
	return d, true
}

// node is the usbfs device node of d.
func (u usbSysfs) node(d sysfsDev) string {
	return filepath.Join(u.devfs, "bus", "usb", fmt.Sprintf("%03d", d.busnum), fmt.Sprintf("%03d", d.devnum))
}

// openRaw opens the wallet interface of the raw-USB device named name ("1-3.2").
func (u usbSysfs) openRaw(ctx context.Context, name string) (*RawLink, error) {
	if !validUSBName(name) {
		return nil, fmt.Errorf("%w: usb:%s: want usb:BUS-PORT[.PORT…] (run hwbridge devices)", ErrInvalidPath, name)
	}
	devs, err := u.scan(ctx)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(devs, func(d sysfsDev) bool { return d.name == name })
	if i < 0 {
		return nil, fmt.Errorf("transport: no wallet at usb:%s (unplugged? run hwbridge devices): %w", name, ErrNoDevice)
	}
	d := devs[i]
	if d.unsupported != nil {
		return nil, fmt.Errorf("transport: open usb:%s: %w", name, d.unsupported)
	}
	node := u.node(d)
	h, err := u.open(node)
	switch {
	case errors.Is(err, os.ErrPermission):
		return nil, fmt.Errorf("transport: open usb:%s: no permission on %s: %s: %w", name, node, udevHint, err)
	case errors.Is(err, os.ErrNotExist), gone(err):
		return nil, fmt.Errorf("transport: open usb:%s: %s vanished (unplugged?): %w: %w", name, node, ErrNoDevice, err)
	case err != nil:
		return nil, fmt.Errorf("transport: open usb:%s: %s: %w", name, node, err)
	}
	return openRawLink(h, d.info(), d.wire)
}
