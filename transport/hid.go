package transport

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/karalabe/hid"
)

// Device kinds reported by Enumerate.
const (
	KindTrezor = "trezor"
	KindLedger = "ledger"
	// KindBitBox02: a BitBox02 (USB 0x03EB:0x2403, U2F HID framing; see u2fhid.go).
	KindBitBox02 = "bitbox02"
	// KindColdcard: a Coldcard (USB HID 0xd13e:0xcc10, or its simulator on a unix: path).
	KindColdcard = "coldcard"
)

// USB identifiers (trezor.md §1.1, ledger.md §1.1).
const (
	trezorHIDVendor     = 0x534C // Trezor One, firmware ≤ 1.6.3: HID
	trezorHIDProduct    = 0x0001
	trezorUSBVendor     = 0x1209 // Trezor One ≥ 1.7.0, T, Safe 3/5: WebUSB
	trezorUSBProduct    = 0x53C1
	trezorUSBBootloader = 0x53C0
	ledgerVendor        = 0x2C97
	bitbox02Vendor      = 0x03EB // BitBox02 (bitbox-api-rs src/constants.rs)
	bitbox02Product     = 0x2403
	bitbox02Interface   = 0      // interface 0 is the HWW API; interface 1 is U2F
	coldcardVendor      = 0xD13E // ckcc-protocol client.py COINKITE_VID, CKCC_PID
	coldcardProduct     = 0xCC10

	usagePageTrezorWire  = 0xFF00
	usagePageTrezorDebug = 0xFF01
	usagePageFIDO        = 0xF1D0
	usagePageLedger      = 0xFFA0
	usagePageBitBox02    = 0xFFFF
)

// hidPoll is the longest a HID Read blocks in the library before it looks at its deadline
// again: the bound on how late a cancellation takes effect. Data wakes it at once.
const hidPoll = 50 * time.Millisecond

// ErrWebUSB is what Enumerate puts in DeviceInfo.Unsupported, and OpenHID returns, for a
// Trezor that speaks WebUSB. See the package documentation.
var ErrWebUSB = fmt.Errorf("transport: this trezor talks webusb (trezor one firmware 1.7.0 or later, model t, safe 3/5), "+
	"which hwbridge reaches with raw usb transfers on linux only (usb: paths); on this system use trezor suite for this device "+
	"or a trezor emulator on a udp: path: %w", errors.ErrUnsupported)

// DeviceInfo describes one wallet interface found on USB.
type DeviceInfo struct {
	Path      string // "hid:" + the OS path, or "usb:" + the sysfs name (raw USB); pass it to Open
	Kind      string // KindTrezor, KindLedger, KindBitBox02, …
	Model     string // "bitbox02", "trezor1", "nanos", "nanox", "nanosp", "stax", "flex", "apex", "blue", or "" for a WebUSB Trezor
	VendorID  uint16
	ProductID uint16
	Product   string
	Serial    string
	Interface int    // USB interface number (-1 where the OS does not say)
	UsagePage uint16 // HID usage page (0 on Linux, where hidapi's libusb backend does not read it)
	// Unsupported is set for a wallet that was seen but cannot be used: a WebUSB Trezor in a
	// build without raw USB (wrapping ErrWebUSB), or a raw-USB device whose descriptors lack
	// the wallet interface; it wraps errors.ErrUnsupported.
	Unsupported error
}

// Enumerate lists the Trezor, Ledger and Coldcard wallet interfaces on USB, sorted by path: HID
// interfaces (hid: paths) and, where this build has raw USB (Linux), the vendor-class
// interfaces of WebUSB Trezors (usb: paths). Without raw USB, WebUSB Trezors appear with
// Unsupported set. Without cgo there is no HID: Enumerate then returns the raw-USB wallets
// it found together with an error wrapping errors.ErrUnsupported.
func Enumerate(ctx context.Context) ([]DeviceInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	raw, err := enumerateRaw(ctx)
	if err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return nil, err
	}
	if !hid.Supported() {
		return raw, fmt.Errorf("transport: usb hid is unavailable in this build (it needs cgo): %w", errors.ErrUnsupported)
	}
	var all []hid.DeviceInfo
	for _, vid := range []uint16{trezorHIDVendor, trezorUSBVendor, ledgerVendor, coldcardVendor, keepkeyVendor, bitbox02Vendor} {
		infos, err := hid.Enumerate(vid, 0)
		if err != nil {
			return nil, fmt.Errorf("transport: enumerate usb hid devices: %w", err)
		}
		all = append(all, infos...)
	}
	return mergeRaw(filterHID(all), raw, rawSupported), nil
}

// mergeRaw adds the raw-USB wallets to the HID list. Where raw USB is supported, a WebUSB
// Trezor's or KeepKey's HID entries (its FIDO interface, the only one hidapi sees) are
// dropped: the usb: entry is the device.
func mergeRaw(hidInfos, raw []DeviceInfo, rawOK bool) []DeviceInfo {
	out := make([]DeviceInfo, 0, len(hidInfos)+len(raw))
	for _, d := range hidInfos {
		if rawOK && (errors.Is(d.Unsupported, ErrWebUSB) || errors.Is(d.Unsupported, ErrKeepKeyWebUSB)) {
			continue
		}
		out = append(out, d)
	}
	out = append(out, raw...)
	slices.SortFunc(out, func(a, b DeviceInfo) int { return cmp.Compare(a.Path, b.Path) })
	return out
}

// filterHID keeps the wallet interfaces among hidapi's list: the Trezor One wire interface,
// Ledger APDU interfaces, and (marked unsupported) WebUSB Trezors; never debug or FIDO
// interfaces of a usable device.
func filterHID(infos []hid.DeviceInfo) []DeviceInfo {
	var out []DeviceInfo
	seen := map[string]bool{}
	for _, in := range infos {
		d := DeviceInfo{
			Path: SchemeHID + ":" + in.Path, VendorID: in.VendorID, ProductID: in.ProductID,
			Product: in.Product, Serial: in.Serial, Interface: in.Interface, UsagePage: in.UsagePage,
		}
		switch {
		case in.VendorID == trezorHIDVendor && in.ProductID == trezorHIDProduct:
			if in.UsagePage == usagePageTrezorDebug || in.UsagePage == usagePageFIDO ||
				in.UsagePage != usagePageTrezorWire && in.Interface != 0 {
				continue
			}
			d.Kind, d.Model = KindTrezor, "trezor1"
		case in.VendorID == trezorUSBVendor && (in.ProductID == trezorUSBProduct || in.ProductID == trezorUSBBootloader):
			// hidapi sees only the FIDO interface; the wire interface is vendor class.
			d.Kind, d.Unsupported = KindTrezor, ErrWebUSB
		case in.VendorID == keepkeyVendor:
			if !keepkeyInfo(in, &d) {
				continue
			}
		case in.VendorID == ledgerVendor:
			model, ok := ledgerModel(in.ProductID)
			if !ok || in.UsagePage == usagePageFIDO || in.UsagePage != usagePageLedger && in.Interface != 0 {
				continue
			}
			d.Kind, d.Model = KindLedger, model
		case in.VendorID == bitbox02Vendor && in.ProductID == bitbox02Product:
			if in.UsagePage != usagePageBitBox02 && in.Interface != bitbox02Interface {
				continue
			}
			d.Kind, d.Model = KindBitBox02, "bitbox02"
		case in.VendorID == coldcardVendor && in.ProductID == coldcardProduct:
			// one HID interface (the others are serial and mass storage)
			d.Kind, d.Model = KindColdcard, "coldcard"
		default:
			continue
		}
		if seen[d.Path] {
			continue // macOS lists one entry per top-level collection
		}
		seen[d.Path] = true
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b DeviceInfo) int { return cmp.Compare(a.Path, b.Path) })
	return out
}

// ledgerModel applies ledger.md §1.1: current PIDs are 0xMMII with MM the model byte;
// bootloaders and old firmware use the legacy PIDs.
func ledgerModel(pid uint16) (string, bool) {
	models := map[uint16]string{0x10: "nanos", 0x40: "nanox", 0x50: "nanosp", 0x60: "stax", 0x70: "flex", 0x80: "apex"}
	legacy := map[uint16]string{0x0000: "blue", 0x0001: "nanos", 0x0004: "nanox", 0x0005: "nanosp", 0x0006: "stax", 0x0007: "flex", 0x0008: "apex"}
	if m, ok := models[pid>>8]; ok {
		return m, true
	}
	m, ok := legacy[pid]
	return m, ok
}

// OpenHID opens the wallet interface at osPath (a DeviceInfo.Path without "hid:"). It must
// be one Enumerate lists as usable.
func OpenHID(ctx context.Context, osPath string) (*HIDLink, error) {
	devs, err := Enumerate(ctx)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(devs, func(d DeviceInfo) bool { return d.Path == SchemeHID+":"+osPath })
	if i < 0 {
		return nil, fmt.Errorf("transport: no trezor or ledger wallet interface at hid:%s (unplugged? run hwbridge devices): %w", osPath, ErrNoDevice)
	}
	info := devs[i]
	if info.Unsupported != nil {
		return nil, fmt.Errorf("transport: open hid:%s: %w", osPath, info.Unsupported)
	}
	dev, err := hid.DeviceInfo{Path: osPath, VendorID: info.VendorID, ProductID: info.ProductID}.Open()
	if err != nil {
		return nil, defaultHIDDiag.openError(osPath, err)
	}
	return newHIDLink(dev, info, hidNeedsReportID), nil
}

// hidNeedsReportID: whether HIDLink must put the 0x00 report-id byte in front of each
// report itself. Our devices have no report ids, and hidapi wants a leading 0x00 on every
// write, which it strips (Linux/FreeBSD libusb backend, macOS) or sends as the report id
// (Windows). karalabe/hid adds that byte itself on Windows only and passes the buffer as is
// elsewhere, where a bare report whose first byte is not zero (a Ledger channel 0x01xx, a
// Trezor '?') would still work, but one starting with 0x00 would lose that byte. So we add
// it on every other OS, and the device always gets the 64 bytes with exactly one report id.
var hidNeedsReportID = runtime.GOOS != "windows"

// hidDevice is the part of karalabe/hid's Device a HIDLink uses.
type hidDevice interface {
	Write(b []byte) (int, error)
	ReadTimeout(b []byte, timeoutMillis int) (int, error)
	Close() error
}

// HIDLink is an open USB HID wallet interface. Each Write sends one 64-byte report, each
// Read returns one. Reads wait in the library for at most hidPoll at a time, so a deadline
// (also one set from another goroutine) interrupts them without a reader goroutine.
type HIDLink struct {
	info     DeviceInfo
	reportID bool

	// mu is held for reading around every call into the device and for writing by Close,
	// so the handle is never freed under a call (karalabe/hid does not guard that).
	mu  sync.RWMutex
	dev hidDevice // nil once closed

	dlMu     sync.Mutex
	deadline time.Time
}

func newHIDLink(dev hidDevice, info DeviceInfo, reportID bool) *HIDLink {
	return &HIDLink{dev: dev, info: info, reportID: reportID}
}

// Info describes the device.
func (l *HIDLink) Info() DeviceInfo { return l.info }

// SetDeadline sets the deadline for Read and Write; a past one makes a blocked Read return
// within hidPoll with an error wrapping os.ErrDeadlineExceeded.
func (l *HIDLink) SetDeadline(t time.Time) error {
	l.dlMu.Lock()
	l.deadline = t
	l.dlMu.Unlock()
	return nil
}

// wait returns how long the next library call may block, or an error once the deadline
// has passed.
func (l *HIDLink) wait(op string) (time.Duration, error) {
	l.dlMu.Lock()
	dl := l.deadline
	l.dlMu.Unlock()
	if dl.IsZero() {
		return hidPoll, nil
	}
	left := time.Until(dl)
	if left <= 0 {
		return 0, fmt.Errorf("transport: hid %s: %w", op, os.ErrDeadlineExceeded)
	}
	return min(left, hidPoll), nil
}

// Read returns one input report.
func (l *HIDLink) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	for {
		wait, err := l.wait("read")
		if err != nil {
			return 0, err
		}
		ms := max(1, int((wait+time.Millisecond-1)/time.Millisecond))
		l.mu.RLock()
		if l.dev == nil {
			l.mu.RUnlock()
			return 0, fmt.Errorf("transport: hid read: %w", ErrClosed)
		}
		n, err := l.dev.ReadTimeout(b, ms)
		l.mu.RUnlock()
		if err != nil {
			return 0, fmt.Errorf("transport: hid read: %w: %w", ErrClosed, err)
		}
		if n > 0 {
			return n, nil
		}
	}
}

// Write sends b as one output report, with the report-id byte hidapi expects.
func (l *HIDLink) Write(b []byte) (int, error) {
	if _, err := l.wait("write"); err != nil {
		return 0, err
	}
	report := b
	if l.reportID {
		report = make([]byte, 1+len(b))
		copy(report[1:], b)
	}
	l.mu.RLock()
	if l.dev == nil {
		l.mu.RUnlock()
		return 0, fmt.Errorf("transport: hid write: %w", ErrClosed)
	}
	n, err := l.dev.Write(report)
	l.mu.RUnlock()
	if l.reportID {
		n--
	}
	n = max(0, min(n, len(b)))
	if err != nil {
		return n, fmt.Errorf("transport: hid write: %w: %w", ErrClosed, err)
	}
	if n < len(b) {
		return n, fmt.Errorf("transport: hid write: %d of %d bytes: %w", n, len(b), io.ErrShortWrite)
	}
	return n, nil
}

// Close releases the device; it waits for a Read in progress (at most hidPoll). Closing
// twice is harmless.
func (l *HIDLink) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dev == nil {
		return nil
	}
	err := l.dev.Close()
	l.dev = nil
	return err
}
