// Package ethdev runs an Ethereum dev chain inside the process, as `geth --dev
// --dev.period 0` does: go-ethereum's node and eth service with an in-memory database,
// catalyst.SimulatedBeacon sealing a block as soon as a transaction arrives, and HTTP
// JSON-RPC on loopback. Chain id 1337. Keys of ours are prefunded through the genesis alloc;
// there is no unlocked account.
//
// Importing this package costs about two minutes of cold compile time and tens of MB of
// binary (go-ethereum's eth service); only cmd/hwbridge's demo imports it.
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
	"strconv"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth"
	"github.com/ethereum/go-ethereum/eth/catalyst"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/eth/filters"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/p2p"
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
	stack  *node.Node
	eth    *eth.Ethereum
	beacon *catalyst.SimulatedBeacon
	url    string
	log    *slog.Logger
}

// Start starts the dev chain and its HTTP JSON-RPC endpoint (eth, net, web3, txpool).
func Start(ctx context.Context, opts Options) (*Node, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("ethdev: listen address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("ethdev: refusing to serve on %s: use a loopback address such as 127.0.0.1:0", addr)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("ethdev: port %q: %w", portStr, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ethdev: start: %w", err)
	}
	prefund := opts.Prefund
	if prefund == nil {
		prefund = []common.Address{crypto.PubkeyToAddress(FaucetKey().PublicKey)}
	}

	cfg := node.DefaultConfig
	cfg.Name = "hwbridge-ethdev"
	cfg.DataDir = "" // in memory
	cfg.IPCPath = ""
	cfg.HTTPHost = host
	cfg.HTTPPort = port
	cfg.HTTPModules = []string{"eth", "net", "web3", "txpool"}
	cfg.HTTPVirtualHosts = []string{"localhost", "127.0.0.1", "::1"}
	cfg.WSHost = ""
	cfg.AuthPort = 0
	// No listener, no discovery, no dialing, no NAT probing (nodes.md §5).
	cfg.P2P = p2p.Config{NoDiscovery: true, NoDial: true, MaxPeers: 0, ListenAddr: ""}
	stack, err := node.New(&cfg)
	if err != nil {
		return nil, fmt.Errorf("ethdev: node: %w", err)
	}

	genesis := core.DeveloperGenesisBlock(ethconfig.Defaults.Miner.GasCeil, nil)
	for _, a := range prefund {
		genesis.Alloc[a] = types.Account{Balance: new(big.Int).Set(FaucetBalance)}
	}
	ethCfg := ethconfig.Defaults
	ethCfg.Genesis = genesis
	ethCfg.NetworkId = ChainID
	ethCfg.SyncMode = ethconfig.FullSync
	ethCfg.TxPool.NoLocals = true
	backend, err := eth.New(stack, &ethCfg)
	if err != nil {
		stack.Close()
		return nil, fmt.Errorf("ethdev: eth service: %w", err)
	}
	fs := filters.NewFilterSystem(backend.APIBackend, filters.Config{})
	stack.RegisterAPIs([]rpc.API{{Namespace: "eth", Service: filters.NewFilterAPI(fs)}})
	beacon, err := catalyst.NewSimulatedBeacon(0, common.Address{}, backend)
	if err != nil {
		stack.Close()
		return nil, fmt.Errorf("ethdev: simulated beacon: %w", err)
	}
	// With period 0 this starts the seal-on-new-transaction loop.
	catalyst.RegisterSimulatedBeaconAPIs(stack, beacon)
	stack.RegisterLifecycle(beacon)
	if err := stack.Start(); err != nil {
		stack.Close()
		return nil, fmt.Errorf("ethdev: start (is %s in use?): %w", addr, err)
	}
	n := &Node{stack: stack, eth: backend, beacon: beacon, url: stack.HTTPEndpoint(), log: log}
	log.Debug("ethereum dev chain ready", "rpc", n.url, "chain_id", ChainID)
	return n, nil
}

// URL is the HTTP JSON-RPC endpoint.
func (n *Node) URL() string { return n.url }

// BlockNumber returns the head block's number.
func (n *Node) BlockNumber() uint64 { return n.eth.BlockChain().CurrentBlock().Number.Uint64() }

// Close stops the chain; the in-memory state is gone afterwards.
func (n *Node) Close() error {
	if n.stack == nil {
		return nil
	}
	err := n.stack.Close()
	n.stack = nil
	if errors.Is(err, node.ErrNodeStopped) {
		err = nil
	}
	return err
}
