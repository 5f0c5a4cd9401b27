// Package ur is Blockchain Commons' Uniform Resources (BCR-2020-005, BCR-2020-012): the
// bytewords alphabet, single-part URs (ur:TYPE/BYTEWORDS) and fountain-coded multi-part URs
// (ur:TYPE/SEQ-LEN/BYTEWORDS) with the Xoshiro256** generator and CRC-32 checksums the
// reference implementation (github.com/BlockchainCommons/bc-ur) uses, plus the CBOR registry
// types air-gapped Bitcoin signers exchange (BCR-2020-006/007/010/015): crypto-psbt / psbt,
// crypto-hdkey, crypto-output and crypto-account.
//
// Hand-written: the Go module proxy serves no maintained Go implementation of UR (no
// bc-ur module is listed there), so bytewords, the PRNG, the fountain encoder/decoder and the
// UR framing are written here from the specifications and checked against the reference
// implementation's published test vectors (testdata/README.md) and, in both directions,
// against the npm libraries @ngraveio/bc-ur and @keystonehq/bc-ur-registry-btc. CBOR itself
// is github.com/fxamacker/cbor; CRC-32 is hash/crc32 (IEEE, the polynomial UR names).
package ur
