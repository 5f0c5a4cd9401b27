package emulator

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"

	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// versions are the SLIP-132 mainnet version bytes.
var versions = map[string][]byte{
	"xprv": {0x04, 0x88, 0xad, 0xe4}, "xpub": {0x04, 0x88, 0xb2, 0x1e},
	"yprv": {0x04, 0x9d, 0x78, 0x78}, "ypub": {0x04, 0x9d, 0x7c, 0xb2},
	"zprv": {0x04, 0xb2, 0x43, 0x0c}, "zpub": {0x04, 0xb2, 0x47, 0x46},
}

type vector struct{ Path, Kind, Want string }

func TestWalletVectors(t *testing.T) {
	w, err := NewWallet(DefaultMnemonic, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := w.Fingerprint(); got != 0x73c5da0a {
		t.Fatalf("fingerprint %08x, want 73c5da0a", got)
	}
	dirs, err := filepath.Glob("testdata/vectors/*/vectors.json")
	if err != nil || len(dirs) < 4 {
		t.Fatalf("vector files: %v %v", dirs, err)
	}
	for _, file := range dirs {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var vs []vector
		if err := json.Unmarshal(raw, &vs); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, v := range vs {
			t.Run(filepath.Base(filepath.Dir(file))+"/"+v.Path+"/"+v.Kind, func(t *testing.T) {
				if got := vectorValue(t, w, v); got != v.Want {
					t.Errorf("got  %s\nwant %s", got, v.Want)
				}
			})
		}
	}
}

func vectorValue(t *testing.T, w *Wallet, v vector) string {
	t.Helper()
	p := hdpath.MustParse(v.Path)
	k, err := w.Derive(p)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := k.ECPubKey()
	if err != nil {
		t.Fatal(err)
	}
	addr := func(kind ScriptKind) string {
		a, err := Address(pub, kind, &chaincfg.MainNetParams)
		if err != nil {
			t.Fatal(err)
		}
		return a.EncodeAddress()
	}
	switch v.Kind {
	case "xprv", "yprv", "zprv":
		c, err := k.CloneWithVersion(versions[v.Kind])
		if err != nil {
			t.Fatal(err)
		}
		return c.String()
	case "xpub", "ypub", "zpub":
		c, err := w.Public(p, versions[v.Kind])
		if err != nil {
			t.Fatal(err)
		}
		return c.String()
	case "pubkey":
		return hex.EncodeToString(pub.SerializeCompressed())
	case "p2pkh":
		return addr(P2PKH)
	case "p2sh-p2wpkh":
		return addr(P2SHP2WPKH)
	case "p2wpkh":
		return addr(P2WPKH)
	case "p2tr":
		return addr(P2TR)
	case "xonly-internal":
		return hex.EncodeToString(schnorr.SerializePubKey(pub))
	case "xonly-output":
		return hex.EncodeToString(schnorr.SerializePubKey(txscript.ComputeTaprootKeyNoScript(pub)))
	case "eth":
		a, err := w.EthAddress(p)
		if err != nil {
			t.Fatal(err)
		}
		return a.Hex()
	}
	t.Fatalf("unknown vector kind %q", v.Kind)
	return ""
}

func TestWalletErrors(t *testing.T) {
	if _, err := NewWallet("abandon abandon", ""); err == nil {
		t.Fatal("short mnemonic accepted")
	}
	if _, err := NewWallet("abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon", ""); err == nil {
		t.Fatal("bad checksum accepted")
	}
	w1, _ := NewWallet(DefaultMnemonic, "")
	w2, err := NewWallet("  "+DefaultMnemonic+"\n", "TREZOR")
	if err != nil {
		t.Fatal(err)
	}
	if w1.Fingerprint() == w2.Fingerprint() {
		t.Fatal("passphrase did not change the seed")
	}
	// Cached and uncached derivations agree.
	p := hdpath.MustParse("m/84'/0'/0'/0/7")
	a, _ := w1.PubKey(p)
	b, _ := w1.PubKey(p)
	w3, _ := NewWallet(DefaultMnemonic, "")
	c, _ := w3.PubKey(p)
	if !a.IsEqual(b) || !a.IsEqual(c) {
		t.Fatal("cache changed a derived key")
	}
}

func TestFormatCoins(t *testing.T) {
	for sat, want := range map[uint64]string{
		0:           "0 BTC",
		1:           "0.00000001 BTC",
		10000:       "0.0001 BTC",
		150000000:   "1.5 BTC",
		2100000000:  "21 BTC",
		12345678901: "123.45678901 BTC",
	} {
		if got := FormatCoins(sat, "BTC"); got != want {
			t.Errorf("FormatCoins(%d) = %q, want %q", sat, got, want)
		}
	}
}
