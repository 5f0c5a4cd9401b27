package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"

	ledgeremu "github.com/hwbridge/hwbridge/emulator/ledger"
)

// TestLedgerRegtestDisplayShowsBoth: a Ledger's "Bitcoin Test" app shows a regtest address
// in testnet form; `address --display` prints the regtest address and says which string
// the device shows (stderr, and device_shows in JSON), and the two pay the same script.
// Without --display nothing is shown and nothing is said.
func TestLedgerRegtestDisplayShowsBoth(t *testing.T) {
	dev := serveLedger(t, func(d *ledgeremu.Device) {})
	// The emulator starts in the Bitcoin app: --display may open Bitcoin Test (the person asked).
	r := cli(t, "", nil, "--direct", "--json", "--device", dev, "address", "--network", "regtest", "--display")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var out struct {
		Address     string `json:"address"`
		DeviceShows string `json:"device_shows"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	if !strings.HasPrefix(out.Address, "bcrt1q") || !strings.HasPrefix(out.DeviceShows, "tb1q") {
		t.Fatalf("address %q, device shows %q", out.Address, out.DeviceShows)
	}
	if !strings.Contains(r.stderr, "device shows: "+out.DeviceShows) {
		t.Errorf("stderr does not say what the device shows: %s", r.stderr)
	}
	a, err := btcutil.DecodeAddress(out.Address, &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	b, err := btcutil.DecodeAddress(out.DeviceShows, &chaincfg.TestNet3Params)
	if err != nil {
		t.Fatal(err)
	}
	sa, _ := txscript.PayToAddrScript(a)
	sb, _ := txscript.PayToAddrScript(b)
	if string(sa) != string(sb) {
		t.Errorf("%s and %s pay different scripts", a, b)
	}
	r = cli(t, "", nil, "--direct", "--device", dev, "address", "--network", "regtest")
	if r.code != 0 || strings.Contains(r.stderr, "device shows") || strings.TrimSpace(r.stdout) != out.Address {
		t.Errorf("without --display: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}
