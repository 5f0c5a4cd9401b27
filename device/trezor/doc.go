// Package trezor drives Trezor-class wallets over Codec v1 (the "?##" 64-byte packets) on
// any transport.Link: a USB HID report pipe, the emulator's UDP socket, or an in-process
// pipe. It speaks the wire messages of internal/trezorpb and implements device.Device.
//
// Specs: trezor-firmware common/protob/messages*.proto and protocol.md; the flows are
// described in ../shared/protocols/trezor.md (§3 session start, §6 SignTx streaming, §6.2 how
// HWI maps a PSBT onto it, §7 Ethereum signing, §8 message signing).
//
// # Exchanges and sessions
//
// One exchange runs at a time (Driver serialises callers with a mutex). The first call sends
// Initialize and checks the vendor in Features. Every ButtonRequest is acknowledged with
// ButtonAck (Options.OnButton hears about it so a UI can say "confirm on your device");
// PinMatrixRequest and PassphraseRequest are answered from Options.PIN and
// Options.Passphrase. A cancelled context interrupts the link; the driver then sends Cancel
// and drains the reply. When an exchange breaks half-way (I/O error, timeout, a reply that
// never came), the session is marked broken and the next call re-synchronises: it drops
// stale packets and sends Initialize until Features comes back.
//
// # Waiting for the person, and a silent link
//
// Only a reply that follows a confirmation may take the person's time: the message after a
// ButtonAck (a screen is up) and after a PIN or passphrase the person entered (the device
// unlocks or derives the seed). Those reads wait until the operation's deadline
// (Options.Timeout, DefaultTimeout 5 minutes, or the caller's context). Every other read
// must get its first packet within Options.LinkTimeout (DefaultLinkTimeout, 3 s); after that
// the call fails with device.ErrLinkLost, whose text says no confirmation was pending, and
// the next call re-synchronises as above. A lost packet costs one call of about 3 s.
//
// # EIP-712 by firmware
//
// SignTypedData (device.TypedDataSigner) hands core firmware (Model T, Safe 3, Safe 5,
// 2.4.3 on) the whole document by struct streaming (EthereumSignTypedData, answering
// EthereumTypedDataStructRequest and EthereumTypedDataValueRequest by member path), so the
// device shows the fields; it signs the hashes on the Trezor One (EthereumSignTypedHash,
// 1.10.5 on), the only firmware that has that message. Both give the same signature.
// SignTypedHash on core firmware is errors.ErrUnsupported.
//
// # Errors
//
// Failures the device reports are *device.Error with Code the raw FailureType and Kind:
// ActionCancelled and PinCancelled map to device.ErrUserRejected, PinExpected and
// PinInvalid to device.ErrLocked, Busy to device.ErrBusy, everything else to
// device.ErrProtocol. A PIN or passphrase prompt without a provider is device.ErrLocked. A
// link that goes away is device.ErrDisconnected; a reply that does not come within the link
// timeout is device.ErrLinkLost; one that waited for the person past the deadline wraps
// context.DeadlineExceeded; a cancelled context wraps context.Canceled. Requests the driver
// refuses before talking to the device wrap device.ErrInvalidInput; features the firmware
// lacks wrap errors.ErrUnsupported.
package trezor
