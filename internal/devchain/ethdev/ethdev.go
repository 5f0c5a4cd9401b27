// Package ethdev runs an Ethereum dev chain inside the process, as `geth --dev
// --dev.period 0` does: a block per transaction, mined before eth_sendRawTransaction
// returns, chain id 1337, every fork of params.AllDevChainProtocolChanges active from
// genesis (EIP-1559 base fee, Cancun, Prague, Osaka), an in-memory database, and HTTP
// JSON-RPC on loopback only. Keys of ours are prefunded through the genesis alloc; there is
// no unlocked account.
//
// It is built from go-ethereum's core.BlockChain (beacon consensus around an ethash faker,
// blocks from core.GenerateChain) and its rpc server, with the eth methods written here:
// go-ethereum's node, eth and p2p packages (pebble, zstd's C sources, the downloader) made
// a cold `go run ./cmd/hwbridge demo` take 188 s on two cores; without them it takes about
// 105 s. internal/deptest keeps them out of cmd/hwbridge.
//
// Served: eth_chainId, eth_blockNumber, eth_syncing, eth_accounts (empty), eth_getBalance,
// eth_getTransactionCount, eth_getCode, eth_getStorageAt, eth_call, eth_estimateGas,
// eth_gasPrice, eth_maxPriorityFeePerGas, eth_feeHistory, eth_sendRawTransaction,
// eth_getTransactionByHash, eth_getTransactionReceipt, eth_getBlockByNumber,
// eth_getBlockByHash, eth_getBlockTransactionCountByNumber, net_version, net_listening,
// net_peerCount, web3_clientVersion. Not served: logs and filters, subscriptions (there is no
// websocket), eth_sendTransaction (no keys), debug and txpool namespaces.
//
// # Errors
//
// eth_sendRawTransaction answers with geth's wording, which callers match on: "already
// known" (the transaction is mined), "nonce too low", "nonce too high" (geth would queue it;
// here nonces must come in order), "insufficient funds for gas * price + value", "intrinsic
// gas too low", "max fee per gas less than block base fee". A transaction that reverts is
// mined with status 0. eth_call and eth_estimateGas answer a revert with code 3 and the
// revert data, as geth.
package ethdev

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rpc"
)

// ChainID is the dev chain's id, as geth --dev.
const ChainID = 1337

// FaucetKey returns the key the dev chain prefunds by default: sha256("hwbridge ethdev
// faucet"). It is public test material; never send value to it on a real network.
func FaucetKey() *ecdsa.PrivateKey {
	seed := sha256.Sum256([]byte("hwbridge ethdev faucet"))
	k, err := crypto.ToECDSA(seed[:])
	if err != nil {
		panic(fmt.Sprintf("ethdev: faucet key: %v", err)) // a fixed valid scalar; cannot fail
	}
	return k
}

// FaucetBalance is what each prefunded account holds at genesis: 1,000,000 ETH.
var FaucetBalance = new(big.Int).Mul(big.NewInt(1_000_000), big.NewInt(params.Ether))

// Options configure Start.
type Options struct {
	// Addr is the loopback HTTP address; empty means 127.0.0.1 on a free port.
	Addr string
	// Prefund lists accounts funded with FaucetBalance at genesis; nil means FaucetKey's.
	Prefund []common.Address
	// Logger receives progress lines; nil discards them.
	Logger *slog.Logger
}

// Node is a running dev chain.
type Node struct {
	chain *chain
	rpc   *rpc.Server
	http  *http.Server
	done  chan error // the HTTP server's exit
	url   string
	log   *slog.Logger
}

// Start starts the dev chain and its HTTP JSON-RPC endpoint (eth, net, web3).
func Start(ctx context.Context, opts Options) (*Node, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("ethdev: listen address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("ethdev: refusing to serve on %s: use a loopback address such as 127.0.0.1:0", addr)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ethdev: start: %w", err)
	}
	prefund := opts.Prefund
	if prefund == nil {
		prefund = []common.Address{crypto.PubkeyToAddress(FaucetKey().PublicKey)}
	}
	c, err := newChain(prefund)
	if err != nil {
		return nil, err
	}
	srv := rpc.NewServer()
	for name, api := range map[string]any{"eth": &ethAPI{c: c}, "net": netAPI{}, "web3": web3API{}} {
		if err := srv.RegisterName(name, api); err != nil {
			srv.Stop()
			c.close()
			return nil, fmt.Errorf("ethdev: register %s: %w", name, err)
		}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		srv.Stop()
		c.close()
		return nil, fmt.Errorf("ethdev: listen (is %s in use?): %w", addr, err)
	}
	n := &Node{
		chain: c, rpc: srv, done: make(chan error, 1),
		http: &http.Server{Handler: loopbackHost(srv), ReadHeaderTimeout: 10 * time.Second},
		url:  "http://" + ln.Addr().String(),
		log:  log,
	}
	go func() { n.done <- n.http.Serve(ln) }()
	log.Debug("ethereum dev chain ready", "rpc", n.url, "chain_id", ChainID)
	return n, nil
}

// loopbackHost refuses requests whose Host is not a loopback name, so that a web page
// cannot reach the chain through DNS rebinding.
func loopbackHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.Trim(host, "[]")
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			http.Error(w, "invalid host specified", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// URL is the HTTP JSON-RPC endpoint.
func (n *Node) URL() string { return n.url }

// BlockNumber returns the head block's number.
func (n *Node) BlockNumber() uint64 { return n.chain.bc.CurrentBlock().Number.Uint64() }

// Close stops the chain; the in-memory state is gone afterwards.
func (n *Node) Close() error {
	if n.http == nil {
		return nil
	}
	err := n.http.Close()
	if serr := <-n.done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	n.rpc.Stop()
	n.chain.close()
	n.http = nil
	if err != nil {
		return fmt.Errorf("ethdev: close: %w", err)
	}
	return nil
}
