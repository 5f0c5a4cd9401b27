package ethereum

import (
	"context"
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"strings"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/params"
)

// Fee policy.
const (
	feeHistoryBlocks = 10 // blocks of eth_feeHistory to take the median tip from
	feeTipPercentile = 50
	// GasHeadroomPercent is added to eth_estimateGas: state can change between estimate and
	// inclusion, and dev chains price some operations differently (nodes.md §5).
	GasHeadroomPercent = 20
	plainTransferGas   = params.TxGas // 21000: an ETH transfer to an account without code
)

// FeeOptions are the user's overrides; zero values mean "suggest".
type FeeOptions struct {
	MaxFeePerGas         *big.Int // EIP-1559 fee cap, wei per gas
	MaxPriorityFeePerGas *big.Int // EIP-1559 tip cap, wei per gas
	GasPrice             *big.Int // set: build a legacy (EIP-155) transaction at this price
	GasLimit             uint64   // set: use it instead of eth_estimateGas (+20%)
}

// Fees are the fee fields of a transaction to build.
type Fees struct {
	Dynamic bool     // EIP-1559; false means legacy
	BaseFee *big.Int // the next block's base fee (dynamic only)
	TipCap  *big.Int // dynamic only
	FeeCap  *big.Int // dynamic only
	Price   *big.Int // legacy only
}

// PerGas is the most the transaction pays per gas: the fee cap, or the legacy gas price.
func (f Fees) PerGas() *big.Int {
	if f.Dynamic {
		return f.FeeCap
	}
	return f.Price
}

// SuggestFees picks fees: legacy at --gas-price when it is given or when the node's head
// has no base fee (a pre-London chain); otherwise EIP-1559 with tip = the override, or the
// larger of eth_maxPriorityFeePerGas and the median tip of the last blocks
// (eth_feeHistory), and fee cap = the override, or 2 × the next block's base fee + tip.
func (c *Client) SuggestFees(ctx context.Context, o FeeOptions) (Fees, error) {
	for name, v := range map[string]*big.Int{"max fee": o.MaxFeePerGas, "priority fee": o.MaxPriorityFeePerGas, "gas price": o.GasPrice} {
		if v != nil && (v.Sign() < 0 || v.BitLen() > 256) {
			return Fees{}, fmt.Errorf("%w: %s must be between 0 and 2^256-1 wei", ErrInvalidAmount, name)
		}
	}
	head, err := c.node.HeaderByNumber(ctx, nil)
	if err != nil {
		return Fees{}, fmt.Errorf("latest block header: %w", err)
	}
	if o.GasPrice != nil || head.BaseFee == nil {
		if o.MaxFeePerGas != nil || o.MaxPriorityFeePerGas != nil {
			if o.GasPrice != nil {
				return Fees{}, fmt.Errorf("%w: give either a gas price (legacy) or max fee/priority fee (EIP-1559), not both", ErrInvalidAmount)
			}
			return Fees{}, fmt.Errorf("%w: the node's chain has no base fee (pre-London): use a gas price instead of max fee/priority fee", ErrInvalidAmount)
		}
		price := o.GasPrice
		if price == nil {
			if price, err = c.node.SuggestGasPrice(ctx); err != nil {
				return Fees{}, fmt.Errorf("eth_gasPrice: %w", err)
			}
		}
		return Fees{Price: price}, nil
	}
	f := Fees{Dynamic: true, BaseFee: head.BaseFee}
	var rewards []*big.Int
	if fh, err := c.node.FeeHistory(ctx, feeHistoryBlocks, nil, []float64{feeTipPercentile}); err != nil {
		c.log.Debug("eth_feeHistory unavailable; using the head's base fee", "err", err)
	} else {
		if n := len(fh.BaseFee); n > 0 && fh.BaseFee[n-1] != nil {
			f.BaseFee = fh.BaseFee[n-1] // the block after the newest: what we will pay
		}
		for _, r := range fh.Reward {
			if len(r) > 0 && r[0] != nil {
				rewards = append(rewards, r[0])
			}
		}
	}
	f.TipCap = o.MaxPriorityFeePerGas
	if f.TipCap == nil {
		tip, err := c.node.SuggestGasTipCap(ctx)
		if err != nil && !isMethodMissing(err) {
			return Fees{}, fmt.Errorf("eth_maxPriorityFeePerGas: %w", err)
		}
		if tip == nil {
			tip = new(big.Int)
		}
		if m := median(rewards); m != nil && m.Cmp(tip) > 0 {
			tip = m
		}
		f.TipCap = tip
	}
	f.FeeCap = o.MaxFeePerGas
	if f.FeeCap == nil {
		f.FeeCap = new(big.Int).Add(new(big.Int).Mul(f.BaseFee, big.NewInt(2)), f.TipCap)
	}
	if f.FeeCap.Cmp(f.TipCap) < 0 {
		return Fees{}, fmt.Errorf("%w: max fee %s wei/gas is below the priority fee %s wei/gas", ErrInvalidAmount, f.FeeCap, f.TipCap)
	}
	if f.FeeCap.Cmp(f.BaseFee) < 0 {
		c.log.Warn("max fee is below the next base fee; the transaction waits until fees drop", "max_fee", f.FeeCap, "base_fee", f.BaseFee)
	}
	return f, nil
}

func median(v []*big.Int) *big.Int {
	if len(v) == 0 {
		return nil
	}
	s := slices.Clone(v)
	slices.SortFunc(s, func(a, b *big.Int) int { return a.Cmp(b) })
	return s[len(s)/2]
}

func isMethodMissing(err error) bool {
	return strings.Contains(err.Error(), "method not found") || strings.Contains(err.Error(), "does not exist")
}

// EstimateGas asks the node (eth_estimateGas) and adds GasHeadroomPercent, except for a
// plain transfer at exactly 21000, which cannot use more. A call that would revert gives
// ErrWouldRevert with the node's reason; a sender that cannot pay gives
// ErrInsufficientFunds.
func (c *Client) EstimateGas(ctx context.Context, msg ethereum.CallMsg) (uint64, error) {
	g, err := c.node.EstimateGas(ctx, msg)
	if err != nil {
		return 0, classifyNodeError("gas estimate", err)
	}
	if g == plainTransferGas && len(msg.Data) == 0 {
		return g, nil
	}
	return g + g*GasHeadroomPercent/100, nil
}

// classifyNodeError maps a node's JSON-RPC error text onto this package's sentinels.
func classifyNodeError(op string, err error) error {
	msg := strings.ToLower(err.Error())
	switch {
	case strings.Contains(msg, "insufficient funds"):
		return fmt.Errorf("%s: %w: %w%s (the account cannot pay value plus gas: fund it, or send less)", op, ErrInsufficientFunds, err, weiInEther(msg))
	case strings.Contains(msg, "execution reverted") || strings.Contains(msg, "revert"):
		return fmt.Errorf("%s: %w: %w (nothing was sent)", op, ErrWouldRevert, err)
	case strings.Contains(msg, "invalid chain id") || strings.Contains(msg, "invalid sender"):
		return fmt.Errorf("%s: %w: %w (the transaction was signed for another chain)", op, ErrWrongChain, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// nodeWei finds the wei amounts geth puts in its refusals ("balance 1000, tx cost 2000",
// "have 1000 want 2000").
var nodeWei = regexp.MustCompile(`(balance|tx cost|overshot|have|want)[: ]+(\d+)`)

// weiInEther restates a node error's wei amounts in ETH (" (in ETH: balance 0.000001, tx
// cost 0.000002)"), or "" when it names none.
func weiInEther(msg string) string {
	var parts []string
	for _, m := range nodeWei.FindAllStringSubmatch(msg, -1) {
		v, ok := new(big.Int).SetString(m[2], 10)
		if !ok {
			continue
		}
		parts = append(parts, m[1]+" "+FormatEther(v))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (in ETH: " + strings.Join(parts, ", ") + ")"
}
