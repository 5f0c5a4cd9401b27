package ledgeremu

import (
	"bytes"
	"crypto/sha256"
	"slices"
	"testing"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// TestSignPSBTMultisig registers a 2-of-3 wsh(sortedmulti), signs a PSBT spending from it on
// the device, adds a cosigner's signature and finalizes through btcd's script engine.
func TestSignPSBTMultisig(t *testing.T) {
	d := newDevice(t, Config{})
	c := newTestClient(t, d)
	mnemonics := []string{emulator.DefaultMnemonic, legalWinner, "zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo wrong"}
	const acct = "m/48'/0'/0'/2'"
	var wallets []*emulator.Wallet
	var keys []string
	for _, m := range mnemonics {
		w, err := emulator.NewWallet(m, "")
		if err != nil {
			t.Fatal(err)
		}
		wallets = append(wallets, w)
		keys = append(keys, cosignerKey(t, m, acct))
	}
	pol := testPolicy{name: "Cold 2of3", template: "wsh(sortedmulti(2,@0/**,@1/**,@2/**))", keys: keys}
	out, sw := register(t, c, pol)
	if sw != swOK {
		t.Fatalf("register: %04x", sw)
	}
	mac := out[32:]

	script := func(change, idx uint32) ([]byte, []byte, []*psbt.Bip32Derivation) {
		var pubs [][]byte
		var ders []*psbt.Bip32Derivation
		for _, w := range wallets {
			p := append(hdpath.MustParse(acct), change, idx)
			pub, err := w.PubKey(p)
			if err != nil {
				t.Fatal(err)
			}
			pubs = append(pubs, pub.SerializeCompressed())
			ders = append(ders, &psbt.Bip32Derivation{PubKey: pub.SerializeCompressed(), MasterKeyFingerprint: fprLE(w), Bip32Path: p})
		}
		slices.SortFunc(pubs, bytes.Compare)
		b := txscript.NewScriptBuilder().AddOp(txscript.OP_2)
		for _, p := range pubs {
			b.AddData(p)
		}
		ws, _ := b.AddOp(txscript.OP_3).AddOp(txscript.OP_CHECKMULTISIG).Script()
		h := sha256.Sum256(ws)
		spk, _ := txscript.NewScriptBuilder().AddOp(txscript.OP_0).AddData(h[:]).Script()
		return ws, spk, ders
	}
	ws, spk, ders := script(0, 3)
	prev := wire.NewMsgTx(2)
	prev.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Index: 1}, Sequence: 0xffffffff})
	prev.AddTxOut(wire.NewTxOut(250000, spk))
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Hash: prev.TxHash(), Index: 0}, Sequence: 0xfffffffd})
	ext, _ := txscript.NewScriptBuilder().AddOp(txscript.OP_0).AddData(bytes.Repeat([]byte{0x22}, 20)).Script()
	tx.AddTxOut(wire.NewTxOut(100000, ext))
	_, cspk, cders := script(1, 0)
	tx.AddTxOut(wire.NewTxOut(149000, cspk))
	pkt, err := psbt.NewFromUnsignedTx(tx)
	if err != nil {
		t.Fatal(err)
	}
	pkt.Inputs[0] = psbt.PInput{NonWitnessUtxo: prev, WitnessUtxo: prev.TxOut[0], WitnessScript: ws, Bip32Derivation: ders}
	pkt.Outputs[1].WitnessScript, _, _ = script(1, 0)
	pkt.Outputs[1].Bip32Derivation = cders

	ys, sw, n := signPSBT(t, c, pkt, pol, mac)
	if sw != swOK || len(ys) != 1 {
		t.Fatalf("sign: %04x, %d yields", sw, len(ys))
	}
	t.Logf("1-input 2-of-3 SIGN_PSBT: %d client commands", n)
	idx, pub, devSig := parseYield(t, ys[0])
	if idx != 0 || !bytes.Equal(pub, ders[0].PubKey) {
		t.Fatalf("yield for input %d by %x", idx, pub)
	}
	tr := d.Approver().Transcript()
	if last := tr[len(tr)-1]; last.Lines[0] != "wallet: Cold 2of3" || len(last.Lines) != 4 {
		t.Fatalf("review screen %+v (change must not be shown)", last)
	}

	// The cosigner signs, the witness is assembled in sortedmulti order, and btcd checks it.
	fetcher := txscript.NewCannedPrevOutputFetcher(spk, 250000)
	hashes := txscript.NewTxSigHashes(tx, fetcher)
	key, _ := wallets[1].PrivKey(append(hdpath.MustParse(acct), 0, 3))
	coSig, err := txscript.RawTxInWitnessSignature(tx, hashes, 0, 250000, ws, txscript.SigHashAll, key)
	if err != nil {
		t.Fatal(err)
	}
	sigs := map[string][]byte{string(ders[0].PubKey): devSig, string(ders[1].PubKey): coSig}
	wit := wire.TxWitness{nil}
	pubsSorted := [][]byte{ders[0].PubKey, ders[1].PubKey, ders[2].PubKey}
	slices.SortFunc(pubsSorted, bytes.Compare)
	for _, p := range pubsSorted {
		if s, ok := sigs[string(p)]; ok {
			wit = append(wit, s)
		}
	}
	tx.TxIn[0].Witness = append(wit, ws)
	vm, err := txscript.NewEngine(spk, tx, 0, txscript.StandardVerifyFlags, nil, hashes, 250000, fetcher)
	if err != nil {
		t.Fatal(err)
	}
	if err := vm.Execute(); err != nil {
		t.Fatalf("2-of-3 spend does not verify: %v", err)
	}

	// The wrong hmac is refused, and a default-policy hmac of zeros is not enough.
	bad := slices.Clone(mac)
	bad[5] ^= 0x40
	if _, sw, _ := signPSBT(t, c, pkt, pol, bad); sw != swSignatureFail {
		t.Fatalf("wrong hmac: %04x", sw)
	}
	if _, sw, _ := signPSBT(t, c, pkt, pol, nil); sw != swIncorrectData {
		t.Fatalf("registered policy without hmac: %04x", sw)
	}
}
