package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// TestColdcardSD: hwemu --coldcard SOCKET --coldcard-sd DIR signs a PSBT put on the card
// folder into NAME-signed.psbt and NAME-final.txn; --coldcard-sd needs --coldcard.
func TestColdcardSD(t *testing.T) {
	if code := run(t.Context(), []string{"--trezor", "off", "--ledger", "off", "--coldcard-sd", t.TempDir()}, io.Discard, io.Discard); code != exitUsage {
		t.Fatalf("--coldcard-sd alone: exit %d", code)
	}
	sockDir, err := os.MkdirTemp("", "hwemusd") // short: sun_path holds 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sockDir)
	card := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--trezor", "off", "--ledger", "off", "--coldcard", filepath.Join(sockDir, "cc.sock"), "--coldcard-chain", "XRT", "--coldcard-sd", card}, pw, io.Discard)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var lines []string
	for len(lines) < 2 && sc.Scan() {
		lines = append(lines, sc.Text())
	}
	go io.Copy(io.Discard, pr)
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "coldcard ready on unix:") || lines[1] != "coldcard microSD card in "+card {
		t.Fatalf("ready lines %q", lines)
	}

	// a PSBT spending a p2wpkh coin of the test seed
	w, err := emulator.NewWallet(emulator.DefaultMnemonic, "")
	if err != nil {
		t.Fatal(err)
	}
	path := hdpath.MustParse("m/84'/1'/0'/0/0")
	pub, err := w.PubKey(path)
	if err != nil {
		t.Fatal(err)
	}
	script := append([]byte{txscript.OP_0, txscript.OP_DATA_20}, btcutil.Hash160(pub.SerializeCompressed())...)
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Hash: chainhash.Hash{7}}})
	tx.AddTxOut(wire.NewTxOut(40_000, script))
	p, err := psbt.NewFromUnsignedTx(tx)
	if err != nil {
		t.Fatal(err)
	}
	fp := w.Fingerprint()
	p.Inputs[0].WitnessUtxo = wire.NewTxOut(50_000, script)
	p.Inputs[0].Bip32Derivation = []*psbt.Bip32Derivation{{PubKey: pub.SerializeCompressed(), MasterKeyFingerprint: fp>>24 | fp>>8&0xff00 | fp<<8&0xff0000 | fp<<24, Bip32Path: path}}
	var b bytes.Buffer
	if err := p.Serialize(&b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(card, "pay.psbt"), b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, e1 := os.Stat(filepath.Join(card, "pay-signed.psbt"))
		_, e2 := os.Stat(filepath.Join(card, "pay-final.txn"))
		if e1 == nil && e2 == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the card's PSBT was not signed")
		}
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d", code)
	}
}
