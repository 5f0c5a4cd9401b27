package main

import (
	"bytes"
	"io"
	"math/big"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/ethereum/go-ethereum/common"

	"github.com/hwbridge/hwbridge/internal/nodes"
)

// TestDemoChainsAndFaucets runs the demo's chain steps on the embedded chains and pays
// from both faucets, checking each payment on its chain.
func TestDemoChainsAndFaucets(t *testing.T) {
	ctx := t.Context()
	var out bytes.Buffer
	e := newEnv(strings.NewReader(""), &out, io.Discard, func(string) string { return "" })
	d := newDevEnv(e, &out)
	defer d.close()
	if err := d.startBitcoin(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.startEthereum(ctx); err != nil {
		t.Fatal(err)
	}
	btcTo, ethTo := demoRecipient(d.btcNet)
	txid, err := d.fundBTC(ctx, []btcutil.Address{btcTo}, demoFundBTC)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := d.confirmBTC(txid)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(conf, "block 432 (1 confirmation)") {
		t.Errorf("confirmation %q", conf)
	}
	hashes, err := d.fundETH(ctx, []common.Address{ethTo}, demoFundETH)
	if err != nil || len(hashes) != 1 {
		t.Fatal(hashes, err)
	}
	bal, err := d.eth.BalanceAt(ctx, ethTo, nil)
	if err != nil || bal.Cmp(demoFundETH) != 0 {
		t.Fatalf("recipient balance %v %v", bal, err)
	}
	if _, err := d.fundETH(ctx, []common.Address{ethTo}, new(big.Int).Lsh(big.NewInt(1), 100)); err == nil {
		t.Error("funding beyond the faucet's balance succeeded")
	}
	// The test token deploys and mints to its holder.
	token, _, err := d.deployToken(ctx, ethTo, big.NewInt(1_000_000))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := d.tokenBalance(ctx, token, ethTo); err != nil || b.Int64() != 1_000_000 {
		t.Fatalf("holder balance %v %v", b, err)
	}
}

func TestTxidIn(t *testing.T) {
	id := strings.Repeat("ab", 32)
	tests := []struct {
		in, want string
		ok       bool
	}{
		{id + "\n", id, true},
		{"txid: 0x" + strings.ToUpper(id), id, true},
		{`{"txid":"` + id + `"}`, id, true},
		{"no id here", "", false},
	}
	for _, tc := range tests {
		got, err := txidIn(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("txidIn(%q) = %q, %v", tc.in, got, err)
		}
	}
}

func TestRedactURL(t *testing.T) {
	if got := redactURL("http://u:secret@127.0.0.1:1"); strings.Contains(got, "secret") {
		t.Fatal(got)
	}
}

// TestDemo runs the newcomer's first command, `hwbridge demo`, end to end on the embedded
// chains and emulators: it must exit 0 with every step verified, show what the devices
// showed, and never print the RPC password.
func TestDemo(t *testing.T) {
	r := cli(t, "", nil, "demo", "--timeout", "2m")
	if r.code != exitOK {
		t.Fatalf("demo exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	checkDemoOutput(t, r.stdout)
}

// TestDemoRealNodes runs the same walk-through against real btcd (regtest) and geth (--dev)
// processes built from the pinned versions, through --btc-rpc and --eth-rpc.
func TestDemoRealNodes(t *testing.T) {
	faucet, err := faucetAddress(&chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	btcd := nodes.StartBtcdT(t, faucet.EncodeAddress())
	geth := nodes.StartGethT(t)
	r := cli(t, "", nil, "demo", "--timeout", "3m", "--btc-rpc", btcd.URL(), "--eth-rpc", geth.URL())
	if r.code != exitOK {
		t.Fatalf("demo exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	checkDemoOutput(t, r.stdout)
	if strings.Contains(r.stdout, ":"+btcd.Pass+"@") {
		t.Error("the demo printed btcd's RPC password")
	}
	if !strings.Contains(r.stdout, "using the node at") {
		t.Error("the demo did not use the given nodes")
	}
}

func checkDemoOutput(t *testing.T, out string) {
	t.Helper()
	for _, want := range []string{
		"all 10 steps verified",
		"BTC send (QR signer, crypto-psbt):",
		"QR signer screen: [approved] Sign transaction:",
		"BTC send (Trezor-class):",
		"BTC send (Ledger-class):",
		"ETH send (Trezor-class):",
		"ERC-20 transfer (Trezor-class):",
		"Trezor-class screen: [approved] Confirm output:",
		"Ledger-class screen: [approved] Sign transaction:",
		"status ok",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "FAILED") || strings.Contains(out, "abandon abandon") {
		t.Errorf("demo output:\n%s", out)
	}
}
