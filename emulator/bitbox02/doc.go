// Package bitbox02 is hwemu's BitBox02 persona: a virtual BitBox02 (firmware API 9.21,
// multi edition unless Config.BTCOnly) that speaks the real protocol byte for byte, so that
// BitBox's own client (npm bitbox-api, tests in js_test.go) and hwbridge's driver
// (device/bitbox02) can both drive it.
//
// It serves the BitBox02 simulator's transport: 64-byte U2F HID packets on a TCP stream
// (ListenAndServe, Serve; DefaultAddr 127.0.0.1:15423) or an in-process pipe (Pipe). Above
// it: the HWW framing (src/hww.c: 'i' info, NEW, RETRY, BUSY while a request runs,
// NOT_READY while a screen waits for the person), the OP codes ('u', 'h', 'H', 'v', 'n'),
// a Noise XX responder with a static key derived from the seed, the pairing-code screen for
// hosts it has not paired with, and the protobuf API: device info, root fingerprint, BTC
// xpubs and single-sig addresses (p2wpkh, p2wpkh-p2sh, p2tr) with keypath checks as the
// firmware's, transaction signing in the firmware's steps (previous transactions checked,
// recipients and total confirmed, anti-klepto on segwit v0 inputs, BIP-340 on taproot),
// BTC messages, Ethereum addresses, legacy and EIP-1559 transactions, messages and EIP-712
// typed data (values asked by path, hashed on the device: eip712.go). Screens
// go to the emulator.Approver (transcript, policy); a rejected screen is the firmware's
// error 104.
//
// Multisig (multisig.go): p2wsh and p2wsh-p2sh sortedmulti accounts, registered with a
// name given by the host (entering it on the device is not emulated), then used for signing.
//
// Not emulated (answered with the firmware's invalid-input error 101): wallet policies,
// multisig addresses on screen, Litecoin, SLIP-132 xpub versions, Ethereum data
// streaming (data_length) and typed data without anti-klepto (9.26), tokens, Cardano, backups and device management, attestation
// (status 1, as a device without a certificate).
//
// # Errors
//
// New fails on a bad mnemonic; Serve and ListenAndServe fail when they cannot listen or
// accept. Everything the host sends is answered on the wire, never with a Go error.
package bitbox02
