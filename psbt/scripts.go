package psbt

import (
	"bytes"
	"fmt"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
)

// CheckInputScripts applies the BIP-174 signer's checks on what each input claims it spends:
// a witness_utxo only for a segwit output (directly or through p2sh), a redeem script that
// hashes to the p2sh output, and a witness script that hashes to the p2wsh program.
func CheckInputScripts(p *psbt.Packet) error {
	for i := range p.Inputs {
		in := &p.Inputs[i]
		out := SpentOutput(p, i)
		if out == nil {
			continue
		}
		script := out.PkScript
		if txscript.IsPayToScriptHash(script) {
			if in.RedeemScript == nil {
				continue
			}
			if !bytes.Equal(script[2:22], btcutil.Hash160(in.RedeemScript)) {
				return fmt.Errorf("%w: input %d: the redeem script does not match the spent output", ErrMismatch, i)
			}
			script = in.RedeemScript
		} else if in.RedeemScript != nil {
			return fmt.Errorf("%w: input %d: a redeem script for an output that is not p2sh", ErrMismatch, i)
		}
		segwit := txscript.IsWitnessProgram(script)
		if in.WitnessUtxo != nil && in.NonWitnessUtxo == nil && !segwit {
			return fmt.Errorf("%w: input %d: a witness utxo for a non-witness output", ErrMismatch, i)
		}
		if txscript.IsPayToWitnessScriptHash(script) && in.WitnessScript != nil {
			if !bytes.Equal(script[2:], chainhash.HashB(in.WitnessScript)) {
				return fmt.Errorf("%w: input %d: the witness script does not match the spent output", ErrMismatch, i)
			}
		} else if in.WitnessScript != nil {
			return fmt.Errorf("%w: input %d: a witness script for an output that is not p2wsh", ErrMismatch, i)
		}
	}
	return nil
}
