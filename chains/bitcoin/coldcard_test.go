package bitcoin_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/hwbridge/hwbridge/chains/bitcoin"
	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// testdata/coldcard-generic-export.json is the Generic JSON export the Coldcard simulator
// produced for account 123, as published in Coldcard/firmware docs/generic-wallet-export.md
// (commit 1f6a652bdf1ba62131637aa671c76bdd2c2f3e67): each account's first address there is
// the simulator's, so re-deriving it checks our reading of the file.
func TestColdcardExport(t *testing.T) {
	raw, err := os.ReadFile("testdata/coldcard-generic-export.json")
	if err != nil {
		t.Fatal(err)
	}
	ex, err := bitcoin.ParseColdcardExport(raw)
	if err != nil {
		t.Fatal(err)
	}
	if ex.Net != &chaincfg.TestNet3Params || ex.XFP.String() != "0f056943" || len(ex.Accounts) != 3 {
		t.Fatalf("parsed %+v", ex)
	}
	ctx := context.Background()
	d, err := bitcoin.AccountDescriptor(ctx, ex, device.ScriptWPKH, ex.Net, 123)
	if err != nil {
		t.Fatal(err)
	}
	if a, err := d.Address(0, 0, ex.Net); err != nil || a.EncodeAddress() != "tb1qc58ys2dphtphg6yuugdf3d0kufmk0tye044g3l" {
		t.Fatalf("first bip84 address %v %v", a, err)
	}
	if !strings.HasPrefix(d.String(), "wpkh([0f056943/84h/1h/123h]tpubDC7jGaaSE66V") {
		t.Fatalf("descriptor %s", d)
	}
	if _, err := ex.XPub(ctx, device.XPubRequest{Path: hdpath.MustParse("m/84'/1'/0'")}); !errors.Is(err, bitcoin.ErrNoExportedAccount) {
		t.Fatalf("account 0: %v", err)
	}

	for _, tc := range []struct{ name, from, to string }{
		{"first address of another wallet", "tb1qc58ys2dphtphg6yuugdf3d0kufmk0tye044g3l", "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"},
		{"unknown chain", `"XTN"`, `"LTC"`},
		{"short xfp", `"0F056943"`, `"0F0569"`},
		{"xpub at another depth", "tpubDC7jGaaSE66VDB6VhEDFYQSCAyugXmfnMnrMVyHNzW9wryyTxvha7TmfAHd7GRXrr2TaAn2HXn9T8ep4gyNX1bzGiieqcTUNcu2poyntrET",
			"tpubD6NzVbkrYhZ4XzL5Dhayo67Gorv1YMS7j8pRUvVMd5odC2LBPLAygka9p7748JtSq82FNGPppFEz5xxZUdasBRCqJqXvUHq6xpnsMcYJzeh"},
		{"not json", "{", "["},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := strings.Replace(string(raw), tc.from, tc.to, 1)
			if bad == string(raw) {
				t.Fatal("the case changes nothing")
			}
			if _, err := bitcoin.ParseColdcardExport([]byte(bad)); !errors.Is(err, device.ErrInvalidInput) {
				t.Fatalf("accepted: %v", err)
			}
		})
	}
}

func FuzzParseColdcardExport(f *testing.F) {
	raw, err := os.ReadFile("testdata/coldcard-generic-export.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add([]byte(`{"chain":"XRT","xfp":"00000000","bip84":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ex, err := bitcoin.ParseColdcardExport(b)
		if err == nil && (ex.Net == nil || len(ex.Accounts) == 0) {
			t.Fatalf("accepted an export with no chain or no accounts: %+v", ex)
		}
	})
}
