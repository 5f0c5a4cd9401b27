// Package transport moves bytes to and from hardware wallets: links (USB HID through
// karalabe/hid, raw USB through Linux usbfs, UDP as the Trezor emulator speaks it, TCP as
// Speculos speaks it) and the
// framing codecs that ride on them (Trezor Codec v1 64-byte packets, Ledger HID APDU framing,
// Speculos length-prefixed APDUs, U2F HID packets as the BitBox02 and its simulator carry
// them: u2fhid.go). It knows nothing of messages or APDUs beyond framing:
// Exchanger returns data‖SW and the Ledger driver owns the status word.
//
// # Links and paths
//
// Open takes a device path (design.md "Device paths"):
//
//	hid:PATH        a USB HID wallet interface listed by Enumerate      → *HIDLink
//	usb:BUS-PORT    a raw-USB (WebUSB) wallet interface, by sysfs name  → *RawLink
//	udp:HOST:PORT   a Trezor emulator (one 64-byte packet per datagram) → *UDPLink
//	tcp:HOST:PORT   a Speculos-style APDU port (a byte stream)          → a TCP link
//	unix:PATH       a Coldcard simulator's datagram socket (64-byte packets) → *UnixgramLink
//
// Every Link honours SetDeadline, and DoContext ties a deadline to a context, so a read
// blocked on a confirmation the user never gives returns when the context ends. Links
// carry packets or bytes, never messages: pair a HID, raw USB or UDP link with WriteV1/ReadV1
// (Trezor) or NewLedgerHIDExchanger (Ledger), and a TCP link with NewSpeculosExchanger.
//
// # Which Trezors are reachable over USB
//
// The Trezor One with firmware up to 1.6.3 (and its old bootloaders), VID:PID
// 0x534C:0x0001, is a HID device: its wire interface is interface 0, usage page 0xFF00
// (0xFF01 is DebugLink, 0xF1D0 is U2F; both are skipped). Since firmware 1.7.0 (September
// 2018) the Trezor One, and every Trezor T, Safe 3 and Safe 5, enumerates as 0x1209:0x53C1
// (bootloader 0x53C0) with its wire interface as a vendor-class (0xFF) USB interface:
// interface 0, interrupt endpoints 0x81 IN / 0x01 OUT, 64-byte packets (a debug build adds
// the debug link as interface 1, 0x82/0x02). That is WebUSB: hidapi cannot see or open it
// (it sees only the FIDO/U2F HID interface), so it takes raw USB transfers.
//
// The design, per platform:
//
//   - Linux: raw USB through usbfs, in pure Go (rawusb_linux.go): Enumerate reads
//     /sys/bus/usb/devices (idVendor, idProduct, the active bConfigurationValue, the binary
//     descriptors file) and lists each WebUSB Trezor's wire interface as usb:BUS-PORT[.PORT…]
//     (the sysfs name: stable across replugs into the same port); OpenRaw opens
//     /dev/bus/usb/BBB/DDD, claims the interface (USBDEVFS_CLAIMINTERFACE; EBUSY is
//     ErrClaimed: Trezor Suite's bridge or trezord holds it) and runs 64-byte interrupt
//     transfers with USBDEVFS_BULK, which usbfs turns into interrupt URBs on interrupt
//     endpoints, each bounded by a kernel timeout of at most rawPoll so that deadlines and
//     cancelled contexts take effect. EPIPE (a stall) is cleared with USBDEVFS_CLEAR_HALT and
//     the transfer retried once; ENODEV/ESHUTDOWN (unplugged) and other bus errors wrap
//     ErrClosed, which drivers report as device.ErrDisconnected and the hub answers by
//     reopening. It needs no cgo and no libusb, so it works in a build without cgo too. HID
//     (Ledger, the HID Trezor One) stays on karalabe/hid. The device nodes need the udev
//     rules (hwbridge udev install). A KeepKey with firmware 7.x (0x2B24:0x0002) has the
//     same interface layout and is reached the same way.
//   - macOS and Windows: HID only, through karalabe/hid. A WebUSB Trezor is listed (through
//     its FIDO HID interface) with Unsupported set to ErrWebUSB; usb: paths fail with
//     ErrNoRawUSB. Use Trezor Suite for it there.
//
// Why not karalabe/usb (same author, EnumerateRaw over a bundled libusb, what go-ethereum
// used for WebUSB Trezors until 2024): it vendors libusb and hidapi as karalabe/hid does, so
// the two cannot be linked into one binary (duplicate C symbols, measured), and replacing
// karalabe/hid with it everywhere would trade the HID backend hwbridge pins (a 2024
// karalabe/hid) for the module proxy's karalabe/usb v0.0.2, whose Device.Read has no timeout
// (a reader goroutine per link, for Ledger too), on platforms this project cannot build
// with cgo or test (no macOS SDK, no Windows toolchain, no USB bus here). google/gousb is cgo+libusb as well, and not served by the
// module proxy. On Linux usbfs is the kernel interface libusb itself uses, and a handful of
// ioctls is less to trust than a second bundled C library. The way to macOS and Windows
// raw USB later: IOKit (IOUSBInterfaceInterface, cgo) and WinUSB (winusb.dll, reachable
// without cgo: the Trezor firmware announces WinUSB in its Microsoft OS descriptors), each
// behind the same usbHandle seam RawLink uses.
//
// Ledger devices (VID 0x2C97, all current models) are HID: the APDU interface is interface 0
// or usage page 0xFFA0, and the model is the high byte of the PID (ledger.md §1.1).
//
// HID writes always carry exactly one leading 0x00 report-id byte, which hidapi strips or
// turns into the report id: HIDLink adds it where karalabe/hid does not (everywhere but
// Windows). HID needs cgo; without it OpenHID fails with errors.ErrUnsupported, Enumerate
// returns only the raw-USB wallets (Linux) with an error wrapping it, and the usb:, udp:,
// tcp: and unix: links still work.
//
// # Errors
//
// Decoders return errors wrapping ErrBadMagic, ErrShortPacket, ErrTooLarge, ErrTruncated and
// ErrUnexpectedV1 (Trezor v1), ErrBadChannel, ErrBadTag and ErrBadSequence (Ledger HID),
// ErrU2FChannel, ErrU2FCommand and ErrU2FSequence (U2F HID).
// ParsePath and Open wrap ErrInvalidPath for a path that does not parse and ErrNoDevice when
// nothing answers at the path. Link I/O errors are wrapped with the step that failed; a
// closed link or a vanished device wraps ErrClosed, and an expired deadline wraps
// os.ErrDeadlineExceeded (and the context's error under DoContext or Exchange). After an
// exchange is interrupted half-way, Exchange returns ErrOutOfSync until the device is
// reopened. ErrClaimed: another program holds a raw-USB wallet interface. ErrBadDescriptor:
// USB descriptors that do not parse (such a device is listed with Unsupported set).
// ErrWebUSB, ErrNoRawUSB and errors.ErrUnsupported mark devices and builds hwbridge cannot
// drive. Callers branch on all of these with errors.Is.
package transport
