// Package decimal is the one exact parser and printer behind every amount hwbridge reads
// from a person, an app or a node: BTC, sat/vB, ETH, gwei, token units. Values are integers
// scaled by 10^decimals, held in math/big while they are read, so no input can wrap or round;
// each unit's parser (chains/bitcoin, chains/ethereum) adds its own range.
//
// The grammar is deliberately narrow: DIGITS [ "." DIGITS ], ASCII digits only, no sign,
// exponent, spaces, separators or empty part. Fraction digits beyond the unit's precision are
// accepted only when they are zeros ("1.000000000" BTC is one bitcoin); anything else is
// refused, never rounded.
package decimal

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// MaxLen is the longest amount string read: enough for any uint256 with 77 decimals.
const MaxLen = 160

// Errors callers branch on (wrapped with the input quoted).
var (
	ErrSyntax    = errors.New("not a plain decimal number")
	ErrPrecision = errors.New("more decimal places than the unit has")
	ErrRange     = errors.New("out of range")
)

// Parse reads s as a decimal and returns it scaled by 10^decimals. It refuses values above
// max (when max is not nil).
func Parse(s string, decimals int, max *big.Int) (*big.Int, error) {
	if len(s) == 0 || len(s) > MaxLen {
		return nil, fmt.Errorf("%w: %q: give a decimal number such as 1.5", ErrSyntax, clip(s))
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || hasDot && frac == "" || !digits(whole) || !digits(frac) {
		return nil, fmt.Errorf("%w: %q: give a decimal number such as 1.5 (digits and one optional point; no sign, exponent, spaces or separators)", ErrSyntax, clip(s))
	}
	trimmed := strings.TrimRight(frac, "0")
	if len(trimmed) > decimals {
		return nil, fmt.Errorf("%w: %s has %d decimal places; this unit has %d", ErrPrecision, s, len(trimmed), decimals)
	}
	v, ok := new(big.Int).SetString(whole+trimmed+strings.Repeat("0", decimals-len(trimmed)), 10)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrSyntax, clip(s))
	}
	if max != nil && v.Cmp(max) > 0 {
		return nil, fmt.Errorf("%w: %s is above the largest allowed value, %s", ErrRange, s, Format(max, decimals))
	}
	return v, nil
}

// ParseInt64 is Parse for units that fit in an int64 (satoshis, millisatoshis per vbyte):
// max must be at most math.MaxInt64.
func ParseInt64(s string, decimals int, max int64) (int64, error) {
	v, err := Parse(s, decimals, big.NewInt(max))
	if err != nil {
		return 0, err
	}
	return v.Int64(), nil
}

// Format prints v scaled by 10^decimals without trailing fraction zeros ("1.5", "42").
func Format(v *big.Int, decimals int) string {
	s := FormatFixed(v, decimals)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// FormatFixed prints v scaled by 10^decimals with exactly decimals fraction digits.
func FormatFixed(v *big.Int, decimals int) string {
	if v == nil {
		v = new(big.Int)
	}
	neg := v.Sign() < 0
	d := new(big.Int).Abs(v).String()
	if decimals > 0 {
		if len(d) <= decimals {
			d = strings.Repeat("0", decimals-len(d)+1) + d
		}
		d = d[:len(d)-decimals] + "." + d[len(d)-decimals:]
	}
	if neg {
		return "-" + d
	}
	return d
}

// FormatInt64 is FormatFixed for an int64 (math.MinInt64 included).
func FormatInt64(v int64, decimals int) string { return FormatFixed(big.NewInt(v), decimals) }

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
