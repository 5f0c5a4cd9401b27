package ur

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"slices"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

type vectors struct {
	CRC32      [][2]string `json:"crc32"`
	Bytewords1 struct {
		Input    []byte              `json:"input"`
		Standard string              `json:"standard"`
		URI      string              `json:"uri"`
		Minimal  string              `json:"minimal"`
		Bad      map[string][]string `json:"bad"`
	} `json:"bytewords1"`
	Bytewords2 struct {
		Input    []int  `json:"input"`
		Standard string `json:"standard"`
		Minimal  string `json:"minimal"`
	} `json:"bytewords2"`
	RNG1       []uint64                           `json:"rng1_mod100_seed_Wolf"`
	RNG2       []uint64                           `json:"rng2_mod100_seed_crc32_Wolf"`
	RNG3       []uint64                           `json:"rng3_int_1_10_seed_Wolf"`
	FragLen    [][4]int                           `json:"find_fragment_length"`
	Sampler    []int                              `json:"random_sampler_1_2_4_8_seed_Wolf"`
	Shuffle    [][]int                            `json:"shuffle_1_10_seed_Wolf"`
	Partition  []string                           `json:"partition_1024_Wolf_10_100"`
	Degrees    []int                              `json:"choose_degree_1024_nonce_1_200"`
	Fragments  [][]int                            `json:"choose_fragments_1024_seq_1_30"`
	XOR        struct{ Data1, Data2, XOR string } `json:"xor"`
	Parts      []string                           `json:"fountain_encoder_256_30"`
	PartsCBOR  []string                           `json:"fountain_encoder_cbor_256_30"`
	SinglePart string                             `json:"single_part_ur_50"`
	URParts    []string                           `json:"ur_encoder_256_30"`
}

func loadVectors(t testing.TB) *vectors {
	t.Helper()
	b, err := os.ReadFile("testdata/bc-ur-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return &v
}

// makeMessage is the reference tests' make_message: n bytes of Xoshiro256(seed).
func makeMessage(n int, seed string) []byte { return newXoshiro([]byte(seed)).nextData(n) }

func makeMessageUR(t testing.TB, n int) UR {
	b, err := cbor.Marshal(makeMessage(n, "Wolf"))
	if err != nil {
		t.Fatal(err)
	}
	return UR{Type: "bytes", CBOR: b}
}

func TestReferenceVectors(t *testing.T) {
	v := loadVectors(t)
	t.Run("crc32", func(t *testing.T) {
		for _, c := range v.CRC32 {
			if got := fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(c[0]))); got != c[1] {
				t.Errorf("crc32(%q) = %s, want %s", c[0], got, c[1])
			}
		}
	})
	t.Run("bytewords", func(t *testing.T) {
		b1 := v.Bytewords1
		for s, want := range map[Style]string{Standard: b1.Standard, URI: b1.URI, Minimal: b1.Minimal} {
			if got := EncodeBytewords(s, b1.Input); got != want {
				t.Errorf("style %d: %q, want %q", s, got, want)
			}
			if got, err := DecodeBytewords(s, want); err != nil || !slices.Equal(got, b1.Input) {
				t.Errorf("decode style %d: %x %v", s, got, err)
			}
		}
		for name, bad := range b1.Bad {
			s := map[string]Style{"standard": Standard, "uri": URI, "minimal": Minimal}[name]
			for _, text := range bad {
				if _, err := DecodeBytewords(s, text); !errors.Is(err, ErrBytewords) {
					t.Errorf("%s %q decoded: %v", name, text, err)
				}
			}
		}
		in := make([]byte, len(v.Bytewords2.Input))
		for i, x := range v.Bytewords2.Input {
			in[i] = byte(x)
		}
		if got := EncodeBytewords(Standard, in); got != v.Bytewords2.Standard {
			t.Errorf("standard 2: %q", got)
		}
		if got := EncodeBytewords(Minimal, in); got != v.Bytewords2.Minimal {
			t.Errorf("minimal 2: %q", got)
		}
		for s, text := range map[Style]string{Standard: v.Bytewords2.Standard, Minimal: v.Bytewords2.Minimal} {
			if got, err := DecodeBytewords(s, text); err != nil || !slices.Equal(got, in) {
				t.Errorf("decode 2 style %d: %v", s, err)
			}
		}
	})
	t.Run("rng", func(t *testing.T) {
		check := func(name string, rng *xoshiro, want []uint64, f func(*xoshiro) uint64) {
			for i, w := range want {
				if got := f(rng); got != w {
					t.Fatalf("%s[%d] = %d, want %d", name, i, got, w)
				}
			}
		}
		check("rng1", newXoshiro([]byte("Wolf")), v.RNG1, func(r *xoshiro) uint64 { return r.next() % 100 })
		var seed [4]byte
		sum := crc32.ChecksumIEEE([]byte("Wolf"))
		seed[0], seed[1], seed[2], seed[3] = byte(sum>>24), byte(sum>>16), byte(sum>>8), byte(sum)
		check("rng2", newXoshiro(seed[:]), v.RNG2, func(r *xoshiro) uint64 { return r.next() % 100 })
		check("rng3", newXoshiro([]byte("Wolf")), v.RNG3, func(r *xoshiro) uint64 { return r.nextInt(1, 10) })
	})
	t.Run("fragment length", func(t *testing.T) {
		for _, c := range v.FragLen {
			if got := fragmentLen(c[0], c[1], c[2]); got != c[3] {
				t.Errorf("fragmentLen%v = %d", c, got)
			}
		}
	})
	t.Run("sampler", func(t *testing.T) {
		s, rng := newSampler([]float64{1, 2, 4, 8}), newXoshiro([]byte("Wolf"))
		for i, w := range v.Sampler {
			if got := s.next(rng); got != w {
				t.Fatalf("sample %d = %d, want %d", i, got, w)
			}
		}
	})
	t.Run("shuffle", func(t *testing.T) {
		rng := newXoshiro([]byte("Wolf"))
		for i, w := range v.Shuffle {
			if got := shuffled([]int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, rng); !slices.Equal(got, w) {
				t.Fatalf("shuffle %d = %v, want %v", i, got, w)
			}
		}
	})
	msg := makeMessage(1024, "Wolf")
	frags := partition(msg, fragmentLen(len(msg), 10, 100))
	t.Run("partition", func(t *testing.T) {
		if len(frags) != len(v.Partition) {
			t.Fatalf("%d fragments, want %d", len(frags), len(v.Partition))
		}
		for i, f := range frags {
			if hex.EncodeToString(f) != v.Partition[i] {
				t.Errorf("fragment %d = %x", i, f)
			}
		}
	})
	t.Run("degrees", func(t *testing.T) {
		for i, w := range v.Degrees {
			if got := chooseDegree(len(frags), newXoshiro([]byte(fmt.Sprintf("Wolf-%d", i+1)))); got != w {
				t.Fatalf("degree %d = %d, want %d", i+1, got, w)
			}
		}
	})
	t.Run("fragments", func(t *testing.T) {
		sum := crc32.ChecksumIEEE(msg)
		for i, w := range v.Fragments {
			if got := chooseFragments(uint32(i+1), len(frags), sum); !slices.Equal(got, w) {
				t.Errorf("seq %d = %v, want %v", i+1, got, w)
			}
		}
	})
	t.Run("xor", func(t *testing.T) {
		rng := newXoshiro([]byte("Wolf"))
		d1, d2 := rng.nextData(10), rng.nextData(10)
		if hex.EncodeToString(d1) != v.XOR.Data1 || hex.EncodeToString(d2) != v.XOR.Data2 {
			t.Fatalf("%x %x", d1, d2)
		}
		xorInto(d1, d2)
		if hex.EncodeToString(d1) != v.XOR.XOR {
			t.Fatalf("xor %x", d1)
		}
	})
	t.Run("fountain encoder", func(t *testing.T) {
		e, err := NewFountainEncoder(makeMessage(256, "Wolf"), 30, 10, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i := range v.Parts {
			p := e.NextPart()
			if p.String() != v.Parts[i] {
				t.Errorf("part %d = %s\nwant %s", i+1, p, v.Parts[i])
			}
			if hex.EncodeToString(p.CBOR()) != v.PartsCBOR[i] {
				t.Errorf("part %d CBOR = %x", i+1, p.CBOR())
			}
			back, err := ParsePart(p.CBOR())
			if err != nil || back.String() != p.String() {
				t.Errorf("part %d round trip: %v %v", i+1, back, err)
			}
		}
	})
	t.Run("single-part UR", func(t *testing.T) {
		u := makeMessageUR(t, 50)
		if u.String() != v.SinglePart {
			t.Fatalf("%s", u)
		}
		back, err := Parse(v.SinglePart)
		if err != nil || back.Type != "bytes" || !slices.Equal(back.CBOR, u.CBOR) {
			t.Fatalf("%v %v", back, err)
		}
	})
	t.Run("UR encoder", func(t *testing.T) {
		e, err := NewEncoder(makeMessageUR(t, 256), 30)
		if err != nil {
			t.Fatal(err)
		}
		for i, w := range v.URParts {
			if got := e.NextPart(); got != w {
				t.Errorf("part %d = %s\nwant %s", i+1, got, w)
			}
		}
	})
}

// TestFountainDecoder is the reference's multi-part test (32767 bytes, 1000-byte fragments,
// parts from 101 on, all mixed) and the same message with parts shuffled and a third lost.
func TestFountainDecoder(t *testing.T) {
	u := makeMessageUR(t, 32767)
	f, err := NewFountainEncoder(u.CBOR, 1000, 10, 100)
	if err != nil {
		t.Fatal(err)
	}
	d := NewFountainDecoder()
	for n := 0; !d.Done(); n++ {
		if n > 1000 {
			t.Fatal("no result after 1000 parts")
		}
		if err := d.Receive(f.NextPart()); err != nil {
			t.Fatal(err)
		}
	}
	if msg, err := d.Result(); err != nil || !slices.Equal(msg, u.CBOR) {
		t.Fatalf("result: %v", err)
	}

	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		e, err := NewEncoder(u, 1000)
		if err != nil {
			t.Fatal(err)
		}
		parts := e.Parts(4 * e.SeqLen())
		rng.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
		dec := NewDecoder()
		for i, p := range parts {
			if i%3 == 0 {
				continue // lost
			}
			if err := dec.Receive(p); err != nil {
				t.Fatal(err)
			}
		}
		got, err := dec.Result()
		if err != nil || got.Type != "bytes" || !slices.Equal(got.CBOR, u.CBOR) {
			t.Fatalf("seed %d: %v", seed, err)
		}
	}
}

// TestDecoderRefuses: parts of another message, a part whose text and body disagree, a
// broken checksum, a wrong type.
func TestDecoderRefuses(t *testing.T) {
	a, _ := NewEncoder(makeMessageUR(t, 256), 30)
	b, _ := NewEncoder(UR{Type: "bytes", CBOR: makeMessage(256, "Other")}, 30)
	d := NewDecoder()
	if err := d.Receive(a.NextPart()); err != nil {
		t.Fatal(err)
	}
	if err := d.Receive(b.NextPart()); !errors.Is(err, ErrPart) {
		t.Fatalf("another message's part: %v", err)
	}
	c, _ := NewEncoder(UR{Type: "crypto-psbt", CBOR: makeMessageUR(t, 256).CBOR}, 30)
	if err := d.Receive(c.NextPart()); !errors.Is(err, ErrPart) {
		t.Fatalf("another type: %v", err)
	}
	p := a.NextPart()
	if err := d.Receive("ur:bytes/7-9/" + p[len("ur:bytes/2-9/"):]); !errors.Is(err, ErrPart) {
		t.Fatalf("sequence mismatch: %v", err)
	}
	bad := []byte(a.NextPart())
	bad[len(bad)-10] ^= 1
	if err := d.Receive(string(bad)); err == nil {
		t.Fatal("a corrupted part was accepted")
	}
	for _, s := range []string{"", "ur:", "ur:bytes", "ur:Bytes!/aeadaolazmjendeoti", "http:bytes/aead", "ur:bytes/0-9/aeadaolazmjendeoti", "ur:bytes/1-9/x/y/z"} {
		if err := NewDecoder().Receive(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}
