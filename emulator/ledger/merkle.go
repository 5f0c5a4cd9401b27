package ledgeremu

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"math/bits"
)

// The Bitcoin app's Merkle tree (app-bitcoin-new doc/merkle.md, ledger.md §5.3): RFC 6962
// shape over SHA-256, leaves H(0x00‖element), nodes H(0x01‖left‖right), split at the
// largest power of two strictly below the size; the empty tree's root is 32 zero bytes.

// hashLeaf is the leaf hash of one element.
func hashLeaf(el []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(el)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func hashNode(l, r [32]byte) [32]byte {
	var buf [65]byte
	buf[0] = 1
	copy(buf[1:], l[:])
	copy(buf[33:], r[:])
	return sha256.Sum256(buf[:])
}

// splitPoint is the size of the left subtree of a tree of n ≥ 2 leaves.
func splitPoint(n int) int {
	return 1 << (bits.Len(uint(n-1)) - 1)
}

// merkleRoot is the root over leaf hashes.
func merkleRoot(leaves [][32]byte) [32]byte {
	switch len(leaves) {
	case 0:
		return [32]byte{}
	case 1:
		return leaves[0]
	}
	k := splitPoint(len(leaves))
	return hashNode(merkleRoot(leaves[:k]), merkleRoot(leaves[k:]))
}

// merkleRootOf is the root of the tree over the given elements.
func merkleRootOf(els [][]byte) [32]byte {
	leaves := make([][32]byte, len(els))
	for i, e := range els {
		leaves[i] = hashLeaf(e)
	}
	return merkleRoot(leaves)
}

// merkleProof is the proof for leaf i, leaf upward (the first hash is the leaf's sibling).
func merkleProof(leaves [][32]byte, i int) [][32]byte {
	if len(leaves) <= 1 {
		return nil
	}
	k := splitPoint(len(leaves))
	if i < k {
		return append(merkleProof(leaves[:k], i), merkleRoot(leaves[k:]))
	}
	return append(merkleProof(leaves[k:], i-k), merkleRoot(leaves[:k]))
}

var errBadProof = errors.New("ledgeremu: merkle proof does not match the root")

// proofLen is the number of hashes in the proof of leaf i in a tree of n leaves.
func proofLen(n, i int) int {
	d := 0
	for n > 1 {
		k := splitPoint(n)
		if i < k {
			n = k
		} else {
			n, i = n-k, i-k
		}
		d++
	}
	return d
}

// verifyProof checks that leaf is leaf i of the n-leaf tree with the given root.
func verifyProof(root [32]byte, n, i int, leaf [32]byte, proof [][32]byte) error {
	if i < 0 || i >= n {
		return errBadProof
	}
	// Directions from the top, then combine from the bottom.
	var left []bool
	for size, idx := n, i; size > 1; {
		k := splitPoint(size)
		if idx < k {
			left = append(left, true)
			size = k
		} else {
			left = append(left, false)
			size, idx = size-k, idx-k
		}
	}
	if len(left) != len(proof) {
		return errBadProof
	}
	cur := leaf
	for j, sib := range proof {
		if left[len(left)-1-j] {
			cur = hashNode(cur, sib)
		} else {
			cur = hashNode(sib, cur)
		}
	}
	if !bytes.Equal(cur[:], root[:]) {
		return errBadProof
	}
	return nil
}
