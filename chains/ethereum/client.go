package ethereum

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"net/url"
	"sync"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
)

// Node is the part of an Ethereum JSON-RPC node this package uses; *ethclient.Client
// satisfies it.
type Node interface {
	ChainID(ctx context.Context) (*big.Int, error)
	PendingNonceAt(ctx context.Context, account common.Address) (uint64, error)
	BalanceAt(ctx context.Context, account common.Address, block *big.Int) (*big.Int, error)
	CodeAt(ctx context.Context, account common.Address, block *big.Int) ([]byte, error)
	CallContract(ctx context.Context, msg ethereum.CallMsg, block *big.Int) ([]byte, error)
	EstimateGas(ctx context.Context, msg ethereum.CallMsg) (uint64, error)
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
	FeeHistory(ctx context.Context, blockCount uint64, lastBlock *big.Int, rewardPercentiles []float64) (*ethereum.FeeHistory, error)
	SuggestGasTipCap(ctx context.Context) (*big.Int, error)
	SuggestGasPrice(ctx context.Context) (*big.Int, error)
	SendTransaction(ctx context.Context, tx *types.Transaction) error
	TransactionReceipt(ctx context.Context, hash common.Hash) (*types.Receipt, error)
	TransactionByHash(ctx context.Context, hash common.Hash) (*types.Transaction, bool, error)
}

var _ Node = (*ethclient.Client)(nil)

// Client builds and broadcasts transactions against one node. It caches the chain id and
// tracks the next nonce per sender, so that transactions prepared back to back get
// consecutive nonces even before the first reaches the node's pool. Safe for concurrent
// use.
type Client struct {
	node  Node
	log   *slog.Logger
	close func()

	mu      sync.Mutex
	chainID *big.Int
	next    map[common.Address]uint64 // next nonce we would hand out, per sender
}

// NewClient wraps a node; log may be nil.
func NewClient(node Node, log *slog.Logger) *Client {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{node: node, log: log, next: map[common.Address]uint64{}}
}

// Dial connects to a JSON-RPC URL (http, https, ws, wss).
func Dial(ctx context.Context, rawURL string, log *slog.Logger) (*Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("rpc url %q: want http://host:port (or https, ws, wss)", RedactURL(rawURL))
	}
	ec, err := ethclient.DialContext(ctx, rawURL)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", RedactURL(rawURL), err)
	}
	c := NewClient(ec, log)
	c.close = ec.Close
	return c, nil
}

// Close closes the connection Dial opened.
func (c *Client) Close() {
	if c.close != nil {
		c.close()
	}
}

// Node returns the node the client talks to.
func (c *Client) Node() Node { return c.node }

// RedactURL hides a URL's password for messages.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// ChainID returns the node's chain id (eth_chainId), cached after the first call.
func (c *Client) ChainID(ctx context.Context) (*big.Int, error) {
	c.mu.Lock()
	id := c.chainID
	c.mu.Unlock()
	if id != nil {
		return new(big.Int).Set(id), nil
	}
	id, err := c.node.ChainID(ctx)
	if err != nil {
		return nil, fmt.Errorf("eth_chainId: %w (is the node running, and is --rpc its JSON-RPC URL?)", err)
	}
	if id.Sign() <= 0 {
		return nil, fmt.Errorf("%w: the node reports chain id %s", ErrWrongChain, id)
	}
	c.mu.Lock()
	c.chainID = id
	c.mu.Unlock()
	return new(big.Int).Set(id), nil
}

// CheckChain fails with ErrWrongChain unless the node's chain id is want (nil accepts any).
func (c *Client) CheckChain(ctx context.Context, want *big.Int) (*big.Int, error) {
	id, err := c.ChainID(ctx)
	if err != nil {
		return nil, err
	}
	if want != nil && want.Cmp(id) != 0 {
		return nil, fmt.Errorf("%w: the node is on chain %s, but chain %s was asked for: check --rpc (or drop --chain-id)", ErrWrongChain, id, want)
	}
	return id, nil
}

// Balance returns an account's balance in wei at the latest block.
func (c *Client) Balance(ctx context.Context, a common.Address) (*big.Int, error) {
	b, err := c.node.BalanceAt(ctx, a, nil)
	if err != nil {
		return nil, fmt.Errorf("eth_getBalance %s: %w", a.Hex(), err)
	}
	return b, nil
}

// reserveNonce hands out the next nonce for from: the node's pending nonce, or our own
// count if we have handed out more than the node has seen yet.
func (c *Client) reserveNonce(ctx context.Context, from common.Address) (uint64, error) {
	pending, err := c.node.PendingNonceAt(ctx, from)
	if err != nil {
		return 0, fmt.Errorf("pending nonce of %s: %w", from.Hex(), err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n := max(pending, c.next[from])
	c.next[from] = n + 1
	return n, nil
}

// releaseNonce gives back nonce n if it is the last one handed out for from (a transaction
// that was never broadcast).
func (c *Client) releaseNonce(from common.Address, n uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.next[from] == n+1 {
		c.next[from] = n
	}
}
