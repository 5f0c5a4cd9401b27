// Package keepkey drives KeepKey wallets on any transport.Link: a USB HID report pipe
// (older firmware), the vendor (WebUSB) interface where transport offers it, the KeepKey
// emulator's UDP socket, or an in-process pipe. It speaks the wire messages of
// internal/keepkeypb, framed as "?##" 64-byte packets (transport.WriteV1/ReadV1: KeepKey
// kept Trezor's v1 framing, keepkey-firmware lib/board/messages.c), and implements
// device.Device.
//
// Specs: keepkey/device-protocol messages.proto, types.proto, messages-ethereum.proto
// (f2c3c005ad); the flows of keepkey/keepkey-firmware 7.10.0 (tag v7.10.0, d54797ee60):
// lib/firmware/fsm_msg_common.h (Features), fsm_msg_coin.h (public keys, addresses,
// messages), signing.c (SignTx/TxRequest), ethereum.c and fsm_msg_ethereum.h.
//
// # Exchanges and sessions
//
// As device/trezor: one exchange at a time; the first call sends Initialize and checks the
// vendor ("keepkey.com"); every ButtonRequest is acknowledged with ButtonAck (Options.
// OnButton hears about it); PinMatrixRequest and PassphraseRequest are answered from
// Options.PIN and Options.Passphrase; a cancelled context sends Cancel and drains the
// reply; a broken exchange is re-synchronised on the next call with Initialize.
//
// # What KeepKey lacks
//
// Requests KeepKey cannot do are refused before anything is sent, wrapping
// errors.ErrUnsupported: taproot (addresses, xpubs of BIP-86 accounts, inputs: firmware
// 7.10.0 has no taproot signing), Ethereum transactions other than legacy and EIP-1559,
// EIP-1559 access lists and EIP-1559 chain ids above 255 (ethereum.c hashes one byte of
// the chain id), chain ids over 32 bits, regtest (KeepKey's coin table has Bitcoin and
// Testnet only), PSBT multisig. KeepKey has no PSBT of its own: SignPSBT maps the packet
// onto the SignTx flow (single-key p2pkh, p2sh-p2wpkh and p2wpkh inputs of this device; the
// full previous transaction of p2pkh inputs). EIP-712 documents are signed as hashes
// (EthereumSignTypedHash): device.SignTypedData hashes them on the host.
//
// # Errors
//
// Failures the device reports are *device.Error with Code the raw FailureType and Kind:
// ActionCancelled and PinCancelled map to device.ErrUserRejected, PinExpected and
// PinInvalid to device.ErrLocked, SyntaxError to device.ErrInvalidInput, everything else
// to device.ErrProtocol. A PIN or passphrase prompt without a provider is device.ErrLocked.
// A link that goes away is device.ErrDisconnected; a reply that does not come within the
// link timeout is device.ErrLinkLost; a cancelled context wraps context.Canceled. Requests
// the driver refuses before talking to the device wrap device.ErrInvalidInput; features
// KeepKey lacks wrap errors.ErrUnsupported.
package keepkey
