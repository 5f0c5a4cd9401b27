package btcregtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/btcsuite/btcd/btcutil"
)

// NodeOptions configure Start.
type NodeOptions struct {
	// MiningAddr receives every coinbase: the blocks mined at start and by "generate".
	MiningAddr btcutil.Address
	// Height is the tip to mine to at start; 0 means SegwitHeight, so that segwit and taproot
	// spends are accepted at once. Negative means mine nothing.
	Height int32
	// Addr, User, Pass: see ServerOptions.
	Addr, User, Pass string
	Logger           *slog.Logger
}

// Node is a started chain with its JSON-RPC server.
type Node struct {
	*Chain
	RPC *Server
}

// Start creates a regtest chain in a temporary directory, mines to opts.Height and serves
// JSON-RPC on loopback. Close stops both.
func Start(ctx context.Context, opts NodeOptions) (*Node, error) {
	if opts.MiningAddr == nil {
		return nil, fmt.Errorf("btcregtest: start: a mining address is needed (the coinbase goes there)")
	}
	c, err := New(Options{Logger: opts.Logger})
	if err != nil {
		return nil, err
	}
	height := opts.Height
	if height == 0 {
		height = SegwitHeight
	}
	t0 := time.Now()
	if err := c.MineTo(ctx, height, opts.MiningAddr); err != nil {
		c.Close()
		return nil, err
	}
	c.log.Debug("regtest chain ready", "height", c.Height(), "took", time.Since(t0))
	srv, err := c.Serve(ServerOptions{Addr: opts.Addr, User: opts.User, Pass: opts.Pass, MiningAddr: opts.MiningAddr})
	if err != nil {
		c.Close()
		return nil, err
	}
	return &Node{Chain: c, RPC: srv}, nil
}

// URL is the JSON-RPC URL with credentials.
func (n *Node) URL() string { return n.RPC.URL() }

// Close stops the server and closes the chain.
func (n *Node) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(n.RPC.Close(ctx), n.Chain.Close())
}
