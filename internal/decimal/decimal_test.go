package decimal

import (
	"errors"
	"math/big"
	"strings"
	"testing"
)

// meaning is the exact value a string in Parse's grammar stands for, read by math/big's
// rational parser: an oracle independent of Parse.
func meaning(t testing.TB, s string) *big.Rat {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		t.Fatalf("big.Rat cannot read %q, which Parse accepted", s)
	}
	return r
}

func scaled(v *big.Int, decimals int) *big.Rat {
	return new(big.Rat).SetFrac(v, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(decimals)), nil))
}

func TestParseTable(t *testing.T) {
	max := big.NewInt(2_100_000_000_000_000)
	for _, tt := range []struct {
		in   string
		dec  int
		want string
		err  error
	}{
		{"1", 8, "100000000", nil},
		{"0.1", 8, "10000000", nil},
		{"21000000", 8, "2100000000000000", nil},
		{"21000000.00000000000000", 8, "2100000000000000", nil},
		{"0000000000000000000000000000000000000001", 8, "100000000", nil},
		{"0.00000001", 8, "1", nil},
		{"0", 8, "0", nil},
		// the wrap: 12 whole digits + 8 decimals wrapped int64 to 0.001 BTC
		{"184467440737.09651616", 8, "", ErrRange},
		{"92233720368.54775808", 8, "", ErrRange},
		{"92233720368.54775807", 8, "", ErrRange},
		{"21000000.00000001", 8, "", ErrRange},
		{"99999999999999999999999999999999999999999", 8, "", ErrRange},
		{"0.000000001", 8, "", ErrPrecision},
		{"0.123456789", 8, "", ErrPrecision},
		{"", 8, "", ErrSyntax},
		{".5", 8, "", ErrSyntax},
		{"5.", 8, "", ErrSyntax},
		{".", 8, "", ErrSyntax},
		{"-1", 8, "", ErrSyntax},
		{"+1", 8, "", ErrSyntax},
		{"1e3", 8, "", ErrSyntax},
		{"1E-3", 8, "", ErrSyntax},
		{"0x10", 8, "", ErrSyntax},
		{"1,000", 8, "", ErrSyntax},
		{"1_000", 8, "", ErrSyntax},
		{"1 000", 8, "", ErrSyntax},
		{" 1", 8, "", ErrSyntax},
		{"1\n", 8, "", ErrSyntax},
		{"1.2.3", 8, "", ErrSyntax},
		{"١", 8, "", ErrSyntax}, // Arabic-Indic digit one
		{"１", 8, "", ErrSyntax}, // full-width one
		{"NaN", 8, "", ErrSyntax},
		{"Inf", 8, "", ErrSyntax},
		{"1/2", 8, "", ErrSyntax},
		{"1\x00", 8, "", ErrSyntax},
		{strings.Repeat("1", MaxLen+1), 0, "", ErrSyntax},
	} {
		v, err := Parse(tt.in, tt.dec, max)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("Parse(%q, %d) = %v, %v; want %v", tt.in, tt.dec, v, err, tt.err)
			}
			continue
		}
		if err != nil || v.String() != tt.want {
			t.Errorf("Parse(%q, %d) = %v, %v; want %s", tt.in, tt.dec, v, err, tt.want)
		}
	}
}

func TestFormat(t *testing.T) {
	for _, tt := range []struct {
		v    *big.Int
		dec  int
		want string
	}{
		{big.NewInt(0), 8, "0"}, {big.NewInt(1), 8, "0.00000001"}, {big.NewInt(150000000), 8, "1.5"},
		{big.NewInt(-2500), 3, "-2.5"}, {big.NewInt(42), 0, "42"}, {nil, 2, "0"},
	} {
		if got := Format(tt.v, tt.dec); got != tt.want {
			t.Errorf("Format(%v, %d) = %q, want %q", tt.v, tt.dec, got, tt.want)
		}
	}
	if got := FormatInt64(-9223372036854775808, 8); got != "-92233720368.54775808" {
		t.Errorf("FormatInt64(MinInt64) = %q", got)
	}
}

// FuzzParse: whatever parses means what it says (the big.Rat oracle), stays in range, and
// survives a round trip through Format.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"1", "0.1", "184467440737.09651616", "92233720368.54775808", "1.000", "007.50", "1e3", ".5"} {
		f.Add(s, uint8(8))
	}
	max := big.NewInt(2_100_000_000_000_000)
	f.Fuzz(func(t *testing.T, s string, d uint8) {
		dec := int(d % 40)
		v, err := Parse(s, dec, max)
		if err != nil {
			return
		}
		if v.Sign() < 0 || v.Cmp(max) > 0 {
			t.Fatalf("Parse(%q) = %v: out of [0, max]", s, v)
		}
		if scaled(v, dec).Cmp(meaning(t, s)) != 0 {
			t.Fatalf("Parse(%q, %d) = %v, which is not what the string means", s, dec, v)
		}
		for _, out := range []string{Format(v, dec), FormatFixed(v, dec)} {
			v2, err := Parse(out, dec, max)
			if err != nil || v2.Cmp(v) != 0 {
				t.Fatalf("%q -> %v -> %q -> %v, %v", s, v, out, v2, err)
			}
		}
	})
}
