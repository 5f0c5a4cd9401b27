// Package transport moves bytes to and from hardware wallets: links (USB HID through
// karalabe/hid, UDP as the Trezor emulator speaks it, TCP as Speculos speaks it) and the
// framing codecs that ride on them (Trezor Codec v1 64-byte packets, Ledger HID APDU framing,
// Speculos length-prefixed APDUs). It knows nothing of messages or APDUs beyond framing.
//
// # Errors
//
// Decoders return errors wrapping ErrBadMagic, ErrShortPacket, ErrTooLarge, ErrTruncated and
// ErrUnexpectedV1; callers branch on them with errors.Is. Link I/O errors are wrapped with the
// step that failed; a closed or vanished device wraps ErrClosed.
package transport
