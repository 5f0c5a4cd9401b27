// Package ethereum builds, signs, verifies and broadcasts Ethereum transactions for a
// hardware wallet: ETH transfers and ERC-20 (EIP-20) transfer/approve calls as EIP-1559
// (dynamic fee) or legacy (EIP-155) transactions, personal_sign messages (EIP-191) and
// EIP-712 typed data hashed on the host.
//
// A Client talks to a node over JSON-RPC (go-ethereum's ethclient): chain id, pending nonce
// with local tracking so that back-to-back sends do not collide, eth_estimateGas with 20%
// headroom, fees from eth_feeHistory and eth_maxPriorityFeePerGas with user overrides,
// eth_sendRawTransaction and receipts. Signing goes through the Signer interface, which
// device.Device satisfies (use device.Verify to wrap it); every signed transaction's sender
// is recovered and compared with the device's address for the path before anything is
// broadcast.
//
// Specs: EIP-155 (replay-protected legacy transactions), EIP-1559 (fee market),
// EIP-2718 (typed envelopes), EIP-20 (tokens), EIP-55 (checksummed addresses), EIP-191
// (signed data), EIP-712 (typed structured data).
//
// # Errors
//
// Callers can branch with errors.Is on:
//   - ErrInvalidAddress: not an address, a failed EIP-55 checksum, or the zero address;
//   - ErrInvalidAmount, ErrTooManyDecimals: an amount that does not parse exactly;
//   - ErrUnknownToken: a token symbol not in the built-in list for the chain, or an address
//     with no ERC-20 contract;
//   - ErrWrongChain: the node is on another chain than the one asked for, or a transaction
//     was signed for another chain;
//   - ErrInsufficientFunds: the account cannot pay value + gas, or holds too few tokens;
//   - ErrWouldRevert: the node's gas estimate says the call reverts (nothing was sent);
//   - ErrReverted (with *RevertError): the transaction was mined and failed;
//   - ErrSenderMismatch (which also matches device.ErrBadSignature): the signature does not
//     recover to the device's address, so nothing was broadcast;
//   - ErrReceiptTimeout: no receipt before the wait's deadline (the transaction may still
//     be mined; look it up by hash);
//   - ErrInvalidTypedData (which also matches device.ErrInvalidInput): EIP-712 JSON that
//     does not parse or encode.
//
// Device errors (device.ErrUserRejected, device.ErrWrongApp, …) pass through wrapped.
package ethereum
