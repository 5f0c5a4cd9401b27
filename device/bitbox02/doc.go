// Package bitbox02 drives a BitBox02 (BitBoxSwiss) over any transport.Link that carries its
// 64-byte U2F HID packets: the USB HID interface (0x03EB:0x2403, interface 0) or the BitBox02
// simulator's TCP stream (bitbox02:HOST:PORT, port 15423 by default; hwemu --bitbox02).
// It implements device.Device. Everything here is hand-written from the protocol as the
// firmware (BitBoxSwiss/bitbox02-firmware a3467ad11: src/hww.c, src/rust/bitbox02-rust/src/hww*)
// and BitBox's client (bitbox-api-rs 0.13.0, 91321e3) speak it; BitBox's Go library is not on
// the module proxy, and the npm bitbox-api drives our emulator as the referee.
//
// # Layers
//
//	U2F HID      transport.WriteU2F/ReadU2F: channel 0xff00ff00, command 0xC1 (vendor HWW)
//	HWW          request byte NEW/RETRY/'i', status ACK/NOT_READY/BUSY/NACK: a request whose
//	             screen waits for the person is answered NOT_READY and polled with RETRY
//	OP           'u' unlock, 'h'/'H' Noise handshake, 'v' pairing confirmation, 'n' API
//	Noise        Noise_XX_25519_ChaChaPoly_SHA256, the protocol name also as prologue
//	protobuf     internal/bitbox02pb (Request/Response inside each 'n' message)
//
// # Pairing
//
// The first call unlocks the device and runs the handshake with the host's static key from
// Options.Pairing.Store (generated once). If the device does not know the host, or the store
// does not know the device, the handshake hash becomes a pairing code (base32, "ABCDE FGHIJ\n
// KLMNO PQRST") that Pairing.ShowCode prints while the device shows the same code; the person
// confirms it on the device ('v') and the device's static key is stored, so pairing happens
// once per host (FileStore, DefaultStorePath: os.UserConfigDir()/hwbridge/bitbox02-noise.json).
// A code the person rejects fails with device.ErrUserRejected.
//
// # Signing
//
// The device takes no PSBT: SignPSBT converts one into the firmware's signing steps (every
// input, the previous transactions unless all inputs are taproot, every output, every input
// again) and adds the returned signatures. Every ECDSA signature (segwit v0 inputs, messages,
// Ethereum) runs anti-klepto: the host commits to a random nonce, the device commits to its
// nonce, and the host checks that the signature's R is the device's commitment tweaked by
// the host nonce (ErrBadSignature otherwise). Taproot inputs are BIP-340 signatures without
// anti-klepto (the firmware refuses it for Schnorr). Multisig inputs (p2wsh, p2wsh-p2sh
// sortedmulti) are signed for accounts built from the PSBT's global xpubs, registered on the
// device first when it does not know them (multisig.go). EIP-712 goes to the device whole
// (device.TypedDataSigner): it asks for every value by path and hashes the document itself.
//
// # Errors
//
// Device failures are *device.Error with Family bitbox02 and Code the firmware's API error:
// 104 (user abort) is device.ErrUserRejected, 101 (invalid input) device.ErrInvalidInput, 105
// (wrong state) device.ErrLocked, 106 (disabled, e.g. Ethereum on the Bitcoin-only edition)
// errors.ErrUnsupported, others device.ErrProtocol. What the BitBox02 does not do is refused
// before anything is sent, with sentinels callers can branch on: ErrNoPKH (no p2pkh),
// ErrTypedHash (no bare EIP-712 hashes), ErrTaprootMessage, ErrSighash (only
// SIGHASH_ALL/DEFAULT), all wrapping errors.ErrUnsupported; ErrForeignInput (every input must
// be the device's: single-sig, or a sortedmulti whose cosigners' xpubs the PSBT carries) and ErrNeedPrevTx (non_witness_utxo missing on a segwit v0
// input), wrapping device.ErrInvalidInput; access lists, contract creation and call data over
// 6144 bytes (streamed by the firmware; not done here) likewise. A link that goes away is
// device.ErrDisconnected; a reply that does not come within Options.LinkTimeout (the device
// answers every request at once, NOT_READY while the person decides) is device.ErrLinkLost; a cancelled or expired context wraps its error. After a failed
// exchange the next call starts a new Noise session.
package bitbox02
