package ethereum

import (
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/hwbridge/hwbridge/internal/decimal"
)

// Amount limits: a token reporting more than 77 decimals is not one a person can use.
const (
	maxDecimals   = 77
	EtherDecimals = 18
	GweiDecimals  = 9
)

// maxUint256 is the largest amount a transaction or an ERC-20 call can carry.
var maxUint256 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))

// ParseUnits parses a decimal amount such as "1.5" into base units of a currency with the
// given decimals (18 for ETH, 6 for USDC): exactly, never through float64. It refuses
// signs, exponents, empty parts and more decimal places than the currency has (trailing
// zeros beyond them are fine). The result fits in 256 bits.
func ParseUnits(s string, decimals uint8) (*big.Int, error) {
	if decimals > maxDecimals {
		return nil, fmt.Errorf("%w: %d decimals is more than a token can have", ErrInvalidAmount, decimals)
	}
	v, err := decimal.Parse(s, int(decimals), maxUint256)
	switch {
	case errors.Is(err, decimal.ErrPrecision):
		return nil, fmt.Errorf("%w: %w: round it to %d places", ErrTooManyDecimals, err, decimals)
	case errors.Is(err, decimal.ErrRange):
		return nil, fmt.Errorf("%w: %s does not fit in 256 bits", ErrInvalidAmount, s)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrInvalidAmount, err)
	}
	return v, nil
}

// FormatUnits writes base units as a decimal string with the given decimals, without
// trailing zeros ("1.5", "0.000001", "42").
func FormatUnits(v *big.Int, decimals uint8) string { return decimal.Format(v, int(decimals)) }

// ParseEther parses an ETH amount into wei.
func ParseEther(s string) (*big.Int, error) { return ParseUnits(s, EtherDecimals) }

// FormatEther writes wei as ETH.
func FormatEther(wei *big.Int) string { return FormatUnits(wei, EtherDecimals) }

// ParseGwei parses a per-gas price in gwei (up to 9 decimals) into wei.
func ParseGwei(s string) (*big.Int, error) { return ParseUnits(s, GweiDecimals) }

// ParseChainID parses a decimal chain id: positive, at most 2^64-1 (what every signer,
// EIP-155 included, can encode).
func ParseChainID(s string) (*big.Int, error) {
	v, err := decimal.Parse(s, 0, new(big.Int).SetUint64(^uint64(0)))
	if err != nil || v.Sign() == 0 || strings.Contains(s, ".") {
		return nil, fmt.Errorf("%w: chain id %q: give a positive decimal chain id (1 for mainnet)", ErrInvalidAmount, s)
	}
	return v, nil
}
