package bitcoin_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/hwbridge/hwbridge/chains/bitcoin"
	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

func readColdcard(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/coldcard/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestColdcardMultisigExport reads the Coldcard simulator's multisig exports (testdata/
// coldcard/README.md): the XPUB export and the Generic JSON's multisig sections of the same
// seed give the same keys (the SLIP-132 Upub/Vpub of one converted to the tpub of the other),
// each section's own fingerprint matches its key, and the keys make M-of-N descriptors.
func TestColdcardMultisigExport(t *testing.T) {
	ccxp, err := bitcoin.ParseColdcardMultisig(readColdcard(t, "ccxp-0F056943.json"))
	if err != nil {
		t.Fatal(err)
	}
	generic, err := bitcoin.ParseColdcardMultisig(readColdcard(t, "coldcard-export.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ccxp) != 3 || len(generic) != 3 {
		t.Fatalf("%d and %d keys, want 3 and 3", len(ccxp), len(generic))
	}
	want := map[string]struct {
		kind bitcoin.Kind
		path string
		xpub string
	}{
		"p2sh":       {bitcoin.KindSHMulti, "m/45'", "tpubD8NXmKsmWp3a3DXhbihAYbYLGaRNVdTnr6JoSxxfXYQcmwVtW2hv8QoDwng6JtEonmJoL3cNEwfd2cLXMpGezwZ2vL2dQ7259bueNKj9C8n"},
		"p2sh_p2wsh": {bitcoin.KindSHWSH, "m/48'/1'/0'/1'", "tpubDF2rnouQaaYrUEy2JM1YD3RFzew4onawGM4X2Re67gguTf5CbHonBRiFGe3Xjz7DK88dxBFGf2i7K1hef3PM4cFKyUjcbJXddaY9F5tJBoP"},
		"p2wsh":      {bitcoin.KindWSHMulti, "m/48'/1'/0'/2'", "tpubDF2rnouQaaYrXF4noGTv6rQYmx87cQ4GrUdhpvXkhtChwQPbdGTi8GA88NUaSrwZBwNsTkC9bFkkC8vDyGBVVAQTZ2AS6gs68RQXtXcCvkP"},
	}
	for i, k := range ccxp {
		w, ok := want[k.Name]
		if !ok || k.Kind != w.kind || k.Path.String() != w.path || k.XPub != w.xpub || k.XFP.String() != "0f056943" || k.Net != &chaincfg.TestNet3Params {
			t.Fatalf("ccxp key %d: %+v", i, k)
		}
		g := generic[i]
		if g.Name != k.Name || g.Kind != k.Kind || g.Path.String() != k.Path.String() || g.XPub != k.XPub || g.XFP != k.XFP {
			t.Fatalf("generic key %d %+v differs from the XPUB export's %+v", i, g, k)
		}
	}
	// mainnet, account 123: no BIP-45 key
	main, err := bitcoin.ParseColdcardMultisig(readColdcard(t, "generic-export-mainnet-123.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(main) != 2 || main[1].Path.String() != "m/48'/0'/123'/2'" || main[1].Net != &chaincfg.MainNetParams ||
		!strings.HasPrefix(main[1].Key(), "[0f056943/48h/0h/123h/2h]xpub6EkcQSTygvxVneXmk3ywiS2PFhBdiPxeMxYf6RFxHCHH36NxdcN7DjUpudCppAAxs58CG6DQLjtqZNmyC3MpgVob6wpdeATjpZZ1woX92EF/<0;1>/*") {
		t.Fatalf("mainnet keys %+v", main)
	}
	// the single-key sections of the same files, first addresses re-derived (bip49 is named
	// p2sh-p2wpkh since firmware 5)
	for _, f := range []string{"coldcard-export.json", "generic-export-mainnet-123.json"} {
		ex, err := bitcoin.ParseColdcardExport(readColdcard(t, f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(ex.Accounts) < 5 {
			t.Fatalf("%s: %d accounts", f, len(ex.Accounts))
		}
	}
	if _, err := bitcoin.ParseColdcardExport(readColdcard(t, "ccxp-0F056943.json")); !errors.Is(err, bitcoin.ErrMultisigExport) {
		t.Fatalf("an XPUB export as a wallet export: %v", err)
	}

	// a 2-of-3 with two other cosigners (BIP-39 test-vector seeds), in any order
	cosigner := func(mnemonic string) bitcoin.ColdcardMultisigKey {
		w, err := emulator.NewWallet(mnemonic, "")
		if err != nil {
			t.Fatal(err)
		}
		path := hdpath.MustParse("m/48'/1'/0'/2'")
		k, err := w.Public(path, chaincfg.TestNet3Params.HDPublicKeyID[:])
		if err != nil {
			t.Fatal(err)
		}
		return bitcoin.ColdcardMultisigKey{Name: "p2wsh", Kind: bitcoin.KindWSHMulti, Net: &chaincfg.TestNet3Params, XFP: device.Fingerprint(w.Fingerprint()), Path: path, XPub: k.String()}
	}
	cc := ccxp[2]
	b, c := cosigner(mnemonicB), cosigner(mnemonicC)
	d1, err := bitcoin.ColdcardMultisigDescriptor(2, bitcoin.KindWSHMulti, []bitcoin.ColdcardMultisigKey{cc, b, c})
	if err != nil {
		t.Fatal(err)
	}
	d2, err := bitcoin.ColdcardMultisigDescriptor(2, bitcoin.KindWSHMulti, []bitcoin.ColdcardMultisigKey{c, cc, b})
	if err != nil {
		t.Fatal(err)
	}
	a1, err := d1.Address(0, 0, &chaincfg.TestNet3Params)
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := d2.Address(0, 0, &chaincfg.TestNet3Params)
	s, err := d1.Derive(1, 5)
	if err != nil {
		t.Fatal(err)
	}
	if a1.String() != a2.String() || !strings.HasPrefix(a1.String(), "tb1q") || d1.Threshold != 2 || len(d1.Keys) != 3 || len(s.WitnessScript) != 1+3*34+2 {
		t.Fatalf("descriptor %s: address %s / %s, witness script %x", d1, a1, a2, s.WitnessScript)
	}
	t.Logf("2-of-3 %s: first address %s", d1, a1)
	for _, bad := range []struct {
		name string
		m    int
		kind bitcoin.Kind
		keys []bitcoin.ColdcardMultisigKey
	}{
		{"threshold 0", 0, bitcoin.KindWSHMulti, []bitcoin.ColdcardMultisigKey{cc, b}},
		{"threshold above the keys", 3, bitcoin.KindWSHMulti, []bitcoin.ColdcardMultisigKey{cc, b}},
		{"a key of another type", 2, bitcoin.KindWSHMulti, []bitcoin.ColdcardMultisigKey{ccxp[1], b}},
		{"a key twice", 2, bitcoin.KindWSHMulti, []bitcoin.ColdcardMultisigKey{cc, cc}},
		{"a key of another network", 2, bitcoin.KindWSHMulti, []bitcoin.ColdcardMultisigKey{main[1], b}},
		{"single-key kind", 1, bitcoin.KindWPKH, []bitcoin.ColdcardMultisigKey{cc}},
	} {
		if _, err := bitcoin.ColdcardMultisigDescriptor(bad.m, bad.kind, bad.keys); !errors.Is(err, device.ErrInvalidInput) {
			t.Errorf("%s: %v", bad.name, err)
		}
	}
}

// TestColdcardMultisigExportHostile: changed exports are refused as invalid input.
func TestColdcardMultisigExportHostile(t *testing.T) {
	ccxp, generic := string(readColdcard(t, "ccxp-0F056943.json")), string(readColdcard(t, "coldcard-export.json"))
	const vpub = "Vpub5mtnnUUL8u4oyRf5d2NZJqDypgmpx8FontedpqxNyjXTi6fLp8fmpp2wedS6UyuNpDgLDoVH23c6rYpFSEfB9jhdbD8gek2stjxhwJeE1Eq"
	const upub = "Upub5T4XUooQzDXL58NCHk8ZCw9BsRSLCtnyHeZEExAq1XdnBFXiXVrHFuvvmh3TnCR7XmKHxkwqdACv68z7QKT1vwru9L1SZSsw8B2fuBvtSa6"
	for _, c := range []struct{ name, in, from, to string }{
		{"short xfp", ccxp, `"xfp": "0F056943"`, `"xfp": "0F0569"`},
		{"deriv of another account", ccxp, `"p2wsh_deriv": "m/48'/1'/0'/2'"`, `"p2wsh_deriv": "m/48'/1'/1'/2'"`},
		{"deriv of another script", ccxp, `"p2wsh_deriv": "m/48'/1'/0'/2'"`, `"p2wsh_deriv": "m/48'/1'/0'/1'"`},
		{"p2wsh key in SLIP-132 form of another script", ccxp, `"p2wsh": "` + vpub, `"p2wsh": "` + upub},
		{"descriptor of another fingerprint", ccxp, `wsh(sortedmulti(M,[0f056943/48'/1'/0'/2']`, `wsh(sortedmulti(M,[0f056944/48'/1'/0'/2']`},
		{"descriptor of another branch", ccxp, `XtXcCvkP/0/*,...))`, `XtXcCvkP/1/*,...))`},
		{"descriptor of another type", ccxp, `"p2wsh_desc": "wsh(`, `"p2wsh_desc": "sh(`},
		{"account not a number", ccxp, `"account": "0"`, `"account": "zero"`},
		{"BIP-45 key for account 1", ccxp, `"account": "0"`, `"account": "1"`},
		{"section fingerprint of another key", generic, `"xfp": "B5EE2F16"`, `"xfp": "B5EE2F17"`},
		{"section of another name", generic, `"name": "p2wsh"`, `"name": "p2tr"`},
		{"mainnet key in a testnet export", generic, `"chain": "XTN"`, `"chain": "BTC"`},
		{"unknown chain", generic, `"chain": "XTN"`, `"chain": "LTC"`},
		{"not json", ccxp, "{", "["},
	} {
		bad := strings.Replace(c.in, c.from, c.to, 1)
		if bad == c.in {
			t.Fatalf("%s: the case changes nothing", c.name)
		}
		keys, err := bitcoin.ParseColdcardMultisig([]byte(bad))
		if !errors.Is(err, device.ErrInvalidInput) {
			t.Errorf("%s: accepted %+v (%v)", c.name, keys, err)
		}
		t.Logf("%s: %v", c.name, err)
	}
	for name, in := range map[string]string{
		"no multisig keys": `{"xfp": "0F056943", "account": 0}`,
		"too large":        `{"xfp": "` + strings.Repeat("0", bitcoin.MaxWalletExport) + `"}`,
	} {
		if _, err := bitcoin.ParseColdcardMultisig([]byte(in)); !errors.Is(err, device.ErrInvalidInput) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzParseColdcardMultisig: whatever JSON is fed, the parser refuses it or gives keys that,
// written back as an XPUB export, read the same, and that each make a descriptor.
func FuzzParseColdcardMultisig(f *testing.F) {
	for _, n := range []string{"ccxp-0F056943.json", "coldcard-export.json", "generic-export-mainnet-123.json"} {
		f.Add(readColdcard(f, n))
	}
	f.Add([]byte(`{"xfp":"00000000","p2wsh_deriv":"m/48'/1'/0'/2'","p2wsh":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := bitcoin.ParseColdcardMultisig(b)
		if err != nil {
			return
		}
		again := map[string]string{"xfp": strings.ToUpper(keys[0].XFP.String())}
		for _, k := range keys {
			again[k.Name+"_deriv"], again[k.Name] = k.Path.String(), k.XPub
			if len(k.Path) == 4 {
				again["account"] = fmt.Sprint(k.Path[2] &^ hdpath.Hardened)
			}
			if _, err := bitcoin.ColdcardMultisigDescriptor(1, k.Kind, []bitcoin.ColdcardMultisigKey{k}); err != nil {
				t.Fatalf("key %+v makes no descriptor: %v", k, err)
			}
		}
		raw, err := json.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		back, err := bitcoin.ParseColdcardMultisig(raw)
		if err != nil {
			t.Fatalf("written back: %v\n%s", err, raw)
		}
		if len(back) != len(keys) {
			t.Fatalf("%d keys, then %d", len(keys), len(back))
		}
		for i := range keys {
			if back[i].XPub != keys[i].XPub || back[i].Path.String() != keys[i].Path.String() || back[i].Kind != keys[i].Kind || back[i].XFP != keys[i].XFP {
				t.Fatalf("key %d: %+v, then %+v", i, keys[i], back[i])
			}
		}
	})
}
