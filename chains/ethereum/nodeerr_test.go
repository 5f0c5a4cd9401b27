package ethereum

import "testing"

func TestWeiInEther(t *testing.T) {
	for _, tt := range []struct{ msg, want string }{
		{"insufficient funds for gas * price + value: balance 1000000000000000000, tx cost 2500000000000000000, overshot 1500000000000000000",
			" (in ETH: balance 1, tx cost 2.5, overshot 1.5)"},
		{"insufficient funds for transfer: have 1 want 20000000000000000", " (in ETH: have 0.000000000000000001, want 0.02)"},
		{"insufficient funds", ""},
	} {
		if got := weiInEther(tt.msg); got != tt.want {
			t.Errorf("%q: %q, want %q", tt.msg, got, tt.want)
		}
	}
}
