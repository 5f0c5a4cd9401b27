package btcwire

import (
	"errors"
	"testing"

	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/hwbridge/hwbridge/device"
)

func TestPrevTxDisplayOrder(t *testing.T) {
	tx := wire.NewMsgTx(2)
	h := tx.TxHash()
	got, err := PrevTx(map[chainhash.Hash]*wire.MsgTx{h: tx}, DisplayHash(h))
	if err != nil || got != tx {
		t.Fatalf("PrevTx(DisplayHash(h)) = %v, %v", got, err)
	}
	if _, err := PrevTx(nil, DisplayHash(h)); !errors.Is(err, device.ErrProtocol) {
		t.Fatalf("unknown tx: %v", err)
	}
	if _, err := PrevTx(nil, []byte{1, 2}); !errors.Is(err, device.ErrProtocol) {
		t.Fatalf("short hash: %v", err)
	}
}

func TestCheckXPub(t *testing.T) {
	seed := make([]byte, 32)
	k, err := hdkeychain.NewMaster(seed, &chaincfg.MainNetParams)
	if err != nil {
		t.Fatal(err)
	}
	child, err := k.Derive(hdkeychain.HardenedKeyStart)
	if err != nil {
		t.Fatal(err)
	}
	pubk, err := child.Neuter()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := pubk.ECPubKey()
	if err != nil {
		t.Fatal(err)
	}
	xpub := pubk.String()
	if err := CheckXPub(xpub, pub.SerializeCompressed(), &chaincfg.MainNetParams, 1); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"other net":   CheckXPub(xpub, nil, &chaincfg.TestNet3Params, 1),
		"wrong depth": CheckXPub(xpub, nil, &chaincfg.MainNetParams, 2),
		"other node":  CheckXPub(xpub, make([]byte, 33), &chaincfg.MainNetParams, 1),
		"garbage":     CheckXPub("xpub", nil, &chaincfg.MainNetParams, 1),
	} {
		if !errors.Is(err, device.ErrProtocol) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzCheckXPub: whatever string the device returns, the check answers without panicking.
func FuzzCheckXPub(f *testing.F) {
	f.Add("xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8", []byte{2}, 0)
	f.Add("", []byte(nil), 3)
	f.Fuzz(func(t *testing.T, xpub string, nodePub []byte, depth int) {
		_ = CheckXPub(xpub, nodePub, &chaincfg.MainNetParams, depth)
	})
}
