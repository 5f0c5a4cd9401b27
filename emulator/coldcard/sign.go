package coldcard

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	hwpsbt "github.com/hwbridge/hwbridge/psbt"
)

// txn is an uploaded PSBT the device has read and checked, ready to show and sign.
type txn struct {
	p      *psbt.Packet
	net    *chaincfg.Params
	fp     uint32 // our fingerprint as PSBTs store it (little-endian read)
	mine   []ownInput
	in     int64 // satoshis spent
	change map[int]bool
}

// ownInput is an input the device holds the key for.
type ownInput struct {
	index int
	kind  emulator.ScriptKind
	path  hdpath.Path
	utxo  *wire.TxOut
}

// parseTx reads and checks the PSBT as the firmware does before its screen: every input's
// previous output known (and the full previous transaction matching its txid), at least one
// input ours with a key that matches its path, and the fee not negative.
func parseTx(raw []byte, w *emulator.Wallet, net *chaincfg.Params) (*txn, error) {
	p, err := hwpsbt.DecodeBinary(raw)
	if err != nil {
		return nil, errors.New("PSBT parse failed")
	}
	t := &txn{p: p, net: net, fp: xfpLE(w.Fingerprint()), change: map[int]bool{}}
	for i, in := range p.Inputs {
		op := p.UnsignedTx.TxIn[i].PreviousOutPoint
		var utxo *wire.TxOut
		switch {
		case in.NonWitnessUtxo != nil:
			if in.NonWitnessUtxo.TxHash() != op.Hash || int(op.Index) >= len(in.NonWitnessUtxo.TxOut) {
				return nil, fmt.Errorf("Input #%d: full txn for input does not match its txid", i)
			}
			utxo = in.NonWitnessUtxo.TxOut[op.Index]
			if in.WitnessUtxo != nil && (in.WitnessUtxo.Value != utxo.Value || !bytes.Equal(in.WitnessUtxo.PkScript, utxo.PkScript)) {
				return nil, fmt.Errorf("Input #%d: witness utxo differs from the full txn", i)
			}
		case in.WitnessUtxo != nil:
			utxo = in.WitnessUtxo
		default:
			return nil, fmt.Errorf("Input #%d: missing UTXO", i)
		}
		if utxo.Value < 0 || t.in+utxo.Value < t.in {
			return nil, fmt.Errorf("Input #%d: bad amount", i)
		}
		t.in += utxo.Value
		own, err := t.ours(i, in, utxo, w)
		if err != nil {
			return nil, err
		}
		if own != nil {
			t.mine = append(t.mine, *own)
		}
	}
	if len(t.mine) == 0 {
		return nil, errors.New("None of the keys involved in this transaction belong to this Coldcard (need XFP)")
	}
	var out int64
	for i, o := range p.UnsignedTx.TxOut {
		out += o.Value
		for _, d := range p.Outputs[i].Bip32Derivation {
			t.change[i] = t.change[i] || d.MasterKeyFingerprint == t.fp
		}
		for _, d := range p.Outputs[i].TaprootBip32Derivation {
			t.change[i] = t.change[i] || d.MasterKeyFingerprint == t.fp
		}
	}
	if out > t.in {
		return nil, errors.New("Outputs worth more than inputs!")
	}
	return t, nil
}

// ours classifies input i when one of its derivations is ours.
func (t *txn) ours(i int, in psbt.PInput, utxo *wire.TxOut, w *emulator.Wallet) (*ownInput, error) {
	var path []uint32
	var want []byte
	for _, d := range in.Bip32Derivation {
		if d.MasterKeyFingerprint == t.fp {
			path, want = d.Bip32Path, d.PubKey
		}
	}
	for _, d := range in.TaprootBip32Derivation {
		if d.MasterKeyFingerprint == t.fp && len(d.LeafHashes) == 0 {
			path, want = d.Bip32Path, d.XOnlyPubKey
		}
	}
	if path == nil {
		return nil, nil
	}
	if len(path) > maxDepth {
		return nil, fmt.Errorf("Input #%d: path too deep", i)
	}
	pub, err := w.PubKey(path)
	if err != nil {
		return nil, err
	}
	cmp := pub.SerializeCompressed()
	if len(want) == 32 {
		cmp = schnorr.SerializePubKey(pub)
	}
	if !bytes.Equal(cmp, want) {
		return nil, fmt.Errorf("Input #%d: pubkey vs. address wrong", i)
	}
	h := btcutil.Hash160(pub.SerializeCompressed())
	s := utxo.PkScript
	wpkh := append([]byte{txscript.OP_0, txscript.OP_DATA_20}, h...)
	o := &ownInput{index: i, path: path, utxo: utxo}
	switch {
	case bytes.Equal(s, wpkh):
		o.kind = emulator.P2WPKH
	case txscript.IsPayToScriptHash(s) && bytes.Equal(in.RedeemScript, wpkh) && bytes.Equal(s[2:22], btcutil.Hash160(wpkh)):
		o.kind = emulator.P2SHP2WPKH
	case txscript.IsPayToPubKeyHash(s) && bytes.Equal(s[3:23], h):
		if in.NonWitnessUtxo == nil {
			return nil, fmt.Errorf("Input #%d: missing full txn for legacy input", i)
		}
		o.kind = emulator.P2PKH
	case txscript.IsPayToTaproot(s) && len(want) == 32 && bytes.Equal(s[2:], schnorr.SerializePubKey(txscript.ComputeTaprootKeyNoScript(pub))):
		o.kind = emulator.P2TR
	default:
		return nil, fmt.Errorf("Input #%d: script is not one this key signs", i)
	}
	if st := in.SighashType; st != 0 && st != txscript.SigHashAll && !(o.kind == emulator.P2TR && st == txscript.SigHashDefault) {
		return nil, fmt.Errorf("Input #%d: unsupported sighash flag", i)
	}
	return o, nil
}

func unit(chain string) string {
	if chain == "BTC" {
		return "BTC"
	}
	return chain
}

// amount formats satoshis in whole coins with 8 decimals (exact, no float).
func amount(sat int64, chain string) string {
	sign := ""
	if sat < 0 {
		sign, sat = "-", -sat
	}
	return fmt.Sprintf("%s%d.%08d %s", sign, sat/1e8, sat%1e8, unit(chain))
}

// screen is the firmware's "OK TO SEND?" review: what leaves the wallet, to whom, the fee,
// and the change coming back.
func (t *txn) screen(chain string) emulator.Screen {
	var out, spend int64
	lines := []string{}
	for i, o := range t.p.UnsignedTx.TxOut {
		out += o.Value
		if t.change[i] {
			continue
		}
		spend += o.Value
		lines = append(lines, amount(o.Value, chain), " - to address -", scriptText(o.PkScript, t.net))
	}
	head := []string{"Amount " + amount(spend, chain), fmt.Sprintf("%d inputs", len(t.p.Inputs)), fmt.Sprintf("%d outputs", len(t.p.UnsignedTx.TxOut))}
	lines = append(head, lines...)
	for i, o := range t.p.UnsignedTx.TxOut {
		if t.change[i] {
			lines = append(lines, "Change back: "+amount(o.Value, chain), " - to address -", scriptText(o.PkScript, t.net))
		}
	}
	lines = append(lines, "Network fee "+amount(t.in-out, chain))
	return emulator.Screen{Device: "coldcard", Title: "OK TO SEND?", Lines: lines}
}

func scriptText(s []byte, net *chaincfg.Params) string {
	_, addrs, _, err := txscript.ExtractPkScriptAddrs(s, net)
	if err != nil || len(addrs) != 1 {
		return fmt.Sprintf("script %x", s)
	}
	return addrs[0].EncodeAddress()
}

// sign signs every input of ours (SIGHASH_ALL, or SIGHASH_DEFAULT for taproot key paths)
// and returns the PSBT with the signatures, or, with finalize, the final transaction.
func (t *txn) sign(w *emulator.Wallet, finalize bool) ([]byte, error) {
	p := t.p
	prev := txscript.NewMultiPrevOutFetcher(nil)
	for i, in := range p.Inputs {
		op := p.UnsignedTx.TxIn[i].PreviousOutPoint
		if in.NonWitnessUtxo != nil {
			prev.AddPrevOut(op, in.NonWitnessUtxo.TxOut[op.Index])
		} else {
			prev.AddPrevOut(op, in.WitnessUtxo)
		}
	}
	hashes := txscript.NewTxSigHashes(p.UnsignedTx, prev)
	for _, o := range t.mine {
		priv, err := w.PrivKey(o.path)
		if err != nil {
			return nil, err
		}
		in := &p.Inputs[o.index]
		pub := priv.PubKey().SerializeCompressed()
		switch o.kind {
		case emulator.P2TR:
			sig, err := txscript.RawTxInTaprootSignature(p.UnsignedTx, hashes, o.index, o.utxo.Value, o.utxo.PkScript, nil, txscript.SigHashDefault, priv)
			if err != nil {
				return nil, err
			}
			in.TaprootKeySpendSig = sig
		case emulator.P2PKH:
			sig, err := txscript.RawTxInSignature(p.UnsignedTx, o.index, o.utxo.PkScript, txscript.SigHashAll, priv)
			if err != nil {
				return nil, err
			}
			in.PartialSigs = append(in.PartialSigs, &psbt.PartialSig{PubKey: pub, Signature: sig})
		default:
			code := append([]byte{txscript.OP_DUP, txscript.OP_HASH160, txscript.OP_DATA_20}, btcutil.Hash160(pub)...)
			code = append(code, txscript.OP_EQUALVERIFY, txscript.OP_CHECKSIG)
			sig, err := txscript.RawTxInWitnessSignature(p.UnsignedTx, hashes, o.index, o.utxo.Value, code, txscript.SigHashAll, priv)
			if err != nil {
				return nil, err
			}
			in.PartialSigs = append(in.PartialSigs, &psbt.PartialSig{PubKey: pub, Signature: sig})
		}
	}
	if finalize {
		if err := psbt.MaybeFinalizeAll(p); err != nil {
			return nil, errors.New("Could not finalize: not all inputs are signed")
		}
		tx, err := psbt.Extract(p)
		if err != nil {
			return nil, err
		}
		var b bytes.Buffer
		if err := tx.Serialize(&b); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	var b bytes.Buffer
	if err := p.Serialize(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// messageDigest is the Bitcoin signed-message hash: sha256d of the magic prefix, the
// message length as a varint, and the message.
func messageDigest(msg []byte) []byte {
	var b bytes.Buffer
	_ = wire.WriteVarString(&b, 0, "Bitcoin Signed Message:\n")
	_ = wire.WriteVarInt(&b, 0, uint64(len(msg)))
	b.Write(msg)
	return chainhash.DoubleHashB(b.Bytes())
}
