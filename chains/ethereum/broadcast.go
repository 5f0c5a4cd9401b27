package ethereum

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// Broadcast sends a signed transaction with eth_sendRawTransaction. The node already
// knowing it (a retry) is success; so is a "nonce too low" for a transaction the node
// already has. A transaction signed for another chain than the node's is refused before
// sending (ErrWrongChain). After a successful broadcast p's nonce stays used.
func (c *Client) Broadcast(ctx context.Context, p *Prepared, signed *types.Transaction) (common.Hash, error) {
	chainID, err := c.ChainID(ctx)
	if err != nil {
		return common.Hash{}, err
	}
	if id := signed.ChainId(); id.Sign() == 0 || id.Cmp(chainID) != 0 {
		return common.Hash{}, fmt.Errorf("%w: the transaction is signed for chain %s, the node is on chain %s: nothing was sent", ErrWrongChain, id, chainID)
	}
	if p != nil {
		if err := CheckSigned(p.Tx, signed, p.ChainID, p.From); err != nil {
			return common.Hash{}, err
		}
	}
	h := signed.Hash()
	err = c.node.SendTransaction(ctx, signed)
	switch {
	case err == nil:
	case strings.Contains(strings.ToLower(err.Error()), "already known"):
		c.log.Info("node already has the transaction", "hash", h)
	case strings.Contains(strings.ToLower(err.Error()), "nonce too low"):
		if _, _, lerr := c.node.TransactionByHash(ctx, h); lerr != nil {
			return common.Hash{}, fmt.Errorf("broadcast %s: %w (another transaction from this account used nonce %d: prepare it again)", h.Hex(), err, signed.Nonce())
		}
		c.log.Info("node already has the transaction", "hash", h)
	default:
		return common.Hash{}, classifyNodeError("broadcast "+h.Hex(), err)
	}
	if p != nil {
		p.done.Store(true)
	}
	return h, nil
}

// Receipt waiting defaults.
const (
	DefaultReceiptTimeout = 2 * time.Minute
	firstPoll             = 5 * time.Millisecond
	maxPoll               = 2 * time.Second
)

// Progress is one step of waiting for a receipt.
type Progress struct {
	Hash    common.Hash
	State   string // "pending" (in the pool), "unknown" (the node does not have it), "indexing", "mined"
	Block   uint64 // for "mined"
	Elapsed time.Duration
}

// WaitOptions control WaitReceipt.
type WaitOptions struct {
	Timeout  time.Duration  // default DefaultReceiptTimeout
	Progress func(Progress) // called when the state changes; may be nil
}

// WaitReceipt polls for the receipt (5 ms, doubling to 2 s) until it is there, the
// timeout passes (ErrReceiptTimeout: the transaction may still be mined) or ctx ends. It
// retries "transaction indexing is in progress", which a freshly started node reports. A
// reverted transaction returns its receipt and a *RevertError (ErrReverted) with the
// revert reason when the node replays one.
func (c *Client) WaitReceipt(ctx context.Context, h common.Hash, o WaitOptions) (*types.Receipt, error) {
	if o.Timeout <= 0 {
		o.Timeout = DefaultReceiptTimeout
	}
	wctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	t0 := time.Now()
	last := ""
	report := func(state string, block uint64) {
		if state != last && o.Progress != nil {
			o.Progress(Progress{Hash: h, State: state, Block: block, Elapsed: time.Since(t0)})
		}
		last = state
	}
	poll := firstPoll
	for {
		r, err := c.node.TransactionReceipt(wctx, h)
		switch {
		case err == nil && r != nil:
			report("mined", r.BlockNumber.Uint64())
			if err := c.waitHead(wctx, r.BlockNumber, poll); err != nil {
				return nil, fmt.Errorf("receipt for %s: %w", h.Hex(), err)
			}
			if r.Status != types.ReceiptStatusSuccessful {
				return r, c.revertError(ctx, h, r)
			}
			return r, nil
		case err == nil || errors.Is(err, ethereum.NotFound):
			if _, pending, terr := c.node.TransactionByHash(wctx, h); terr == nil && pending {
				report("pending", 0)
			} else if terr != nil && errors.Is(terr, ethereum.NotFound) {
				report("unknown", 0)
			}
		case strings.Contains(err.Error(), "indexing is in progress"):
			report("indexing", 0)
		case wctx.Err() == nil:
			return nil, fmt.Errorf("receipt for %s: %w", h.Hex(), err)
		}
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return nil, fmt.Errorf("waiting for the receipt of %s: %w", h.Hex(), ctx.Err())
			}
			return nil, fmt.Errorf("%w for %s after %s (last seen: %s): it may still be mined; look it up by hash", ErrReceiptTimeout, h.Hex(), o.Timeout, last)
		case <-time.After(poll):
		}
		poll = min(2*poll, maxPoll)
	}
}

// waitHead waits until the node's latest block is at least n, so that what follows a
// receipt (a balance, an eth_call at "latest") sees its block: geth --dev (its simulated
// beacon inserts a block, then makes it the head) answers for the receipt a moment before
// "latest" has moved to its block.
func (c *Client) waitHead(ctx context.Context, n *big.Int, poll time.Duration) error {
	for {
		head, err := c.node.HeaderByNumber(ctx, nil)
		if err != nil {
			return fmt.Errorf("latest block: %w", err)
		}
		if head.Number.Cmp(n) >= 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the node's latest block stayed at %s below the receipt's %s: %w", head.Number, n, ctx.Err())
		case <-time.After(poll):
		}
		poll = min(2*poll, maxPoll)
	}
}

// revertError builds the error for a failed receipt, replaying the call on the parent
// block's state for the revert reason (best effort: other transactions in the same block
// may have changed the state it ran on).
func (c *Client) revertError(ctx context.Context, h common.Hash, r *types.Receipt) error {
	e := &RevertError{Hash: h, Block: r.BlockNumber.Uint64(), GasUsed: r.GasUsed}
	tx, _, err := c.node.TransactionByHash(ctx, h)
	if err != nil || tx.To() == nil || r.BlockNumber.Sign() == 0 {
		return e
	}
	from, err := types.Sender(types.LatestSignerForChainID(tx.ChainId()), tx)
	if err != nil {
		return e
	}
	parent := new(big.Int).Sub(r.BlockNumber, big.NewInt(1))
	_, err = c.node.CallContract(ctx, ethereum.CallMsg{From: from, To: tx.To(), Gas: tx.Gas(), Value: tx.Value(), Data: tx.Data()}, parent)
	if err != nil {
		e.Reason = err.Error()
	}
	return e
}
