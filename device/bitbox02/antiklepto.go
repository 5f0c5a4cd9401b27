package bitbox02

import (
	"bytes"
	"crypto/rand"
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/hwbridge/hwbridge/device"
)

// Anti-klepto, the host's half (BitBox's ECDSA sign-to-contract, as in libsecp256k1-zkp's
// ecdsa_s2c / anti-exfil; bitbox-api-rs src/antiklepto.rs). Hand-written on btcec because no
// Go library implements it:
//
//  1. the host picks a random 32-byte host nonce and sends its commitment
//     tagged_sha256("s2c/ecdsa/data", host_nonce);
//  2. the device answers with its nonce commitment R1 = k·G (33-byte compressed point);
//  3. the host sends the host nonce; the device signs with k' = k + t, where
//     t = tagged_sha256("s2c/ecdsa/point", R1 ‖ host_nonce);
//  4. the host checks that the signature's r is the x coordinate of R1 + t·G.
//
// A device that wanted to leak its key through chosen nonces cannot: k' is blinded by a
// value it committed to before it saw the host nonce.

// taggedHash is BIP-340's tagged hash, sha256(sha256(tag) ‖ sha256(tag) ‖ parts…), which
// libsecp256k1-zkp's s2c uses too.
func taggedHash(tag string, parts ...[]byte) [32]byte {
	return *chainhash.TaggedHash([]byte(tag), parts...)
}

// newHostNonce returns a fresh host nonce and its commitment.
func newHostNonce() (nonce []byte, commitment []byte, err error) {
	nonce = make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return nil, nil, err
	}
	c := taggedHash("s2c/ecdsa/data", nonce)
	return nonce, c[:], nil
}

// verifyAntiKlepto checks that sig (r‖s…) was made with the nonce R1 + t·G.
func verifyAntiKlepto(hostNonce, signerCommitment, sig []byte) error {
	if len(sig) < 64 {
		return fmt.Errorf("%w: signature of %d bytes", device.ErrBadSignature, len(sig))
	}
	r1, err := btcec.ParsePubKey(signerCommitment)
	if err != nil || len(signerCommitment) != 33 {
		return fmt.Errorf("%w: anti-klepto signer commitment is not a compressed point", device.ErrBadSignature)
	}
	t := taggedHash("s2c/ecdsa/point", r1.SerializeCompressed(), hostNonce)
	var ts btcec.ModNScalar
	if overflow := ts.SetBytes(&t); overflow != 0 {
		return fmt.Errorf("%w: anti-klepto tweak overflows", device.ErrBadSignature)
	}
	var tg, p1, sum btcec.JacobianPoint
	btcec.ScalarBaseMultNonConst(&ts, &tg)
	r1.AsJacobian(&p1)
	btcec.AddNonConst(&p1, &tg, &sum)
	sum.ToAffine()
	x := sum.X.Bytes()
	if !bytes.Equal(x[:], sig[:32]) {
		return fmt.Errorf("%w: anti-klepto: the signature does not use the host nonce (the device may be trying to leak its seed through the signature)", device.ErrBadSignature)
	}
	return nil
}
