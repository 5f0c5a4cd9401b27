package ledger

// Merkle trees and merkleized maps of the Bitcoin app v2. Spec: app-bitcoin-new
// doc/bitcoin.md "Merkle trees" and doc/merkle.md; /work/shared/protocols/ledger.md §5.3–5.4.
//
//	leaf  = SHA256(0x00 ‖ element)
//	node  = SHA256(0x01 ‖ left ‖ right)
//	root(n>1 leaves): left = the first k leaves, k the largest power of two < n
//	root(0) = 32 zero bytes; root(1) = the leaf hash
//	proof of leaf i: sibling hashes from the leaf upward

import (
	"bytes"
	"crypto/sha256"
	"slices"

	"github.com/btcsuite/btcd/wire"
)

// leafHash is SHA256(0x00 ‖ element).
func leafHash(element []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{0x00})
	h.Write(element)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// nodeHash is SHA256(0x01 ‖ left ‖ right).
func nodeHash(left, right [32]byte) [32]byte {
	var buf [65]byte
	buf[0] = 0x01
	copy(buf[1:], left[:])
	copy(buf[33:], right[:])
	return sha256.Sum256(buf[:])
}

// splitPoint is the largest power of two strictly less than n (n ≥ 2).
func splitPoint(n int) int {
	k := 1
	for k*2 < n {
		k *= 2
	}
	return k
}

// merkleTree is a tree over leaf hashes with every node hash kept, so that proofs cost
// no hashing.
type merkleTree struct {
	leaves []([32]byte)
	root   *merkleNode
	index  map[[32]byte]int // leaf hash → first index
}

type merkleNode struct {
	hash        [32]byte
	left, right *merkleNode
}

func newMerkleTree(leaves [][32]byte) *merkleTree {
	t := &merkleTree{leaves: leaves, index: make(map[[32]byte]int, len(leaves))}
	for i, l := range leaves {
		if _, ok := t.index[l]; !ok {
			t.index[l] = i
		}
	}
	if len(leaves) > 0 {
		t.root = buildNode(leaves)
	}
	return t
}

func buildNode(leaves [][32]byte) *merkleNode {
	if len(leaves) == 1 {
		return &merkleNode{hash: leaves[0]}
	}
	k := splitPoint(len(leaves))
	l, r := buildNode(leaves[:k]), buildNode(leaves[k:])
	return &merkleNode{hash: nodeHash(l.hash, r.hash), left: l, right: r}
}

// Root is the tree's root hash (32 zero bytes for an empty tree).
func (t *merkleTree) Root() [32]byte {
	if t.root == nil {
		return [32]byte{}
	}
	return t.root.hash
}

// Size is the number of leaves.
func (t *merkleTree) Size() int { return len(t.leaves) }

// Proof returns the sibling hashes of leaf i, leaf upward.
func (t *merkleTree) Proof(i int) ([][32]byte, bool) {
	if i < 0 || i >= len(t.leaves) {
		return nil, false
	}
	var proof [][32]byte
	n, size := t.root, len(t.leaves)
	for size > 1 {
		k := splitPoint(size)
		if i < k {
			proof = append(proof, n.right.hash)
			n, size = n.left, k
		} else {
			proof = append(proof, n.left.hash)
			n, size, i = n.right, size-k, i-k
		}
	}
	slices.Reverse(proof)
	return proof, true
}

// verifyProof recomputes the root from leaf i of a tree of size leaves and its proof (leaf
// upward). It is what the device does with a GET_MERKLE_LEAF_PROOF answer.
func verifyProof(root, leaf [32]byte, size, i int, proof [][32]byte) bool {
	if i < 0 || i >= size {
		return false
	}
	// Directions from the top: repeated splits.
	var leftSide []bool
	for s := size; s > 1; {
		k := splitPoint(s)
		if i < k {
			leftSide = append(leftSide, true)
			s = k
		} else {
			leftSide = append(leftSide, false)
			s, i = s-k, i-k
		}
	}
	if len(leftSide) != len(proof) {
		return false
	}
	cur := leaf
	for j, sib := range proof {
		if leftSide[len(leftSide)-1-j] {
			cur = nodeHash(cur, sib)
		} else {
			cur = nodeHash(sib, cur)
		}
	}
	return cur == root
}

// merkleizedMap is a key/value map committed as varint n ‖ MTH(keys) ‖ MTH(values), keys
// sorted by byte order.
type merkleizedMap struct {
	keys, values [][]byte
	keyTree      *merkleTree
	valueTree    *merkleTree
}

func newMerkleizedMap(kv []keyValue) *merkleizedMap {
	sorted := slices.Clone(kv)
	slices.SortFunc(sorted, func(a, b keyValue) int { return bytes.Compare(a.key, b.key) })
	m := &merkleizedMap{}
	kh := make([][32]byte, len(sorted))
	vh := make([][32]byte, len(sorted))
	for i, e := range sorted {
		m.keys = append(m.keys, e.key)
		m.values = append(m.values, e.value)
		kh[i], vh[i] = leafHash(e.key), leafHash(e.value)
	}
	m.keyTree, m.valueTree = newMerkleTree(kh), newMerkleTree(vh)
	return m
}

// commitment is varint n ‖ keys root ‖ values root.
func (m *merkleizedMap) commitment() []byte {
	var buf bytes.Buffer
	_ = wire.WriteVarInt(&buf, 0, uint64(len(m.keys)))
	kr, vr := m.keyTree.Root(), m.valueTree.Root()
	buf.Write(kr[:])
	buf.Write(vr[:])
	return buf.Bytes()
}

// keyValue is one map entry: key = keytype ‖ keydata (no length prefix), value raw.
type keyValue struct{ key, value []byte }
