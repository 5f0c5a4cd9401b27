package main

import (
	"path/filepath"
	"strings"
	"testing"

	ledgeremu "github.com/hwbridge/hwbridge/emulator/ledger"
	trezoremu "github.com/hwbridge/hwbridge/emulator/trezor"
)

// TestETHSignTypedDataBothFamilies: eth sign-typed-data signs the EIP-712 Mail in full on
// the Ledger-class emulator (verbose EIP-712 on, blind signing off: it shows the fields)
// and by streaming on the Trezor-class one, with one signature.
func TestETHSignTypedDataBothFamilies(t *testing.T) {
	file := filepath.Join("..", "..", "chains", "ethereum", "testdata", "vectors", "eip712", "mail.json")
	var lemu *ledgeremu.Device
	ledger := serveLedger(t, func(d *ledgeremu.Device) { d.SetVerboseEIP712(true); lemu = d })
	temu, err := trezoremu.New(trezoremu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	trezor := serveTrezorDevice(t, temu)
	sigs := map[string]string{}
	for name, dev := range map[string]string{"ledger": ledger, "trezor": trezor} {
		r := cli(t, "", nil, "--device", dev, "--json", "eth", "sign-typed-data", file)
		var out map[string]any
		decodeJSON(t, r, &out)
		if r.code != exitOK {
			t.Fatalf("%s: exit %d %q", name, r.code, r.stderr)
		}
		sigs[name], _ = out["signature"].(string)
		if name == "ledger" && !strings.Contains(r.stderr, "Verbose EIP-712") {
			t.Errorf("the preview does not say what a ledger shows: %q", r.stderr)
		}
	}
	if sigs["ledger"] == "" || sigs["ledger"] != sigs["trezor"] {
		t.Fatalf("signatures %v", sigs)
	}
	var shown []string
	for _, e := range lemu.Approver().Transcript() {
		if e.Title == "Blind signing" {
			t.Errorf("blind-signing screen %+v", e)
		}
		shown = append(shown, e.Lines...)
	}
	if !strings.Contains(strings.Join(shown, "\n"), "contents: Hello, Bob!") {
		t.Errorf("ledger transcript %q", shown)
	}
}
