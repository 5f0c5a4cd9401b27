package ledger

import (
	"crypto/sha256"
	"testing"
)

// TestPSBTScreens: in SIGN_PSBT only the replies from the device's request for the last
// output's map up to its first YIELD may follow the review (app-bitcoin-new
// handler_sign_psbt); everything else gets the link timeout.
func TestPSBTScreens(t *testing.T) {
	outRoot, inRoot := sha256.Sum256([]byte("outputs")), sha256.Sum256([]byte("inputs"))
	proof := func(root [32]byte, size, index byte) []byte {
		return append(append([]byte{ccGetLeafProof}, root[:]...), size, index)
	}
	preimage := append([]byte{ccGetPreimage, 0}, make([]byte, 32)...)
	yield := []byte{ccYield, 0x00}
	tests := []struct {
		name     string
		nOutputs int
		reqs     [][]byte
		want     []bool
	}{
		{"two outputs", 2,
			[][]byte{proof(inRoot, 1, 0), preimage, proof(outRoot, 2, 0), preimage, proof(outRoot, 2, 1), preimage, proof(inRoot, 1, 0), yield, preimage},
			[]bool{false, false, false, false, true, true, true, false, false}},
		{"another tree's last leaf", 2,
			[][]byte{proof(inRoot, 2, 1), preimage, yield},
			[]bool{false, false, false}},
		{"no outputs", 0,
			[][]byte{proof(inRoot, 1, 0), preimage, yield, preimage},
			[]bool{true, true, false, false}},
		{"garbled request", 1,
			[][]byte{{ccGetLeafProof, 1}, {}, proof(outRoot, 1, 0), yield},
			[]bool{false, false, true, false}},
	}
	for _, tt := range tests {
		rule := psbtScreens(outRoot, tt.nOutputs)
		for i, req := range tt.reqs {
			if got := rule(req); got != tt.want[i] {
				t.Errorf("%s: request %d (%x…): screen %v, want %v", tt.name, i, req[:min(2, len(req))], got, tt.want[i])
			}
		}
	}
}
