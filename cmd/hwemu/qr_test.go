package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/hwbridge/hwbridge/chains/bitcoin"
	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	hwpsbt "github.com/hwbridge/hwbridge/psbt"
	"github.com/hwbridge/hwbridge/ur"
	"github.com/hwbridge/hwbridge/ur/qrimage"
)

// TestQRSigner: hwemu --qr DIR writes the account export, answers a request dropped into
// DIR/in as UR text with the signed PSBT in DIR/out (text and PNG frames), and a malformed
// one with DIR/out/NAME.error.
func TestQRSigner(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--trezor", "off", "--ledger", "off", "--qr", dir, "--qr-network", "regtest"}, pw, io.Discard)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() || sc.Text() != "qr signer ready in "+dir {
		t.Fatalf("ready line %q", sc.Text())
	}
	go io.Copy(io.Discard, pr)

	raw, err := os.ReadFile(filepath.Join(dir, "account.txt"))
	if err != nil {
		t.Fatal(err)
	}
	acct, err := bitcoin.ParseURAccount(string(raw))
	if err != nil || acct.XFP.String() != "73c5da0a" {
		t.Fatalf("account export: %v %v", acct, err)
	}

	// a PSBT spending an output of m/84'/1'/0'/0/0 (the standard test mnemonic)
	net := &chaincfg.RegressionNetParams
	w, _ := emulator.NewWallet(emulator.DefaultMnemonic, "")
	path := hdpath.MustParse("m/84'/1'/0'/0/0")
	pub, _ := w.PubKey(path)
	a, _ := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(pub.SerializeCompressed()), net)
	script, _ := txscript.PayToAddrScript(a)
	p, err := psbt.New([]*wire.OutPoint{{Index: 1}}, []*wire.TxOut{wire.NewTxOut(90_000, script)}, 2, 0, []uint32{wire.MaxTxInSequenceNum})
	if err != nil {
		t.Fatal(err)
	}
	p.Inputs[0].WitnessUtxo = wire.NewTxOut(100_000, script)
	p.Inputs[0].Bip32Derivation = []*psbt.Bip32Derivation{{PubKey: pub.SerializeCompressed(), MasterKeyFingerprint: device.Fingerprint(w.Fingerprint()).PSBT(), Bip32Path: path}}
	bin, _ := hwpsbt.Encode(p)
	e, _ := ur.NewEncoder(ur.PSBT(bin), 40)
	in := filepath.Join(dir, "in")
	os.MkdirAll(in, 0o755)
	tmp := filepath.Join(dir, "req.tmp")
	os.WriteFile(tmp, []byte(strings.Join(e.Parts(e.SeqLen()), "\n")), 0o644)
	os.Rename(tmp, filepath.Join(in, "pay.txt"))
	bad := ur.PSBT([]byte("not a psbt")).String()
	os.WriteFile(tmp, []byte(bad+"\n"), 0o644)
	os.Rename(tmp, filepath.Join(in, "bad.txt"))

	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err1 := os.Stat(filepath.Join(dir, "out", "pay.txt"))
		_, err2 := os.Stat(filepath.Join(dir, "out", "bad.error"))
		if err1 == nil && err2 == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answers: %v %v", err1, err2)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, src := range []string{"pay.txt", "pay"} {
		parts, err := qrimage.ReadParts(filepath.Join(dir, "out", src))
		if err != nil {
			t.Fatal(err)
		}
		d := ur.NewDecoder()
		for _, x := range parts {
			d.Receive(x)
		}
		u, err := d.Result()
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		signed, _ := ur.DecodePSBT(u)
		sp, err := hwpsbt.DecodeBinary(signed)
		if err != nil || len(sp.Inputs[0].PartialSigs) != 1 {
			t.Fatalf("%s: %v", src, err)
		}
		if _, err := hwpsbt.FinalizeAndExtract(sp); err != nil {
			t.Fatalf("%s: the signature does not verify: %v", src, err)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("exit %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("hwemu did not stop")
	}
}
