package bitbox02

import (
	"bytes"
	"crypto/sha256"
	"slices"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// multisigPSBT builds a 2-of-3 p2wsh sortedmulti spend at account m/48'/1'/0'/2' of the
// wallets (0/0 in, external and 1/0 change out) with every cosigner's derivation.
func multisigPSBT(t *testing.T, ws []*emulator.Wallet) (*psbt.Packet, []string, []byte) {
	t.Helper()
	acct := hdpath.Path{48 + hardened, 1 + hardened, hardened, 2 + hardened}
	net := &chaincfg.TestNet3Params
	var xpubs []string
	script := func(change uint32) ([]byte, []*psbt.Bip32Derivation) {
		var ders []*psbt.Bip32Derivation
		for _, w := range ws {
			pub, err := w.PubKey(acct.Child(change, 0))
			if err != nil {
				t.Fatal(err)
			}
			fp := w.Fingerprint()
			ders = append(ders, &psbt.Bip32Derivation{PubKey: pub.SerializeCompressed(), MasterKeyFingerprint: fp>>24 | fp>>8&0xff00 | fp<<8&0xff0000 | fp<<24, Bip32Path: acct.Child(change, 0)})
		}
		var pubs [][]byte
		for _, d := range ders {
			pubs = append(pubs, d.PubKey)
		}
		slices.SortFunc(pubs, bytes.Compare)
		b := txscript.NewScriptBuilder().AddOp(txscript.OP_2)
		for _, p := range pubs {
			b.AddData(p)
		}
		s, _ := b.AddOp(txscript.OP_3).AddOp(txscript.OP_CHECKMULTISIG).Script()
		return s, ders
	}
	for _, w := range ws {
		k, err := w.Public(acct, net.HDPublicKeyID[:])
		if err != nil {
			t.Fatal(err)
		}
		xpubs = append(xpubs, k.String())
	}
	wsIn, dersIn := script(0)
	wsCh, dersCh := script(1)
	wsh := func(s []byte) []byte { h := sha256.Sum256(s); return append([]byte{0, 32}, h[:]...) }
	funding := wire.NewMsgTx(2)
	seed := chainhash.HashH([]byte("bitbox02 emulator multisig funding"))
	funding.AddTxIn(wire.NewTxIn(wire.NewOutPoint(&seed, 0), nil, nil))
	funding.AddTxOut(wire.NewTxOut(700_000, wsh(wsIn)))
	spend := wire.NewMsgTx(2)
	spend.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Hash: funding.TxHash(), Index: 0}, Sequence: wire.MaxTxInSequenceNum - 2})
	ext, _ := txscript.NewScriptBuilder().AddOp(txscript.OP_0).AddData(bytes.Repeat([]byte{0x42}, 20)).Script()
	spend.AddTxOut(wire.NewTxOut(400_000, ext))
	spend.AddTxOut(wire.NewTxOut(295_000, wsh(wsCh)))
	p, err := psbt.NewFromUnsignedTx(spend)
	if err != nil {
		t.Fatal(err)
	}
	p.Inputs[0].NonWitnessUtxo, p.Inputs[0].WitnessUtxo = funding, funding.TxOut[0]
	p.Inputs[0].WitnessScript, p.Inputs[0].Bip32Derivation = wsIn, dersIn
	p.Outputs[1].WitnessScript, p.Outputs[1].Bip32Derivation = wsCh, dersCh
	return p, xpubs, wsIn
}

// bitbox-api registers a 2-of-3 p2wsh account on the persona and has it sign a PSBT with
// the account forced (as bitbox-api requires for multisig): one valid signature by the
// device's key, the multisig change recognised.
func TestBitBoxAPIMultisig(t *testing.T) {
	dir, bbDir := jsClient(t)
	d := NewForTest(t, Config{})
	var ws []*emulator.Wallet
	ws = append(ws, d.Wallet())
	for _, mn := range []string{
		"legal winner thank year wave sausage worth useful legal winner thank yellow",
		"letter advice cage absurd amount doctor acoustic avoid letter advice cage above",
	} {
		w, err := emulator.NewWallet(mn, "")
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	p, xpubs, wsIn := multisigPSBT(t, ws)
	ms := map[string]any{"threshold": 2, "xpubs": xpubs, "ourXpubIndex": 0, "scriptType": "p2wsh"}
	kp := "m/48'/1'/0'/2'"
	port := serveTCP(t, d)
	out := runClient(t, dir, bbDir, map[string]any{"port": port, "storage": t.TempDir() + "/ls.json", "ops": []map[string]any{
		{"name": "before", "op": "isRegistered", "coin": "tbtc", "multisig": ms, "keypath": kp},
		{"name": "register", "op": "register", "coin": "tbtc", "multisig": ms, "keypath": kp, "label": "bb 2-of-3"},
		{"name": "after", "op": "isRegistered", "coin": "tbtc", "multisig": ms, "keypath": kp},
		{"name": "signed", "op": "signPSBTMultisig", "coin": "tbtc", "multisig": ms, "keypath": kp, "psbt": psbtBase64(t, p)},
	}})
	var before, after bool
	out.into(t, "before", &before)
	out.into(t, "after", &after)
	if before || !after || out.str(t, "register") != "ok" {
		t.Fatalf("registration: before %v, register %s, after %v", before, out["register"], after)
	}
	signed, err := psbt.NewFromRawBytes(strings.NewReader(out.str(t, "signed")), true)
	if err != nil {
		t.Fatalf("signed psbt: %v (%s)", err, out["signed"])
	}
	sigs := signed.Inputs[0].PartialSigs
	if len(sigs) != 1 {
		t.Fatalf("%d partial signatures, want 1", len(sigs))
	}
	own, _ := d.Wallet().PubKey(hdpath.Path{48 + hardened, 1 + hardened, hardened, 2 + hardened, 0, 0})
	if !bytes.Equal(sigs[0].PubKey, own.SerializeCompressed()) {
		t.Fatalf("signature by %x, want the device's key", sigs[0].PubKey)
	}
	fetcher := txscript.NewCannedPrevOutputFetcher(p.Inputs[0].WitnessUtxo.PkScript, p.Inputs[0].WitnessUtxo.Value)
	h, err := txscript.CalcWitnessSigHash(wsIn, txscript.NewTxSigHashes(signed.UnsignedTx, fetcher), txscript.SigHashAll, signed.UnsignedTx, 0, p.Inputs[0].WitnessUtxo.Value)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := ecdsa.ParseDERSignature(sigs[0].Signature[:len(sigs[0].Signature)-1])
	if err != nil || sigs[0].Signature[len(sigs[0].Signature)-1] != byte(txscript.SigHashAll) || !sig.Verify(h, own) {
		t.Fatalf("the device's signature does not verify (%v)", err)
	}
	var sends int
	for _, e := range d.Approver().Transcript() {
		if e.Title == "Send to" {
			sends++
		}
	}
	if sends != 1 {
		t.Errorf("%d recipients shown, want 1 (the change is the account's own)", sends)
	}
}
