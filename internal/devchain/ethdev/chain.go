package ethdev

import (
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/consensus"
	"github.com/ethereum/go-ethereum/consensus/beacon"
	"github.com/ethereum/go-ethereum/consensus/ethash"
	"github.com/ethereum/go-ethereum/consensus/misc/eip1559"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/rawdb"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/ethdb"
	"github.com/ethereum/go-ethereum/params"
	"github.com/holiman/uint256"
)

// gasLimit is each block's gas limit, as geth's default miner gas ceiling.
const gasLimit = 60_000_000

// txLocation is where a mined transaction sits.
type txLocation struct {
	block common.Hash
	num   uint64
	index int
}

// chain is the block chain and the block producer: one block per accepted transaction.
//
// mu serialises block production and guards txs; readers of the chain itself (headers,
// blocks, state at a root) need no lock, as core.BlockChain is safe for concurrent use.
type chain struct {
	db     ethdb.Database
	bc     *core.BlockChain
	engine consensus.Engine
	config *params.ChainConfig
	signer types.Signer

	mu  sync.Mutex
	txs map[common.Hash]txLocation
}

func newChain(prefund []common.Address) (*chain, error) {
	genesis := core.DeveloperGenesisBlock(gasLimit, nil)
	for _, a := range prefund {
		genesis.Alloc[a] = types.Account{Balance: new(big.Int).Set(FaucetBalance)}
	}
	db := rawdb.NewMemoryDatabase()
	engine := beacon.New(ethash.NewFaker())
	cfg := core.DefaultConfig()
	// Hash scheme and every state committed to the database: core.GenerateChain reads the
	// parent state from the database, and eth_call may ask for any block.
	cfg.StateScheme = rawdb.HashScheme
	cfg.ArchiveMode = true
	cfg.SnapshotLimit = 0
	bc, err := core.NewBlockChain(db, genesis, engine, cfg)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("ethdev: block chain: %w", err)
	}
	return &chain{
		db: db, bc: bc, engine: engine, config: bc.Config(),
		signer: types.LatestSigner(bc.Config()),
		txs:    map[common.Hash]txLocation{},
	}, nil
}

func (c *chain) close() {
	c.bc.Stop()
	c.db.Close()
}

// lookup returns where a mined transaction is.
func (c *chain) lookup(h common.Hash) (txLocation, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	loc, ok := c.txs[h]
	return loc, ok
}

// submit validates tx against the head state as geth's transaction pool does, and mines a
// block holding it. A transaction that reverts is mined (status 0); one that cannot be
// included returns an error worded as geth's.
func (c *chain) submit(tx *types.Transaction) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.txs[tx.Hash()]; ok {
		return errors.New("already known")
	}
	parent := c.bc.CurrentBlock()
	st, err := c.bc.StateAt(parent.Root, parent.Number, parent.Time)
	if err != nil {
		return fmt.Errorf("head state: %w", err)
	}
	next := &types.Header{Number: new(big.Int).Add(parent.Number, common.Big1), Time: nextTime(parent), GasLimit: parent.GasLimit}
	next.BaseFee = eip1559.CalcBaseFee(c.config, parent)
	if err := c.validate(tx, st, next); err != nil {
		return err
	}
	block := c.bc.GetBlock(parent.Hash(), parent.Number.Uint64())
	if block == nil {
		return fmt.Errorf("head block %d missing", parent.Number)
	}
	blocks, err := c.generate(block, next.Time, tx)
	if err != nil {
		return err
	}
	if _, err := c.bc.InsertChain(blocks); err != nil {
		return fmt.Errorf("insert block: %w", err)
	}
	b := blocks[0]
	c.txs[tx.Hash()] = txLocation{block: b.Hash(), num: b.NumberU64(), index: 0}
	return nil
}

// nextTime is the next block's timestamp: now, but always after the parent.
func nextTime(parent *types.Header) uint64 {
	now := uint64(time.Now().Unix())
	if now <= parent.Time {
		return parent.Time + 1
	}
	return now
}

// generate builds one block on parent holding tx; core.BlockGen panics when a transaction
// cannot apply, which validate should have ruled out, so a panic becomes an error.
func (c *chain) generate(parent *types.Block, ts uint64, tx *types.Transaction) (blocks []*types.Block, err error) {
	defer func() {
		if r := recover(); r != nil {
			blocks, err = nil, fmt.Errorf("apply transaction: %v", r)
		}
	}()
	blocks, _ = core.GenerateChain(c.config, parent, c.engine, c.db, 1, func(_ int, b *core.BlockGen) {
		// core.GenerateChain stamps parent+10s; move it to ts.
		b.OffsetTime(int64(ts) - int64(parent.Time()+10))
		b.SetCoinbase(common.Address{})
		b.AddTxWithChain(c.bc, tx)
	})
	return blocks, nil
}

// validate applies geth's transaction-pool checks against state st for block next.
func (c *chain) validate(tx *types.Transaction, st *state.StateDB, next *types.Header) error {
	rules := c.config.Rules(next.Number, true, next.Time)
	switch {
	case tx.Type() == types.BlobTxType:
		return fmt.Errorf("blob transactions: %w", errors.ErrUnsupported)
	case tx.Type() == types.SetCodeTxType && len(tx.SetCodeAuthorizations()) == 0:
		return errors.New("set code transaction with empty auth list")
	}
	from, err := types.Sender(c.signer, tx)
	if err != nil {
		if errors.Is(err, types.ErrInvalidChainId) {
			return fmt.Errorf("%w: have %v want %d", err, tx.ChainId(), ChainID)
		}
		return fmt.Errorf("invalid sender: %w", err)
	}
	if tx.Gas() > next.GasLimit {
		return errors.New("exceeds block gas limit")
	}
	if rules.IsOsaka && tx.Gas() > params.MaxTxGas {
		return fmt.Errorf("%w (cap: %d, tx: %d)", core.ErrGasLimitTooHigh, params.MaxTxGas, tx.Gas())
	}
	if tx.GasFeeCapIntCmp(tx.GasTipCap()) < 0 {
		return core.ErrTipAboveFeeCap
	}
	if tx.GasFeeCap().Cmp(next.BaseFee) < 0 {
		return fmt.Errorf("%w: address %v, maxFeePerGas: %s, baseFee: %s", core.ErrFeeCapTooLow, from, tx.GasFeeCap(), next.BaseFee)
	}
	value, _ := uint256.FromBig(tx.Value())
	intrinsic, err := core.IntrinsicGas(tx.Data(), tx.AccessList(), tx.SetCodeAuthorizations(), from, tx.To(), value, rules)
	if err != nil {
		return err
	}
	if tx.Gas() < intrinsic {
		return fmt.Errorf("%w: gas %v, minimum needed %v", core.ErrIntrinsicGas, tx.Gas(), intrinsic)
	}
	if tx.To() == nil {
		if err := vm.CheckMaxInitCodeSize(&rules, uint64(len(tx.Data()))); err != nil {
			return err
		}
	}
	switch nonce := st.GetNonce(from); {
	case tx.Nonce() < nonce:
		return fmt.Errorf("%w: next nonce %v, tx nonce %v", core.ErrNonceTooLow, nonce, tx.Nonce())
	case tx.Nonce() > nonce:
		// geth would queue it; this chain mines at once and keeps no pool.
		return fmt.Errorf("%w: next nonce %v, tx nonce %v (this dev chain keeps no queue: send nonces in order)", core.ErrNonceTooHigh, nonce, tx.Nonce())
	}
	balance := st.GetBalance(from).ToBig()
	if cost := tx.Cost(); balance.Cmp(cost) < 0 {
		return fmt.Errorf("%w: balance %v, tx cost %v, overshot %v", core.ErrInsufficientFunds, balance, cost, new(big.Int).Sub(cost, balance))
	}
	return nil
}
