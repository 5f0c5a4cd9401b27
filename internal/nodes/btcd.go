//go:build unix

package nodes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// BtcdOptions configure StartBtcd.
type BtcdOptions struct {
	// MiningAddr is the regtest address `generate` pays (btcd has no generatetoaddress, so a
	// test that wants coins at an address starts its node with that address). Required.
	MiningAddr string
	// Dir holds the node's data and logs; empty means a new temporary directory, removed by
	// Close.
	Dir string
	// Binary is the btcd executable; empty means Binary(ctx, BtcdPackage).
	Binary string
	// StartTimeout bounds the wait for the RPC server; zero means 30 s.
	StartTimeout time.Duration
}

// Btcd is a running btcd --regtest on loopback ports.
type Btcd struct {
	// RPCHost is host:port of the JSON-RPC server (plain HTTP, basic auth).
	RPCHost    string
	User, Pass string
	P2PHost    string

	cmd     *exec.Cmd
	dir     string
	ownDir  bool
	done    chan struct{}
	waitErr error
	once    sync.Once
	client  *http.Client
}

// URL is the RPC endpoint with credentials, as the CLI's --rpc takes it.
func (b *Btcd) URL() string { return "http://" + b.User + ":" + b.Pass + "@" + b.RPCHost }

// StartBtcd runs btcd --regtest (no TLS, tx and address indexes, a 16 MiB UTXO cache, no DNS
// seeds, P2P bound to loopback, an empty config file) and waits until its RPC answers.
// Regtest wipes its chain on every start, so each node begins at the genesis block. Stop it
// with Close.
func StartBtcd(ctx context.Context, opts BtcdOptions) (*Btcd, error) {
	if opts.MiningAddr == "" {
		return nil, errors.New("nodes: btcd needs a mining address (BtcdOptions.MiningAddr)")
	}
	bin := opts.Binary
	if bin == "" {
		var err error
		if bin, err = Binary(ctx, BtcdPackage); err != nil {
			return nil, err
		}
	}
	b := &Btcd{User: "hwbridge", Pass: "hwbridge", dir: opts.Dir, client: &http.Client{Timeout: 30 * time.Second}}
	if b.dir == "" {
		d, err := os.MkdirTemp("", "hwbridge-btcd-")
		if err != nil {
			return nil, fmt.Errorf("nodes: %w", err)
		}
		b.dir, b.ownDir = d, true
	}
	// A port taken between freePort and btcd's bind makes btcd exit; retry with new ports.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		if err := b.start(ctx, bin, opts); err != nil {
			lastErr = err
			if ctx.Err() != nil {
				break
			}
			continue
		}
		return b, nil
	}
	if b.ownDir {
		os.RemoveAll(b.dir)
	}
	return nil, lastErr
}

func (b *Btcd) start(ctx context.Context, bin string, opts BtcdOptions) error {
	rpcPort, err := freePort()
	if err != nil {
		return fmt.Errorf("nodes: free port: %w", err)
	}
	p2pPort, err := freePort()
	if err != nil {
		return fmt.Errorf("nodes: free port: %w", err)
	}
	b.RPCHost = "127.0.0.1:" + strconv.Itoa(rpcPort)
	b.P2PHost = "127.0.0.1:" + strconv.Itoa(p2pPort)
	conf := filepath.Join(b.dir, "empty.conf")
	if err := os.WriteFile(conf, nil, 0o600); err != nil {
		return fmt.Errorf("nodes: %w", err)
	}
	logFile, err := os.Create(filepath.Join(b.dir, "btcd.out"))
	if err != nil {
		return fmt.Errorf("nodes: %w", err)
	}
	cmd := exec.Command(bin, "--regtest", "-C", conf,
		"--datadir="+filepath.Join(b.dir, "data"), "--logdir="+filepath.Join(b.dir, "logs"),
		"--rpcuser="+b.User, "--rpcpass="+b.Pass, "--rpclisten="+b.RPCHost, "--notls",
		"--listen="+b.P2PHost, "--nodnsseed", "--utxocachemaxsize=16",
		"--txindex", "--addrindex", "--miningaddr="+opts.MiningAddr)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("nodes: start btcd: %w", err)
	}
	b.cmd = cmd
	b.done = make(chan struct{})
	b.once = sync.Once{}
	go func() {
		b.waitErr = cmd.Wait()
		logFile.Close()
		close(b.done)
	}()
	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if _, err := b.Call(wctx, "getblockcount"); err == nil {
			return nil
		}
		select {
		case <-b.done:
			return fmt.Errorf("nodes: btcd exited during start-up (%v):\n%s", b.waitErr, b.logTail())
		case <-wctx.Done():
			b.stop()
			return fmt.Errorf("nodes: btcd RPC on %s did not answer within %s: %w\n%s", b.RPCHost, timeout, wctx.Err(), b.logTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (b *Btcd) logTail() string {
	out, _ := os.ReadFile(filepath.Join(b.dir, "btcd.out"))
	if len(out) > 2000 {
		out = out[len(out)-2000:]
	}
	return string(out)
}

// stop sends SIGTERM, waits up to 15 s, then SIGKILL.
func (b *Btcd) stop() {
	b.once.Do(func() {
		if b.cmd == nil || b.cmd.Process == nil {
			return
		}
		_ = b.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-b.done:
		case <-time.After(15 * time.Second):
			_ = b.cmd.Process.Kill()
			<-b.done
		}
	})
}

// Close stops the node and removes its directory if StartBtcd made it.
func (b *Btcd) Close() error {
	b.stop()
	if b.ownDir {
		return os.RemoveAll(b.dir)
	}
	return nil
}

// RPCError is an error answer of the node.
type RPCError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *RPCError) Error() string { return fmt.Sprintf("btcd rpc error %d: %s", e.Code, e.Message) }

// Call makes one JSON-RPC call and returns its result.
func (b *Btcd) Call(ctx context.Context, method string, params ...any) (json.RawMessage, error) {
	if params == nil {
		params = []any{}
	}
	body, err := json.Marshal(map[string]any{"jsonrpc": "1.0", "id": 1, "method": method, "params": params})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+b.RPCHost, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(b.User, b.Pass)
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("nodes: btcd %s: %w", method, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("nodes: btcd %s: %w", method, err)
	}
	var reply struct {
		Result json.RawMessage `json:"result"`
		Error  *RPCError       `json:"error"`
	}
	if err := json.Unmarshal(raw, &reply); err != nil {
		return nil, fmt.Errorf("nodes: btcd %s: http %d: %s", method, resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	if reply.Error != nil {
		return nil, fmt.Errorf("nodes: btcd %s: %w", method, reply.Error)
	}
	return reply.Result, nil
}

// Generate mines n blocks to the mining address and returns their hashes.
func (b *Btcd) Generate(ctx context.Context, n int) ([]string, error) {
	raw, err := b.Call(ctx, "generate", n)
	if err != nil {
		return nil, err
	}
	var hashes []string
	if err := json.Unmarshal(raw, &hashes); err != nil {
		return nil, fmt.Errorf("nodes: generate: %w", err)
	}
	return hashes, nil
}

// Mempool returns the txids in the node's mempool.
func (b *Btcd) Mempool(ctx context.Context) ([]string, error) {
	raw, err := b.Call(ctx, "getrawmempool")
	if err != nil {
		return nil, err
	}
	var ids []string
	if err := json.Unmarshal(raw, &ids); err != nil {
		return nil, fmt.Errorf("nodes: getrawmempool: %w", err)
	}
	return ids, nil
}

// TestingTB is the part of testing.TB StartBtcdT uses.
type TestingTB interface {
	Helper()
	Context() context.Context
	Cleanup(func())
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
	Logf(format string, args ...any)
}

// StartBtcdT starts a node for a test and stops it at cleanup. When btcd cannot be built or
// started, the test is skipped, or fails if HWBRIDGE_REQUIRE_PEERS=1 (CI: scripts/test.sh).
func StartBtcdT(t TestingTB, miningAddr string) *Btcd {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	b, err := StartBtcd(ctx, BtcdOptions{MiningAddr: miningAddr})
	if err != nil {
		if os.Getenv("HWBRIDGE_REQUIRE_PEERS") == "1" {
			t.Fatalf("btcd: %v", err)
		}
		t.Skipf("btcd unavailable (run scripts/test.sh to get every peer): %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}
