// Package ledgeremu is hwbridge's Ledger-class emulated device: the dashboard (BOLOS) and
// three apps, one open at a time as on a real device — "Bitcoin" and "Bitcoin Test"
// (app-bitcoin-new's v2 protocol: wallet policies, merkleised PSBT v2 and the interactive
// client commands) and "Ethereum" (streamed RLP transactions, personal messages, ERC-20
// token information, full and hashed EIP-712). It speaks the APDUs of the real apps byte for byte, as written down in
// /work/shared/protocols/ledger.md, and is checked against Ledger's own JavaScript clients
// and against the APDU transcripts app-bitcoin-new records against Speculos.
//
// Links: Serve/ListenAndServe speak Speculos' APDU framing on TCP (default 127.0.0.1:9999,
// what ledger-bitcoin, hw-app-eth over hw-transport-node-speculos and HWI expect); Pipe
// gives an in-process transport.Link with the same framing. The package never imports the
// driver in device/ledger: it shares only the transport framing with it.
//
// Every confirmation goes through an emulator.Approver as a Screen (addresses, amounts,
// fee, chain, message text), and emulator.Faults apply to every reply frame (drop,
// corrupt, delay) and incoming APDU (disconnect). Apps: AppBitcoin, AppBitcoinTest,
// AppEthereum; E0 D8 on the dashboard opens them, B0 A7 quits to the dashboard.
//
// # Status words
//
// The host sees what the real apps answer; drivers branch on these:
//
//	0x9000 ok · 0x6985 rejected on the device · 0x5515 locked (SetLocked) · 0x6E01 no app
//	open (dashboard) · 0x6E00 wrong CLA for the open app · 0x6D00 unknown INS · 0x6807 app
//	not installed · 0x6A80 incorrect data (ETH: blind signing off for calldata and hashed
//	EIP-712) · 0x6A82 not supported (BTC: non-standard path without display, coin type of
//	the other network, templates this emulator lacks) · 0x6A86/0x6B00 wrong P1/P2 ·
//	0x6A87 wrong length · 0xB007 CONTINUE without an interrupted command · 0xB008 wrong
//	wallet-policy HMAC · 0xE000 client command (the reply data is the request).
//
// The Bitcoin app adds 2-byte extended error codes as reply data (ledger.md §5.8).
//
// # Ethereum refusals, as app-ethereum 1.22.0
//
// Checked against the app's source (src/features/sign_tx/logic_sign_tx.c, cmd_sign_tx.c,
// src/plugins/erc20/erc20_plugin.c, sign_message_eip712_v0): a call's data is judged at
// the APDU that carries its start (ethstream.go): its first 4 bytes must be in that APDU;
// data with the ERC-20 transfer/approve selector goes to the app's ERC-20 parser, which
// refuses it with 0x6A80 even with blind signing on when ether is sent with it or when it
// is longer than 132 bytes (at the APDU completing byte 164); other calls are refused
// there when blind signing is off. Contract creations, data under 4 bytes and ERC-20 calls
// without token information need blind signing when the transaction completes. Hashed
// EIP-712 checks blind signing before reading the request and ignores bytes after the two
// hashes. Known differences left: the app reports version 1.17.0 (E0 06) and refuses
// EIP-7702 (type 4), which 1.22.0 signs.
//
// # Pinned to the firmware
//
// TestSpeculosTranscripts replays the conformance suite's exchanges recorded from
// app-bitcoin-new 2.4.6 ("Bitcoin Test") and app-ethereum 1.22.0 on Speculos (Nano X,
// device/ledger/testdata/speculos) and requires the same replies, byte for byte. Like the
// app, GET_WALLET_ADDRESS and SIGN_PSBT read each key placeholder's key from the host a
// second time (refetchKeys), and SIGN_PSBT reads an input's BIP-32 derivations as it scans
// the input's keys, then its outpoint and UTXOs, then the keys again for its script. Left:
// the flags byte of B0 01 (0x02 here, Speculos' 0), the Ethereum version, BIP-340
// signatures (random aux data) and SIGN_PSBT from the first input's sequence on (the app
// reads sequences while signing, and reads inputs and outputs again from the host for each
// sighash; hwemu signs from what it read once).
//
// # Limits
//
// Wallet-policy templates: pkh, wpkh, sh(wpkh), tr(KEY) and multi/sortedmulti under sh,
// wsh or sh(wsh). Miniscript, taproot script trees and MuSig2 are refused with 0x6A82.
// The Ethereum app signs legacy, EIP-2930 and EIP-1559 transactions; EIP-7702 (type 4) and
// blob transactions get 0x6501. EIP-712 filtering (INS 0x1E with Ledger-signed filters)
// is not emulated: its activation is refused with 0x6A80, so hosts use the basic mode.
//
// # Clear signing (app-ethereum de18010)
//
// PROVIDE ERC 20 TOKEN INFORMATION (E0 0A, erc20info.go) checks the descriptor's signature
// with Ledger's published key (internal/ledgercal.LedgerPublicKey) and, only with
// Config.TrustTestTokenKey (hwemu --ledger-test-token-key), with hwbridge's emulator test
// key for dev-chain tokens; it answers the asset slot (5, round robin), forgotten after
// each transaction. A transfer/approve of a stored token is shown as "Send 2.5 USDT to
// 0x…" / "Approve 0x… to spend …" and signed with blind signing off. Full EIP-712
// (eip712.go: E0 1A definitions, E0 1C values, E0 0C P2 01) hashes on the device as the
// app does; the domain is always shown, the message's fields with Config.VerboseEIP712
// (the app's "Verbose EIP-712"), else its hash; with neither that nor blind signing on,
// the first shown value is refused with 0x6A80. Domain-only data is refused (the app
// needs a message hash).
//
// # Errors
//
// New returns emulator.ErrBadMnemonic (wrapped) for bad words and an error naming the valid
// apps for an unknown Config.App. ListenAndServe wraps the listen error.
package ledgeremu
