package psbt

import (
	"fmt"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// Finalize turns every input's signatures into its final scriptSig/witness (the BIP-174
// Input Finalizer, psbt.MaybeFinalizeAll). It fails with ErrIncomplete naming the first
// input that cannot be finalized.
func Finalize(p *psbt.Packet) error {
	for i := range p.Inputs {
		if err := finalizeInput(p, i); err != nil {
			return err
		}
	}
	return nil
}

func finalizeInput(p *psbt.Packet, i int) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: input %d: finalizer failure: %v", ErrIncomplete, i, r)
		}
	}()
	in := &p.Inputs[i]
	if len(in.FinalScriptSig) > 0 || len(in.FinalScriptWitness) > 0 {
		return nil
	}
	ok, err := psbt.MaybeFinalize(p, i)
	if err != nil {
		return fmt.Errorf("%w: input %d: %w", ErrIncomplete, i, err)
	}
	if !ok {
		return fmt.Errorf("%w: input %d lacks signatures", ErrIncomplete, i)
	}
	return nil
}

// Extract returns the network transaction of a finalized PSBT (the Transaction Extractor)
// after running every input's script through btcd's script engine with the standard
// verification flags: what comes out is a transaction whose signatures all verify.
func Extract(p *psbt.Packet) (*wire.MsgTx, error) {
	for i := range p.Inputs { // btcd's Extract allocates the item count it reads
		if w := p.Inputs[i].FinalScriptWitness; len(w) > 0 {
			if _, err := ParseWitness(w); err != nil {
				return nil, fmt.Errorf("input %d: final witness: %w", i, err)
			}
		}
	}
	tx, err := psbt.Extract(p)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIncomplete, err)
	}
	if err := Execute(p, tx); err != nil {
		return nil, err
	}
	return tx, nil
}

// Execute runs every input of tx (the signed form of p) through the script engine.
func Execute(p *psbt.Packet, tx *wire.MsgTx) error {
	prevOuts := txscript.NewMultiPrevOutFetcher(nil)
	for i, in := range tx.TxIn {
		out := SpentOutput(p, i)
		if out == nil {
			return fmt.Errorf("%w: input %d has no utxo to verify against", ErrIncomplete, i)
		}
		prevOuts.AddPrevOut(in.PreviousOutPoint, out)
	}
	hashes := txscript.NewTxSigHashes(tx, prevOuts)
	for i, in := range tx.TxIn {
		prev := prevOuts.FetchPrevOutput(in.PreviousOutPoint)
		vm, err := txscript.NewEngine(prev.PkScript, tx, i, txscript.StandardVerifyFlags, nil, hashes, prev.Value, prevOuts)
		if err != nil {
			return fmt.Errorf("%w: input %d: %w", ErrSignature, i, err)
		}
		if err := vm.Execute(); err != nil {
			return fmt.Errorf("%w: input %d does not verify: %w", ErrSignature, i, err)
		}
	}
	return nil
}

// FinalizeAndExtract finalizes p and extracts its verified network transaction.
func FinalizeAndExtract(p *psbt.Packet) (*wire.MsgTx, error) {
	if err := Finalize(p); err != nil {
		return nil, err
	}
	return Extract(p)
}
