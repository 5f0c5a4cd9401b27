package qrsigner

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	hwpsbt "github.com/hwbridge/hwbridge/psbt"
	"github.com/hwbridge/hwbridge/ur"
	"github.com/hwbridge/hwbridge/ur/qrimage"
)

var net = &chaincfg.RegressionNetParams

func wallet(t testing.TB) *emulator.Wallet {
	w, err := emulator.NewWallet(emulator.DefaultMnemonic, "")
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// spendAll builds an unsigned PSBT spending one output of each script type the signer
// handles (P2PKH, P2SH-P2WPKH, P2WPKH, P2TR) from the wallet's account 0, with the
// derivations a watch-only wallet adds.
func spendAll(t testing.TB, w *emulator.Wallet) *psbt.Packet {
	t.Helper()
	fp := device.Fingerprint(w.Fingerprint()).PSBT()
	prev := wire.NewMsgTx(2)
	prev.AddTxIn(wire.NewTxIn(&wire.OutPoint{Index: 7}, nil, nil))
	type in struct {
		path   hdpath.Path
		script []byte
		redeem []byte
		tap    bool
	}
	var ins []in
	for _, purpose := range []uint32{44, 49, 84, 86} {
		path := hdpath.Path{purpose + hdpath.Hardened, 1 + hdpath.Hardened, hdpath.Hardened, 0, 3}
		pub, err := w.PubKey(path)
		if err != nil {
			t.Fatal(err)
		}
		h := btcutil.Hash160(pub.SerializeCompressed())
		var script, redeem []byte
		switch purpose {
		case 44:
			a, _ := btcutil.NewAddressPubKeyHash(h, net)
			script, _ = txscript.PayToAddrScript(a)
		case 49:
			redeem, _ = txscript.NewScriptBuilder().AddOp(txscript.OP_0).AddData(h).Script()
			a, _ := btcutil.NewAddressScriptHash(redeem, net)
			script, _ = txscript.PayToAddrScript(a)
		case 84:
			a, _ := btcutil.NewAddressWitnessPubKeyHash(h, net)
			script, _ = txscript.PayToAddrScript(a)
		case 86:
			script, _ = txscript.PayToTaprootScript(txscript.ComputeTaprootKeyNoScript(pub))
		}
		prev.AddTxOut(wire.NewTxOut(100_000, script))
		ins = append(ins, in{path, script, redeem, purpose == 86})
	}
	var outs []*wire.TxOut
	dest, _ := btcutil.NewAddressWitnessPubKeyHash(bytes.Repeat([]byte{9}, 20), net)
	ds, _ := txscript.PayToAddrScript(dest)
	outs = append(outs, wire.NewTxOut(390_000, ds))
	var ops []*wire.OutPoint
	for i := range ins {
		ops = append(ops, &wire.OutPoint{Hash: prev.TxHash(), Index: uint32(i)})
	}
	p, err := psbt.New(ops, outs, 2, 0, []uint32{wire.MaxTxInSequenceNum - 2, wire.MaxTxInSequenceNum - 2, wire.MaxTxInSequenceNum - 2, wire.MaxTxInSequenceNum - 2})
	if err != nil {
		t.Fatal(err)
	}
	for i, x := range ins {
		pin := &p.Inputs[i]
		pub, _ := w.PubKey(x.path)
		if x.path[0] == 44+hdpath.Hardened {
			pin.NonWitnessUtxo = prev
		} else {
			pin.WitnessUtxo = prev.TxOut[i]
		}
		pin.RedeemScript = x.redeem
		if x.tap {
			pin.TaprootInternalKey = schnorr.SerializePubKey(pub)
			pin.TaprootBip32Derivation = []*psbt.TaprootBip32Derivation{{XOnlyPubKey: pin.TaprootInternalKey, MasterKeyFingerprint: fp, Bip32Path: x.path}}
		} else {
			pin.Bip32Derivation = []*psbt.Bip32Derivation{{PubKey: pub.SerializeCompressed(), MasterKeyFingerprint: fp, Bip32Path: x.path}}
		}
	}
	return p
}

// TestSignAllTypes: every input is signed and the finalized transaction passes btcd's
// script engine.
func TestSignAllTypes(t *testing.T) {
	w := wallet(t)
	p := spendAll(t, w)
	bin, err := hwpsbt.Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	a := emulator.NewApprover(emulator.PolicyAuto)
	signed, err := New(w, a, net).Sign(context.Background(), bin)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := hwpsbt.DecodeBinary(signed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hwpsbt.FinalizeAndExtract(sp); err != nil {
		t.Fatalf("the signatures do not verify: %v", err)
	}
	tr := a.Transcript()
	if len(tr) != 1 || tr[0].Outcome != emulator.OutcomeApproved || !strings.Contains(strings.Join(tr[0].Lines, "\n"), "fee 10000 sat") {
		t.Fatalf("screens: %+v", tr)
	}
	// rejected on the device
	if _, err := New(w, emulator.NewApprover(emulator.PolicyReject), net).Sign(context.Background(), bin); !errors.Is(err, ErrRejected) {
		t.Fatalf("rejected: %v", err)
	}
	// another wallet owns nothing here
	other, _ := emulator.NewWallet(emulator.DefaultMnemonic, "other")
	if _, err := New(other, nil, net).Sign(context.Background(), bin); !errors.Is(err, ErrNothingToSign) {
		t.Fatalf("another wallet: %v", err)
	}
}

// TestScanLossy: the signer reads the request's parts shuffled with a third lost, and a
// host reads its answer the same way.
func TestScanLossy(t *testing.T) {
	w := wallet(t)
	bin, _ := hwpsbt.Encode(spendAll(t, w))
	e, err := ur.NewEncoder(ur.PSBT(bin), 60)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	lossy := func(ps []string) []string {
		rng.Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
		var out []string
		for i, p := range ps {
			if i%3 != 0 {
				out = append(out, p)
			}
		}
		return out
	}
	s := New(w, nil, net)
	s.MaxFragmentLen = 80
	answer, err := s.Scan(context.Background(), lossy(e.Parts(3*e.SeqLen())))
	if err != nil {
		t.Fatal(err)
	}
	d := ur.NewDecoder()
	for _, p := range lossy(answer) {
		if err := d.Receive(p); err != nil {
			t.Fatal(err)
		}
	}
	u, err := d.Result()
	if err != nil {
		t.Fatal(err)
	}
	signed, err := ur.DecodePSBT(u)
	if err != nil {
		t.Fatal(err)
	}
	sp, _ := hwpsbt.DecodeBinary(signed)
	if _, err := hwpsbt.FinalizeAndExtract(sp); err != nil {
		t.Fatal(err)
	}
}

// TestServeDir: a request dropped into in/ as PNG frames is answered in out/ as text and
// PNG frames; the account export is there at start.
func TestServeDir(t *testing.T) {
	w := wallet(t)
	dir := t.TempDir()
	s := New(w, nil, net)
	if err := s.WriteAccount(dir, 0); err != nil {
		t.Fatal(err)
	}
	acct, err := qrimage.ReadParts(filepath.Join(dir, "account.png"))
	if err != nil || len(acct) != 1 || !strings.HasPrefix(acct[0], "UR:CRYPTO-ACCOUNT/") {
		t.Fatalf("account.png: %v %v", acct, err)
	}
	bin, _ := hwpsbt.Encode(spendAll(t, w))
	e, _ := ur.NewEncoder(ur.PSBT(bin), 0)
	req := filepath.Join(dir, "in", "req1")
	if err := qrimage.WriteParts("", req, e.Parts(e.SeqLen()-1)); err != nil {
		t.Fatal(err)
	}
	// one frame short: still scanning
	if n, err := s.ServeOnce(context.Background(), dir); err != nil || n != 0 {
		t.Fatalf("incomplete request answered: %d %v", n, err)
	}
	if err := qrimage.WriteParts("", filepath.Join(dir, "last"), []string{e.NextPart()}); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "last", "part-0001.png"), filepath.Join(req, "part-9999.png")); err != nil {
		t.Fatal(err)
	}
	if n, err := s.ServeOnce(context.Background(), dir); err != nil || n != 1 {
		t.Fatalf("answered %d: %v", n, err)
	}
	for _, p := range []string{"out/req1.txt", "out/req1"} {
		parts, err := qrimage.ReadParts(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		d := ur.NewDecoder()
		for _, x := range parts {
			if err := d.Receive(x); err != nil {
				t.Fatal(err)
			}
		}
		u, err := d.Result()
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if _, err := ur.DecodePSBT(u); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "in", "req1")); !os.IsNotExist(err) {
		t.Fatalf("the request is still in in/: %v", err)
	}
}

// TestSignMultisig: a 2-of-2 P2WSH input is signed by two QR signers in turn (each adds its
// own key's signature only) and then finalizes through the script engine.
func TestSignMultisig(t *testing.T) {
	a := wallet(t)
	b, err := emulator.NewWallet(emulator.DefaultMnemonic, "cosigner")
	if err != nil {
		t.Fatal(err)
	}
	path := hdpath.MustParse("m/48'/1'/0'/2'/0/0")
	pa, _ := a.PubKey(path)
	pb, _ := b.PubKey(path)
	keys := [][]byte{pa.SerializeCompressed(), pb.SerializeCompressed()}
	if bytes.Compare(keys[0], keys[1]) > 0 {
		keys[0], keys[1] = keys[1], keys[0]
	}
	sb := txscript.NewScriptBuilder().AddOp(txscript.OP_2)
	for _, k := range keys {
		sb.AddData(k)
	}
	ws, _ := sb.AddOp(txscript.OP_2).AddOp(txscript.OP_CHECKMULTISIG).Script()
	out := wire.NewTxOut(50_000, mustP2WSH(ws))
	p, err := psbt.New([]*wire.OutPoint{{Index: 0}}, []*wire.TxOut{wire.NewTxOut(49_000, out.PkScript)}, 2, 0, []uint32{wire.MaxTxInSequenceNum})
	if err != nil {
		t.Fatal(err)
	}
	p.Inputs[0].WitnessUtxo = out
	p.Inputs[0].WitnessScript = ws
	for _, w := range []*emulator.Wallet{a, b} {
		pub, _ := w.PubKey(path)
		p.Inputs[0].Bip32Derivation = append(p.Inputs[0].Bip32Derivation, &psbt.Bip32Derivation{PubKey: pub.SerializeCompressed(), MasterKeyFingerprint: device.Fingerprint(w.Fingerprint()).PSBT(), Bip32Path: path})
	}
	bin, _ := hwpsbt.Encode(p)
	for i, w := range []*emulator.Wallet{a, b} {
		if bin, err = New(w, nil, net).Sign(context.Background(), bin); err != nil {
			t.Fatal(err)
		}
		sp, _ := hwpsbt.DecodeBinary(bin)
		if n := len(sp.Inputs[0].PartialSigs); n != i+1 {
			t.Fatalf("after signer %d: %d signatures", i+1, n)
		}
	}
	// signing again replaces the signature, never adds a second one for the same key
	if bin, err = New(a, nil, net).Sign(context.Background(), bin); err != nil {
		t.Fatal(err)
	}
	sp, _ := hwpsbt.DecodeBinary(bin)
	if n := len(sp.Inputs[0].PartialSigs); n != 2 {
		t.Fatalf("signed twice: %d signatures", n)
	}
	if _, err := hwpsbt.FinalizeAndExtract(sp); err != nil {
		t.Fatalf("2-of-2: %v", err)
	}
}
