package psbt

import (
	"bytes"
	"fmt"
	"sort"

	"github.com/btcsuite/btcd/btcutil/psbt"
)

// Combine merges PSBTs for the same unsigned transaction (the BIP-174 Combiner): the result
// carries the union of every input's and output's fields. Where two PSBTs give different
// values for the same single-valued field, Combine refuses rather than picking one. Unknown
// pairs are merged and ordered lexicographically by key. The inputs are not modified.
func Combine(ps ...*psbt.Packet) (*psbt.Packet, error) {
	if len(ps) == 0 {
		return nil, fmt.Errorf("%w: nothing to combine", ErrMalformed)
	}
	out, err := Clone(ps[0])
	if err != nil {
		return nil, err
	}
	want := out.UnsignedTx.TxHash()
	for n, p := range ps[1:] {
		if p.UnsignedTx.TxHash() != want {
			return nil, fmt.Errorf("%w: psbt %d is for transaction %s, the first for %s", ErrMismatch, n+2, p.UnsignedTx.TxHash(), want)
		}
		out.Unknowns, err = mergeUnknowns(out.Unknowns, p.Unknowns)
		if err != nil {
			return nil, fmt.Errorf("global: %w", err)
		}
		for i := range out.Inputs {
			if err := mergeInput(&out.Inputs[i], &p.Inputs[i]); err != nil {
				return nil, fmt.Errorf("input %d: %w", i, err)
			}
		}
		for i := range out.Outputs {
			if err := mergeOutput(&out.Outputs[i], &p.Outputs[i]); err != nil {
				return nil, fmt.Errorf("output %d: %w", i, err)
			}
		}
	}
	sortUnknowns(out.Unknowns)
	for i := range out.Inputs {
		sortUnknowns(out.Inputs[i].Unknowns)
	}
	for i := range out.Outputs {
		sortUnknowns(out.Outputs[i].Unknowns)
	}
	return out, nil
}

func sortUnknowns(u []*psbt.Unknown) {
	sort.SliceStable(u, func(i, j int) bool { return bytes.Compare(u[i].Key, u[j].Key) < 0 })
}

func conflict(field string) error {
	return fmt.Errorf("%w: the psbts disagree on %s", ErrMismatch, field)
}

func mergeBytes(dst *[]byte, src []byte, field string) error {
	switch {
	case len(src) == 0:
	case len(*dst) == 0:
		*dst = append([]byte(nil), src...)
	case !bytes.Equal(*dst, src):
		return conflict(field)
	}
	return nil
}

func mergeUnknowns(dst, src []*psbt.Unknown) ([]*psbt.Unknown, error) {
	for _, u := range src {
		found := false
		for _, d := range dst {
			if bytes.Equal(d.Key, u.Key) {
				if !bytes.Equal(d.Value, u.Value) {
					return nil, conflict(fmt.Sprintf("unknown key %x", u.Key))
				}
				found = true
				break
			}
		}
		if !found {
			dst = append(dst, &psbt.Unknown{Key: append([]byte(nil), u.Key...), Value: append([]byte(nil), u.Value...)})
		}
	}
	return dst, nil
}

func mergeInput(d, s *psbt.PInput) error {
	if s.NonWitnessUtxo != nil {
		if d.NonWitnessUtxo == nil {
			d.NonWitnessUtxo = s.NonWitnessUtxo.Copy()
		} else if d.NonWitnessUtxo.TxHash() != s.NonWitnessUtxo.TxHash() {
			return conflict("non_witness_utxo")
		}
	}
	if s.WitnessUtxo != nil {
		if d.WitnessUtxo == nil {
			c := *s.WitnessUtxo
			d.WitnessUtxo = &c
		} else if d.WitnessUtxo.Value != s.WitnessUtxo.Value || !bytes.Equal(d.WitnessUtxo.PkScript, s.WitnessUtxo.PkScript) {
			return conflict("witness_utxo")
		}
	}
	for _, ps := range s.PartialSigs {
		dup := false
		for _, o := range d.PartialSigs {
			if bytes.Equal(o.PubKey, ps.PubKey) {
				if !bytes.Equal(o.Signature, ps.Signature) {
					return conflict(fmt.Sprintf("the signature of key %x", ps.PubKey))
				}
				dup = true
			}
		}
		if !dup {
			d.PartialSigs = append(d.PartialSigs, ps)
		}
	}
	if s.SighashType != 0 {
		if d.SighashType == 0 {
			d.SighashType = s.SighashType
		} else if d.SighashType != s.SighashType {
			return conflict("sighash_type")
		}
	}
	for _, f := range []struct {
		d    *[]byte
		s    []byte
		name string
	}{
		{&d.RedeemScript, s.RedeemScript, "redeem_script"},
		{&d.WitnessScript, s.WitnessScript, "witness_script"},
		{&d.FinalScriptSig, s.FinalScriptSig, "final_scriptsig"},
		{&d.FinalScriptWitness, s.FinalScriptWitness, "final_scriptwitness"},
		{&d.TaprootKeySpendSig, s.TaprootKeySpendSig, "tap_key_sig"},
		{&d.TaprootInternalKey, s.TaprootInternalKey, "tap_internal_key"},
		{&d.TaprootMerkleRoot, s.TaprootMerkleRoot, "tap_merkle_root"},
	} {
		if err := mergeBytes(f.d, f.s, f.name); err != nil {
			return err
		}
	}
	var err error
	if d.Bip32Derivation, err = mergeBip32(d.Bip32Derivation, s.Bip32Derivation); err != nil {
		return err
	}
	if d.TaprootBip32Derivation, err = mergeTapBip32(d.TaprootBip32Derivation, s.TaprootBip32Derivation); err != nil {
		return err
	}
	for _, ss := range s.TaprootScriptSpendSig {
		dup := false
		for _, o := range d.TaprootScriptSpendSig {
			if bytes.Equal(o.XOnlyPubKey, ss.XOnlyPubKey) && bytes.Equal(o.LeafHash, ss.LeafHash) {
				if !bytes.Equal(o.Signature, ss.Signature) {
					return conflict("a tap_script_sig")
				}
				dup = true
			}
		}
		if !dup {
			d.TaprootScriptSpendSig = append(d.TaprootScriptSpendSig, ss)
		}
	}
	for _, ls := range s.TaprootLeafScript {
		dup := false
		for _, o := range d.TaprootLeafScript {
			if bytes.Equal(o.ControlBlock, ls.ControlBlock) {
				if !bytes.Equal(o.Script, ls.Script) || o.LeafVersion != ls.LeafVersion {
					return conflict("a tap_leaf_script")
				}
				dup = true
			}
		}
		if !dup {
			d.TaprootLeafScript = append(d.TaprootLeafScript, ls)
		}
	}
	d.Unknowns, err = mergeUnknowns(d.Unknowns, s.Unknowns)
	return err
}

func mergeOutput(d, s *psbt.POutput) error {
	for _, f := range []struct {
		d    *[]byte
		s    []byte
		name string
	}{
		{&d.RedeemScript, s.RedeemScript, "redeem_script"},
		{&d.WitnessScript, s.WitnessScript, "witness_script"},
		{&d.TaprootInternalKey, s.TaprootInternalKey, "tap_internal_key"},
		{&d.TaprootTapTree, s.TaprootTapTree, "tap_tree"},
	} {
		if err := mergeBytes(f.d, f.s, f.name); err != nil {
			return err
		}
	}
	var err error
	if d.Bip32Derivation, err = mergeBip32(d.Bip32Derivation, s.Bip32Derivation); err != nil {
		return err
	}
	if d.TaprootBip32Derivation, err = mergeTapBip32(d.TaprootBip32Derivation, s.TaprootBip32Derivation); err != nil {
		return err
	}
	d.Unknowns, err = mergeUnknowns(d.Unknowns, s.Unknowns)
	return err
}

func samePath(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func mergeBip32(dst, src []*psbt.Bip32Derivation) ([]*psbt.Bip32Derivation, error) {
	for _, s := range src {
		dup := false
		for _, d := range dst {
			if bytes.Equal(d.PubKey, s.PubKey) {
				if d.MasterKeyFingerprint != s.MasterKeyFingerprint || !samePath(d.Bip32Path, s.Bip32Path) {
					return nil, conflict(fmt.Sprintf("the derivation of key %x", s.PubKey))
				}
				dup = true
			}
		}
		if !dup {
			dst = append(dst, s)
		}
	}
	return dst, nil
}

func mergeTapBip32(dst, src []*psbt.TaprootBip32Derivation) ([]*psbt.TaprootBip32Derivation, error) {
	for _, s := range src {
		dup := false
		for _, d := range dst {
			if bytes.Equal(d.XOnlyPubKey, s.XOnlyPubKey) {
				if d.MasterKeyFingerprint != s.MasterKeyFingerprint || !samePath(d.Bip32Path, s.Bip32Path) {
					return nil, conflict(fmt.Sprintf("the taproot derivation of key %x", s.XOnlyPubKey))
				}
				dup = true
			}
		}
		if !dup {
			dst = append(dst, s)
		}
	}
	return dst, nil
}
