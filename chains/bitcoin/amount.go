package bitcoin

import (
	"errors"
	"fmt"
	"strings"

	"github.com/btcsuite/btcd/btcutil"
)

// ErrAmount is wrapped by amount and fee-rate parse errors.
var ErrAmount = errors.New("bad amount")

// ParseBTC parses a decimal BTC amount exactly ("0.1" is 10,000,000 sat; never through
// float64). At most 8 decimals; no sign, exponent or separators; not above 21 million BTC.
func ParseBTC(s string) (btcutil.Amount, error) {
	v, err := parseDecimal(s, 8)
	if err != nil {
		return 0, err
	}
	if v == 0 {
		return 0, fmt.Errorf("%w: %q is zero", ErrAmount, s)
	}
	if v > btcutil.MaxSatoshi {
		return 0, fmt.Errorf("%w: %q is more than 21 million BTC", ErrAmount, s)
	}
	return btcutil.Amount(v), nil
}

// FeeRate is a fee rate in millisatoshis per virtual byte (1 sat/vB = 1000), so that rates
// like 1.5 sat/vB are exact.
type FeeRate int64

// ParseFeeRate parses a decimal sat/vB rate with up to 3 decimals.
func ParseFeeRate(s string) (FeeRate, error) {
	v, err := parseDecimal(s, 3)
	if err != nil {
		return 0, err
	}
	if v == 0 {
		return 0, fmt.Errorf("%w: fee rate %q is zero", ErrAmount, s)
	}
	return FeeRate(v), nil
}

// SatPerVB returns a rate of n sat/vB.
func SatPerVB(n int64) FeeRate { return FeeRate(n * 1000) }

func (r FeeRate) String() string {
	s := fmt.Sprintf("%d.%03d", r/1000, r%1000)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s + " sat/vB"
}

// Fee is the fee for vsize virtual bytes, rounded up to a whole satoshi.
func (r FeeRate) Fee(vsize int64) int64 { return (int64(r)*vsize + 999) / 1000 }

// parseDecimal parses an unsigned decimal with at most decimals fraction digits, scaled by
// 10^decimals.
func parseDecimal(s string, decimals int) (int64, error) {
	orig := s
	if s == "" {
		return 0, fmt.Errorf("%w: empty", ErrAmount)
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if hasDot && frac == "" && whole == "" {
		return 0, fmt.Errorf("%w: %q", ErrAmount, orig)
	}
	if len(frac) > decimals {
		return 0, fmt.Errorf("%w: %q has %d decimals; at most %d are allowed", ErrAmount, orig, len(frac), decimals)
	}
	if len(whole) > 12 {
		return 0, fmt.Errorf("%w: %q is too large", ErrAmount, orig)
	}
	var v int64
	for _, c := range whole + frac + strings.Repeat("0", decimals-len(frac)) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: %q is not a plain decimal number", ErrAmount, orig)
		}
		v = v*10 + int64(c-'0')
	}
	return v, nil
}

// FormatBTC prints satoshis as BTC with 8 decimals.
func FormatBTC(sat int64) string {
	sign := ""
	if sat < 0 {
		sign, sat = "-", -sat
	}
	return fmt.Sprintf("%s%d.%08d", sign, sat/1e8, sat%1e8)
}
