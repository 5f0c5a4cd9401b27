// Package transport moves bytes to and from hardware wallets: links (USB HID through
// karalabe/hid, UDP as the Trezor emulator speaks it, TCP as Speculos speaks it) and the
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
//	udp:HOST:PORT   a Trezor emulator (one 64-byte packet per datagram) → *UDPLink
//	tcp:HOST:PORT   a Speculos-style APDU port (a byte stream)          → a TCP link
//	unix:PATH       a Coldcard simulator's datagram socket (64-byte packets) → *UnixgramLink
//
// Every Link honours SetDeadline, and DoContext ties a deadline to a context, so a read
// blocked on a confirmation the user never gives returns when the context ends. Links
// carry packets or bytes, never messages: pair a HID or UDP link with WriteV1/ReadV1
// (Trezor) or NewLedgerHIDExchanger (Ledger), and a TCP link with NewSpeculosExchanger.
//
// # Which Trezors are reachable over USB
//
// Only the Trezor One with firmware up to 1.6.3 (and its old bootloaders), VID:PID
// 0x534C:0x0001, is a HID device: its wire interface is interface 0, usage page 0xFF00
// (0xFF01 is DebugLink, 0xF1D0 is U2F; both are skipped). Since firmware 1.7.0 (September
// 2018) the Trezor One, and every Trezor T, Safe 3 and Safe 5, enumerates as 0x1209:0x53C1
// (bootloader 0x53C0) with its wire interface as a vendor-class (0xFF) USB interface: that
// is WebUSB, reached with libusb interrupt transfers, and hidapi cannot see or open it —
// only the FIDO/U2F HID interface is visible. karalabe/hid compiles a private libusb for
// hidapi's Linux backend but exposes no raw-USB API (its older raw enumeration is gone), and
// hwbridge does not link libusb itself. So Enumerate lists such a Trezor with
// DeviceInfo.Unsupported set to ErrWebUSB, and OpenHID refuses it with the same error,
// which says to use Trezor Suite for it, or a Trezor emulator on a udp: path.
//
// Ledger devices (VID 0x2C97, all current models) are HID: the APDU interface is interface 0
// or usage page 0xFFA0, and the model is the high byte of the PID (ledger.md §1.1).
//
// HID writes always carry exactly one leading 0x00 report-id byte, which hidapi strips or
// turns into the report id: HIDLink adds it where karalabe/hid does not (everywhere but
// Windows). HID needs cgo; without it Enumerate and OpenHID fail with
// errors.ErrUnsupported, and the udp: and tcp: links still work.
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
// reopened. ErrWebUSB and errors.ErrUnsupported mark devices and builds hwbridge cannot
// drive. Callers branch on all of these with errors.Is.
package transport
