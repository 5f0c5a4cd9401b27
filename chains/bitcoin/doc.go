// Package bitcoin is hwbridge's watch-only Bitcoin wallet over device keys: output
// descriptors (BIP-380 family) built from the xpubs a device returns, receive and change
// addresses with a gap limit, chain backends (Bitcoin Core/btcd JSON-RPC and Esplora
// REST), coin selection (branch-and-bound, then largest-first), exact fees, and PSBTs that
// carry what devices need to sign and to recognise change. Devices are reached only through
// the device.Device interface (KeySource, Signer).
//
// Specs: BIP-32, BIP-44/49/84/86, BIP-48 (multisig accounts), BIP-125 (RBF), BIP-174,
// BIP-380..386 and BIP-389 (descriptors).
//
// # Errors
//
// Callers can branch on ErrDescriptor, ErrAmount, ErrAddress (including an address for
// another network), ErrInsufficientFunds, ErrFeeTooHigh (the sanity cap; --force skips it),
// ErrNoFeeEstimate, ErrTxNotFound and ErrRejected (a node refused a broadcast), and on the
// psbt package's ErrMismatch/ErrSignature/ErrIncomplete for failed checks before broadcast.
// An air-gapped import refuses a PSBT or transaction other than the exported one with
// ErrNotExported; DecodeSigned and the wallet-export parsers wrap device.ErrInvalidInput, and
// a multisig XPUB export given as a wallet export is ErrMultisigExport.
package bitcoin
