// Package keepkeyemu is a KeepKey emulated device speaking KeepKey's protobuf messages with
// the real ids and fields, framed as "?##" v1 packets (the framing KeepKey kept from Trezor:
// keepkey-firmware lib/board/messages.c checks '?' then "##" and reads a big-endian u16 id
// and u32 length). It is reached over UDP exactly as KeepKey's own emulator is (ListenUDP:
// keepkey-firmware lib/emulator/udp.c binds KEEPKEY_UDP_PORT 11044 for the wire and 11045
// for the debug link, one 64-byte packet per datagram, replies to the last sender, answers
// PINGPING with PONGPONG), or in-process over net.Pipe (Device.Pipe) for Go tests.
//
// The persona is KeepKey firmware 7.10.0 (keepkey/keepkey-firmware tag v7.10.0, d54797ee60;
// every file cited here is the same at master 3d8dec49e0, 2026-03-05)
// as its emulator build reports itself: vendor "keepkey.com", model "K1-14AM", firmware
// variant "Emulator", no bootloader or firmware hash, the four policies of
// include/keepkey/firmware/policy.h (lib/firmware/fsm_msg_common.h fsm_msgGetFeatures).
//
// It implements Initialize/GetFeatures, Ping, ClearSession, Cancel, ButtonRequest/ButtonAck
// with the approval decided after the ack, GetPublicKey (xpub, ypub or zpub by script type,
// as fsm_msgGetPublicKey), GetAddress (p2pkh, p2sh-p2wpkh, p2wpkh), SignMessage, the legacy
// SignTx/TxRequest/TxAck flow of lib/firmware/signing.c (phase 1 checks each input, with
// the previous transaction for non-segwit inputs, and confirms each output; phase 2 signs
// non-segwit inputs after re-reading the whole transaction, and segwit inputs in the witness
// stage; serialized chunks and signatures come back in TxRequest.serialized), and Ethereum
// addresses, legacy/EIP-155 and EIP-1559 transactions (EthereumSignTx with type 2; v is the
// recovery id for 1559, v+27 or v+2·chain_id+35 otherwise; lib/firmware/ethereum.c),
// EthereumSignMessage (id 108) and EthereumSignTypedHash (112).
//
// What KeepKey lacks is refused the way its firmware refuses it: SPENDTAPROOT inputs
// (Failure SyntaxError "Wrong input script type": transaction.c "we don't handle
// spendtaproot input types"), mixing segwit and non-segwit inputs (SyntaxError), and any
// message without a handler here (EIP-712 documents, Ethereum712TypesValues, other chains,
// management) with Failure UnexpectedMessage "Unknown message".
//
// Options.PIN protects the device as pin_sm.c does: PinMatrixRequest before the first use of
// the seed in a session (the matrix is the identity, so positions are digits), PinCancelled
// for a host Cancel or a malformed answer, PinInvalid for a wrong PIN; ClearSession and a
// lost link forget the cached PIN.
//
// Deliberate limits: no passphrase (passphrase protection off), no wipe code, no multisig
// (GetAddress and SignTx refuse the multisig field with SyntaxError), no GetCoinTable, and
// EIP-1559 chain ids above 255 are refused with SyntaxError (the firmware hashes one byte
// of the chain id: ethereum.c hash_rlp_field(&chain_id, 1)). Nothing here is shared with
// device/keepkey.
//
// # Errors
//
// New fails with emulator.ErrBadMnemonic (wrapped) for a mnemonic that is not valid BIP-39;
// ListenUDP fails when the wire port or the debug port (PORT+1) is taken. Everything the
// device refuses goes to the host as a Failure message with KeepKey's FailureType.
package keepkeyemu
