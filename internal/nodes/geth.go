//go:build unix

package nodes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"
)

// Geth timeouts: start-up until eth_chainId answers, and a graceful stop before SIGKILL.
const (
	gethStartTimeout = 30 * time.Second
	gethStopTimeout  = 15 * time.Second
	gethStartTries   = 3 // a free port can be taken between probing and geth binding it
)

// GethOptions configure StartGeth.
type GethOptions struct {
	// Binary is the geth executable; empty means Binary(ctx, GethPackage) (built from
	// tools/go.mod on first use).
	Binary string
	// Logger receives start/stop lines; nil discards them.
	Logger *slog.Logger
}

// Geth is a running `geth --dev --dev.period 0` on a loopback HTTP port, in its own
// temporary data directory: one block is sealed per incoming transaction, chain id 1337,
// and eth_accounts[0] is an unlocked, prefunded dev account (nodes.md §5).
type Geth struct {
	url     string
	dir     string
	cmd     *exec.Cmd
	log     *slog.Logger
	rpc     *rpc.Client
	exited  chan struct{}
	waitErr error
	logBuf  *tailBuffer

	closeOnce sync.Once
	closeErr  error

	fundMu sync.Mutex // eth_sendTransaction from the dev account: one at a time
}

// StartGeth starts geth in dev mode and waits until eth_chainId answers. Flags: --dev
// --dev.period 0, HTTP on 127.0.0.1 only with the eth, net, web3 and txpool APIs, no IPC,
// --nat none (otherwise geth probes the non-loopback interface at start-up), no discovery,
// no peers. Close stops it and removes its data directory.
func StartGeth(ctx context.Context, opts GethOptions) (*Geth, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bin := opts.Binary
	if bin == "" {
		var err error
		if bin, err = Binary(ctx, GethPackage); err != nil {
			return nil, err
		}
	}
	var lastErr error
	for try := 0; try < gethStartTries; try++ {
		g, err := startGethOnce(ctx, bin, log)
		if err == nil {
			return g, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
		log.Info("geth did not start; retrying on another port", "err", err)
	}
	return nil, lastErr
}

func startGethOnce(ctx context.Context, bin string, log *slog.Logger) (*Geth, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "hwbridge-geth-")
	if err != nil {
		return nil, fmt.Errorf("nodes: geth data dir: %w", err)
	}
	g := &Geth{
		url:    "http://127.0.0.1:" + strconv.Itoa(port),
		dir:    dir,
		log:    log,
		exited: make(chan struct{}),
		logBuf: &tailBuffer{max: 16 << 10},
	}
	// Not CommandContext: the node outlives the start-up context; Close stops it.
	g.cmd = exec.Command(bin,
		"--dev", "--dev.period", "0",
		"--datadir", filepath.Join(dir, "data"),
		"--ipcdisable",
		"--http", "--http.addr", "127.0.0.1", "--http.port", strconv.Itoa(port),
		"--http.api", "eth,net,web3,txpool",
		"--nat", "none", "--nodiscover", "--maxpeers", "0",
		"--cache", "128", "--verbosity", "2",
	)
	g.cmd.Stdout = g.logBuf
	g.cmd.Stderr = g.logBuf
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	t0 := time.Now()
	if err := g.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("nodes: start geth: %w", err)
	}
	go func() {
		g.waitErr = g.cmd.Wait()
		close(g.exited)
	}()
	if err := g.waitReady(ctx); err != nil {
		g.Close()
		return nil, fmt.Errorf("%w\ngeth log (tail):\n%s", err, g.logBuf.String())
	}
	log.Info("geth dev node ready", "url", g.url, "pid", g.cmd.Process.Pid, "took", time.Since(t0))
	return g, nil
}

// waitReady polls eth_chainId every 50 ms until it answers, geth exits, or the start-up
// timeout passes.
func (g *Geth) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, gethStartTimeout)
	defer cancel()
	c, err := rpc.DialOptions(ctx, g.url)
	if err != nil {
		return fmt.Errorf("nodes: dial geth: %w", err)
	}
	g.rpc = c
	for {
		var id hexutil.Big
		cctx, ccancel := context.WithTimeout(ctx, time.Second)
		err := c.CallContext(cctx, &id, "eth_chainId")
		ccancel()
		if err == nil {
			return nil
		}
		select {
		case <-g.exited:
			return fmt.Errorf("nodes: geth exited during start-up: %v", g.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("nodes: geth did not answer eth_chainId at %s: %w (last error: %v)", g.url, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// freePort asks the kernel for a free loopback TCP port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("nodes: free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}

// URL is the node's HTTP JSON-RPC endpoint, http://127.0.0.1:PORT.
func (g *Geth) URL() string { return g.url }

// RPC is a JSON-RPC client connected to the node; Close closes it.
func (g *Geth) RPC() *rpc.Client { return g.rpc }

// Log returns the tail of geth's own output (for failure messages).
func (g *Geth) Log() string { return g.logBuf.String() }

// Close stops geth (SIGTERM, then SIGKILL after 15 s) and removes its data directory.
func (g *Geth) Close() error {
	g.closeOnce.Do(func() {
		if g.rpc != nil {
			g.rpc.Close()
		}
		select {
		case <-g.exited:
		default:
			_ = g.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-g.exited:
			case <-time.After(gethStopTimeout):
				g.log.Warn("geth did not stop on SIGTERM; killing it", "pid", g.cmd.Process.Pid)
				_ = g.cmd.Process.Kill()
				<-g.exited
			}
		}
		if err := os.RemoveAll(g.dir); err != nil {
			g.closeErr = fmt.Errorf("nodes: remove geth data dir: %w", err)
		}
	})
	return g.closeErr
}

// DevAccount returns eth_accounts[0], the unlocked, prefunded dev account.
func (g *Geth) DevAccount(ctx context.Context) (common.Address, error) {
	var accts []common.Address
	if err := g.rpc.CallContext(ctx, &accts, "eth_accounts"); err != nil {
		return common.Address{}, fmt.Errorf("nodes: eth_accounts: %w", err)
	}
	if len(accts) == 0 {
		return common.Address{}, errors.New("nodes: geth has no dev account (was it started with --dev?)")
	}
	return accts[0], nil
}

// Fund sends wei from the dev account to addr with eth_sendTransaction (geth picks the
// nonce, gas and fees) and waits for a successful receipt.
func (g *Geth) Fund(ctx context.Context, to common.Address, wei *big.Int) (*types.Receipt, error) {
	return g.SendFromDev(ctx, &to, wei, nil)
}

// SendFromDev sends a transaction from the dev account: to nil deploys data as a contract.
// It waits for the receipt and fails if the transaction reverted.
func (g *Geth) SendFromDev(ctx context.Context, to *common.Address, wei *big.Int, data []byte) (*types.Receipt, error) {
	g.fundMu.Lock()
	defer g.fundMu.Unlock()
	from, err := g.DevAccount(ctx)
	if err != nil {
		return nil, err
	}
	arg := map[string]any{"from": from}
	if to != nil {
		arg["to"] = *to
	}
	if wei != nil {
		arg["value"] = (*hexutil.Big)(wei)
	}
	if len(data) > 0 {
		arg["input"] = hexutil.Bytes(data)
	}
	var h common.Hash
	if err := g.rpc.CallContext(ctx, &h, "eth_sendTransaction", arg); err != nil {
		return nil, fmt.Errorf("nodes: eth_sendTransaction from the dev account: %w", err)
	}
	r, err := g.WaitReceipt(ctx, h)
	if err != nil {
		return nil, err
	}
	if r.Status != types.ReceiptStatusSuccessful {
		return r, fmt.Errorf("nodes: dev-account transaction %s reverted (block %s)", h, r.BlockNumber)
	}
	// The receipt is there as soon as the block is; geth's transaction pool takes the new
	// head in its own goroutine a moment later, and until then it still judges transactions
	// by the old state (a just-funded account has "balance 0"). It has taken the block once
	// the mined transaction left its pending set.
	if err := g.waitPoolEmpty(ctx); err != nil {
		return r, err
	}
	return r, nil
}

// waitPoolEmpty polls txpool_status until nothing is pending or queued (the dev account's
// sends are serialised by fundMu, and the tests send nothing else meanwhile).
func (g *Geth) waitPoolEmpty(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		var st struct{ Pending, Queued hexutil.Uint }
		if err := g.rpc.CallContext(ctx, &st, "txpool_status"); err != nil {
			return fmt.Errorf("nodes: txpool_status: %w", err)
		}
		if st.Pending == 0 && st.Queued == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nodes: geth's pool still holds %d pending, %d queued: %w", st.Pending, st.Queued, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// WaitReceipt polls eth_getTransactionReceipt every 20 ms until the receipt is there,
// retrying "not found" and "transaction indexing is in progress" (nodes.md §5); it gives up
// after 30 s or when ctx ends.
func (g *Geth) WaitReceipt(ctx context.Context, h common.Hash) (*types.Receipt, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		var r *types.Receipt
		err := g.rpc.CallContext(ctx, &r, "eth_getTransactionReceipt", h)
		if err == nil && r != nil {
			return r, nil
		}
		if err != nil && !errors.Is(err, ethereum.NotFound) && !strings.Contains(err.Error(), "indexing is in progress") {
			return nil, fmt.Errorf("nodes: receipt for %s: %w", h, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("nodes: no receipt for %s: %w", h, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// StartGethT starts a geth dev node for a test and stops it in t.Cleanup. When geth
// cannot be built or started, the test fails if HWBRIDGE_REQUIRE_PEERS=1 (CI) and is
// skipped otherwise, naming scripts/test.sh.
func StartGethT(t TestingTB) *Geth {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	g, err := StartGeth(ctx, GethOptions{})
	if err != nil {
		if os.Getenv("HWBRIDGE_REQUIRE_PEERS") == "1" {
			t.Fatalf("geth dev node: %v", err)
		}
		t.Skipf("geth dev node unavailable (scripts/test.sh builds it; HWBRIDGE_REQUIRE_PEERS=1 makes this fatal): %v", err)
	}
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Logf("geth: %v", err)
		}
	})
	return g
}

// tailBuffer keeps the last max bytes written to it; safe for concurrent use.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

var _ io.Writer = (*tailBuffer)(nil)

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - b.max; over > 0 {
		b.buf.Next(over)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
