package bitcoin

import (
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
)

// hostileAmounts are inputs that must never become a payment: each is refused with
// ErrAmount. The first two are the issue's: 12 whole digits + 8 decimals used to wrap int64
// (184467440737.09651616 BTC paid 0.001 BTC; 92233720368.54775808 wrapped to -2^63).
var hostileAmounts = []string{
	"184467440737.09651616", "92233720368.54775808", "92233720368.54775807", "18446744073709551616",
	"21000000.00000001", "21000001", "999999999999", "0", "0.0", "00.00000000",
	"0.000000001", "1.123456789", "-1", "+1", "-0.1", "1e3", "1E8", "0x10", "0b1", "1,5", "1_000",
	" 1", "1 ", "1\t", "1\n", ".", ".5", "5.", "1.2.3", "", "NaN", "Inf", "infinity", "1/2",
	"١", "１", "1\x00", "½", strings.Repeat("9", 81), "0." + strings.Repeat("0", 79) + "1",
}

func TestParseBTCHostile(t *testing.T) {
	for _, s := range hostileAmounts {
		got, err := ParseBTC(s)
		if err == nil || !errors.Is(err, ErrAmount) {
			t.Errorf("ParseBTC(%q) = %d, %v; want an ErrAmount refusal", s, got, err)
		}
	}
}

func TestParseBTC(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"0.1", 10_000_000},
		{"1", 100_000_000},
		{"0.00000001", 1},
		{"21000000", 2_100_000_000_000_000},
		{"21000000.000000000000", 2_100_000_000_000_000},
		{"0.10000000000", 10_000_000},
		{"007.5", 750_000_000},
	} {
		got, err := ParseBTC(c.in)
		if err != nil || int64(got) != c.want {
			t.Errorf("ParseBTC(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}

func TestParseFeeRate(t *testing.T) {
	for _, c := range []struct {
		in   string
		want FeeRate
	}{{"1", 1000}, {"1.5", 1500}, {"0.001", 1}, {"10000000", MaxFeeRate}} {
		if got, err := ParseFeeRate(c.in); err != nil || got != c.want {
			t.Errorf("ParseFeeRate(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	if r, _ := ParseFeeRate("1.5"); r.Fee(141) != 212 || r.String() != "1.5 sat/vB" {
		t.Errorf("1.5 sat/vB: fee for 141 vB %d, %s", r.Fee(141), r)
	}
	for _, s := range append([]string{"10000000.001", "0.0001", "9223372036854775.807"}, hostileAmounts...) {
		if s == "21000000.00000001" || s == "21000001" || s == "999999999999" || s == "1.123456789" {
			continue // fine as rates or refused for their decimals: covered above/below
		}
		if got, err := ParseFeeRate(s); !errors.Is(err, ErrAmount) {
			t.Errorf("ParseFeeRate(%q) = %d, %v; want an ErrAmount refusal", s, got, err)
		}
	}
	// The largest rate times the largest standard transaction cannot overflow.
	if f := MaxFeeRate.Fee(400_000); f <= 0 {
		t.Errorf("MaxFeeRate.Fee(400000) = %d", f)
	}
}

func TestFormatBTC(t *testing.T) {
	for _, c := range []struct {
		sat  int64
		want string
	}{{0, "0.00000000"}, {1, "0.00000001"}, {btcutil.MaxSatoshi, "21000000.00000000"}, {-150_000_000, "-1.50000000"}, {-9223372036854775808, "-92233720368.54775808"}} {
		if got := FormatBTC(c.sat); got != c.want {
			t.Errorf("FormatBTC(%d) = %q, want %q", c.sat, got, c.want)
		}
	}
}

// FuzzParseBTC: an accepted amount is in (0, 21M BTC], means exactly what its text says
// (math/big's rational reading, independent of the parser) and round-trips through FormatBTC.
func FuzzParseBTC(f *testing.F) {
	for _, s := range append([]string{"0.1", "1", "21000000", "0.00000001"}, hostileAmounts[:12]...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseBTC(s)
		if err != nil {
			return
		}
		if v <= 0 || v > btcutil.MaxSatoshi {
			t.Fatalf("ParseBTC(%q) = %d: out of range", s, v)
		}
		want, ok := new(big.Rat).SetString(s)
		if !ok || new(big.Rat).SetFrac64(int64(v), 1e8).Cmp(want) != 0 {
			t.Fatalf("ParseBTC(%q) = %d sat, which is not what the text means", s, v)
		}
		if v2, err := ParseBTC(FormatBTC(int64(v))); err != nil || v2 != v {
			t.Fatalf("%q -> %d -> %q -> %d, %v", s, v, FormatBTC(int64(v)), v2, err)
		}
	})
}

func FuzzParseFeeRate(f *testing.F) {
	for _, s := range []string{"1", "1.5", "0.001", "10000000", "10000000.001", "1e3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseFeeRate(s)
		if err != nil {
			return
		}
		if r <= 0 || r > MaxFeeRate {
			t.Fatalf("ParseFeeRate(%q) = %d: out of range", s, r)
		}
		want, ok := new(big.Rat).SetString(s)
		if !ok || new(big.Rat).SetFrac64(int64(r), 1000).Cmp(want) != 0 {
			t.Fatalf("ParseFeeRate(%q) = %d msat/vB, which is not what the text means", s, r)
		}
		if fee := r.Fee(1_000_000); fee <= 0 {
			t.Fatalf("fee overflow at %d", r)
		}
	})
}
