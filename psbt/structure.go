package psbt

import (
	"bytes"
	"fmt"
	"io"

	"github.com/btcsuite/btcd/wire"
)

// checkStructure walks the key-value maps of a binary PSBT and checks what btcd's parser
// does not: that a serialized transaction or output fills its value exactly (BIP-174: "the
// value must be the stated size"). Lengths are capped as btcd caps them.
func checkStructure(bin []byte) error {
	r := bytes.NewReader(bin[len(magic):])
	var nIn, nOut int
	// global map
	err := walkMap(r, func(key, val []byte) error {
		if len(key) == 1 && key[0] == 0x00 {
			var tx wire.MsgTx
			vr := bytes.NewReader(val)
			if err := tx.DeserializeNoWitness(vr); err != nil {
				return fmt.Errorf("unsigned tx: %w", err)
			}
			if vr.Len() != 0 {
				return fmt.Errorf("unsigned tx is %d bytes shorter than its stated size", vr.Len())
			}
			nIn, nOut = len(tx.TxIn), len(tx.TxOut)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("global map: %w", err)
	}
	if nIn > MaxInputs || nOut > MaxOutputs {
		return fmt.Errorf("%d inputs and %d outputs is more than accepted", nIn, nOut)
	}
	for i := 0; i < nIn; i++ {
		err := walkMap(r, func(key, val []byte) error {
			switch {
			case len(key) == 1 && key[0] == 0x00:
				var tx wire.MsgTx
				vr := bytes.NewReader(val)
				if err := tx.Deserialize(vr); err != nil {
					return fmt.Errorf("non_witness_utxo: %w", err)
				}
				if vr.Len() != 0 {
					return fmt.Errorf("non_witness_utxo is %d bytes shorter than its stated size", vr.Len())
				}
			case len(key) == 1 && key[0] == 0x01:
				vr := bytes.NewReader(val)
				var v [8]byte
				if _, err := io.ReadFull(vr, v[:]); err != nil {
					return fmt.Errorf("witness_utxo: %w", err)
				}
				if _, err := wire.ReadVarBytes(vr, 0, uint32(len(val)), "pkScript"); err != nil {
					return fmt.Errorf("witness_utxo: %w", err)
				}
				if vr.Len() != 0 {
					return fmt.Errorf("witness_utxo is %d bytes shorter than its stated size", vr.Len())
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("input %d: %w", i, err)
		}
	}
	for i := 0; i < nOut; i++ {
		if err := walkMap(r, func(key, val []byte) error { return nil }); err != nil {
			return fmt.Errorf("output %d: %w", i, err)
		}
	}
	return nil
}

// maxKey and maxValue mirror btcd's MaxPsbtKeyLength and MaxPsbtValueLength.
const (
	maxKey   = 10_000
	maxValue = 4_000_000
)

// walkMap reads one map (key-value pairs up to the 0x00 separator).
func walkMap(r *bytes.Reader, fn func(key, val []byte) error) error {
	for {
		kl, err := wire.ReadVarInt(r, 0)
		if err != nil {
			return err
		}
		if kl == 0 {
			return nil
		}
		if kl > maxKey || kl > uint64(r.Len()) {
			return fmt.Errorf("key of %d bytes", kl)
		}
		key := make([]byte, kl)
		if _, err := io.ReadFull(r, key); err != nil {
			return err
		}
		vl, err := wire.ReadVarInt(r, 0)
		if err != nil {
			return err
		}
		if vl > maxValue || vl > uint64(r.Len()) {
			return fmt.Errorf("value of %d bytes", vl)
		}
		val := make([]byte, vl)
		if _, err := io.ReadFull(r, val); err != nil {
			return err
		}
		if err := fn(key, val); err != nil {
			return err
		}
	}
}
