package bitcoin_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/hwbridge/hwbridge/chains/bitcoin"
	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/emulator/qrsigner"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/ur"
)

// TestURAccountVector reads BCR-2020-015's crypto-account (ur/testdata, Research commit
// 04a9aac3) and checks every single-key account xpub against the same path derived from the
// vector's mnemonic.
func TestURAccountVector(t *testing.T) {
	raw, err := os.ReadFile("../../ur/testdata/bcr-2020-015-account.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ Mnemonic, UR string }
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	keys, label, err := bitcoin.ParseWalletExport([]byte("# from the device\n" + strings.ToUpper(v.UR) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := keys.(*bitcoin.URAccount)
	if label != "ur-account:37b5eed4" || len(a.Keys) != 7 {
		t.Fatalf("%s %d keys", label, len(a.Keys))
	}
	w, err := emulator.NewWallet(v.Mnemonic, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, p := range []string{"m/44'/0'/0'", "m/49'/0'/0'", "m/84'/0'/0'", "m/86'/0'/0'", "m/48'/0'/0'/2'", "m/45'"} {
		path := hdpath.MustParse(p)
		got, err := a.XPub(ctx, device.XPubRequest{Path: path, Network: &chaincfg.MainNetParams})
		if err != nil {
			t.Fatal(err)
		}
		want, err := w.Public(path, chaincfg.MainNetParams.HDPublicKeyID[:])
		if err != nil {
			t.Fatal(err)
		}
		if got != want.String() {
			t.Errorf("%s: %s, want %s", p, got, want)
		}
	}
	if fp, _ := a.Fingerprint(ctx); uint32(fp) != w.Fingerprint() {
		t.Fatalf("fingerprint %s", fp)
	}
	if _, err := a.XPub(ctx, device.XPubRequest{Path: hdpath.MustParse("m/84'/0'/0'"), Network: &chaincfg.RegressionNetParams}); !errors.Is(err, device.ErrInvalidInput) {
		t.Fatalf("a mainnet key for regtest: %v", err)
	}
	if _, err := a.XPub(ctx, device.XPubRequest{Path: hdpath.MustParse("m/84'/0'/1'")}); !errors.Is(err, bitcoin.ErrNoExportedAccount) {
		t.Fatalf("account 1: %v", err)
	}
	d, err := bitcoin.AccountDescriptor(ctx, a, device.ScriptWPKH, &chaincfg.MainNetParams, 0)
	if err != nil || !strings.HasPrefix(d.String(), "wpkh([37b5eed4/84h/0h/0h]xpub") {
		t.Fatalf("descriptor %v %v", d, err)
	}
}

// TestURAccountRefuses: exports that would make a wrong wallet are refused.
func TestURAccountRefuses(t *testing.T) {
	w, _ := emulator.NewWallet(emulator.DefaultMnemonic, "")
	s := qrsigner.New(w, nil, &chaincfg.RegressionNetParams)
	good, err := s.AccountExport(0)
	if err != nil {
		t.Fatal(err)
	}
	a, err := bitcoin.ParseURAccount(good.String())
	if err != nil || len(a.Keys) != 4 {
		t.Fatalf("%v", err)
	}
	for name, change := range map[string]func(a *ur.Account){
		"wpkh key at the taproot path": func(a *ur.Account) { a.Outputs[2].Key, a.Outputs[3].Key = a.Outputs[3].Key, a.Outputs[2].Key },
		"no origin":                    func(a *ur.Account) { a.Outputs[0].Key.Origin = nil },
		"origin of another wallet":     func(a *ur.Account) { a.Outputs[1].Key.Origin.Fingerprint = 0x01020304 },
		"not a point":                  func(a *ur.Account) { a.Outputs[1].Key.KeyData[1] ^= 0xff; a.Outputs[1].Key.KeyData[0] = 2 },
		"depth not from the master":    func(a *ur.Account) { a.Outputs[0].Key.Origin.Depth = 1 },
	} {
		t.Run(name, func(t *testing.T) {
			c, _ := ur.DecodeAccount(good)
			change(c)
			if _, err := bitcoin.ParseURAccount(ur.AccountUR(c).String()); !errors.Is(err, device.ErrInvalidInput) {
				t.Fatalf("accepted: %v", err)
			}
		})
	}
	for _, text := range []string{"", "ur:bytes/aeadaolazmjendeoti", "ur:crypto-psbt/1-3/lpadaxbzcycpahetwsflghjojkidjyzmaddeadkkjs"} {
		if _, err := bitcoin.ParseURAccount(text); !errors.Is(err, device.ErrInvalidInput) {
			t.Errorf("%q: %v", text, err)
		}
	}
}

// FuzzParseWalletExport: any text given as a wallet export (UR account, Coldcard JSON) is
// parsed or refused with ErrInvalidInput, never a panic; a parsed UR account answers XPub
// for each of its paths.
func FuzzParseWalletExport(f *testing.F) {
	w, _ := emulator.NewWallet(emulator.DefaultMnemonic, "")
	good, _ := qrsigner.New(w, nil, &chaincfg.RegressionNetParams).AccountExport(0)
	f.Add(good.String())
	f.Add(`{"chain":"XRT","xfp":"73C5DA0A"}`)
	f.Add("ur:crypto-hdkey/onaxhdclaojlvoechgferkdpqdiabdrflawshlhdmdcemtfnlrctghchbdolvwsednvdztbgolaahdcxtottgostdkhfdahdlykkecbbweskrymwflvdylgerkloswtbrpfdbsticmwylklpahtaadehoyaoadamtaaddyoyadlecsdwykadykadykaewkadwkaycywlcscewfihbdaehn")
	f.Fuzz(func(t *testing.T, text string) {
		keys, _, err := bitcoin.ParseWalletExport([]byte(text))
		if err != nil {
			if !errors.Is(err, device.ErrInvalidInput) {
				t.Fatalf("error without ErrInvalidInput: %v", err)
			}
			return
		}
		if a, ok := keys.(*bitcoin.URAccount); ok {
			for _, k := range a.Keys {
				net := &chaincfg.MainNetParams
				if k.Key.Testnet {
					net = &chaincfg.TestNet3Params
				}
				if _, err := a.XPub(context.Background(), device.XPubRequest{Path: k.Path, Network: net}); err != nil {
					t.Fatalf("%s: %v", k.Path, err)
				}
			}
		}
	})
}
