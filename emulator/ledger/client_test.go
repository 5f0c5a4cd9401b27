package ledgeremu

// A minimal host side written for these tests only (never the driver in device/ledger):
// APDU exchange over the shared Speculos framing, and a Bitcoin client-command interpreter
// that answers from known preimages and Merkle trees, as ledger-bitcoin's does.

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/transport"
)

type testClient struct {
	t  testing.TB
	ex *transport.Exchanger
}

func newTestClient(t testing.TB, d *Device) *testClient {
	t.Helper()
	link := d.Pipe()
	ex := transport.NewSpeculosExchanger(link)
	t.Cleanup(func() { ex.Close() })
	return &testClient{t: t, ex: ex}
}

// send exchanges one APDU and splits data and status word.
func (c *testClient) send(cla, ins, p1, p2 byte, data []byte) ([]byte, uint16) {
	c.t.Helper()
	out, sw, err := c.trySend(cla, ins, p1, p2, data)
	if err != nil {
		c.t.Fatalf("exchange %02x %02x: %v", cla, ins, err)
	}
	return out, sw
}

func (c *testClient) trySend(cla, ins, p1, p2 byte, data []byte) ([]byte, uint16, error) {
	raw, err := APDU{CLA: cla, INS: ins, P1: p1, P2: p2, Data: data}.Bytes()
	if err != nil {
		return nil, 0, err
	}
	resp, err := c.ex.Exchange(c.t.Context(), raw)
	if err != nil {
		return nil, 0, err
	}
	n := len(resp) - 2
	return resp[:n], binary.BigEndian.Uint16(resp[n:]), nil
}

// mustOK sends and requires 9000.
func (c *testClient) mustOK(cla, ins, p1, p2 byte, data []byte) []byte {
	c.t.Helper()
	out, sw := c.send(cla, ins, p1, p2, data)
	if sw != swOK {
		c.t.Fatalf("%02x %02x: status %04x", cla, ins, sw)
	}
	return out
}

// interp answers the Bitcoin app's client commands.
type interp struct {
	preimages map[[32]byte][]byte
	trees     map[[32]byte][][32]byte
	queue     [][]byte
	yielded   [][]byte
	commands  int
}

func newInterp() *interp {
	return &interp{preimages: map[[32]byte][]byte{}, trees: map[[32]byte][][32]byte{}}
}

func (it *interp) addPreimage(b []byte) { it.preimages[sha256.Sum256(b)] = b }

func (it *interp) addList(els [][]byte) [32]byte {
	leaves := make([][32]byte, len(els))
	for i, e := range els {
		it.addPreimage(append([]byte{0}, e...))
		leaves[i] = hashLeaf(e)
	}
	root := merkleRoot(leaves)
	it.trees[root] = leaves
	return root
}

func (it *interp) execute(req []byte) ([]byte, error) {
	it.commands++
	r := &reader{b: req[1:]}
	switch req[0] {
	case ccYield:
		it.yielded = append(it.yielded, append([]byte(nil), req[1:]...))
		return nil, nil
	case ccGetPreimage:
		r.u8()
		var h [32]byte
		copy(h[:], r.bytes(32))
		pre, ok := it.preimages[h]
		if !ok {
			return nil, fmt.Errorf("unknown preimage %x", h)
		}
		vl := appendVarint(nil, uint64(len(pre)))
		n := min(len(pre), 255-len(vl)-1)
		for _, b := range pre[n:] {
			it.queue = append(it.queue, []byte{b})
		}
		out := append(vl, byte(n))
		return append(out, pre[:n]...), nil
	case ccGetLeafProof:
		var root [32]byte
		copy(root[:], r.bytes(32))
		size, idx := int(r.varint()), int(r.varint())
		leaves, ok := it.trees[root]
		if !ok || size != len(leaves) || idx >= size || len(it.queue) != 0 {
			return nil, fmt.Errorf("bad leaf proof request")
		}
		proof := merkleProof(leaves, idx)
		n := min(len(proof), 6)
		for _, p := range proof[n:] {
			it.queue = append(it.queue, p[:])
		}
		out := append(append([]byte(nil), leaves[idx][:]...), byte(len(proof)), byte(n))
		for _, p := range proof[:n] {
			out = append(out, p[:]...)
		}
		return out, nil
	case ccGetLeafIndex:
		var root, leaf [32]byte
		copy(root[:], r.bytes(32))
		copy(leaf[:], r.bytes(32))
		leaves, ok := it.trees[root]
		if !ok {
			return nil, fmt.Errorf("unknown root %x", root)
		}
		for i, l := range leaves {
			if l == leaf {
				return appendVarint([]byte{1}, uint64(i)), nil
			}
		}
		return []byte{0, 0}, nil
	case ccGetMoreElemts:
		if len(it.queue) == 0 {
			return nil, fmt.Errorf("empty queue")
		}
		size := len(it.queue[0])
		n := min(len(it.queue), 253/size)
		out := []byte{byte(n), byte(size)}
		for _, e := range it.queue[:n] {
			out = append(out, e...)
		}
		it.queue = it.queue[n:]
		return out, nil
	}
	return nil, fmt.Errorf("unknown client command %02x", req[0])
}

// btc sends a Bitcoin app command and runs the client-command loop.
func (c *testClient) btc(ins byte, data []byte, it *interp) ([]byte, uint16) {
	c.t.Helper()
	out, sw, err := c.tryBTC(ins, data, it)
	if err != nil {
		c.t.Fatal(err)
	}
	return out, sw
}

func (c *testClient) tryBTC(ins byte, data []byte, it *interp) ([]byte, uint16, error) {
	out, sw, err := c.trySend(claBTC, ins, 0, 1, data)
	for err == nil && sw == swInterrupted {
		if it == nil {
			return nil, 0, fmt.Errorf("unexpected client command %x", out)
		}
		resp, cerr := it.execute(out)
		if cerr != nil {
			return nil, 0, fmt.Errorf("client command %x: %w", out, cerr)
		}
		out, sw, err = c.trySend(claFramework, insContinue, 0, 0, resp)
	}
	return out, sw, err
}

// testPolicy is a wallet policy on the host side (V2 serialization).
type testPolicy struct {
	name, template string
	keys           []string
}

func (p testPolicy) serialize() []byte {
	keys := make([][]byte, len(p.keys))
	for i, k := range p.keys {
		keys[i] = []byte(k)
	}
	th := sha256.Sum256([]byte(p.template))
	out := []byte{2, byte(len(p.name))}
	out = append(out, p.name...)
	out = appendVarint(out, uint64(len(p.template)))
	out = append(out, th[:]...)
	out = appendVarint(out, uint64(len(keys)))
	root := merkleRootOf(keys)
	return append(out, root[:]...)
}

func (p testPolicy) id() [32]byte { return sha256.Sum256(p.serialize()) }

func (p testPolicy) addTo(it *interp) {
	it.addPreimage(p.serialize())
	it.addPreimage([]byte(p.template))
	keys := make([][]byte, len(p.keys))
	for i, k := range p.keys {
		keys[i] = []byte(k)
	}
	it.addList(keys)
}

func pathBytes(t testing.TB, s string) []byte {
	t.Helper()
	p, err := hdpath.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return appendPath(nil, p)
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
