package psbt

import (
	"bytes"
	"testing"
)

// FuzzParseWitness: a final_scriptwitness value either is refused or is exactly the
// serialization of what was read (no bytes ignored, none invented).
func FuzzParseWitness(f *testing.F) {
	f.Add([]byte{0})
	f.Add([]byte{2, 1, 0xaa, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Add([]byte{1, 0xfd, 0x00, 0x01})
	f.Fuzz(func(t *testing.T, raw []byte) {
		w, err := ParseWitness(raw)
		if err != nil {
			return
		}
		if len(w) > MaxWitnessItems {
			t.Fatalf("%d items", len(w))
		}
		if got := SerializeWitness(w); !bytes.Equal(got, raw) {
			t.Fatalf("re-serialized %x, read %x", got, raw)
		}
	})
}
