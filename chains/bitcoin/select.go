package bitcoin

import (
	"errors"
	"fmt"
	"sort"
)

// ErrInsufficientFunds is wrapped when the spendable coins cannot pay the outputs and fee.
var ErrInsufficientFunds = errors.New("insufficient funds")

// selectParams describe a coin selection problem. Weights are in weight units.
type selectParams struct {
	coins        []UTXO
	inputWeight  func(UTXO) int64
	target       int64 // sum of the payments
	baseWeight   int64 // the transaction without inputs and without change
	changeWeight int64 // the change output
	changeSpend  int64 // spending the change later (cost of change)
	rate         FeeRate
	dust         int64 // smallest change worth creating
}

type selection struct {
	coins  []UTXO
	fee    int64
	change int64 // 0: no change output
	method string
}

// feeFor is the fee of weight w at the rate, rounded up.
func (p *selectParams) feeFor(w int64) int64 { return p.rate.Fee((w + 3) / 4) }

// bnbTries bounds the branch-and-bound search (as Bitcoin Core does).
const bnbTries = 100_000

// selectCoins tries branch-and-bound for a changeless solution, then falls back to
// largest-first with change.
func selectCoins(p selectParams) (*selection, error) {
	type cand struct {
		u    UTXO
		w    int64
		effV int64
	}
	var cs []cand
	var total int64
	for _, u := range p.coins {
		w := p.inputWeight(u)
		ev := u.Value - p.rate.Fee((w+3)/4)
		total += u.Value
		if ev > 0 {
			cs = append(cs, cand{u, w, ev})
		}
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].effV > cs[j].effV })

	// Branch and bound over effective values: target is the payments plus the fee of the
	// transaction without inputs or change; a solution may waste at most the cost of change.
	bnbTarget := p.target + p.feeFor(p.baseWeight)
	costOfChange := p.feeFor(p.changeWeight) + p.feeFor(p.changeSpend)
	if len(cs) > 0 {
		remaining := make([]int64, len(cs)+1)
		for i := len(cs) - 1; i >= 0; i-- {
			remaining[i] = remaining[i+1] + cs[i].effV
		}
		var best []bool
		bestWaste := int64(-1)
		cur := make([]bool, len(cs))
		tries := 0
		var sum int64
		var dfs func(i int) bool
		dfs = func(i int) bool {
			tries++
			if tries > bnbTries {
				return true
			}
			if sum > bnbTarget+costOfChange || sum+remaining[i] < bnbTarget {
				return false
			}
			if sum >= bnbTarget {
				if waste := sum - bnbTarget; bestWaste < 0 || waste < bestWaste {
					bestWaste = waste
					best = append(best[:0], cur...)
				}
				return bestWaste == 0
			}
			if i == len(cs) {
				return false
			}
			// Including a coin equal to the previous, excluded one gives a combination
			// already tried.
			if !(i > 0 && !cur[i-1] && cs[i].effV == cs[i-1].effV) {
				cur[i] = true
				sum += cs[i].effV
				stop := dfs(i + 1)
				sum -= cs[i].effV
				cur[i] = false
				if stop {
					return true
				}
			}
			return dfs(i + 1)
		}
		dfs(0)
		if best != nil {
			s := &selection{method: "branch-and-bound"}
			var in, w int64
			for i, b := range best {
				if b {
					s.coins = append(s.coins, cs[i].u)
					in += cs[i].u.Value
					w += cs[i].w
				}
			}
			s.fee = in - p.target
			if s.fee >= p.feeFor(p.baseWeight+w) {
				return s, nil
			}
		}
	}

	// Largest first, with change (dropped into the fee when it would be dust).
	s := &selection{method: "largest-first"}
	var in, w int64
	for _, c := range cs {
		s.coins = append(s.coins, c.u)
		in += c.u.Value
		w += c.w
		feeChange := p.feeFor(p.baseWeight + w + p.changeWeight)
		if change := in - p.target - feeChange; change >= p.dust {
			s.fee, s.change = feeChange, change
			return s, nil
		}
		if feeNo := p.feeFor(p.baseWeight + w); in-p.target >= feeNo {
			// Enough without change; the leftover is below dust and goes to the fee.
			s.fee = in - p.target
			return s, nil
		}
	}
	need := p.target + p.feeFor(p.baseWeight+w)
	return nil, fmt.Errorf("%w: spendable coins total %s BTC, the payment and fee need about %s BTC", ErrInsufficientFunds, FormatBTC(total), FormatBTC(need))
}
