package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// TestDevnetColdcard: devnet --coldcard SOCKET serves a Coldcard-class wallet beside the
// others (same seed, so the same funded regtest address): it is listed as Bitcoin-only, in
// hwbridged's --emulator value, pays from the CLI over its USB protocol and is confirmed by
// the miner; the Ethereum command names a wallet that runs Ethereum.
func TestDevnetColdcard(t *testing.T) {
	if r := cli(t, "", nil, "devnet", "--coldcard", ""); r.code != exitUsage || !strings.Contains(r.stderr, "--coldcard") {
		t.Fatalf("--coldcard '': exit %d %s", r.code, r.stderr)
	}
	dir, err := os.MkdirTemp("", "dnc") // short: sun_path holds 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "cc.sock")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	outR, outW := io.Pipe()
	var progress syncBuffer
	e := newEnv(strings.NewReader(""), outW, &progress, func(string) string { return "" })
	done := make(chan int, 1)
	go func() {
		done <- e.main(ctx, []string{"--json", "devnet", "--trezor", "127.0.0.1:0", "--ledger", "off", "--coldcard", sock,
			"--btc-rpc-addr", "127.0.0.1:0", "--eth-rpc-addr", "127.0.0.1:0"})
		outW.Close()
	}()
	var info devnetInfo
	if err := json.NewDecoder(outR).Decode(&info); err != nil {
		cancel()
		t.Fatalf("no JSON object from devnet: %v (exit %d)\n%s", err, <-done, progress.String())
	}
	go io.Copy(io.Discard, outR)
	if len(info.Wallets) != 2 {
		t.Fatalf("wallets %+v\n%s", info.Wallets, progress.String())
	}
	lg, cc := info.Wallets[0], info.Wallets[1]
	if cc.Path != "unix:"+sock || !cc.BTCOnly || cc.Name != "Coldcard-class" || cc.ETH != "" || cc.BTC != lg.BTC || lg.BTCOnly ||
		info.Emulators != lg.Path+","+cc.Path {
		t.Fatalf("devnet info %+v", info)
	}
	if next := strings.Join(info.nextCommands(), "\n"); strings.Contains(next, "--device "+cc.Path+" eth") {
		t.Fatalf("the Ethereum command names the Coldcard:\n%s", next)
	}
	var b btcBalanceResult
	if bal := cli(t, "", nil, "--json", "--device", cc.Path, "btc", "balance", "--rpc", info.BTCRPC, "--network", "regtest"); bal.code != exitOK ||
		json.Unmarshal([]byte(bal.stdout), &b) != nil || b.Confirmed != int64(devnetFundBTC) {
		t.Fatalf("balance: exit %d, %s %s", bal.code, bal.stdout, bal.stderr)
	}
	sent := cli(t, "", nil, "--device", cc.Path, "btc", "send", "--to", info.Recipient.BTC, "--amount", "0.25",
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
	for t0 := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		tx, err := c.GetRawTransactionVerbose(h)
		if err == nil && tx.Confirmations >= 1 {
			break
		}
		if time.Since(t0) > 10*time.Second {
			t.Fatalf("%s not confirmed after %s: %v\n%s", txid, time.Since(t0), err, progress.String())
		}
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("devnet exit %d\n%s", code, progress.String())
	}
	if p := progress.String(); !strings.Contains(p, "Coldcard-class wallet on unix:"+sock) {
		t.Errorf("devnet progress lacks the Coldcard wallet:\n%s", p)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("the Coldcard socket is left behind: %v", err)
	}
}
