package ethdev

import (
	"encoding/json"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"
)

// The block, transaction and receipt objects below start from go-ethereum's own JSON
// marshalling of types.Header, types.Transaction and types.Receipt, and add the fields
// geth's RPC adds (block position, sender, size).

// fields is a JSON object under construction.
type fields map[string]json.RawMessage

// objectOf marshals v, which must marshal to a JSON object, into fields.
func objectOf(v any) (fields, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	f := fields{}
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, err
	}
	return f, nil
}

// set adds key with v's JSON.
func (f fields) set(key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("marshal %s: %w", key, err)
	}
	f[key] = raw
	return nil
}

// GetBlockByNumber is eth_getBlockByNumber; null for a block that does not exist.
func (a *ethAPI) GetBlockByNumber(n rpc.BlockNumber, fullTx bool) (fields, error) {
	hd := a.headerByNumber(n)
	if hd == nil {
		return nil, nil
	}
	b := a.c.bc.GetBlock(hd.Hash(), hd.Number.Uint64())
	if b == nil {
		return nil, nil
	}
	return a.marshalBlock(b, fullTx)
}

// GetBlockByHash is eth_getBlockByHash; null for an unknown block.
func (a *ethAPI) GetBlockByHash(h common.Hash, fullTx bool) (fields, error) {
	b := a.c.bc.GetBlockByHash(h)
	if b == nil {
		return nil, nil
	}
	return a.marshalBlock(b, fullTx)
}

// GetBlockTransactionCountByNumber is eth_getBlockTransactionCountByNumber.
func (a *ethAPI) GetBlockTransactionCountByNumber(n rpc.BlockNumber) *hexutil.Uint {
	hd := a.headerByNumber(n)
	if hd == nil {
		return nil
	}
	b := a.c.bc.GetBlock(hd.Hash(), hd.Number.Uint64())
	if b == nil {
		return nil
	}
	c := hexutil.Uint(len(b.Transactions()))
	return &c
}

func (a *ethAPI) marshalBlock(b *types.Block, fullTx bool) (fields, error) {
	f, err := objectOf(b.Header())
	if err != nil {
		return nil, err
	}
	// types.Header writes absent optional fields (those of forks not active) as null;
	// geth's RPC leaves them out.
	for k, v := range f {
		if string(v) == "null" {
			delete(f, k)
		}
	}
	if err := f.set("size", hexutil.Uint64(b.Size())); err != nil {
		return nil, err
	}
	uncles := make([]common.Hash, 0, len(b.Uncles()))
	for _, u := range b.Uncles() {
		uncles = append(uncles, u.Hash())
	}
	if err := f.set("uncles", uncles); err != nil {
		return nil, err
	}
	if b.Header().WithdrawalsHash != nil {
		w := b.Withdrawals()
		if w == nil {
			w = types.Withdrawals{}
		}
		if err := f.set("withdrawals", w); err != nil {
			return nil, err
		}
	}
	txs := make([]any, 0, len(b.Transactions()))
	for i, tx := range b.Transactions() {
		if !fullTx {
			txs = append(txs, tx.Hash())
			continue
		}
		t, err := a.marshalTx(tx, b, i)
		if err != nil {
			return nil, err
		}
		txs = append(txs, t)
	}
	if err := f.set("transactions", txs); err != nil {
		return nil, err
	}
	return f, nil
}

// marshalTx is a mined transaction as geth's RPC shows it.
func (a *ethAPI) marshalTx(tx *types.Transaction, b *types.Block, index int) (fields, error) {
	f, err := objectOf(tx)
	if err != nil {
		return nil, err
	}
	from, err := types.Sender(a.c.signer, tx)
	if err != nil {
		return nil, err
	}
	add := map[string]any{
		"blockHash":        b.Hash(),
		"blockNumber":      (*hexutil.Big)(b.Number()),
		"transactionIndex": hexutil.Uint64(index),
		"from":             from,
	}
	if tx.Type() != types.LegacyTxType && tx.Type() != types.AccessListTxType {
		tip, err := tx.EffectiveGasTip(b.BaseFee())
		if err == nil {
			add["gasPrice"] = (*hexutil.Big)(tip.Add(tip, b.BaseFee()))
		}
	}
	if b.BaseFee() == nil {
		add["gasPrice"] = (*hexutil.Big)(tx.GasPrice())
	}
	for k, v := range add {
		if err := f.set(k, v); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// GetTransactionByHash is eth_getTransactionByHash; null for an unknown transaction.
func (a *ethAPI) GetTransactionByHash(h common.Hash) (fields, error) {
	loc, ok := a.c.lookup(h)
	if !ok {
		return nil, nil
	}
	b := a.c.bc.GetBlock(loc.block, loc.num)
	if b == nil || loc.index >= len(b.Transactions()) {
		return nil, nil
	}
	return a.marshalTx(b.Transactions()[loc.index], b, loc.index)
}

// GetTransactionReceipt is eth_getTransactionReceipt; null for an unknown transaction.
func (a *ethAPI) GetTransactionReceipt(h common.Hash) (fields, error) {
	loc, ok := a.c.lookup(h)
	if !ok {
		return nil, nil
	}
	b := a.c.bc.GetBlock(loc.block, loc.num)
	receipts := a.c.bc.GetReceiptsByHash(loc.block)
	if b == nil || loc.index >= len(receipts) || loc.index >= len(b.Transactions()) {
		return nil, nil
	}
	r, tx := receipts[loc.index], b.Transactions()[loc.index]
	f, err := objectOf(r)
	if err != nil {
		return nil, err
	}
	from, err := types.Sender(a.c.signer, tx)
	if err != nil {
		return nil, err
	}
	if err := f.set("from", from); err != nil {
		return nil, err
	}
	if err := f.set("to", tx.To()); err != nil {
		return nil, err
	}
	if logs := r.Logs; logs == nil {
		if err := f.set("logs", []*types.Log{}); err != nil {
			return nil, err
		}
	}
	// types.Receipt writes the pre-Byzantium state root, empty here; geth leaves it out.
	if r.PostState == nil {
		delete(f, "root")
	}
	// geth gives contractAddress only for a creation, and null otherwise.
	var created *common.Address
	if tx.To() == nil {
		created = &r.ContractAddress
	}
	if err := f.set("contractAddress", created); err != nil {
		return nil, err
	}
	return f, nil
}
