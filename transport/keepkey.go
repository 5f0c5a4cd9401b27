package transport

import (
	"errors"
	"fmt"

	"github.com/karalabe/hid"
)

// KeepKey reach. KeepKey kept Trezor's v1 framing ("?##" 64-byte packets: keepkey-firmware
// lib/board/messages.c), so its links are read with ReadV1/WriteV1 like a Trezor's. Its
// emulator speaks the Trezor emulator's UDP protocol (lib/emulator/udp.c: one packet per
// datagram, PINGPING/PONGPONG, wire port 11044, debug link 11045), so a KeepKey emulator
// path, keepkey:HOST:PORT, is dialled as a udp: path; the scheme only says which driver
// speaks there.
const (
	KindKeepKey = "keepkey"
	// SchemeKeepKey is keepkey:HOST:PORT, a KeepKey emulator (hwemu --keepkey, or
	// keepkey-firmware's own kkemu; default port 11044).
	SchemeKeepKey = "keepkey"

	// USB identifiers (keepkey-firmware lib/board/usb.c): firmware 7.x presents a vendor
	// (WebUSB) interface at 0x2B24:0x0002 next to a U2F HID interface; older firmware and
	// the bootloader enumerate as HID at 0x2B24:0x0001. The vendor interface is number 0
	// with interrupt endpoints 0x81 IN and 0x01 OUT and 64-byte packets, as a Trezor's (the
	// debug link, on debug builds only, is interface 1, endpoints 0x82/0x02).
	keepkeyVendor     = 0x2B24
	keepkeyHIDProduct = 0x0001
	keepkeyUSBProduct = 0x0002
)

// ErrKeepKeyWebUSB is what Enumerate puts in DeviceInfo.Unsupported, and OpenHID returns,
// for a KeepKey whose firmware talks WebUSB only (7.x) in a build without raw USB: its
// wallet interface is vendor class, which HID cannot open. On Linux it is a usb: path.
var ErrKeepKeyWebUSB = fmt.Errorf("transport: this keepkey talks webusb (current firmware), "+
	"which hwbridge reaches with raw usb transfers on linux only (usb: paths); on this system use the keepkey client "+
	"for this device or a keepkey emulator on a keepkey: path: %w", errors.ErrUnsupported)

// keepkeyInfo fills d for a KeepKey interface hidapi lists, and reports whether it is one
// to list: the HID wallet interface of older firmware (usable), or the U2F interface of a
// WebUSB KeepKey (listed as unsupported, so that `devices` says why it cannot be used).
func keepkeyInfo(in hid.DeviceInfo, d *DeviceInfo) bool {
	switch {
	case in.VendorID != keepkeyVendor:
		return false
	case in.ProductID == keepkeyHIDProduct:
		if in.UsagePage == usagePageFIDO || in.UsagePage != usagePageTrezorWire && in.Interface != 0 {
			return false
		}
		d.Kind, d.Model = KindKeepKey, "keepkey"
		return true
	case in.ProductID == keepkeyUSBProduct:
		d.Kind, d.Model, d.Unsupported = KindKeepKey, "keepkey", ErrKeepKeyWebUSB
		return true
	}
	return false
}
