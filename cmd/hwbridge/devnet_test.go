package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/ethereum/go-ethereum/common"
)

func TestDevnetUsage(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"both off", []string{"devnet", "--trezor", "off", "--ledger", "off"}, "both off"},
		{"bad app", []string{"devnet", "--ledger-app", "Solana"}, `--ledger-app "Solana"`},
		{"bad mnemonic", []string{"devnet", "--mnemonic", "not a seed"}, "--mnemonic"},
		{"extra argument", []string{"devnet", "now"}, `unexpected argument "now"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := cli(t, "", nil, tt.args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q: want exit 2 mentioning %q", r.code, r.stderr, tt.want)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader in two goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDevnetInProcess runs devnet on free ports with --json: one JSON object on stdout with
// the endpoints, funded wallets, a send from the CLI confirmed by the automatic miner, and
// a clean stop when its context ends (Ctrl-C in the real command).
func TestDevnetInProcess(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	outR, outW := io.Pipe()
	var progress syncBuffer
	e := newEnv(strings.NewReader(""), outW, &progress, func(string) string { return "" })
	done := make(chan int, 1)
	go func() {
		done <- e.main(ctx, []string{"--json", "devnet", "--trezor", "127.0.0.1:0", "--ledger", "127.0.0.1:0",
			"--btc-rpc-addr", "127.0.0.1:0", "--eth-rpc-addr", "127.0.0.1:0"})
		outW.Close()
	}()
	var info devnetInfo
	if err := json.NewDecoder(outR).Decode(&info); err != nil {
		cancel()
		t.Fatalf("no JSON object from devnet: %v (exit %d)\n%s", err, <-done, progress.String())
	}
	go io.Copy(io.Discard, outR)
	if len(info.Wallets) != 2 || info.BTCNetwork != "regtest" || info.ETHChainID != "1337" ||
		!strings.Contains(info.BTCRPC, devnetRPCUser+":"+devnetRPCPass+"@127.0.0.1:") || info.Emulators != info.Wallets[0].Path+","+info.Wallets[1].Path {
		t.Fatalf("devnet info %+v", info)
	}
	w := info.Wallets[0]
	bal := cli(t, "", nil, "--json", "--device", w.Path, "btc", "balance", "--rpc", info.BTCRPC, "--network", "regtest")
	var b btcBalanceResult
	if bal.code != exitOK || json.Unmarshal([]byte(bal.stdout), &b) != nil || b.Confirmed != int64(devnetFundBTC) {
		t.Fatalf("balance: exit %d, %s %s", bal.code, bal.stdout, bal.stderr)
	}
	sent := cli(t, "", nil, "--device", w.Path, "btc", "send", "--to", info.Recipient.BTC, "--amount", "0.25",
		"--rpc", info.BTCRPC, "--network", "regtest", "--yes")
	if sent.code != exitOK {
		t.Fatalf("send: exit %d, %s", sent.code, sent.stderr)
	}
	txid, err := txidIn(sent.stdout)
	if err != nil {
		t.Fatal(err)
	}
	c, err := btcClient(info.BTCRPC)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()
	h, _ := chainhash.NewHashFromStr(txid)
	t0 := time.Now()
	for {
		tx, err := c.GetRawTransactionVerbose(h)
		if err == nil && tx.Confirmations >= 1 {
			break
		}
		if time.Since(t0) > 10*time.Second {
			t.Fatalf("%s not confirmed after %s: %v\n%s", txid, time.Since(t0), err, progress.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("send confirmed %s after the CLI returned", time.Since(t0).Round(time.Millisecond))
	for !strings.Contains(progress.String(), "confirmed: "+txid) && time.Since(t0) < 5*time.Second {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("devnet exit %d\n%s", code, progress.String())
	}
	p := progress.String()
	for _, want := range []string{"devnet ready", "block 433 mined: 1 transaction(s) confirmed: " + txid, "devnet: stopped", "hwbridged --emulator " + info.Emulators} {
		if !strings.Contains(p, want) {
			t.Errorf("devnet progress lacks %q:\n%s", want, p)
		}
	}
}

// TestDevnetLedgerOnly: with the Trezor-class wallet off, the Ledger-class wallet gives both
// addresses (its Ethereum app opened for the ETH address, then its Bitcoin Test app again),
// both are funded, and a read-only Bitcoin call works afterwards without an app switch.
func TestDevnetLedgerOnly(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	outR, outW := io.Pipe()
	var progress syncBuffer
	e := newEnv(strings.NewReader(""), outW, &progress, func(string) string { return "" })
	done := make(chan int, 1)
	go func() {
		done <- e.main(ctx, []string{"--json", "devnet", "--trezor", "off", "--ledger", "127.0.0.1:0",
			"--btc-rpc-addr", "127.0.0.1:0", "--eth-rpc-addr", "127.0.0.1:0"})
		outW.Close()
	}()
	var info devnetInfo
	if err := json.NewDecoder(outR).Decode(&info); err != nil {
		cancel()
		t.Fatalf("no JSON object from devnet: %v (exit %d)\n%s", err, <-done, progress.String())
	}
	go io.Copy(io.Discard, outR)
	if len(info.Wallets) != 1 || !common.IsHexAddress(info.Wallets[0].ETH) || info.Wallets[0].BTC == "" {
		t.Fatalf("devnet info %+v\n%s", info, progress.String())
	}
	w := info.Wallets[0]
	bal := cli(t, "", nil, "--json", "--device", w.Path, "btc", "balance", "--rpc", info.BTCRPC, "--network", "regtest")
	var b btcBalanceResult
	if bal.code != exitOK || json.Unmarshal([]byte(bal.stdout), &b) != nil || b.Confirmed != int64(devnetFundBTC) {
		t.Fatalf("balance after devnet (the Bitcoin Test app should be open again): exit %d, %s %s", bal.code, bal.stdout, bal.stderr)
	}
	eth := cli(t, "", nil, "--json", "--device", w.Path, "address", "--chain", "eth")
	if eth.code != exitNoDevice || !strings.Contains(eth.stdout, "wrong_app") {
		t.Errorf("eth address without --switch-app on the Bitcoin Test app: exit %d, %s", eth.code, eth.stdout)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("devnet exit %d\n%s", code, progress.String())
	}
}
