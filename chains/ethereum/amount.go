package ethereum

import (
	"fmt"
	"math/big"
	"strings"
)

// Amount limits: 78 digits hold any uint256; a token reporting more than 77 decimals is
// not one a person can use.
const (
	maxAmountLen   = 100
	maxDecimals    = 77
	EtherDecimals  = 18
	uint256MaxBits = 256
)

// ParseUnits parses a decimal amount such as "1.5" into base units of a currency with the
// given decimals (18 for ETH, 6 for USDC): exactly, never through float64. It refuses
// signs, exponents, empty parts and more decimal places than the currency has (trailing
// zeros beyond them are fine). The result fits in 256 bits.
func ParseUnits(s string, decimals uint8) (*big.Int, error) {
	if decimals > maxDecimals {
		return nil, fmt.Errorf("%w: %d decimals is more than a token can have", ErrInvalidAmount, decimals)
	}
	if len(s) == 0 || len(s) > maxAmountLen {
		return nil, fmt.Errorf("%w: %q: give a decimal number such as 1.5", ErrInvalidAmount, clip(s))
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || hasDot && frac == "" || !digitsOnly(whole) || !digitsOnly(frac) {
		return nil, fmt.Errorf("%w: %q: give a decimal number such as 1.5 (digits, one optional point, no sign or exponent)", ErrInvalidAmount, s)
	}
	trimmed := strings.TrimRight(frac, "0")
	if len(trimmed) > int(decimals) {
		return nil, fmt.Errorf("%w: %s has %d decimal places, but the smallest unit is 10^-%d: round it to %d places", ErrTooManyDecimals, s, len(trimmed), decimals, decimals)
	}
	v, ok := new(big.Int).SetString(whole+trimmed+strings.Repeat("0", int(decimals)-len(trimmed)), 10)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrInvalidAmount, s)
	}
	if v.BitLen() > uint256MaxBits {
		return nil, fmt.Errorf("%w: %s does not fit in 256 bits", ErrInvalidAmount, s)
	}
	return v, nil
}

func digitsOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// FormatUnits writes base units as a decimal string with the given decimals, without
// trailing zeros ("1.5", "0.000001", "42").
func FormatUnits(v *big.Int, decimals uint8) string {
	if v == nil {
		return "0"
	}
	neg := v.Sign() < 0
	digits := new(big.Int).Abs(v).String()
	if d := int(decimals); d > 0 {
		if len(digits) <= d {
			digits = strings.Repeat("0", d-len(digits)+1) + digits
		}
		whole, frac := digits[:len(digits)-d], strings.TrimRight(digits[len(digits)-d:], "0")
		digits = whole
		if frac != "" {
			digits += "." + frac
		}
	}
	if neg {
		return "-" + digits
	}
	return digits
}

// ParseEther parses an ETH amount into wei.
func ParseEther(s string) (*big.Int, error) { return ParseUnits(s, EtherDecimals) }

// FormatEther writes wei as ETH.
func FormatEther(wei *big.Int) string { return FormatUnits(wei, EtherDecimals) }
