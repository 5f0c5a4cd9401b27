package ledgeremu

import (
	"testing"

	"github.com/hwbridge/hwbridge/emulator"
)

// BenchmarkExchange is one APDU round trip (B0 01) through the in-process pipe: the
// emulator's share of every exchange.
func BenchmarkExchange(b *testing.B) {
	d := NewForTest(b, Config{})
	c := newTestClient(b, d)
	for b.Loop() {
		c.mustOK(claOS, insAppAndVer, 0, 0, nil)
	}
}

// BenchmarkSignPSBT100 signs a 100-input p2wpkh PSBT and reports the APDU round trips.
func BenchmarkSignPSBT100(b *testing.B) {
	d := NewForTest(b, Config{Approver: emulator.NewApprover(emulator.PolicyAuto)})
	c := newTestClient(b, d)
	f := buildSpend(b, d.Wallet(), "wpkh", 0, 100)
	pol := defaultPolicy(b, c, "wpkh(@0/**)", "m/84'/0'/0'")
	var trips int
	for b.Loop() {
		d.Approver().ClearTranscript()
		ys, sw, n := signPSBT(b, c, f.pkt, pol, nil)
		if sw != swOK || len(ys) != 100 {
			b.Fatalf("sign: %04x %d", sw, len(ys))
		}
		trips = n + 1
	}
	b.ReportMetric(float64(trips), "apdus/op")
}
