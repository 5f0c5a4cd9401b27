package bitbox02

import (
	"crypto/subtle"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// The signer's half of BitBox's anti-klepto (ECDSA sign-to-contract, libsecp256k1-zkp's
// ecdsa_s2c / anti-exfil), hand-written on btcec because no Go library has it:
//
//	commit: k from (key, message, host commitment); R1 = k·G, sent compressed;
//	sign:   t = tagged_sha256("s2c/ecdsa/point", R1 ‖ host_nonce), k' = k + t,
//	        r = x(k'·G), s = k'⁻¹(z + r·d), low-s; recid from k'·G.
//
// The firmware refuses nothing about the host nonce; this emulator also checks that it
// matches the commitment the host sent first, so that a host bug shows up here.

// tagged is BIP-340's tagged hash, sha256(sha256(tag) ‖ sha256(tag) ‖ parts…), which
// libsecp256k1-zkp's s2c uses too.
func tagged(tag string, parts ...[]byte) [32]byte {
	return *chainhash.TaggedHash([]byte(tag), parts...)
}

// s2cNonce is the signer's secret nonce k: deterministic in the key, the message and the
// host's commitment (the firmware uses RFC 6979 with the commitment as extra data; any
// secret, unpredictable function serves, since the host never sees k).
func s2cNonce(priv *btcec.PrivateKey, msg, hostCommitment []byte) btcec.ModNScalar {
	var k btcec.ModNScalar
	for ctr := byte(0); ; ctr++ {
		h := tagged("hwbridge/bitbox02-emulator/s2c-nonce", priv.Serialize(), msg, hostCommitment, []byte{ctr})
		if overflow := k.SetBytes(&h); overflow == 0 && !k.IsZero() {
			return k
		}
	}
}

// s2cCommit returns R1 = k·G, compressed.
func s2cCommit(priv *btcec.PrivateKey, msg, hostCommitment []byte) []byte {
	k := s2cNonce(priv, msg, hostCommitment)
	var r btcec.JacobianPoint
	btcec.ScalarBaseMultNonConst(&k, &r)
	r.ToAffine()
	return btcec.NewPublicKey(&r.X, &r.Y).SerializeCompressed()
}

// hostCommitmentOK checks tagged_sha256("s2c/ecdsa/data", host_nonce) against the
// commitment.
func hostCommitmentOK(hostNonce, commitment []byte) bool {
	c := tagged("s2c/ecdsa/data", hostNonce)
	return subtle.ConstantTimeCompare(c[:], commitment) == 1
}

// s2cSign signs the 32-byte hash msg with the nonce k + t and returns r‖s (64 bytes,
// low-s) and the recovery id.
func s2cSign(priv *btcec.PrivateKey, msg, hostCommitment, hostNonce []byte) ([]byte, byte) {
	k := s2cNonce(priv, msg, hostCommitment)
	var r1 btcec.JacobianPoint
	btcec.ScalarBaseMultNonConst(&k, &r1)
	r1.ToAffine()
	t := tagged("s2c/ecdsa/point", btcec.NewPublicKey(&r1.X, &r1.Y).SerializeCompressed(), hostNonce)
	var ts btcec.ModNScalar
	ts.SetBytes(&t) // an overflowing t reduces mod n; the host's check does the same
	k.Add(&ts)
	var R btcec.JacobianPoint
	btcec.ScalarBaseMultNonConst(&k, &R)
	R.ToAffine()
	xb := R.X.Bytes()
	var r btcec.ModNScalar
	overflow := r.SetBytes(xb)
	recid := byte(R.Y.IsOddBit())
	if overflow != 0 {
		recid |= 2
	}
	var z btcec.ModNScalar
	z.SetByteSlice(msg)
	d := priv.Key
	// s = k⁻¹ (z + r·d)
	var s btcec.ModNScalar
	s.Mul2(&r, &d).Add(&z)
	kinv := new(btcec.ModNScalar).InverseValNonConst(&k)
	s.Mul(kinv)
	if s.IsOverHalfOrder() {
		s.Negate()
		recid ^= 1
	}
	out := make([]byte, 64)
	rb, sb := r.Bytes(), s.Bytes()
	copy(out[:32], rb[:])
	copy(out[32:], sb[:])
	return out, recid
}
