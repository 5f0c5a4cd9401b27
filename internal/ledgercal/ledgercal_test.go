package ledgercal

import (
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

func TestSignTestVerifies(t *testing.T) {
	addr := common.HexToAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3")
	p, err := SignTest("dUSD", addr, 6, 1337)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Parse(p)
	if err != nil {
		t.Fatal(err)
	}
	if d.Ticker != "dUSD" || d.Contract != addr || d.Decimals != 6 || d.ChainID != 1337 {
		t.Fatalf("parsed %+v", d)
	}
	if !d.Verify(TestPublicKey()) {
		t.Fatal("test-signed descriptor does not verify with the test key")
	}
	if d.Verify(LedgerPublicKey) {
		t.Fatal("test-signed descriptor verifies with Ledger's key")
	}
	p[3] ^= 1 // a changed ticker byte
	if d, _ := Parse(p); d.Verify(TestPublicKey()) {
		t.Fatal("a changed descriptor still verifies")
	}
}

func TestParseRefusesShort(t *testing.T) {
	for _, b := range [][]byte{nil, {12}, {4, 'U', 'S', 'D', 'T'}} {
		if _, err := Parse(b); err == nil {
			t.Errorf("Parse(%x) succeeded", b)
		}
	}
}

func FuzzParse(f *testing.F) {
	p, _ := SignTest("USDC", common.Address{1}, 6, 1)
	f.Add(p)
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Parse(b)
		if err != nil {
			return
		}
		if len(d.Signed) != len(d.Ticker)+28 {
			t.Fatalf("signed part of %d bytes for ticker %q", len(d.Signed), d.Ticker)
		}
		d.Verify(LedgerPublicKey)
	})
}
