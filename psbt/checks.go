package psbt

import (
	"bytes"
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// Owner is the wallet a PSBT spends from and sends change to, reduced to what Check needs.
type Owner interface {
	// OwnsScript returns nil when the derivations given (those with the wallet's master
	// fingerprint), re-derived from the wallet's own extended public keys, produce script.
	// Otherwise it says why not.
	OwnsScript(script []byte, bip32 []*psbt.Bip32Derivation, tap []*psbt.TaprootBip32Derivation) error
}

// Payment is an output the user asked for.
type Payment struct {
	Script []byte
	Amount int64
}

// Expect is what the user asked for and what the builder computed, checked by Check
// against a signed PSBT before it is broadcast.
type Expect struct {
	// Inputs are the coins the builder chose, in order; nil skips the check.
	Inputs []wire.OutPoint
	// Payments must each appear exactly once, with exactly this amount.
	Payments []Payment
	// Fee is the fee the builder computed, in satoshis; it must equal inputs − outputs.
	Fee int64
	// Owner must own every input's script and every output that is not a payment (change).
	Owner Owner
}

// Check runs the pre-broadcast checks on a signed PSBT, finalized or not:
//   - the inputs are the chosen coins and each has its spent output;
//   - the outputs are the requested payments plus change the Owner re-derives;
//   - the fee equals the computed fee;
//   - every input spends a script the Owner re-derives, each signature is by a key of the
//     input's derivations, uses SIGHASH_ALL (or DEFAULT for taproot), and verifies against
//     the input's sighash; multisig inputs carry at least their threshold of signatures;
//   - finalized, every input's script runs clean in btcd's script engine.
//
// Errors wrap ErrMismatch or ErrSignature (ErrIncomplete when signatures are missing).
func Check(p *psbt.Packet, exp Expect) error {
	if p == nil || p.UnsignedTx == nil {
		return fmt.Errorf("%w: no transaction", ErrMalformed)
	}
	if exp.Owner == nil {
		return fmt.Errorf("%w: no wallet to check the psbt against", ErrMismatch)
	}
	tx := p.UnsignedTx
	if exp.Inputs != nil {
		if len(exp.Inputs) != len(tx.TxIn) {
			return fmt.Errorf("%w: the transaction spends %d coins, %d were chosen", ErrMismatch, len(tx.TxIn), len(exp.Inputs))
		}
		for i, in := range tx.TxIn {
			if in.PreviousOutPoint != exp.Inputs[i] {
				return fmt.Errorf("%w: input %d spends %s, %s was chosen", ErrMismatch, i, in.PreviousOutPoint, exp.Inputs[i])
			}
		}
	}
	if err := checkOutputs(p, exp); err != nil {
		return err
	}
	var in, out int64
	for i := range tx.TxIn {
		o := SpentOutput(p, i)
		if o == nil {
			return fmt.Errorf("%w: input %d carries no utxo", ErrMismatch, i)
		}
		in += o.Value
	}
	for _, o := range tx.TxOut {
		out += o.Value
	}
	if fee := in - out; fee != exp.Fee {
		return fmt.Errorf("%w: the fee is %d sat, %d sat was computed", ErrMismatch, fee, exp.Fee)
	}
	if err := CheckSignatures(p, exp.Owner); err != nil {
		return err
	}
	c, err := Clone(p)
	if err != nil {
		return err
	}
	_, err = FinalizeAndExtract(c)
	return err
}

func checkOutputs(p *psbt.Packet, exp Expect) error {
	used := make([]bool, len(p.UnsignedTx.TxOut))
	for _, pay := range exp.Payments {
		found := -1
		for i, o := range p.UnsignedTx.TxOut {
			if !used[i] && bytes.Equal(o.PkScript, pay.Script) {
				found = i
				break
			}
		}
		if found < 0 {
			return fmt.Errorf("%w: no output pays the requested script %x", ErrMismatch, pay.Script)
		}
		if v := p.UnsignedTx.TxOut[found].Value; v != pay.Amount {
			return fmt.Errorf("%w: output %d pays %d sat, %d sat was requested", ErrMismatch, found, v, pay.Amount)
		}
		used[found] = true
	}
	for i, o := range p.UnsignedTx.TxOut {
		if used[i] {
			continue
		}
		po := &p.Outputs[i]
		if len(po.Bip32Derivation) == 0 && len(po.TaprootBip32Derivation) == 0 {
			return fmt.Errorf("%w: output %d (%d sat to %x) was not requested and is not marked as change", ErrMismatch, i, o.Value, o.PkScript)
		}
		if err := exp.Owner.OwnsScript(o.PkScript, po.Bip32Derivation, po.TaprootBip32Derivation); err != nil {
			return fmt.Errorf("%w: output %d claims to be change but is not ours: %w", ErrMismatch, i, err)
		}
	}
	return nil
}

// CheckSignatures checks every input: its spent script is the owner's, and each signature
// is by a key of its derivations, with SIGHASH_ALL/DEFAULT, and verifies. A finalized input's
// signatures are read from its final scriptSig/witness (its partial signatures are ignored).
func CheckSignatures(p *psbt.Packet, owner Owner) error {
	if err := CheckInputScripts(p); err != nil {
		return err
	}
	tx := p.UnsignedTx
	prevOuts := txscript.NewMultiPrevOutFetcher(nil)
	for i, in := range tx.TxIn {
		o := SpentOutput(p, i)
		if o == nil {
			return fmt.Errorf("%w: input %d carries no utxo", ErrSignature, i)
		}
		prevOuts.AddPrevOut(in.PreviousOutPoint, o)
	}
	hashes := txscript.NewTxSigHashes(tx, prevOuts)
	p, err := withFinalSignatures(p, hashes) // finalized inputs: their signatures, read back (final.go)
	if err != nil {
		return err
	}
	for i := range tx.TxIn {
		in := &p.Inputs[i]
		out := SpentOutput(p, i)
		if err := owner.OwnsScript(out.PkScript, in.Bip32Derivation, in.TaprootBip32Derivation); err != nil {
			return fmt.Errorf("%w: input %d does not spend our coin: %w", ErrSignature, i, err)
		}
		if txscript.GetScriptClass(out.PkScript) == txscript.WitnessV1TaprootTy {
			if err := checkTaproot(p, i, out, hashes, prevOuts); err != nil {
				return fmt.Errorf("input %d: %w", i, err)
			}
			continue
		}
		need := requiredSigs(in, out)
		if len(in.PartialSigs) < need {
			return fmt.Errorf("%w: input %d has %d of the %d signatures it needs", ErrIncomplete, i, len(in.PartialSigs), need)
		}
		for _, ps := range in.PartialSigs {
			if !hasDerivation(in.Bip32Derivation, ps.PubKey) {
				return fmt.Errorf("%w: input %d is signed by key %x, which is none of the input's derivations", ErrSignature, i, ps.PubKey)
			}
			if err := checkECDSA(p, i, out, ps, hashes); err != nil {
				return fmt.Errorf("%w: input %d, key %x: %w", ErrSignature, i, ps.PubKey, err)
			}
		}
	}
	return nil
}

func hasDerivation(ds []*psbt.Bip32Derivation, pub []byte) bool {
	for _, d := range ds {
		if bytes.Equal(d.PubKey, pub) {
			return true
		}
	}
	return false
}

func checkECDSA(p *psbt.Packet, i int, out *wire.TxOut, ps *psbt.PartialSig, hashes *txscript.TxSigHashes) error {
	if len(ps.Signature) < 9 {
		return fmt.Errorf("signature of %d bytes", len(ps.Signature))
	}
	hType := txscript.SigHashType(ps.Signature[len(ps.Signature)-1])
	if hType != txscript.SigHashAll {
		return fmt.Errorf("sighash type %#x, only SIGHASH_ALL is accepted", byte(hType))
	}
	sig, err := ecdsa.ParseDERSignature(ps.Signature[:len(ps.Signature)-1])
	if err != nil {
		return fmt.Errorf("signature is not DER: %w", err)
	}
	pub, err := btcec.ParsePubKey(ps.PubKey)
	if err != nil {
		return fmt.Errorf("public key: %w", err)
	}
	in := &p.Inputs[i]
	script := out.PkScript
	if txscript.IsPayToScriptHash(script) {
		if !bytes.Equal(script[2:22], btcutil.Hash160(in.RedeemScript)) {
			return fmt.Errorf("redeem script does not hash to the output")
		}
		script = in.RedeemScript
	}
	keyHash := btcutil.Hash160(ps.PubKey)
	var digest []byte
	switch txscript.GetScriptClass(script) {
	case txscript.WitnessV0PubKeyHashTy:
		if !bytes.Equal(script[2:], keyHash) {
			return fmt.Errorf("the output does not pay to this key")
		}
		digest, err = txscript.CalcWitnessSigHash(script, hashes, hType, p.UnsignedTx, i, out.Value)
	case txscript.WitnessV0ScriptHashTy:
		if !bytes.Equal(script[2:], chainhash.HashB(in.WitnessScript)) {
			return fmt.Errorf("witness script does not hash to the output")
		}
		if !pushes(in.WitnessScript, ps.PubKey) {
			return fmt.Errorf("the witness script does not hold this key")
		}
		digest, err = txscript.CalcWitnessSigHash(in.WitnessScript, hashes, hType, p.UnsignedTx, i, out.Value)
	case txscript.PubKeyHashTy:
		if !bytes.Equal(script[3:23], keyHash) {
			return fmt.Errorf("the output does not pay to this key")
		}
		digest, err = txscript.CalcSignatureHash(script, hType, p.UnsignedTx, i)
	case txscript.MultiSigTy:
		if !pushes(script, ps.PubKey) {
			return fmt.Errorf("the multisig script does not hold this key")
		}
		digest, err = txscript.CalcSignatureHash(script, hType, p.UnsignedTx, i)
	default:
		return fmt.Errorf("cannot check a signature on a %s output", txscript.GetScriptClass(script))
	}
	if err != nil {
		return fmt.Errorf("sighash: %w", err)
	}
	if !sig.Verify(digest, pub) {
		return fmt.Errorf("the signature does not verify")
	}
	return nil
}

func pushes(script, data []byte) bool {
	ds, err := txscript.PushedData(script)
	if err != nil {
		return false
	}
	for _, d := range ds {
		if bytes.Equal(d, data) {
			return true
		}
	}
	return false
}

func checkTaproot(p *psbt.Packet, i int, out *wire.TxOut, hashes *txscript.TxSigHashes, prevOuts txscript.PrevOutputFetcher) error {
	in := &p.Inputs[i]
	raw := in.TaprootKeySpendSig
	if len(raw) == 0 {
		return fmt.Errorf("%w: no taproot key-path signature", ErrIncomplete)
	}
	hType := txscript.SigHashDefault
	switch len(raw) {
	case schnorr.SignatureSize:
	case schnorr.SignatureSize + 1:
		hType = txscript.SigHashType(raw[64])
		if hType != txscript.SigHashAll {
			return fmt.Errorf("%w: taproot sighash type %#x, only DEFAULT or ALL is accepted", ErrSignature, byte(hType))
		}
	default:
		return fmt.Errorf("%w: taproot signature of %d bytes", ErrSignature, len(raw))
	}
	sig, err := schnorr.ParseSignature(raw[:schnorr.SignatureSize])
	if err != nil {
		return fmt.Errorf("%w: schnorr signature: %w", ErrSignature, err)
	}
	key, err := schnorr.ParsePubKey(out.PkScript[2:])
	if err != nil {
		return fmt.Errorf("%w: output key: %w", ErrSignature, err)
	}
	// The output key must be the BIP-86 tweak of the derived internal key, which OwnsScript
	// has checked; here the signature must verify for it.
	digest, err := txscript.CalcTaprootSignatureHash(hashes, hType, p.UnsignedTx, i, prevOuts)
	if err != nil {
		return fmt.Errorf("%w: sighash: %w", ErrSignature, err)
	}
	if !sig.Verify(digest, key) {
		return fmt.Errorf("%w: the taproot signature does not verify for the output key", ErrSignature)
	}
	return nil
}
