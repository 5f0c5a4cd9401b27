package coldcard

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
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
	hwpsbt "github.com/hwbridge/hwbridge/psbt"
)

// spendPSBT is a PSBT spending one p2wpkh coin of w at m/84'/1'/0'/0/0, and, with foreign,
// a second coin whose derivation is another wallet's (which this device cannot sign).
func spendPSBT(t *testing.T, w *emulator.Wallet, foreign bool) []byte {
	t.Helper()
	path := hdpath.MustParse("m/84'/1'/0'/0/0")
	pub, err := w.PubKey(path)
	if err != nil {
		t.Fatal(err)
	}
	script := append([]byte{txscript.OP_0, txscript.OP_DATA_20}, btcutil.Hash160(pub.SerializeCompressed())...)
	prev := wire.NewMsgTx(2)
	prev.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Hash: chainhash.Hash{1}}})
	prev.AddTxOut(wire.NewTxOut(100_000, script))
	prev.AddTxOut(wire.NewTxOut(50_000, append([]byte{txscript.OP_0, txscript.OP_DATA_20}, make([]byte, 20)...)))
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Hash: prev.TxHash(), Index: 0}, Sequence: 0xfffffffd})
	if foreign {
		tx.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Hash: prev.TxHash(), Index: 1}, Sequence: 0xfffffffd})
	}
	tx.AddTxOut(wire.NewTxOut(90_000, append([]byte{txscript.OP_0, txscript.OP_DATA_20}, bytes.Repeat([]byte{7}, 20)...)))
	p, err := psbt.NewFromUnsignedTx(tx)
	if err != nil {
		t.Fatal(err)
	}
	p.Inputs[0].WitnessUtxo = prev.TxOut[0]
	p.Inputs[0].Bip32Derivation = []*psbt.Bip32Derivation{{PubKey: pub.SerializeCompressed(), MasterKeyFingerprint: xfpLE(w.Fingerprint()), Bip32Path: path}}
	if foreign {
		p.Inputs[1].WitnessUtxo = prev.TxOut[1]
		p.Inputs[1].Bip32Derivation = []*psbt.Bip32Derivation{{PubKey: pub.SerializeCompressed(), MasterKeyFingerprint: 0x01020304, Bip32Path: path}}
	}
	b, err := hwpsbt.Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSignFile: what the emulated Coldcard writes after signing from its microSD card:
// NAME-signed.psbt (binary, partial signatures) and NAME-final.txn (hex, CR LF) when every
// input is signed; NAME-part.psbt alone when not; nothing when refused or unreadable.
func TestSignFile(t *testing.T) {
	ap := emulator.NewApprover(emulator.PolicyAuto)
	d, err := New(Options{Chain: "XRT", Approver: ap})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	unsigned := spendPSBT(t, d.w, false)
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"pay.psbt", unsigned},
		{"pay-b64.psbt", []byte(base64.StdEncoding.EncodeToString(unsigned))},
		{"pay-hex.psbt", []byte(hex.EncodeToString(unsigned))},
	} {
		files, err := d.SignFile(t.Context(), write(c.name, c.data))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		base := filepath.Join(dir, strings.TrimSuffix(c.name, ".psbt"))
		if len(files) != 2 || files[0] != base+"-signed.psbt" || files[1] != base+"-final.txn" {
			t.Fatalf("%s: wrote %v", c.name, files)
		}
		bin, _ := os.ReadFile(files[0])
		p, err := hwpsbt.DecodeBinary(bin)
		if err != nil || len(p.Inputs[0].PartialSigs) != 1 || len(p.Inputs[0].FinalScriptWitness) != 0 {
			t.Fatalf("%s: signed psbt %v", c.name, err)
		}
		txt, _ := os.ReadFile(files[1])
		if !bytes.HasSuffix(txt, []byte("\r\n")) || strings.ToLower(string(txt)) != string(txt) {
			t.Fatalf("%s: final.txn %q is not lower-case hex ending in CR LF", c.name, txt)
		}
		raw, err := hex.DecodeString(strings.TrimSpace(string(txt)))
		if err != nil {
			t.Fatal(err)
		}
		tx := wire.NewMsgTx(2)
		if err := tx.Deserialize(bytes.NewReader(raw)); err != nil {
			t.Fatal(err)
		}
		if err := hwpsbt.Execute(p, tx); err != nil {
			t.Fatalf("%s: the final transaction does not verify: %v", c.name, err)
		}
	}
	// an input the device cannot sign: a part file
	files, err := d.SignFile(t.Context(), write("two.psbt", spendPSBT(t, d.w, true)))
	if err != nil || len(files) != 1 || files[0] != filepath.Join(dir, "two-part.psbt") {
		t.Fatalf("partly signed: %v %v", files, err)
	}
	// refused on the screen, or not a PSBT: nothing written
	if err := ap.SetPolicy(emulator.PolicyReject); err != nil {
		t.Fatal(err)
	}
	if files, err := d.SignFile(t.Context(), write("no.psbt", unsigned)); !errors.Is(err, ErrRefused) || files != nil {
		t.Fatalf("refused: %v %v", files, err)
	}
	if files, err := d.SignFile(t.Context(), write("junk.psbt", []byte("not a psbt"))); err == nil || files != nil {
		t.Fatalf("junk: %v %v", files, err)
	}
	for _, n := range []string{"no-signed.psbt", "no-final.txn", "junk-signed.psbt"} {
		if _, err := os.Stat(filepath.Join(dir, n)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s written: %v", n, err)
		}
	}
}

// TestServeCard: a PSBT dropped on the card folder is signed once; what the device wrote and
// files it cannot sign are left alone; the loop ends with its context.
func TestServeCard(t *testing.T) {
	d, err := New(Options{Chain: "XRT"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.ServeCard(ctx, dir, 5*time.Millisecond) }()
	if err := os.WriteFile(filepath.Join(dir, "junk.psbt"), []byte("not a psbt"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pay.psbt"), spendPSBT(t, d.w, false), 0o600); err != nil {
		t.Fatal(err)
	}
	final := filepath.Join(dir, "pay-final.txn")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(final); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the card's PSBT was not signed")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	names := []string{}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "junk.psbt pay-final.txn pay-signed.psbt pay.psbt" {
		t.Fatalf("the card holds %v", names)
	}
}
