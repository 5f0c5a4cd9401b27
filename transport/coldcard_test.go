package transport

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
)

func TestColdcardPackets(t *testing.T) {
	for _, n := range []int{4, 62, 63, 64, 126, 127, 2060} {
		msg := bytes.Repeat([]byte{0xa5}, n)
		copy(msg, "upld")
		for _, enc := range []bool{false, true} {
			pkts, err := ColdcardPackets(msg, enc)
			if err != nil {
				t.Fatal(err)
			}
			if want := (n + 62) / 63; len(pkts) != want {
				t.Fatalf("%d bytes: %d packets, want %d", n, len(pkts), want)
			}
			for i, p := range pkts {
				last := i == len(pkts)-1
				if len(p) != 64 || (p[0]&0x80 != 0) != last || (p[0]&0x40 != 0) != (last && enc) {
					t.Fatalf("%d bytes, packet %d: flag %#02x", n, i, p[0])
				}
				if !last && p[0] != 63 {
					t.Fatalf("packet %d not full: %#02x", i, p[0])
				}
			}
			ra := ColdcardReassembler{Max: ColdcardMaxRequest}
			for i, p := range pkts {
				got, gotEnc, done, err := ra.Add(p)
				if err != nil || done != (i == len(pkts)-1) {
					t.Fatalf("packet %d: done %v, %v", i, done, err)
				}
				if done && (!bytes.Equal(got, msg) || gotEnc != enc) {
					t.Fatalf("reassembled %d bytes (enc %v), want %d (enc %v)", len(got), gotEnc, n, enc)
				}
			}
		}
	}
	// the exact bytes ckcc's send_recv writes for 'vers' (after the report-id byte)
	pkts, _ := ColdcardPackets([]byte("vers"), false)
	if want := "8476657273" + string(bytes.Repeat([]byte("00"), 59)); hex.EncodeToString(pkts[0]) != want {
		t.Fatalf("vers packet %x", pkts[0])
	}
}

func TestColdcardReassemblerErrors(t *testing.T) {
	ra := ColdcardReassembler{Max: ColdcardMaxRequest}
	if _, _, _, err := ra.Add(make([]byte, 63)); !errors.Is(err, ErrColdcardFraming) {
		t.Fatalf("short packet: %v", err)
	}
	// a zero-length packet drops what was collected (client.py's resync)
	p := make([]byte, 64)
	p[0] = 10
	copy(p[1:], "0123456789")
	if _, _, done, err := ra.Add(p); done || err != nil {
		t.Fatal(done, err)
	}
	if _, _, done, err := ra.Add(ColdcardResync()); done || err != nil {
		t.Fatal(done, err)
	}
	p[0] = 0x80 | 3
	if _, _, _, err := ra.Add(p); !errors.Is(err, ErrColdcardFraming) {
		t.Fatalf("3-byte message: %v", err)
	}
	// longer than MAX_MSG_LEN
	full := make([]byte, 64)
	full[0] = 63
	var err error
	for i := 0; i < 40 && err == nil; i++ {
		_, _, _, err = ra.Add(full)
	}
	if !errors.Is(err, ErrColdcardFraming) {
		t.Fatalf("overlong message: %v", err)
	}
}

// Both sides of an ncry exchange derive one key; each direction's keystream is AES-256-CTR
// from counter zero and runs on across messages (pyaes.Counter(0)).
func TestColdcardSession(t *testing.T) {
	a, _ := btcec.NewPrivateKey()
	b, _ := btcec.NewPrivateKey()
	ka, err := ColdcardSessionKey(a, ColdcardPubKey64(b.PubKey()))
	if err != nil {
		t.Fatal(err)
	}
	kb, err := ColdcardSessionKey(b, ColdcardPubKey64(a.PubKey()))
	if err != nil || ka != kb {
		t.Fatalf("keys differ: %x %x %v", ka, kb, err)
	}
	host, dev := NewColdcardSession(ka), NewColdcardSession(kb)
	for _, m := range []string{"xpubm/84'/0'/0'", "stok", "dwld-and-then-some-more-bytes-beyond-one-aes-block"} {
		if got := dev.Open(host.Seal([]byte(m))); string(got) != m {
			t.Fatalf("request %q → %q", m, got)
		}
		if got := host.Open(dev.Seal([]byte(m))); string(got) != m {
			t.Fatalf("reply %q → %q", m, got)
		}
	}
	// the stream is plain CTR with a zero IV: the first request is XORed with AES(key, 0)
	blk, _ := aes.NewCipher(ka[:])
	ks := make([]byte, 16)
	cipher.NewCTR(blk, make([]byte, 16)).XORKeyStream(ks, ks)
	s := NewColdcardSession(ka)
	ct := s.Seal([]byte("vers"))
	for i := range 4 {
		if ct[i] != "vers"[i]^ks[i] {
			t.Fatalf("keystream byte %d", i)
		}
	}
	if _, err := ColdcardSessionKey(a, make([]byte, 64)); !errors.Is(err, ErrColdcardFraming) {
		t.Fatalf("point off the curve: %v", err)
	}
}

func TestParseUnixPath(t *testing.T) {
	p, err := ParsePath("unix:/tmp/ckcc-simulator.sock")
	if err != nil || p.Scheme != SchemeUnix || p.Addr != "/tmp/ckcc-simulator.sock" {
		t.Fatalf("%+v %v", p, err)
	}
	if _, err := ParsePath("unix:"); !errors.Is(err, ErrInvalidPath) {
		t.Fatal(err)
	}
	if _, err := DialColdcardSim(t.Context(), t.TempDir()+"/none.sock"); !errors.Is(err, ErrNoDevice) {
		t.Fatalf("nothing listening: %v", err)
	}
}

// FuzzColdcardReassembler: any packet sequence either errors or yields messages of 4 bytes
// or more; whatever a message, its packets reassemble to it.
func FuzzColdcardReassembler(f *testing.F) {
	f.Add([]byte("\x84vers"), []byte("ncry"))
	f.Add(bytes.Repeat([]byte{0x3f}, 200), []byte("upld\x00\x00\x00\x00"))
	f.Add(ColdcardResync(), []byte("okay"))
	f.Fuzz(func(t *testing.T, stream, msg []byte) {
		ra := ColdcardReassembler{Max: ColdcardMaxRequest}
		for len(stream) > 0 {
			p := make([]byte, 64)
			n := copy(p, stream)
			stream = stream[n:]
			got, _, done, err := ra.Add(p)
			if err == nil && done && len(got) < 4 {
				t.Fatalf("message of %d bytes", len(got))
			}
		}
		_, _, _ = ReadColdcard(bytes.NewReader(stream))
		if len(msg) < 4 || len(msg) > ColdcardMaxRequest {
			return
		}
		pkts, err := ColdcardPackets(msg, true)
		if err != nil {
			t.Fatal(err)
		}
		var w bytes.Buffer
		for _, p := range pkts {
			w.Write(p)
		}
		r := &chunked{b: w.Bytes()}
		got, enc, err := ReadColdcard(r)
		if err != nil || !enc || !bytes.Equal(got, msg) {
			t.Fatalf("round trip: %x %v %v", got, enc, err)
		}
	})
}

// chunked returns 64 bytes per Read, as a HID link or datagram socket does.
type chunked struct{ b []byte }

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, errors.New("eof")
	}
	n := copy(p, c.b[:min(64, len(c.b))])
	c.b = c.b[n:]
	return n, nil
}
