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
)

// TestDemoChainsAndFaucets runs the demo's chain steps on the embedded chains and pays
// from both faucets, checking each payment on its chain.
func TestDemoChainsAndFaucets(t *testing.T) {
	ctx := t.Context()
	var out bytes.Buffer
	e := newEnv(strings.NewReader(""), &out, io.Discard, func(string) string { return "" })
	d := &demo{e: e, out: &out, btcNet: &chaincfg.RegressionNetParams}
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
