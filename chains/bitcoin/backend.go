package bitcoin

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/hwbridge/hwbridge/internal/decimal"
)

// UTXO is an unspent output the wallet can spend.
type UTXO struct {
	OutPoint      wire.OutPoint
	Value         int64
	PkScript      []byte
	Confirmations int64 // 0 while in the mempool
	Coinbase      bool
}

// CoinbaseMaturity is how many confirmations a coinbase output needs before it is spent.
const CoinbaseMaturity = 100

// Spendable says whether u can be spent now (a coinbase must be mature).
func (u UTXO) Spendable() bool { return !u.Coinbase || u.Confirmations >= CoinbaseMaturity }

// Backend is the chain a watch-only wallet talks to. Implementations: RPC (Bitcoin Core or
// btcd JSON-RPC) and Esplora (REST).
type Backend interface {
	// Scan returns the unspent outputs paying to any of scripts, and for each script
	// whether it has ever been paid (for the gap limit).
	Scan(ctx context.Context, scripts [][]byte) ([]UTXO, []bool, error)
	// RawTx returns a transaction (for PSBT non_witness_utxo).
	RawTx(ctx context.Context, txid chainhash.Hash) (*wire.MsgTx, error)
	// FeeRate estimates the rate to confirm within target blocks; ErrNoFeeEstimate when the
	// backend has none.
	FeeRate(ctx context.Context, target int) (FeeRate, error)
	// Broadcast submits a signed transaction and returns its txid.
	Broadcast(ctx context.Context, tx *wire.MsgTx) (chainhash.Hash, error)
	// TipHeight is the height of the best block.
	TipHeight(ctx context.Context) (int64, error)
	// Confirmations returns 0 for a mempool transaction, n ≥ 1 once mined, and
	// ErrTxNotFound when the backend does not know it.
	Confirmations(ctx context.Context, txid chainhash.Hash) (int64, error)
}

// Backend errors callers branch on.
var (
	ErrNoFeeEstimate = errors.New("the backend has no fee estimate (pass --fee-rate)")
	ErrTxNotFound    = errors.New("transaction not found")
	// ErrRejected wraps a node's refusal of a broadcast.
	ErrRejected = errors.New("the node rejected the transaction")
)

// parseChainDecimal parses a decimal from a node's JSON (BTC amounts, BTC/kvB rates),
// scaled by 10^decimals; extra decimals are rounded up (a fee rate never rounds down). Values
// above 21 million BTC are refused.
func parseChainDecimal(s string, decimals int) (int64, error) {
	s = strings.TrimSpace(s)
	whole, frac, _ := strings.Cut(s, ".")
	up := false
	if len(frac) > decimals {
		up = strings.Trim(frac[decimals:], "0") != ""
		frac = frac[:decimals]
	}
	if whole == "" {
		whole = "0"
	}
	if frac != "" {
		whole += "." + frac
	}
	v, err := decimal.ParseInt64(whole, decimals, btcutil.MaxSatoshi)
	if err != nil {
		return 0, fmt.Errorf("%w: from the node: %w", ErrAmount, err)
	}
	if up {
		v++
	}
	return v, nil
}
