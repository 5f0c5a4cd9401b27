// Package ledger drives Ledger devices through their apps' APDUs, over any
// transport.APDUExchanger (Speculos TCP framing for hwemu and Speculos, Ledger HID framing
// for USB). It implements device.Device.
//
// Specs: the Bitcoin app v2 protocol (app-bitcoin-new doc/bitcoin.md, doc/wallet.md,
// doc/merkle.md) and the Ethereum app (app-ethereum doc/ethapp.adoc), as summarised in
// ../shared/protocols/ledger.md. The host side follows Ledger's own clients byte for
// byte: ledger-bitcoin / bitcoin_client_rs for Bitcoin, hw-app-eth for Ethereum.
//
// # Apps
//
// A Ledger runs one app at a time. Every operation first asks which app is open (B0 01):
// "Bitcoin" for mainnet, "Bitcoin Test" for testnet, signet and regtest (the test app
// prints tb1 addresses on regtest too; the driver compares scripts and re-encodes), and
// "Ethereum". Reading never changes what the person has open: without a context from
// device.WithAppSwitch (which only commands that act at the device pass: signing, showing
// an address) a wrong app gives device.ErrWrongApp naming the app to open ("open the
// Bitcoin app on your Ledger"), and no QUIT_APP or OPEN_APP is sent. With that context and
// Options.OpenApp the driver quits the open app and starts the needed one from the
// dashboard.
//
// # Bitcoin
//
// Keys are served through wallet policies: the default single-signature policies
// pkh/sh(wpkh)/wpkh/tr of a BIP-44/49/84/86 account, and multisig policies built from a
// PSBT's scripts, derivations and global xpubs, registered (REGISTER_WALLET, reviewed on
// the device) on first use; their HMACs are kept for the driver's life and can be passed
// in Options.Wallets. SignPSBT converts the PSBT v0 to v2 maps, merkleises them and answers
// the app's client commands (YIELD, GET_PREIMAGE, GET_MERKLE_LEAF_PROOF,
// GET_MERKLE_LEAF_INDEX, GET_MORE_ELEMENTS); the yielded signatures are merged back.
// Inputs belonging to different policies are signed with one SIGN_PSBT each.
//
// # Waiting for the person, and a silent link
//
// A Ledger app sends nothing while it shows a screen, so the driver decides from the
// protocol which replies may follow one: OPEN_APP, GET_EXTENDED_PUBKEY and
// GET_WALLET_ADDRESS with display, REGISTER_WALLET and SIGN_MESSAGE (every reply of the
// command), the last chunk of an Ethereum transaction or personal message, the EIP-712
// signature, the Ethereum address with display, and in SIGN_PSBT the replies from the
// device's request for the last output's map up to its first YIELD (the app reviews the
// transaction after reading every output and before signing; see psbtScreens). Those wait
// until the operation's deadline (Options.Timeout, DefaultTimeout 5 minutes) and fire
// Options.OnScreen once per operation (the hub's "confirm on your device" event). Every
// other APDU and client-command reply must come within Options.LinkTimeout
// (DefaultLinkTimeout, 3 s), or the call fails with device.ErrLinkLost. After any failed
// exchange the next operation first re-opens the link (Options.Reopen) and drains stale
// replies, so a lost or garbled frame costs one call. A host cannot take a Ledger's screen
// down: when a call that may have put one up is cancelled or times out, the next exchange
// waits for the person too (and fires Options.OnScreen).
//
// # Errors
//
// Status words become *device.Error with Code the raw status word and Kind: 0x6985 and
// 0x5501 device.ErrUserRejected; 0x5515 (and the older 0x6982, 0x6B0C)
// device.ErrLocked; 0x6E00, 0x6E01, 0x6D00, 0x6511 and a wrong app in B0 01
// device.ErrWrongApp with a message naming the app to open; 0x6A80, 0x6A82, 0xB008
// device.ErrInvalidInput (with the Bitcoin app's extended error code explained); others
// device.ErrProtocol. The Ethereum app's 0x6A80 on a transaction with data is reported by
// cause: data starting with the ERC-20 transfer/approve selector that the app's ERC-20
// parser refuses (ether sent with it, or longer than 132 bytes; refused even with blind
// signing on) wraps ErrInvalidERC20Data; otherwise, when the app's configuration shows
// blind signing off (and always on an EIP-712 hash), ErrBlindSigningDisabled, whose text
// says to enable "Blind signing" in the app's settings; else a plain refused-data error. A link that went away is
// device.ErrDisconnected (reopen the device); a reply missing past the link timeout is
// device.ErrLinkLost; a garbled one device.ErrProtocol; an ended context wraps ctx.Err().
// Requests refused before reaching the device wrap device.ErrInvalidInput; features the
// apps lack wrap errors.ErrUnsupported.
//
// # Clear signing on the Ethereum app
//
// Before SIGN of an ERC-20 transfer/approve, when GET APP CONFIGURATION asks for token
// information (flag 0x02), the driver sends PROVIDE ERC 20 TOKEN INFORMATION (E0 0A) with
// Ledger's signed descriptor (USDT and USDC, embedded from
// @ledgerhq/cryptoassets-evm-signatures 13.7.1 in internal/ledgercal/tokens) or one given in
// Options.TokenDescriptors, so that the app shows "Send 2.5 USDT" with blind signing off;
// an unknown token leaves the call to blind signing, and its refusal says so.
// SignTypedData (device.TypedDataSigner) streams EIP-712 documents in full (E0 1A, 1C,
// 0C P2 01; eip712.go) on apps from 1.9.19, and falls back to the v0 hashes (E0 0C P2 00)
// on older apps; the app signs neither without a message, so domain-only data is
// errors.ErrUnsupported.
package ledger
