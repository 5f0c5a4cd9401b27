// Package btcregtest runs a Bitcoin regtest chain inside the process, built from btcd
// v0.24.2's own packages: blockchain (consensus), mempool (policy and full script
// validation), mining (block templates), blockchain/indexers (tx and address indexes) and
// database/ffldb in a temporary directory. Server serves the subset of btcd's JSON-RPC over
// HTTP on loopback that a wallet-less client needs, with btcd's own result types, so the
// code that talks to a real btcd talks to this chain unchanged.
//
// btcd v0.24.2 regtest activates segwit and taproot through BIP9 only for block 432;
// Options.ActivateSegwit mines to height 431 at start so that witness spends are accepted.
package btcregtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/blockchain/indexers"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/database"
	_ "github.com/btcsuite/btcd/database/ffldb" // registers the "ffldb" driver
	"github.com/btcsuite/btcd/mempool"
	"github.com/btcsuite/btcd/mining"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// SegwitHeight is the tip height from which btcd v0.24.2 regtest accepts witness spends
// (segwit and taproot are active for the next block, 432).
const SegwitHeight = 431

// Options configure a Chain.
type Options struct {
	// Dir holds the block database; empty means a fresh temporary directory, removed by Close.
	Dir string
	// Params are the chain parameters; nil means chaincfg.RegressionNetParams.
	Params *chaincfg.Params
	// Logger receives progress lines; nil discards them.
	Logger *slog.Logger
}

// Chain is an in-process regtest chain with a mempool and a miner.
type Chain struct {
	params    *chaincfg.Params
	log       *slog.Logger
	dir       string
	removeDir bool

	db        database.DB
	chain     *blockchain.BlockChain
	pool      *mempool.TxPool
	gen       *mining.BlkTmplGenerator
	fees      *mempool.FeeEstimator
	txIndex   *indexers.TxIndex
	addrIndex *indexers.AddrIndex
	timeSrc   blockchain.MedianTimeSource

	mu sync.Mutex // serialises mining against submissions and Close
}

// New creates the chain: an empty regtest block database holding only the genesis block.
func New(opts Options) (*Chain, error) {
	params := opts.Params
	if params == nil {
		params = &chaincfg.RegressionNetParams
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Chain{params: params, log: log, dir: opts.Dir}
	if c.dir == "" {
		dir, err := os.MkdirTemp("", "hwbridge-regtest-*")
		if err != nil {
			return nil, fmt.Errorf("btcregtest: temporary directory: %w", err)
		}
		c.dir, c.removeDir = dir, true
	}
	db, err := database.Create("ffldb", c.dir, params.Net)
	if err != nil {
		c.cleanup()
		return nil, fmt.Errorf("btcregtest: create block database in %s (use an empty directory): %w", c.dir, err)
	}
	c.db = db
	c.txIndex = indexers.NewTxIndex(db)
	c.addrIndex = indexers.NewAddrIndex(db, params)
	sigCache := txscript.NewSigCache(1000)
	hashCache := txscript.NewHashCache(1000)
	c.timeSrc = blockchain.NewMedianTime()
	c.chain, err = blockchain.New(&blockchain.Config{
		DB:               db,
		ChainParams:      params,
		TimeSource:       c.timeSrc,
		SigCache:         sigCache,
		HashCache:        hashCache,
		IndexManager:     indexers.NewManager(db, []indexers.Indexer{c.txIndex, c.addrIndex}),
		UtxoCacheMaxSize: 8 << 20,
	})
	if err != nil {
		c.cleanup()
		return nil, fmt.Errorf("btcregtest: chain: %w", err)
	}
	c.fees = mempool.NewFeeEstimator(mempool.DefaultEstimateFeeMaxRollback, mempool.DefaultEstimateFeeMinRegisteredBlocks)
	c.pool = mempool.New(&mempool.Config{
		Policy: mempool.Policy{
			MaxTxVersion:      2,
			FreeTxRelayLimit:  15,
			MaxOrphanTxs:      100,
			MaxOrphanTxSize:   100000,
			MaxSigOpCostPerTx: blockchain.MaxBlockSigOpsCost / 4,
			MinRelayTxFee:     mempool.DefaultMinRelayTxFee,
		},
		ChainParams:    params,
		FetchUtxoView:  c.chain.FetchUtxoView,
		BestHeight:     func() int32 { return c.chain.BestSnapshot().Height },
		MedianTimePast: func() time.Time { return c.chain.BestSnapshot().MedianTime },
		CalcSequenceLock: func(tx *btcutil.Tx, view *blockchain.UtxoViewpoint) (*blockchain.SequenceLock, error) {
			return c.chain.CalcSequenceLock(tx, view, true)
		},
		IsDeploymentActive: c.chain.IsDeploymentActive,
		SigCache:           sigCache,
		HashCache:          hashCache,
		AddrIndex:          c.addrIndex,
		FeeEstimator:       c.fees,
	})
	c.gen = mining.NewBlkTmplGenerator(&mining.Policy{
		BlockMaxWeight:    3000000,
		BlockMaxSize:      750000,
		BlockPrioritySize: mempool.DefaultBlockPrioritySize,
		TxMinFreeFee:      mempool.DefaultMinRelayTxFee,
	}, params, c.pool, c.chain, c.timeSrc, sigCache, hashCache)
	return c, nil
}

// Params returns the chain parameters.
func (c *Chain) Params() *chaincfg.Params { return c.params }

// Height returns the height of the best block.
func (c *Chain) Height() int32 { return c.chain.BestSnapshot().Height }

// Close closes the database and removes its temporary directory.
func (c *Chain) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cleanup()
}

func (c *Chain) cleanup() error {
	var err error
	if c.db != nil {
		err = c.db.Close()
		c.db = nil
	}
	if c.removeDir {
		if rerr := os.RemoveAll(c.dir); rerr != nil && err == nil {
			err = rerr
		}
		c.removeDir = false
	}
	return err
}

// ErrClosed is returned by calls on a closed chain.
var ErrClosed = errors.New("btcregtest: chain is closed")

// Mine mines n blocks paying their coinbase to payTo, each including what the mempool
// holds (as btcd's block template selects it), and returns their hashes.
func (c *Chain) Mine(ctx context.Context, n int, payTo btcutil.Address) ([]chainhash.Hash, error) {
	if payTo == nil {
		return nil, fmt.Errorf("btcregtest: mine: no address to pay the coinbase to")
	}
	if !payTo.IsForNet(c.params) {
		return nil, fmt.Errorf("btcregtest: mine: address %s is not a %s address", payTo, c.params.Name)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.db == nil {
		return nil, ErrClosed
	}
	hashes := make([]chainhash.Hash, 0, n)
	for range n {
		if err := ctx.Err(); err != nil {
			return hashes, fmt.Errorf("btcregtest: mine: %w", err)
		}
		h, err := c.mineOne(ctx, payTo)
		if err != nil {
			return hashes, err
		}
		hashes = append(hashes, h)
	}
	if n > 0 {
		c.log.Debug("mined", "blocks", n, "height", c.Height())
	}
	return hashes, nil
}

// MineTo mines until the tip is at least height.
func (c *Chain) MineTo(ctx context.Context, height int32, payTo btcutil.Address) error {
	if n := int(height - c.Height()); n > 0 {
		_, err := c.Mine(ctx, n, payTo)
		return err
	}
	return nil
}

func (c *Chain) mineOne(ctx context.Context, payTo btcutil.Address) (chainhash.Hash, error) {
	tmpl, err := c.gen.NewBlockTemplate(payTo)
	if err != nil {
		return chainhash.Hash{}, fmt.Errorf("btcregtest: block template: %w", err)
	}
	msg := tmpl.Block
	height := c.Height() + 1
	target := blockchain.CompactToBig(msg.Header.Bits)
	solved := false
	for extra := uint64(0); !solved && extra < 1<<16; extra++ {
		if extra > 0 {
			if err := c.gen.UpdateExtraNonce(msg, height, extra); err != nil {
				return chainhash.Hash{}, fmt.Errorf("btcregtest: extra nonce: %w", err)
			}
		}
		for nonce := uint32(0); nonce < 1<<20; nonce++ {
			msg.Header.Nonce = nonce
			h := msg.Header.BlockHash()
			if blockchain.HashToBig(&h).Cmp(target) <= 0 {
				solved = true
				break
			}
		}
		if err := ctx.Err(); err != nil {
			return chainhash.Hash{}, fmt.Errorf("btcregtest: mine: %w", err)
		}
	}
	if !solved {
		return chainhash.Hash{}, fmt.Errorf("btcregtest: no proof of work found for bits %08x (regtest difficulty expected)", msg.Header.Bits)
	}
	block := btcutil.NewBlock(msg)
	isMain, isOrphan, err := c.chain.ProcessBlock(block, blockchain.BFNone)
	if err != nil {
		return chainhash.Hash{}, fmt.Errorf("btcregtest: block %d rejected: %w", height, err)
	}
	if !isMain || isOrphan {
		return chainhash.Hash{}, fmt.Errorf("btcregtest: block %d did not extend the main chain", height)
	}
	// What btcd's sync manager does on a connected block.
	for _, tx := range block.Transactions()[1:] {
		c.pool.RemoveTransaction(tx, false)
		c.pool.RemoveDoubleSpends(tx)
		c.pool.RemoveOrphan(tx)
		c.pool.ProcessOrphans(tx)
	}
	if err := c.fees.RegisterBlock(block); err != nil {
		c.log.Debug("fee estimator", "err", err)
	}
	return *block.Hash(), nil
}

// SubmitTx offers tx to the mempool (full policy and script checks) and returns its txid.
func (c *Chain) SubmitTx(tx *wire.MsgTx) (chainhash.Hash, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.db == nil {
		return chainhash.Hash{}, ErrClosed
	}
	btx := btcutil.NewTx(tx)
	if _, err := c.pool.ProcessTransaction(btx, false, false, 0); err != nil {
		return chainhash.Hash{}, fmt.Errorf("btcregtest: transaction %s rejected: %w", btx.Hash(), err)
	}
	return *btx.Hash(), nil
}

// InMempool reports whether txid waits in the mempool.
func (c *Chain) InMempool(txid *chainhash.Hash) bool { return c.pool.HaveTransaction(txid) }

// MempoolCount returns how many transactions wait in the mempool (hwbridge devnet mines a
// block when it is not zero).
func (c *Chain) MempoolCount() int { return c.pool.Count() }
