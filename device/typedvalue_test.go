package device

import (
	"encoding/json"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common/math"
)

func TestTypedIntegerHostile(t *testing.T) {
	big256 := new(big.Int).Lsh(big.NewInt(1), 256)
	for _, c := range []struct {
		v      any
		size   int
		signed bool
		want   string // decimal; "" = refused
	}{
		{json.Number("42"), 32, false, "42"},
		{"0x2a", 32, false, "42"},
		{"-1", 1, true, "-1"},
		{"-129", 1, true, ""},            // below int8
		{"128", 1, true, ""},             // above int8
		{"255", 1, false, "255"},         // uint8 max
		{"256", 1, false, ""},            // above uint8
		{"-1", 1, false, ""},             // negative uint
		{"-0x01", 1, true, ""},           // negative hex: not a form documents use
		{"1e3", 32, false, ""},           // no exponents
		{"1.5", 32, false, ""},           // no fractions
		{"", 32, false, "0"},             // empty: 0, as go-ethereum hashes it (math.ParseBig256)
		{" 1", 32, false, ""},            // spaces
		{big256.String(), 32, false, ""}, // 2^256 wraps nowhere
		{new(big.Int).Sub(big256, big.NewInt(1)).String(), 32, false, new(big.Int).Sub(big256, big.NewInt(1)).String()},
		{float64(1 << 53), 32, false, "9007199254740992"},
		{float64(1<<53) * 2, 32, false, ""}, // digits already lost: refused, not rounded
		{1.5, 32, false, ""},
		{(*big.Int)(nil), 32, false, ""},
		{(*math.HexOrDecimal256)(nil), 32, false, ""},
		{math.NewHexOrDecimal256(7), 32, false, "7"},
		{int64(-5), 2, true, "-5"},
		{uint64(1) << 63, 8, false, "9223372036854775808"},
		{true, 32, false, ""},
		{nil, 32, false, ""},
	} {
		n, err := TypedInteger(c.v, c.size, c.signed)
		switch {
		case c.want == "" && err == nil:
			t.Errorf("TypedInteger(%#v, %d, %v) = %s, want refused", c.v, c.size, c.signed, n)
		case c.want != "" && (err != nil || n.String() != c.want):
			t.Errorf("TypedInteger(%#v, %d, %v) = %v, %v; want %s", c.v, c.size, c.signed, n, err, c.want)
		}
	}
}

func TestTwosComplement(t *testing.T) {
	for _, c := range []struct {
		n    int64
		size int
		want string
	}{{-1, 1, "ff"}, {-128, 1, "80"}, {127, 1, "7f"}, {-2, 2, "fffe"}, {0, 2, "0000"}} {
		if got := new(big.Int).SetBytes(TwosComplement(big.NewInt(c.n), c.size)).Text(16); strings.TrimLeft(c.want, "0") != got && !(got == "0" && strings.Trim(c.want, "0") == "") {
			t.Errorf("TwosComplement(%d, %d) = %s, want %s", c.n, c.size, got, c.want)
		}
	}
}

// FuzzTypedInteger: a decimal string is read exactly (big.Int's reading is the oracle) and
// accepted only within the type's range.
func FuzzTypedInteger(f *testing.F) {
	for _, s := range []string{"0", "1", "-1", "255", "256", "-128", "115792089237316195423570985008687907853269984665640564039457584007913129639935", "0x10", "-0"} {
		f.Add(s, uint8(1), false)
		f.Add(s, uint8(32), true)
	}
	f.Fuzz(func(t *testing.T, s string, size uint8, signed bool) {
		sz := int(size%32) + 1
		n, err := TypedInteger(s, sz, signed)
		if err != nil {
			return
		}
		lo, hi := new(big.Int), new(big.Int).Lsh(big.NewInt(1), uint(sz*8))
		if signed {
			hi.Rsh(hi, 1)
			lo.Neg(hi)
		}
		if n.Cmp(lo) < 0 || n.Cmp(hi) >= 0 {
			t.Fatalf("%q accepted as %s outside [%s, %s)", s, n, lo, hi)
		}
		if want, ok := new(big.Int).SetString(s, 0); ok && !strings.HasPrefix(s, "0") && !strings.HasPrefix(s, "-0") && want.Cmp(n) != 0 {
			t.Fatalf("%q read as %s, want %s", s, n, want)
		}
		if b := TwosComplement(n, sz); len(b) != sz {
			t.Fatalf("%d bytes for size %d", len(b), sz)
		}
	})
}
