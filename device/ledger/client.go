package ledger

// The host side of the Bitcoin app's interrupted execution: while a command runs the
// device answers SW 0xE000 with a client command, and the host answers with CONTINUE
// (F8 01). Spec: app-bitcoin-new doc/bitcoin.md "Client commands";
// /work/shared/protocols/ledger.md §5.2.
//
//	code  name                   device → host (after the code)       host → device
//	0x10  YIELD                  result bytes                          empty
//	0x40  GET_PREIMAGE           0x00 ‖ sha256[32]                     varint len ‖ u8 b ‖ b bytes (rest queued, 1-byte elements)
//	0x41  GET_MERKLE_LEAF_PROOF  root[32] ‖ varint size ‖ varint i     leaf[32] ‖ u8 proof_len ‖ u8 p ‖ p×32 (rest queued)
//	0x42  GET_MERKLE_LEAF_INDEX  root[32] ‖ leaf_hash[32]              u8 found ‖ varint index
//	0xA0  GET_MORE_ELEMENTS      (nothing)                             u8 n ‖ u8 size ‖ n×size

import (
	"bytes"
	"crypto/sha256"
	"fmt"

	"github.com/btcsuite/btcd/wire"

	"github.com/hwbridge/hwbridge/device"
)

// Client command codes.
const (
	ccYield           byte = 0x10
	ccGetPreimage     byte = 0x40
	ccGetLeafProof    byte = 0x41
	ccGetLeafIndex    byte = 0x42
	ccGetMoreElements byte = 0xA0
)

// Limits of the interpreter.
const (
	// maxProofInReply is how many proof hashes the first GET_MERKLE_LEAF_PROOF answer
	// carries (as ledger-bitcoin and the Rust client send): 32+1+1+6×32 = 226 bytes.
	maxProofInReply = 6
	// moreElementsRoom is the data room of a GET_MORE_ELEMENTS answer after its two
	// header bytes.
	moreElementsRoom = 253
	// maxYields caps the results one command may yield (two signatures per input at most
	// for our policies, 512 inputs).
	maxYields = 4 * 512
	// maxYieldLen caps one yielded result.
	maxYieldLen = 255
)

// clientHandler answers client commands from what the host knows: preimages by SHA-256,
// Merkle trees by root. It keeps the queue of elements that did not fit an answer and the
// results the device yielded.
type clientHandler struct {
	preimages map[[32]byte][]byte
	trees     map[[32]byte]*merkleTree
	queue     [][]byte
	yielded   [][]byte
}

func newClientHandler() *clientHandler {
	return &clientHandler{preimages: map[[32]byte][]byte{}, trees: map[[32]byte]*merkleTree{}}
}

// addPreimage makes b answerable by its SHA-256.
func (h *clientHandler) addPreimage(b []byte) { h.preimages[sha256.Sum256(b)] = b }

// addList makes a merkleized list known: every 0x00-prefixed leaf preimage and the tree.
// It returns the tree.
func (h *clientHandler) addList(elements [][]byte) *merkleTree {
	leaves := make([][32]byte, len(elements))
	for i, e := range elements {
		pre := append([]byte{0x00}, e...)
		leaves[i] = sha256.Sum256(pre)
		h.preimages[leaves[i]] = pre
	}
	t := newMerkleTree(leaves)
	h.trees[t.Root()] = t
	return t
}

// addMap makes a merkleized map known (its key list and its value list).
func (h *clientHandler) addMap(m *merkleizedMap) {
	h.addTree(m.keyTree, m.keys)
	h.addTree(m.valueTree, m.values)
}

// addTree makes an already built tree over elements known.
func (h *clientHandler) addTree(t *merkleTree, elements [][]byte) {
	for i, e := range elements {
		pre := make([]byte, 1+len(e))
		copy(pre[1:], e)
		h.preimages[t.leaves[i]] = pre
	}
	h.trees[t.Root()] = t
}

// execute answers one client command (the data of an 0xE000 reply).
func (h *clientHandler) execute(req []byte) ([]byte, error) {
	if len(req) == 0 {
		return nil, fmt.Errorf("%w: empty client command", device.ErrProtocol)
	}
	body := req[1:]
	switch req[0] {
	case ccYield:
		if len(h.yielded) >= maxYields {
			return nil, fmt.Errorf("%w: more than %d yielded results", device.ErrProtocol, maxYields)
		}
		if len(body) > maxYieldLen {
			return nil, fmt.Errorf("%w: yielded result of %d bytes", device.ErrProtocol, len(body))
		}
		h.yielded = append(h.yielded, bytes.Clone(body))
		return []byte{}, nil
	case ccGetPreimage:
		hash, err := parseGetPreimage(body)
		if err != nil {
			return nil, err
		}
		return h.preimage(hash)
	case ccGetLeafProof:
		root, size, index, err := parseGetLeafProof(body)
		if err != nil {
			return nil, err
		}
		return h.leafProof(root, size, index)
	case ccGetLeafIndex:
		root, leaf, err := parseGetLeafIndex(body)
		if err != nil {
			return nil, err
		}
		return h.leafIndex(root, leaf)
	case ccGetMoreElements:
		if len(body) != 0 {
			return nil, fmt.Errorf("%w: GET_MORE_ELEMENTS with %d bytes of data", device.ErrProtocol, len(body))
		}
		return h.moreElements()
	}
	return nil, fmt.Errorf("%w: unknown client command 0x%02x", device.ErrProtocol, req[0])
}

func (h *clientHandler) preimage(hash [32]byte) ([]byte, error) {
	pre, ok := h.preimages[hash]
	if !ok {
		return nil, fmt.Errorf("%w: the device asked for the preimage of an unknown hash %x", device.ErrProtocol, hash)
	}
	if len(h.queue) != 0 {
		return nil, fmt.Errorf("%w: GET_PREIMAGE while %d elements are queued", device.ErrProtocol, len(h.queue))
	}
	var buf bytes.Buffer
	_ = wire.WriteVarInt(&buf, 0, uint64(len(pre)))
	room := maxAPDUData - buf.Len() - 1
	n := min(len(pre), room)
	buf.WriteByte(byte(n))
	buf.Write(pre[:n])
	for _, b := range pre[n:] {
		h.queue = append(h.queue, []byte{b})
	}
	return buf.Bytes(), nil
}

func (h *clientHandler) leafProof(root [32]byte, size, index uint64) ([]byte, error) {
	if len(h.queue) != 0 {
		return nil, fmt.Errorf("%w: GET_MERKLE_LEAF_PROOF while %d elements are queued", device.ErrProtocol, len(h.queue))
	}
	t, ok := h.trees[root]
	if !ok {
		return nil, fmt.Errorf("%w: leaf proof asked for an unknown merkle root %x", device.ErrProtocol, root)
	}
	if size != uint64(t.Size()) || index >= size {
		return nil, fmt.Errorf("%w: leaf proof for index %d of a tree of %d leaves (the tree has %d)", device.ErrProtocol, index, size, t.Size())
	}
	proof, _ := t.Proof(int(index))
	out := make([]byte, 0, 34+maxProofInReply*32)
	out = append(out, t.leaves[index][:]...)
	n := min(len(proof), maxProofInReply)
	out = append(out, byte(len(proof)), byte(n))
	for _, p := range proof[:n] {
		out = append(out, p[:]...)
	}
	for _, p := range proof[n:] {
		h.queue = append(h.queue, bytes.Clone(p[:]))
	}
	return out, nil
}

func (h *clientHandler) leafIndex(root, leaf [32]byte) ([]byte, error) {
	t, ok := h.trees[root]
	if !ok {
		return nil, fmt.Errorf("%w: leaf index asked for an unknown merkle root %x", device.ErrProtocol, root)
	}
	i, ok := t.index[leaf]
	if !ok {
		// The device would take "not found" as a fatal error anyway; answer as the clients do.
		return []byte{0x00, 0x00}, nil
	}
	var buf bytes.Buffer
	buf.WriteByte(0x01)
	_ = wire.WriteVarInt(&buf, 0, uint64(i))
	return buf.Bytes(), nil
}

func (h *clientHandler) moreElements() ([]byte, error) {
	if len(h.queue) == 0 {
		return nil, fmt.Errorf("%w: GET_MORE_ELEMENTS with nothing queued", device.ErrProtocol)
	}
	size := len(h.queue[0])
	n := 0
	for n < len(h.queue) && (n+1)*size <= moreElementsRoom && n < 255 {
		if len(h.queue[n]) != size {
			return nil, fmt.Errorf("%w: queued elements of different sizes", device.ErrProtocol)
		}
		n++
	}
	out := make([]byte, 0, 2+n*size)
	out = append(out, byte(n), byte(size))
	for _, e := range h.queue[:n] {
		out = append(out, e...)
	}
	h.queue = h.queue[n:]
	return out, nil
}

// parseGetPreimage decodes 0x00 ‖ sha256[32].
func parseGetPreimage(b []byte) ([32]byte, error) {
	var hash [32]byte
	if len(b) != 33 || b[0] != 0x00 {
		return hash, fmt.Errorf("%w: GET_PREIMAGE request %x", device.ErrProtocol, b)
	}
	copy(hash[:], b[1:])
	return hash, nil
}

// parseGetLeafProof decodes root[32] ‖ varint size ‖ varint index.
func parseGetLeafProof(b []byte) (root [32]byte, size, index uint64, err error) {
	if len(b) < 34 {
		return root, 0, 0, fmt.Errorf("%w: GET_MERKLE_LEAF_PROOF request of %d bytes", device.ErrProtocol, len(b))
	}
	copy(root[:], b)
	r := bytes.NewReader(b[32:])
	if size, err = wire.ReadVarInt(r, 0); err == nil {
		index, err = wire.ReadVarInt(r, 0)
	}
	if err != nil || r.Len() != 0 {
		return root, 0, 0, fmt.Errorf("%w: GET_MERKLE_LEAF_PROOF request %x", device.ErrProtocol, b)
	}
	return root, size, index, nil
}

// parseGetLeafIndex decodes root[32] ‖ leaf_hash[32].
func parseGetLeafIndex(b []byte) (root, leaf [32]byte, err error) {
	if len(b) != 64 {
		return root, leaf, fmt.Errorf("%w: GET_MERKLE_LEAF_INDEX request of %d bytes", device.ErrProtocol, len(b))
	}
	copy(root[:], b[:32])
	copy(leaf[:], b[32:])
	return root, leaf, nil
}
