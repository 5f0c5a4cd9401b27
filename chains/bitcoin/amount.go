package bitcoin

import (
	"errors"
	"fmt"
	"math/big"

	"github.com/btcsuite/btcd/btcutil"

	"github.com/hwbridge/hwbridge/internal/decimal"
)

// ErrAmount is wrapped by amount and fee-rate parse errors.
var ErrAmount = errors.New("bad amount")

// MaxFeeRate is the highest fee rate read (10,000,000 sat/vB): far above any a network has
// seen, low enough that a rate times a block's vsize cannot overflow.
const MaxFeeRate = FeeRate(10_000_000_000)

// ParseBTC parses a decimal BTC amount exactly ("0.1" is 10,000,000 sat; never through
// float64). At most 8 significant decimals; no sign, exponent or separators; not zero and
// not above 21 million BTC.
func ParseBTC(s string) (btcutil.Amount, error) {
	v, err := decimal.ParseInt64(s, 8, btcutil.MaxSatoshi)
	if err != nil {
		return 0, fmt.Errorf("%w: %w (amounts are in BTC, at most 21000000 with 8 decimals)", ErrAmount, err)
	}
	if v == 0 {
		return 0, fmt.Errorf("%w: %q is zero", ErrAmount, s)
	}
	return btcutil.Amount(v), nil
}

// FeeRate is a fee rate in millisatoshis per virtual byte (1 sat/vB = 1000), so that rates
// like 1.5 sat/vB are exact.
type FeeRate int64

// ParseFeeRate parses a decimal sat/vB rate with up to 3 decimals, not zero and at most
// MaxFeeRate.
func ParseFeeRate(s string) (FeeRate, error) {
	v, err := decimal.ParseInt64(s, 3, int64(MaxFeeRate))
	if err != nil {
		return 0, fmt.Errorf("%w: fee rate: %w (in sat/vB, e.g. 2.5)", ErrAmount, err)
	}
	if v == 0 {
		return 0, fmt.Errorf("%w: fee rate %q is zero", ErrAmount, s)
	}
	return FeeRate(v), nil
}

// SatPerVB returns a rate of n sat/vB.
func SatPerVB(n int64) FeeRate { return FeeRate(n * 1000) }

func (r FeeRate) String() string {
	return decimal.Format(big.NewInt(int64(r)), 3) + " sat/vB"
}

// Fee is the fee for vsize virtual bytes, rounded up to a whole satoshi.
func (r FeeRate) Fee(vsize int64) int64 { return (int64(r)*vsize + 999) / 1000 }

// FormatBTC prints satoshis as BTC with 8 decimals.
func FormatBTC(sat int64) string { return decimal.FormatInt64(sat, 8) }
