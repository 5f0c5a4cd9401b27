package bitcoin_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/hwbridge/hwbridge/chains/bitcoin"
	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/internal/devchain/btcregtest"
	hwpsbt "github.com/hwbridge/hwbridge/psbt"
)

// signerFinalize is what a finalizing signer hands back (BIP-174 Input Finalizer): every
// input finalized and stripped of everything but its utxos and final fields.
func signerFinalize(t *testing.T, signed *psbt.Packet) *psbt.Packet {
	t.Helper()
	p, err := hwpsbt.Clone(signed)
	if err != nil {
		t.Fatal(err)
	}
	if err := psbt.MaybeFinalizeAll(p); err != nil {
		t.Fatal(err)
	}
	for i, in := range p.Inputs {
		p.Inputs[i] = psbt.PInput{NonWitnessUtxo: in.NonWitnessUtxo, WitnessUtxo: in.WitnessUtxo, FinalScriptSig: in.FinalScriptSig, FinalScriptWitness: in.FinalScriptWitness}
	}
	for i := range p.Outputs {
		p.Outputs[i] = psbt.POutput{}
	}
	return p
}

func rawTx(t *testing.T, tx *wire.MsgTx) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := tx.Serialize(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func psbtBin(t *testing.T, p *psbt.Packet) []byte {
	t.Helper()
	b, err := hwpsbt.Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestImportSignedForms: for every account kind (wpkh, sh-wpkh, pkh, tr, and a 2-of-3
// wsh(sortedmulti) of three emulated devices), on the embedded regtest chain, what a signer
// may hand back for an exported payment (the partially signed PSBT, the finalized PSBT, the
// final transaction) in every encoding passes CheckImport and gives the same transaction;
// hostile variants are refused with the sentinel callers branch on; a finalized PSBT and a
// final transaction are broadcast through Import and reach the mempool.
func TestImportSignedForms(t *testing.T) {
	ctx := ctxT(t)
	dev := newEmulated(t, "")
	cosB, cosC := newEmulated(t, mnemonicB), newEmulated(t, mnemonicC)
	type account struct {
		name    string
		desc    *bitcoin.Descriptor
		signers []bitcoin.Signer
	}
	var accounts []account
	for _, st := range []device.ScriptType{device.ScriptWPKH, device.ScriptSHWPKH, device.ScriptPKH, device.ScriptTR} {
		d, err := bitcoin.AccountDescriptor(ctx, dev, st, regtest, 0)
		if err != nil {
			t.Fatal(err)
		}
		accounts = append(accounts, account{string(st), d, []bitcoin.Signer{dev}})
	}
	ms, err := bitcoin.MultisigDescriptor(ctx, []bitcoin.KeySource{dev, cosB, cosC}, 2, regtest, 0)
	if err != nil {
		t.Fatal(err)
	}
	accounts = append(accounts, account{"wsh-2of3", ms, []bitcoin.Signer{cosC, dev}})
	first := func(d *bitcoin.Descriptor) btcutil.Address {
		a, err := d.Address(0, 0, regtest)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	node, err := btcregtest.Start(ctx, btcregtest.NodeOptions{MiningAddr: first(accounts[0].desc)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	for _, a := range accounts[1:] {
		if _, err := node.Mine(ctx, 1, first(a.desc)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := node.Mine(ctx, 100, first(accounts[0].desc)); err != nil { // coinbase maturity
		t.Fatal(err)
	}
	rpc, err := bitcoin.NewRPC(node.URL(), regtest)
	if err != nil {
		t.Fatal(err)
	}
	order := bitcoin.SendOrder{RPC: node.URL(), Network: "regtest"}
	seedWallet, err := emulator.NewWallet(emulator.DefaultMnemonic, "")
	if err != nil {
		t.Fatal(err)
	}

	for _, a := range accounts {
		t.Run(a.name, func(t *testing.T) {
			w := &bitcoin.Wallet{Desc: a.desc, Net: regtest, Backend: rpc}
			st, err := w.Scan(ctx)
			if err != nil {
				t.Fatal(err)
			}
			to := outsideAddress(t, "signed forms "+a.name)
			plan, err := w.BuildSend(ctx, st, bitcoin.SendRequest{Payments: []bitcoin.Payment{{Address: to, Amount: 1_0000_0000}}, FeeRate: bitcoin.SatPerVB(2), MinConf: 1})
			if err != nil {
				t.Fatal(err)
			}
			b64, err := hwpsbt.EncodeBase64(plan.PSBT)
			if err != nil {
				t.Fatal(err)
			}
			exp := &bitcoin.Exported{SendResult: bitcoin.SendResult{Fee: plan.Fee, PlanID: plan.PSBT.UnsignedTx.TxHash().String()},
				PSBT: b64, Descriptor: a.desc.String(), Payments: plan.Expect.Payments}
			signed, err := hwpsbt.Clone(plan.PSBT)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range a.signers {
				if err := s.SignPSBT(ctx, signed, regtest); err != nil {
					t.Fatal(err)
				}
			}
			final := signerFinalize(t, signed)
			ftx, err := psbt.Extract(final)
			if err != nil {
				t.Fatal(err)
			}
			txBin := rawTx(t, ftx)

			forms := []struct {
				name, format string
				raw          []byte
			}{
				{"partial binary", bitcoin.FormPSBTBinary, psbtBin(t, signed)},
				{"partial base64", bitcoin.FormPSBTBase64, []byte(base64.StdEncoding.EncodeToString(psbtBin(t, signed)) + "\n")},
				{"finalized binary", bitcoin.FormPSBTBinary, psbtBin(t, final)},
				{"finalized base64 wrapped", bitcoin.FormPSBTBase64, []byte(wrap(base64.StdEncoding.EncodeToString(psbtBin(t, final)), 64))},
				{"finalized hex upper", bitcoin.FormPSBTHex, []byte(strings.ToUpper(hex.EncodeToString(psbtBin(t, final))))},
				{"final.txn hex", bitcoin.FormTxHex, []byte(hex.EncodeToString(txBin) + "\r\n")},
				{"final.txn hex with a byte order mark", bitcoin.FormTxHex, []byte("\xef\xbb\xbf" + hex.EncodeToString(txBin))},
				{"final txn binary", bitcoin.FormTxBinary, txBin},
				{"final txn base64", bitcoin.FormTxBase64, []byte(base64.StdEncoding.EncodeToString(txBin))},
			}
			for _, f := range forms {
				s, err := bitcoin.DecodeSigned(f.raw)
				if err != nil {
					t.Fatalf("%s: %v", f.name, err)
				}
				if s.Format != f.format || s.PlanID() != exp.PlanID {
					t.Fatalf("%s: format %s plan %s, want %s %s", f.name, s.Format, s.PlanID(), f.format, exp.PlanID)
				}
				tx, _, err := bitcoin.CheckImport(exp, s)
				if err != nil {
					t.Fatalf("%s: %v", f.name, err)
				}
				if !bytes.Equal(rawTx(t, tx), txBin) {
					t.Fatalf("%s: checked transaction differs from the signer's", f.name)
				}
			}

			// hostile variants: each refused with what callers branch on
			mutTx := func(fn func(tx *wire.MsgTx)) *bitcoin.Signed {
				tx := ftx.Copy()
				fn(tx)
				return &bitcoin.Signed{Tx: tx}
			}
			mutFinal := func(fn func(p *psbt.Packet)) *bitcoin.Signed {
				p, err := hwpsbt.Clone(final)
				if err != nil {
					t.Fatal(err)
				}
				fn(p)
				return &bitcoin.Signed{PSBT: p}
			}
			witnessed := len(ftx.TxIn[0].Witness) > 0
			sigItem := func(in *wire.TxIn) []byte { // the first signature of an input
				items := [][]byte(in.Witness)
				if !witnessed {
					items, _ = txscript.PushedData(in.SignatureScript)
				}
				for _, it := range items {
					if len(it) >= 64 && (it[0] == 0x30 || len(it) <= 65) {
						return it
					}
				}
				t.Fatal("no signature in the final input")
				return nil
			}
			hostile := []struct {
				name string
				s    *bitcoin.Signed
				want error
			}{
				{"tx output value changed", mutTx(func(tx *wire.MsgTx) { tx.TxOut[0].Value -= 1000 }), bitcoin.ErrNotExported},
				{"tx output added", mutTx(func(tx *wire.MsgTx) { tx.AddTxOut(wire.NewTxOut(1000, tx.TxOut[0].PkScript)) }), bitcoin.ErrNotExported},
				{"tx input sequence changed", mutTx(func(tx *wire.MsgTx) { tx.TxIn[0].Sequence-- }), bitcoin.ErrNotExported},
				{"tx locktime changed", mutTx(func(tx *wire.MsgTx) { tx.LockTime++ }), bitcoin.ErrNotExported},
				{"tx signature flipped", mutTx(func(tx *wire.MsgTx) { s := sigItem(tx.TxIn[0]); s[10] ^= 1 }), hwpsbt.ErrSignature},
				{"tx unsigned input", mutTx(func(tx *wire.MsgTx) { tx.TxIn[0].Witness, tx.TxIn[0].SignatureScript = nil, nil }), hwpsbt.ErrIncomplete},
				{"finalized signature flipped", mutFinal(func(p *psbt.Packet) {
					w := p.Inputs[0].FinalScriptWitness
					if len(w) == 0 {
						w = p.Inputs[0].FinalScriptSig
					}
					w[12] ^= 1
				}), hwpsbt.ErrSignature},
				{"finalized outputs changed", mutFinal(func(p *psbt.Packet) { p.UnsignedTx.TxOut[0].Value += 1000 }), bitcoin.ErrNotExported},
				{"finalized with another prevout amount", mutFinal(func(p *psbt.Packet) {
					if p.Inputs[0].WitnessUtxo != nil {
						p.Inputs[0].WitnessUtxo.Value++
					} else {
						p.Inputs[0].NonWitnessUtxo = wire.NewMsgTx(2)
					}
				}), bitcoin.ErrNotExported},
				{"nil", nil, bitcoin.ErrNotExported},
			}
			if witnessed {
				hostile = append(hostile,
					struct {
						name string
						s    *bitcoin.Signed
						want error
					}{"finalized witness count huge", mutFinal(func(p *psbt.Packet) {
						p.Inputs[0].FinalScriptWitness = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}
					}), hwpsbt.ErrMalformed},
					struct {
						name string
						s    *bitcoin.Signed
						want error
					}{"finalized witness with a junk item", mutFinal(func(p *psbt.Packet) {
						w, _ := hwpsbt.ParseWitness(p.Inputs[0].FinalScriptWitness)
						p.Inputs[0].FinalScriptWitness = hwpsbt.SerializeWitness(append(wire.TxWitness{[]byte("junk")}, w...))
					}), hwpsbt.ErrSignature})
			}
			if a.name == string(device.ScriptWPKH) {
				// A valid signature the script engine accepts, but with SIGHASH_NONE: the
				// outputs it commits to are none, so it is refused.
				hostile = append(hostile, struct {
					name string
					s    *bitcoin.Signed
					want error
				}{"tx signed with SIGHASH_NONE", mutTx(func(tx *wire.MsgTx) {
					in := signed.Inputs[0]
					priv, err := seedWallet.PrivKey(in.Bip32Derivation[0].Bip32Path)
					if err != nil {
						t.Fatal(err)
					}
					prev := txscript.NewMultiPrevOutFetcher(nil)
					for i, ti := range tx.TxIn {
						prev.AddPrevOut(ti.PreviousOutPoint, signed.Inputs[i].WitnessUtxo)
					}
					wit, err := txscript.WitnessSignature(tx, txscript.NewTxSigHashes(tx, prev), 0, in.WitnessUtxo.Value, in.WitnessUtxo.PkScript, txscript.SigHashNone, priv, true)
					if err != nil {
						t.Fatal(err)
					}
					tx.TxIn[0].Witness = wit
				}), hwpsbt.ErrSignature})
			}
			if a.name == string(device.ScriptTR) {
				hostile = append(hostile, struct {
					name string
					s    *bitcoin.Signed
					want error
				}{"taproot witness with an annex", mutTx(func(tx *wire.MsgTx) {
					tx.TxIn[0].Witness = append(tx.TxIn[0].Witness, []byte{txscript.TaprootAnnexTag})
				}), hwpsbt.ErrSignature})
			}
			for _, h := range hostile {
				_, _, err := bitcoin.CheckImport(exp, h.s)
				if !errors.Is(err, h.want) {
					t.Errorf("%s: %v, want %v", h.name, err, h.want)
				}
				t.Logf("%s: %v", h.name, err)
			}

			// broadcast: the finalized PSBT for the single-key accounts, the final
			// transaction for the multisig one
			s, err := bitcoin.DecodeSigned(psbtBin(t, final))
			if a.name == "wsh-2of3" {
				s, err = bitcoin.DecodeSigned([]byte(hex.EncodeToString(txBin)))
			}
			if err != nil {
				t.Fatal(err)
			}
			pool := node.MempoolCount()
			o := order
			o.To, o.Amount = to.EncodeAddress(), "1"
			res, err := bitcoin.Import(ctx, o, exp, s, bitcoin.Hooks{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.TxID != ftx.TxHash().String() || node.MempoolCount() != pool+1 {
				t.Fatalf("imported %s, mempool %d → %d", res.TxID, pool, node.MempoolCount())
			}
		})
	}
}

func wrap(s string, n int) string {
	var b strings.Builder
	for len(s) > n {
		b.WriteString(s[:n] + "\r\n")
		s = s[n:]
	}
	return b.String() + s + "\n"
}

// TestDecodeSignedHostile: what is neither a PSBT nor a whole signed transaction is refused
// as invalid input, never with a panic.
func TestDecodeSignedHostile(t *testing.T) {
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(&wire.TxIn{SignatureScript: []byte{1, 2}, Sequence: 1})
	tx.AddTxOut(wire.NewTxOut(1000, []byte{0x51}))
	good := rawTx(t, tx)
	noOut := wire.NewMsgTx(2)
	noOut.AddTxIn(&wire.TxIn{SignatureScript: []byte{1}})
	for _, c := range []struct {
		name string
		raw  []byte
	}{
		{"empty", nil},
		{"white space", []byte(" \n\t ")},
		{"magic only", []byte("psbt\xff")},
		{"psbt base64 truncated", []byte("cHNidP8BAA==")},
		{"hex odd length", []byte("0200000001f")},
		{"hex of garbage", []byte("deadbeef")},
		{"base64 of garbage", []byte("aGVsbG8gd29ybGQ=")},
		{"tx with trailing bytes", append(append([]byte{}, good...), 0)},
		{"tx hex with trailing bytes", []byte(hex.EncodeToString(good) + "00")},
		{"tx truncated", good[:len(good)-3]},
		{"tx without outputs", rawTx(t, noOut)},
		{"text", []byte("this is not a transaction")},
		{"binary noise", []byte{0x00, 0x01, 0xfe, 0xff, 0x80}},
		{"varint count huge", []byte{0x02, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{"too large", bytes.Repeat([]byte{'A'}, bitcoin.MaxSignedFile+1)},
	} {
		if s, err := bitcoin.DecodeSigned(c.raw); !errors.Is(err, device.ErrInvalidInput) {
			t.Errorf("%s: %+v, %v; want ErrInvalidInput", c.name, s, err)
		}
	}
	if s, err := bitcoin.DecodeSigned(good); err != nil || s.Format != bitcoin.FormTxBinary {
		t.Fatalf("a good transaction: %+v %v", s, err)
	}
}
