package ur

import "testing"

// BenchmarkRoundTrip encodes a 10 kB PSBT in 200-byte fragments and decodes it from its
// parts with every third one lost (the work of one animated QR exchange).
func BenchmarkRoundTrip(b *testing.B) {
	u := PSBT(fakePSBT(10_000, "bench"))
	for b.Loop() {
		e, err := NewEncoder(u, DefaultMaxFragmentLen)
		if err != nil {
			b.Fatal(err)
		}
		d := NewDecoder()
		for i := 0; !d.Done(); i++ {
			p := e.NextPart()
			if i%3 == 2 {
				continue
			}
			if err := d.Receive(p); err != nil {
				b.Fatal(err)
			}
		}
	}
}
