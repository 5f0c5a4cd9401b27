package ledger

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/wire"
)

// Fuzz targets for every parser of device replies: each decodes, re-encodes, decodes again
// and compares (STYLE rule 8).

func FuzzSplitReply(f *testing.F) {
	f.Add([]byte{0x90, 0x00})
	f.Add([]byte{1, 2, 3, 0xe0, 0x00})
	f.Add([]byte{0x6e})
	f.Fuzz(func(t *testing.T, b []byte) {
		data, sw, err := splitReply(b)
		if err != nil {
			return
		}
		again := binary.BigEndian.AppendUint16(append([]byte{}, data...), sw)
		if !bytes.Equal(again, b) {
			t.Fatalf("%x re-encodes as %x", b, again)
		}
	})
}

func encodeAppInfo(i appInfo) []byte {
	b := []byte{1, byte(len(i.Name))}
	b = append(b, i.Name...)
	b = append(b, byte(len(i.Version)))
	b = append(b, i.Version...)
	if i.Flags != nil {
		b = append(b, byte(len(i.Flags)))
		b = append(b, i.Flags...)
	}
	return b
}

func FuzzAppInfo(f *testing.F) {
	f.Add(encodeAppInfo(appInfo{Name: "BOLOS", Version: "2.2.3"}))
	f.Add(encodeAppInfo(appInfo{Name: "Bitcoin Test", Version: "2.4.6", Flags: []byte{0}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		i, err := parseAppInfo(b)
		if err != nil {
			return
		}
		j, err := parseAppInfo(encodeAppInfo(i))
		if err != nil || !reflect.DeepEqual(i, j) {
			t.Fatalf("%x: %+v then %+v (%v)", b, i, j, err)
		}
	})
}

// encodeClientRequest re-encodes a parsed client command request (the device's side).
func encodeClientRequest(code byte, root [32]byte, leaf [32]byte, size, index uint64) []byte {
	var buf bytes.Buffer
	buf.WriteByte(code)
	switch code {
	case ccGetPreimage:
		buf.WriteByte(0)
		buf.Write(leaf[:])
	case ccGetLeafProof:
		buf.Write(root[:])
		_ = wire.WriteVarInt(&buf, 0, size)
		_ = wire.WriteVarInt(&buf, 0, index)
	case ccGetLeafIndex:
		buf.Write(root[:])
		buf.Write(leaf[:])
	}
	return buf.Bytes()
}

func FuzzClientRequest(f *testing.F) {
	var r [32]byte
	f.Add(encodeClientRequest(ccGetPreimage, r, leafHash([]byte("x")), 0, 0))
	f.Add(encodeClientRequest(ccGetLeafProof, leafHash([]byte("r")), r, 5, 3))
	f.Add(encodeClientRequest(ccGetLeafProof, r, r, 1<<40, 300))
	f.Add(encodeClientRequest(ccGetLeafIndex, r, leafHash([]byte("l")), 0, 0))
	f.Add([]byte{ccGetMoreElements})
	f.Add([]byte{ccYield, 0, 33})
	// Every client command of the app's own transcripts.
	for _, name := range []string{"get_wallet_address.json", "register_wallet.json", "sign_psbt.json"} {
		for _, c := range loadCases(f, name) {
			for _, l := range strs(c["exchanges"]) {
				if r, ok := strings.CutPrefix(l, "<= "); ok && strings.HasSuffix(r, "e000") {
					if b, err := hex.DecodeString(strings.TrimSuffix(r, "e000")); err == nil {
						f.Add(b)
					}
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// The interpreter never panics on any request, known or not.
		h := newClientHandler()
		h.addPreimage([]byte("x"))
		h.addList([][]byte{[]byte("a"), []byte("b"), []byte("c")})
		_, _ = h.execute(b)
		if len(b) == 0 {
			return
		}
		body := b[1:]
		var again []byte
		switch b[0] {
		case ccGetPreimage:
			hash, err := parseGetPreimage(body)
			if err != nil {
				return
			}
			again = encodeClientRequest(b[0], [32]byte{}, hash, 0, 0)
		case ccGetLeafProof:
			root, size, index, err := parseGetLeafProof(body)
			if err != nil {
				return
			}
			again = encodeClientRequest(b[0], root, [32]byte{}, size, index)
		case ccGetLeafIndex:
			root, leaf, err := parseGetLeafIndex(body)
			if err != nil {
				return
			}
			again = encodeClientRequest(b[0], root, leaf, 0, 0)
		default:
			return
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("%x re-encodes as %x", b, again)
		}
	})
}

func FuzzSignatureYield(f *testing.F) {
	der := []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x01}
	f.Add(encodeSignatureYield(yieldSig{input: 0, pubkey: append([]byte{2}, make([]byte, 32)...), sig: der}))
	f.Add(encodeSignatureYield(yieldSig{input: 300, pubkey: make([]byte, 32), sig: make([]byte, 64)}))
	f.Add(encodeSignatureYield(yieldSig{input: 1, pubkey: make([]byte, 64), sig: make([]byte, 65)}))
	f.Add([]byte{0xfe, 0xff, 0xff, 0xff, 0xff, 1, 2})
	for _, c := range loadCases(f, "sign_psbt.json") { // the app's own yields
		for _, l := range strs(c["exchanges"]) {
			if r, ok := strings.CutPrefix(l, "<= 10"); ok && strings.HasSuffix(r, "e000") {
				if b, err := hex.DecodeString(strings.TrimSuffix(r, "e000")); err == nil {
					f.Add(b)
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		y, ok, err := parseSignatureYield(b, 1000)
		if err != nil || !ok {
			return
		}
		again := encodeSignatureYield(y)
		if !bytes.Equal(again, b) {
			t.Fatalf("%x re-encodes as %x", b, again)
		}
	})
}

func FuzzEthReplies(f *testing.F) {
	f.Add(append([]byte{27}, make([]byte, 64)...))
	pub := append([]byte{65, 4}, make([]byte, 64)...)
	f.Add(append(append(pub, 40), bytes.Repeat([]byte{'0'}, 40)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		if sig, err := parseEthSignature(b); err == nil {
			again := append([]byte{sig[64]}, sig[:64]...)
			if !bytes.Equal(again, b) {
				t.Fatalf("signature %x re-encodes as %x", b, again)
			}
		}
		if addr, err := parseEthAddress(b); err == nil {
			if !bytes.EqualFold(b[67:107], []byte(addr.Hex()[2:])) {
				t.Fatalf("address %x parsed as %s", b, addr.Hex())
			}
		}
	})
}

func FuzzRawPSBT(f *testing.F) {
	f.Add([]byte("psbt\xff\x01\x00\x01\x00\x00\x00"), 0, 0)
	f.Add([]byte("psbt\xff\x00\x00\x00"), 1, 1)
	f.Fuzz(func(t *testing.T, b []byte, nIn, nOut int) {
		if nIn < 0 || nOut < 0 || nIn > 8 || nOut > 8 {
			return
		}
		p, err := parseRawPSBT(b, nIn, nOut)
		if err != nil {
			return
		}
		again := writeRawPSBT(p)
		q, err := parseRawPSBT(again, nIn, nOut)
		if err != nil || !reflect.DeepEqual(p, q) {
			t.Fatalf("%x: does not parse back (%v)", b, err)
		}
	})
}
