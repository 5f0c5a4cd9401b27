package bitcoin_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/hwbridge/hwbridge/chains/bitcoin"
	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	hwpsbt "github.com/hwbridge/hwbridge/psbt"
)

// FuzzDecodeSigned: whatever file a user imports, DecodeSigned fails cleanly or gives a PSBT
// or transaction that, written back in another encoding, decodes to the same bytes and the
// same plan id.
func FuzzDecodeSigned(f *testing.F) {
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(&wire.TxIn{SignatureScript: []byte{1, 2}, Witness: wire.TxWitness{{3}, {4, 5}}, Sequence: 1})
	tx.AddTxOut(wire.NewTxOut(1000, []byte{0x51}))
	var b bytes.Buffer
	if err := tx.Serialize(&b); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes())
	f.Add([]byte(hex.EncodeToString(b.Bytes()) + "\n"))
	f.Add([]byte(base64.StdEncoding.EncodeToString(b.Bytes())))
	f.Add([]byte("cHNidP8BAA=="))
	f.Add([]byte("70736274ff01000a0200000000000000000000"))
	f.Add([]byte("psbt\xff\x01\x00"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := bitcoin.DecodeSigned(raw)
		if err != nil {
			return
		}
		if (s.PSBT == nil) == (s.Tx == nil) {
			t.Fatalf("decoded %+v: want exactly one of a PSBT and a transaction", s)
		}
		var first []byte
		var again *bitcoin.Signed
		if s.PSBT != nil {
			if first, err = hwpsbt.Encode(s.PSBT); err != nil {
				return // btcd accepts some packets it cannot write back
			}
			again, err = bitcoin.DecodeSigned([]byte(base64.StdEncoding.EncodeToString(first)))
		} else {
			var buf bytes.Buffer
			if err := s.Tx.Serialize(&buf); err != nil {
				t.Fatal(err)
			}
			first = buf.Bytes()
			again, err = bitcoin.DecodeSigned([]byte(hex.EncodeToString(first)))
		}
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if again.PlanID() != s.PlanID() {
			t.Fatalf("plan id %s, then %s", s.PlanID(), again.PlanID())
		}
		var second []byte
		if again.PSBT != nil {
			second, err = hwpsbt.Encode(again.PSBT)
		} else {
			var buf bytes.Buffer
			err = again.Tx.Serialize(&buf)
			second = buf.Bytes()
		}
		if err != nil || !bytes.Equal(first, second) {
			t.Fatalf("round trip differs: %v", err)
		}
	})
}

// importFixture is an exported one-input p2wpkh payment of the test seed and the witness
// that signs it (SIGHASH_ALL), built without a chain.
func importFixture(tb testing.TB) (*bitcoin.Exported, *psbt.Packet, wire.TxWitness) {
	tb.Helper()
	w, err := emulator.NewWallet(emulator.DefaultMnemonic, "")
	if err != nil {
		tb.Fatal(err)
	}
	acct := hdpath.MustParse("m/84'/1'/0'")
	xpub, err := w.Public(acct, chaincfg.RegressionNetParams.HDPublicKeyID[:])
	if err != nil {
		tb.Fatal(err)
	}
	d, err := bitcoin.ParseDescriptor(fmt.Sprintf("wpkh([%08x/84h/1h/0h]%s/<0;1>/*)", w.Fingerprint(), xpub))
	if err != nil {
		tb.Fatal(err)
	}
	own, err := d.Derive(0, 0)
	if err != nil {
		tb.Fatal(err)
	}
	prev := wire.NewMsgTx(2)
	prev.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Index: 7}})
	prev.AddTxOut(wire.NewTxOut(100_000, own.PkScript))
	pay := append([]byte{txscript.OP_0, txscript.OP_DATA_20}, bytes.Repeat([]byte{9}, 20)...)
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Hash: prev.TxHash()}, Sequence: bitcoin.RBFSequence})
	tx.AddTxOut(wire.NewTxOut(99_000, pay))
	p, err := psbt.NewFromUnsignedTx(tx)
	if err != nil {
		tb.Fatal(err)
	}
	p.Inputs[0].NonWitnessUtxo, p.Inputs[0].WitnessUtxo = prev, prev.TxOut[0]
	p.Inputs[0].Bip32Derivation, _ = own.PSBTDerivations(d.Kind)
	b64, err := hwpsbt.EncodeBase64(p)
	if err != nil {
		tb.Fatal(err)
	}
	exp := &bitcoin.Exported{SendResult: bitcoin.SendResult{Fee: 1000, PlanID: tx.TxHash().String()}, PSBT: b64, Descriptor: d.String(),
		Payments: []hwpsbt.Payment{{Script: pay, Amount: 99_000}}}
	priv, err := w.PrivKey(hdpath.MustParse("m/84'/1'/0'/0/0"))
	if err != nil {
		tb.Fatal(err)
	}
	fetch := txscript.NewCannedPrevOutputFetcher(prev.TxOut[0].PkScript, prev.TxOut[0].Value)
	wit, err := txscript.WitnessSignature(tx, txscript.NewTxSigHashes(tx, fetch), 0, 100_000, own.PkScript, txscript.SigHashAll, priv, true)
	if err != nil {
		tb.Fatal(err)
	}
	return exp, p, wit
}

// FuzzImportFinalWitness: whatever final witness a signer's PSBT carries for the exported
// payment, CheckImport never panics, and accepts only a witness whose signature commits to
// the whole transaction (SIGHASH_ALL) and that the script engine runs clean.
func FuzzImportFinalWitness(f *testing.F) {
	exp, p, wit := importFixture(f)
	good := hwpsbt.SerializeWitness(wit)
	f.Add(good)
	f.Add(hwpsbt.SerializeWitness(wire.TxWitness{wit[0][:len(wit[0])-1], wit[1]}))
	f.Add(hwpsbt.SerializeWitness(wire.TxWitness{append(bytes.Clone(wit[0][:len(wit[0])-1]), byte(txscript.SigHashNone)), wit[1]}))
	f.Add(hwpsbt.SerializeWitness(wire.TxWitness{wit[1], wit[0]}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})
	if _, _, err := bitcoin.CheckImport(exp, &bitcoin.Signed{PSBT: withWitness(f, p, good)}); err != nil {
		f.Fatalf("the fixture's own witness: %v", err)
	}
	f.Fuzz(func(t *testing.T, w []byte) {
		tx, _, err := bitcoin.CheckImport(exp, &bitcoin.Signed{PSBT: withWitness(t, p, w)})
		if err != nil {
			return
		}
		in := tx.TxIn[0].Witness
		if len(in) != 2 || len(in[0]) == 0 || in[0][len(in[0])-1] != byte(txscript.SigHashAll) {
			t.Fatalf("accepted witness %x", w)
		}
	})
}

func withWitness(tb testing.TB, p *psbt.Packet, w []byte) *psbt.Packet {
	tb.Helper()
	q, err := hwpsbt.Clone(p)
	if err != nil {
		tb.Fatal(err)
	}
	q.Inputs[0] = psbt.PInput{WitnessUtxo: q.Inputs[0].WitnessUtxo, FinalScriptWitness: w}
	return q
}
