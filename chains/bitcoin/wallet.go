package bitcoin

import (
	"bytes"
	"context"
	"fmt"
	"sort"

	"github.com/btcsuite/btcd/chaincfg"
)

// DefaultGap is the gap limit: scanning a branch stops after this many unused addresses
// in a row (BIP-44).
const DefaultGap = 20

// MaxGap is the largest gap limit accepted (each step is a query to the backend).
const MaxGap = 1000

// Wallet is a watch-only wallet: a descriptor with receive (branch 0) and change (branch 1)
// addresses, and the chain it lives on.
type Wallet struct {
	Desc    *Descriptor
	Net     *chaincfg.Params
	Backend Backend
	Gap     int // 0 means DefaultGap
}

// State is what a scan found.
type State struct {
	UTXOs []UTXO
	// NextIndex is, per branch, the first index after the last used address.
	NextIndex [2]uint32
	// Positions maps a script to its branch and index.
	Positions map[string][2]uint32
}

// Balance sums the UTXOs: confirmed and spendable, and all (including mempool and
// immature coinbases).
func (s *State) Balance() (confirmed, total int64) {
	for _, u := range s.UTXOs {
		total += u.Value
		if u.Confirmations > 0 && u.Spendable() {
			confirmed += u.Value
		}
	}
	return confirmed, total
}

// Scan walks both branches in batches of the gap limit until a whole batch past the last
// used address is unused.
func (w *Wallet) Scan(ctx context.Context) (*State, error) {
	gap := w.Gap
	if gap <= 0 {
		gap = DefaultGap
	}
	st := &State{Positions: map[string][2]uint32{}}
	branches := uint32(w.Desc.Branches())
	if branches > 2 {
		branches = 2
	}
	for branch := uint32(0); branch < branches; branch++ {
		next := uint32(0)
		for start := uint32(0); start < next+uint32(gap) || start == 0; start += uint32(gap) {
			scripts := make([][]byte, gap)
			for i := range scripts {
				s, err := w.Desc.Derive(branch, start+uint32(i))
				if err != nil {
					return nil, err
				}
				scripts[i] = s.PkScript
				st.Positions[string(s.PkScript)] = [2]uint32{branch, start + uint32(i)}
			}
			utxos, used, err := w.Backend.Scan(ctx, scripts)
			if err != nil {
				return nil, fmt.Errorf("scan branch %d from %d: %w", branch, start, err)
			}
			st.UTXOs = append(st.UTXOs, utxos...)
			for i, u := range used {
				if u && start+uint32(i)+1 > next {
					next = start + uint32(i) + 1
				}
			}
			if !w.Desc.Ranged() {
				break
			}
		}
		st.NextIndex[branch] = next
	}
	sortUTXOs(st.UTXOs)
	return st, nil
}

func sortUTXOs(us []UTXO) {
	sort.Slice(us, func(i, j int) bool {
		if c := bytes.Compare(us[i].OutPoint.Hash[:], us[j].OutPoint.Hash[:]); c != 0 {
			return c < 0
		}
		return us[i].OutPoint.Index < us[j].OutPoint.Index
	})
}
