package psbt

// Finalized inputs: a signer that finalizes (Sparrow, Jade, Keystone, Bitcoin Core's
// walletprocesspsbt, a Coldcard's final transaction read back into a PSBT) hands back
// inputs that carry final_scriptsig / final_scriptwitness (BIP-174 types 0x07, 0x08) and
// none of their partial signatures. Check reads the signatures back out of those final
// fields, so that a finalized input passes the same checks as a signed one (key of the
// input's derivations, SIGHASH_ALL/DEFAULT, verifies against the sighash of the recorded
// prevouts), and then the script engine runs the final scripts themselves.
//
// Hand-written: btcd's psbt package builds final fields (MaybeFinalize) but has no reader
// for them beyond Extract, which trusts the witness item count it reads.

import (
	"bytes"
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// MaxWitnessItems is the most items a final witness may hold (a 15-of-15 multisig spend
// has 17; BIP-342 script paths are not accepted here).
const MaxWitnessItems = 100

// Finalized reports whether in carries a final scriptSig or witness.
func Finalized(in *psbt.PInput) bool {
	return len(in.FinalScriptSig) > 0 || len(in.FinalScriptWitness) > 0
}

// ParseWitness reads a serialized witness stack (the value of final_scriptwitness): an item
// count and that many length-prefixed items, nothing after, within MaxWitnessItems and
// txscript.MaxScriptSize per item.
func ParseWitness(b []byte) (wire.TxWitness, error) {
	r := bytes.NewReader(b)
	n, err := wire.ReadVarInt(r, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: witness item count: %w", ErrMalformed, err)
	}
	if n > MaxWitnessItems || n > uint64(r.Len()) {
		return nil, fmt.Errorf("%w: a witness of %d items", ErrMalformed, n)
	}
	w := make(wire.TxWitness, n)
	for i := range w {
		if w[i], err = wire.ReadVarBytes(r, 0, txscript.MaxScriptSize, "witness item"); err != nil {
			return nil, fmt.Errorf("%w: witness item %d: %w", ErrMalformed, i, err)
		}
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the witness", ErrMalformed, r.Len())
	}
	return w, nil
}

// SerializeWitness is the final_scriptwitness value of w (count, then each item).
func SerializeWitness(w wire.TxWitness) []byte {
	var b bytes.Buffer
	_ = psbt.WriteTxWitness(&b, w) // a bytes.Buffer does not fail
	return b.Bytes()
}

// withFinalSignatures returns p itself when no input is finalized; otherwise a copy in which
// every finalized input's signatures are the ones its final scriptSig and witness carry
// (partial signatures it may also hold are dropped: the final fields are what is broadcast).
// Every item of the final fields must be a signature that verifies for one of the input's
// derived keys, one of those keys, the input's own redeem or witness script, or the empty
// multisig dummy; anything else is refused.
func withFinalSignatures(p *psbt.Packet, hashes *txscript.TxSigHashes) (*psbt.Packet, error) {
	final := false
	for i := range p.Inputs {
		final = final || Finalized(&p.Inputs[i])
	}
	if !final {
		return p, nil
	}
	// A copy of the inputs, not Clone: btcd serializes a finalized input without its
	// derivations and scripts, which the checks need (the exported PSBT's, merged in).
	q := &psbt.Packet{UnsignedTx: p.UnsignedTx, Inputs: append([]psbt.PInput(nil), p.Inputs...), Outputs: p.Outputs, Unknowns: p.Unknowns}
	for i := range q.Inputs {
		in := &q.Inputs[i]
		if !Finalized(in) {
			continue
		}
		out := SpentOutput(q, i)
		if out == nil {
			return nil, fmt.Errorf("%w: input %d carries no utxo", ErrSignature, i)
		}
		var items [][]byte
		var err error
		if len(in.FinalScriptSig) > 0 {
			if !txscript.IsPushOnlyScript(in.FinalScriptSig) {
				return nil, fmt.Errorf("%w: input %d: the final scriptSig is not push-only", ErrSignature, i)
			}
			if items, err = txscript.PushedData(in.FinalScriptSig); err != nil {
				return nil, fmt.Errorf("%w: input %d: final scriptSig: %w", ErrSignature, i, err)
			}
		}
		var wit wire.TxWitness
		if len(in.FinalScriptWitness) > 0 {
			if wit, err = ParseWitness(in.FinalScriptWitness); err != nil {
				return nil, fmt.Errorf("input %d: final witness: %w", i, err)
			}
		}
		in.PartialSigs, in.TaprootKeySpendSig, in.TaprootScriptSpendSig = nil, nil, nil
		if txscript.GetScriptClass(out.PkScript) == txscript.WitnessV1TaprootTy {
			if len(items) != 0 || len(wit) != 1 {
				return nil, fmt.Errorf("%w: input %d: a taproot spend other than one key-path signature (script paths and annexes are not accepted)", ErrSignature, i)
			}
			in.TaprootKeySpendSig = wit[0]
			continue
		}
		for _, item := range append(items, wit...) {
			if err := classify(q, i, out, item, hashes); err != nil {
				return nil, err
			}
		}
	}
	return q, nil
}

// classify accounts for one item of input i's final fields: a signature is added to the
// input's partial signatures under the derived key it verifies for.
func classify(p *psbt.Packet, i int, out *wire.TxOut, item []byte, hashes *txscript.TxSigHashes) error {
	in := &p.Inputs[i]
	switch {
	case len(item) == 0, bytes.Equal(item, in.RedeemScript), bytes.Equal(item, in.WitnessScript), hasDerivation(in.Bip32Derivation, item):
		return nil
	case len(item) < 9 || item[0] != 0x30:
		return fmt.Errorf("%w: input %d: final item %x is no signature, key or script of this input", ErrSignature, i, trunc(item))
	}
	if _, err := ecdsa.ParseDERSignature(item[:len(item)-1]); err != nil {
		return fmt.Errorf("%w: input %d: final item %x is not a DER signature: %w", ErrSignature, i, trunc(item), err)
	}
	var why error
	for _, d := range in.Bip32Derivation {
		ps := &psbt.PartialSig{PubKey: d.PubKey, Signature: item}
		err := checkECDSA(p, i, out, ps, hashes)
		if err == nil {
			for _, o := range in.PartialSigs {
				if bytes.Equal(o.PubKey, d.PubKey) {
					return fmt.Errorf("%w: input %d: two final signatures by key %x", ErrSignature, i, d.PubKey)
				}
			}
			in.PartialSigs = append(in.PartialSigs, ps)
			return nil
		}
		if why == nil {
			why = err
		}
	}
	if why == nil {
		why = fmt.Errorf("the input has no key derivations")
	}
	return fmt.Errorf("%w: input %d: a final signature verifies for none of the input's keys: %w", ErrSignature, i, why)
}

func trunc(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}
