package ledgeremu

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"slices"
)

// The Bitcoin app's client commands (ledger.md §5.2): while a command runs, the device
// answers SW 0xE000 with `code ‖ payload` and the host answers with F8 01 carrying the
// response. Everything the host sends is checked against a hash or a Merkle root.
const (
	ccYield         = 0x10
	ccGetPreimage   = 0x40
	ccGetLeafProof  = 0x41
	ccGetLeafIndex  = 0x42
	ccGetMoreElemts = 0xA0
)

// Caps on what the host may send back.
const (
	maxPreimage  = 64 << 10 // non-witness UTXOs are the largest preimages
	maxTreeDepth = 32
)

// btcHost asks the host for data during one command.
type btcHost struct {
	cn *conn
}

func (h btcHost) call(cmd []byte) (*reader, error) {
	resp, err := h.cn.interrupt(cmd)
	if err != nil {
		return nil, err
	}
	return &reader{b: resp}, nil
}

func badResponse(what string) error {
	return fail(swIncorrectData, "bad client response to %s", what)
}

// yield hands a result to the host (signatures during SIGN_PSBT).
func (h btcHost) yield(payload []byte) error {
	_, err := h.call(append([]byte{ccYield}, payload...))
	return err
}

// moreElements fetches queued elements of the given size until n more are read.
func (h btcHost) moreElements(size, n int) ([]byte, error) {
	var out []byte
	for len(out) < size*n {
		r, err := h.call([]byte{ccGetMoreElemts})
		if err != nil {
			return nil, err
		}
		cnt, sz := int(r.u8()), int(r.u8())
		if r.bad || cnt == 0 || sz != size {
			return nil, badResponse("get more elements")
		}
		chunk := r.bytes(cnt * sz)
		if r.bad || r.left() != 0 || len(out)+len(chunk) > size*n {
			return nil, badResponse("get more elements")
		}
		out = append(out, chunk...)
	}
	return out, nil
}

// preimage fetches the bytes whose SHA-256 is hash (at most max bytes).
func (h btcHost) preimage(hash [32]byte, max int) ([]byte, error) {
	r, err := h.call(append([]byte{ccGetPreimage, 0}, hash[:]...))
	if err != nil {
		return nil, err
	}
	total := r.varint()
	b := int(r.u8())
	first := r.bytes(b)
	if r.bad || r.left() != 0 || uint64(b) > total {
		return nil, badResponse("get preimage")
	}
	if total > uint64(max) {
		return nil, fail(swIncorrectData, "preimage of %d bytes is longer than %d", total, max)
	}
	out := append([]byte(nil), first...)
	if rest := int(total) - b; rest > 0 {
		more, err := h.moreElements(1, rest)
		if err != nil {
			return nil, err
		}
		out = append(out, more...)
	}
	if sha256.Sum256(out) != hash {
		return nil, fail(swIncorrectData, "preimage does not hash to the requested value")
	}
	return out, nil
}

// leafHash fetches and checks leaf index of the size-leaf tree with the given root.
func (h btcHost) leafHash(root [32]byte, size, index int) ([32]byte, error) {
	if index < 0 || index >= size {
		return [32]byte{}, fail(swIncorrectData, "leaf %d of a %d-leaf tree", index, size)
	}
	cmd := append([]byte{ccGetLeafProof}, root[:]...)
	cmd = appendVarint(cmd, uint64(size))
	cmd = appendVarint(cmd, uint64(index))
	r, err := h.call(cmd)
	if err != nil {
		return [32]byte{}, err
	}
	var leaf [32]byte
	copy(leaf[:], r.bytes(32))
	plen, p := int(r.u8()), int(r.u8())
	first := r.bytes(32 * p)
	if r.bad || r.left() != 0 || p > plen || plen > maxTreeDepth || plen != proofLen(size, index) {
		return [32]byte{}, badResponse("get merkle leaf proof")
	}
	raw := append([]byte(nil), first...)
	if plen > p {
		more, err := h.moreElements(32, plen-p)
		if err != nil {
			return [32]byte{}, err
		}
		raw = append(raw, more...)
	}
	proof := make([][32]byte, plen)
	for i := range proof {
		copy(proof[i][:], raw[32*i:])
	}
	if err := verifyProof(root, size, index, leaf, proof); err != nil {
		return [32]byte{}, fail(swIncorrectData, "merkle proof for leaf %d does not match the root", index)
	}
	return leaf, nil
}

// leafIndex finds the leaf with the given hash; found=false when the host says it is
// absent. A found index is checked with its proof.
func (h btcHost) leafIndex(root [32]byte, size int, leaf [32]byte) (int, bool, error) {
	cmd := append([]byte{ccGetLeafIndex}, root[:]...)
	r, err := h.call(append(cmd, leaf[:]...))
	if err != nil {
		return 0, false, err
	}
	found := r.u8()
	idx := r.varint()
	if r.bad || r.left() != 0 || found > 1 {
		return 0, false, badResponse("get merkle leaf index")
	}
	if found == 0 {
		return 0, false, nil
	}
	if idx >= uint64(size) {
		return 0, false, badResponse("get merkle leaf index")
	}
	got, err := h.leafHash(root, size, int(idx))
	if err != nil {
		return 0, false, err
	}
	if got != leaf {
		return 0, false, fail(swIncorrectData, "leaf index %d does not hold the requested leaf", idx)
	}
	return int(idx), true, nil
}

// element fetches element index of a Merkle list (its leaf preimage minus the 0x00 prefix).
func (h btcHost) element(root [32]byte, size, index, max int) ([]byte, error) {
	leaf, err := h.leafHash(root, size, index)
	if err != nil {
		return nil, err
	}
	pre, err := h.preimage(leaf, max+1)
	if err != nil {
		return nil, err
	}
	if len(pre) == 0 || pre[0] != 0 {
		return nil, fail(swIncorrectData, "leaf preimage lacks its 0x00 prefix")
	}
	return pre[1:], nil
}

// mmap is a merkleised map commitment: varint n ‖ keys root ‖ values root.
type mmap struct {
	n          int
	keysRoot   [32]byte
	valuesRoot [32]byte
	keys       [][]byte       // filled by loadKeys
	vals       map[int][]byte // values read while the keys were scanned (loadKeysEager)
}

// maxMapEntries caps the pairs in one PSBT map.
const maxMapEntries = 1024

func parseMapCommitment(r *reader) (mmap, bool) {
	n := r.varint()
	k := r.bytes(32)
	v := r.bytes(32)
	if r.bad || n > maxMapEntries {
		return mmap{}, false
	}
	m := mmap{n: int(n)}
	copy(m.keysRoot[:], k)
	copy(m.valuesRoot[:], v)
	return m, true
}

// maxPSBTKey caps a PSBT key (keytype ‖ keydata).
const maxPSBTKey = 1 + 32 + 32 + 1

// loadKeys fetches every key of the map and checks they are strictly increasing.
func (h btcHost) loadKeys(m *mmap) error {
	m.keys = make([][]byte, m.n)
	for i := range m.n {
		k, err := h.element(m.keysRoot, m.n, i, 255)
		if err != nil {
			return err
		}
		if len(k) == 0 || (i > 0 && bytes.Compare(m.keys[i-1], k) >= 0) {
			return fail(swIncorrectData, "psbt map keys are not sorted")
		}
		m.keys[i] = k
	}
	return nil
}

// loadKeysEager is loadKeys reading, as it meets them, the values of the keys whose type
// is in eager: app-bitcoin-new reads an input's BIP-32 derivations while it scans the
// input's keys (its Speculos transcripts show the order).
func (h btcHost) loadKeysEager(m *mmap, max int, eager ...byte) error {
	m.keys = make([][]byte, m.n)
	m.vals = map[int][]byte{}
	for i := range m.n {
		k, err := h.element(m.keysRoot, m.n, i, 255)
		if err != nil {
			return err
		}
		if len(k) == 0 || (i > 0 && bytes.Compare(m.keys[i-1], k) >= 0) {
			return fail(swIncorrectData, "psbt map keys are not sorted")
		}
		m.keys[i] = k
		if slices.Contains(eager, k[0]) {
			v, err := h.element(m.valuesRoot, m.n, i, max)
			if err != nil {
				return err
			}
			m.vals[i] = v
		}
	}
	return nil
}

// get fetches the value of key in m; ok=false when absent.
func (h btcHost) get(m *mmap, key []byte, max int) (val []byte, ok bool, err error) {
	if m.keys != nil && !slices.ContainsFunc(m.keys, func(k []byte) bool { return bytes.Equal(k, key) }) {
		return nil, false, nil
	}
	idx, found, err := h.leafIndex(m.keysRoot, m.n, hashLeaf(key))
	if err != nil || !found {
		return nil, false, err
	}
	v, err := h.element(m.valuesRoot, m.n, idx, max)
	if err != nil {
		return nil, false, err
	}
	return v, true, nil
}

// keysWithType lists the indexes of the loaded keys of one PSBT key type.
func (m *mmap) keysWithType(t byte) []int {
	var out []int
	for i, k := range m.keys {
		if k[0] == t {
			out = append(out, i)
		}
	}
	return out
}

// valueAt fetches the value of the i-th key (known from loadKeys, so no index lookup).
func (h btcHost) valueAt(m *mmap, i, max int) ([]byte, error) {
	if v, ok := m.vals[i]; ok {
		if len(v) > max {
			return nil, fail(swIncorrectData, "value of %d bytes (max %d)", len(v), max)
		}
		return v, nil
	}
	return h.element(m.valuesRoot, m.n, i, max)
}

func (m mmap) String() string { return fmt.Sprintf("map(%d)", m.n) }
