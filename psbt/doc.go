// Package psbt works with BIP-174 partially signed Bitcoin transactions on top of btcd's
// btcutil/psbt: decoding outside bytes safely (size caps, no panics), describing a PSBT for
// people (text and JSON), the combiner, finalizer and extractor roles, and the checks done
// before a signed transaction is broadcast (Check).
//
// Spec: https://github.com/bitcoin/bips/blob/master/bip-0174.mediawiki
//
// # Errors
//
// Callers can branch on:
//   - ErrMalformed: the bytes are not a PSBT this package accepts (wrapped with the reason);
//   - ErrMismatch: a PSBT differs from what was asked for (outputs, amounts, fee, inputs,
//     change that is not ours);
//   - ErrSignature: an input is unsigned, signed by a key that is not the expected one, or
//     carries a signature that does not verify;
//   - ErrIncomplete: finalization or extraction found inputs without enough signatures.
//
// This package never imports device/: devices are reached by the caller.
package psbt
