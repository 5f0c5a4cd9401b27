package ledger

// PSBT v0 → v2 for SIGN_PSBT. Specs: BIP-174 (serialization), BIP-370 (v2 fields);
// /work/shared/protocols/ledger.md §5.4 (what ledger-bitcoin's normalizeToV2 and HWI's
// convert_to_v2 do). The v0 packet is serialized with btcutil/psbt and its raw maps are
// carried over unchanged, so every field (unknown and proprietary ones included) reaches
// the device byte for byte; the v2 fields are added and the unsigned transaction dropped.
//
//	global: − 0x00 UNSIGNED_TX; + 0x02 TX_VERSION u32 LE, 0x03 FALLBACK_LOCKTIME u32 LE,
//	        0x04 INPUT_COUNT varint, 0x05 OUTPUT_COUNT varint, 0xFB VERSION u32 LE = 2
//	input:  + 0x0E PREVIOUS_TXID [32], 0x0F OUTPUT_INDEX u32 LE, 0x10 SEQUENCE u32 LE
//	output: + 0x03 AMOUNT i64 LE, 0x04 SCRIPT

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/wire"

	"github.com/hwbridge/hwbridge/device"
)

// Limits on a PSBT this driver sends (the Bitcoin app signs at most 512 inputs and 512
// outputs; key and value caps as btcutil/psbt's).
const (
	maxPSBTInputs  = 512
	maxPSBTOutputs = 512
	maxPSBTKey     = 10_000
	maxPSBTValue   = psbt.MaxPsbtValueLength
	maxPSBTEntries = 10_000 // per map
)

// PSBT key types used here.
const (
	psbtGlobalUnsignedTx        = 0x00
	psbtGlobalXPub              = 0x01
	psbtGlobalTxVersion         = 0x02
	psbtGlobalFallbackLock      = 0x03
	psbtGlobalInputCount        = 0x04
	psbtGlobalOutputCount       = 0x05
	psbtGlobalVersion           = 0xFB
	psbtInWitnessUTXO           = 0x01
	psbtInPreviousTxID          = 0x0E
	psbtInOutputIndex           = 0x0F
	psbtInSequence              = 0x10
	psbtOutAmount               = 0x03
	psbtOutScript               = 0x04
	psbtMagic                   = "psbt\xff"
	psbtSeparator          byte = 0x00
)

// rawPSBT is a serialized PSBT split into its maps.
type rawPSBT struct {
	global  []keyValue
	inputs  [][]keyValue
	outputs [][]keyValue
}

// parseRawPSBT splits a serialized PSBT into maps, given the number of input and output
// maps (v0 takes them from the unsigned transaction).
func parseRawPSBT(b []byte, nIn, nOut int) (*rawPSBT, error) {
	if !bytes.HasPrefix(b, []byte(psbtMagic)) {
		return nil, fmt.Errorf("psbt: bad magic")
	}
	r := bytes.NewReader(b[len(psbtMagic):])
	var p rawPSBT
	var err error
	if p.global, err = readMap(r); err != nil {
		return nil, fmt.Errorf("psbt: global map: %w", err)
	}
	for i := range nIn {
		m, err := readMap(r)
		if err != nil {
			return nil, fmt.Errorf("psbt: input %d: %w", i, err)
		}
		p.inputs = append(p.inputs, m)
	}
	for i := range nOut {
		m, err := readMap(r)
		if err != nil {
			return nil, fmt.Errorf("psbt: output %d: %w", i, err)
		}
		p.outputs = append(p.outputs, m)
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("psbt: %d trailing bytes", r.Len())
	}
	return &p, nil
}

// readMap reads key-value pairs up to the 0x00 separator.
func readMap(r *bytes.Reader) ([]keyValue, error) {
	var m []keyValue
	seen := map[string]bool{}
	for {
		kl, err := wire.ReadVarInt(r, 0)
		if err != nil {
			return nil, fmt.Errorf("key length: %w", err)
		}
		if kl == 0 {
			return m, nil
		}
		if kl > maxPSBTKey || kl > uint64(r.Len()) {
			return nil, fmt.Errorf("key of %d bytes", kl)
		}
		key := make([]byte, kl)
		_, _ = io.ReadFull(r, key)
		vl, err := wire.ReadVarInt(r, 0)
		if err != nil {
			return nil, fmt.Errorf("value length: %w", err)
		}
		if vl > maxPSBTValue || vl > uint64(r.Len()) {
			return nil, fmt.Errorf("value of %d bytes", vl)
		}
		val := make([]byte, vl)
		_, _ = io.ReadFull(r, val)
		if seen[string(key)] {
			return nil, fmt.Errorf("duplicate key %x", key)
		}
		seen[string(key)] = true
		if len(m) >= maxPSBTEntries {
			return nil, errors.New("too many entries")
		}
		m = append(m, keyValue{key: key, value: val})
	}
}

// writeRawPSBT serializes maps (the inverse of parseRawPSBT, keys in the given order).
func writeRawPSBT(p *rawPSBT) []byte {
	var buf bytes.Buffer
	buf.WriteString(psbtMagic)
	writeMap := func(m []keyValue) {
		for _, kv := range m {
			_ = wire.WriteVarBytes(&buf, 0, kv.key)
			_ = wire.WriteVarBytes(&buf, 0, kv.value)
		}
		buf.WriteByte(psbtSeparator)
	}
	writeMap(p.global)
	for _, m := range p.inputs {
		writeMap(m)
	}
	for _, m := range p.outputs {
		writeMap(m)
	}
	return buf.Bytes()
}

// toV2 converts a v0 packet into v2 maps. dropWitnessUTXO lists inputs whose witness_utxo
// must not reach the device (legacy inputs that also carry non_witness_utxo: the app
// refuses witness_utxo on them, as HWI knows).
func toV2(p *psbt.Packet, dropWitnessUTXO map[int]bool) (*rawPSBT, error) {
	if p == nil || p.UnsignedTx == nil {
		return nil, fmt.Errorf("%w: empty psbt", device.ErrInvalidInput)
	}
	tx := p.UnsignedTx
	if len(tx.TxIn) != len(p.Inputs) || len(tx.TxOut) != len(p.Outputs) {
		return nil, fmt.Errorf("%w: psbt has %d/%d input/output maps for a transaction of %d/%d", device.ErrInvalidInput, len(p.Inputs), len(p.Outputs), len(tx.TxIn), len(tx.TxOut))
	}
	if len(tx.TxIn) > maxPSBTInputs || len(tx.TxOut) > maxPSBTOutputs {
		return nil, fmt.Errorf("%w: a ledger signs at most %d inputs and %d outputs (psbt has %d and %d): split the transaction", device.ErrInvalidInput, maxPSBTInputs, maxPSBTOutputs, len(tx.TxIn), len(tx.TxOut))
	}
	var buf bytes.Buffer
	if err := p.Serialize(&buf); err != nil {
		return nil, fmt.Errorf("%w: psbt does not serialize: %w", device.ErrInvalidInput, err)
	}
	raw, err := parseRawPSBT(buf.Bytes(), len(tx.TxIn), len(tx.TxOut))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", device.ErrInvalidInput, err)
	}
	u32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	varint := func(v int) []byte {
		var b bytes.Buffer
		_ = wire.WriteVarInt(&b, 0, uint64(v))
		return b.Bytes()
	}
	var global []keyValue
	for _, kv := range raw.global {
		switch {
		case len(kv.key) == 1 && kv.key[0] == psbtGlobalUnsignedTx:
		case kv.key[0] == psbtGlobalTxVersion || kv.key[0] == psbtGlobalFallbackLock || kv.key[0] == psbtGlobalInputCount ||
			kv.key[0] == psbtGlobalOutputCount || kv.key[0] == psbtGlobalVersion:
			// v2-only fields in a v0 packet: replaced by the ones derived from the tx.
		default:
			global = append(global, kv)
		}
	}
	global = append(global,
		keyValue{[]byte{psbtGlobalTxVersion}, u32(uint32(tx.Version))},
		keyValue{[]byte{psbtGlobalFallbackLock}, u32(tx.LockTime)},
		keyValue{[]byte{psbtGlobalInputCount}, varint(len(tx.TxIn))},
		keyValue{[]byte{psbtGlobalOutputCount}, varint(len(tx.TxOut))},
		keyValue{[]byte{psbtGlobalVersion}, u32(2)},
	)
	out := &rawPSBT{global: global}
	for i, in := range tx.TxIn {
		var m []keyValue
		for _, kv := range raw.inputs[i] {
			switch kv.key[0] {
			case psbtInPreviousTxID, psbtInOutputIndex, psbtInSequence:
				continue
			case psbtInWitnessUTXO:
				if dropWitnessUTXO[i] && p.Inputs[i].NonWitnessUtxo != nil {
					continue
				}
			}
			m = append(m, kv)
		}
		op := in.PreviousOutPoint
		m = append(m,
			keyValue{[]byte{psbtInPreviousTxID}, bytes.Clone(op.Hash[:])},
			keyValue{[]byte{psbtInOutputIndex}, u32(op.Index)},
			keyValue{[]byte{psbtInSequence}, u32(in.Sequence)},
		)
		out.inputs = append(out.inputs, m)
	}
	for i, o := range tx.TxOut {
		var m []keyValue
		for _, kv := range raw.outputs[i] {
			if kv.key[0] == psbtOutAmount || kv.key[0] == psbtOutScript {
				continue
			}
			m = append(m, kv)
		}
		m = append(m,
			keyValue{[]byte{psbtOutAmount}, binary.LittleEndian.AppendUint64(nil, uint64(o.Value))},
			keyValue{[]byte{psbtOutScript}, bytes.Clone(o.PkScript)},
		)
		out.outputs = append(out.outputs, m)
	}
	return out, nil
}

// merkleizedPSBT is a v2 PSBT as SIGN_PSBT commits to it.
type merkleizedPSBT struct {
	global      *merkleizedMap
	inputs      []*merkleizedMap
	outputs     []*merkleizedMap
	inputsTree  *merkleTree
	outputsTree *merkleTree
	inputComms  [][]byte
	outputComms [][]byte
}

func merkleize(raw *rawPSBT) *merkleizedPSBT {
	m := &merkleizedPSBT{global: newMerkleizedMap(raw.global)}
	for _, in := range raw.inputs {
		mm := newMerkleizedMap(in)
		m.inputs = append(m.inputs, mm)
		m.inputComms = append(m.inputComms, mm.commitment())
	}
	for _, o := range raw.outputs {
		mm := newMerkleizedMap(o)
		m.outputs = append(m.outputs, mm)
		m.outputComms = append(m.outputComms, mm.commitment())
	}
	return m
}

// register makes every preimage and tree of the PSBT known to h, and returns the
// SIGN_PSBT data before the wallet id and hmac.
func (m *merkleizedPSBT) register(h *clientHandler) []byte {
	h.addMap(m.global)
	for _, in := range m.inputs {
		h.addMap(in)
	}
	for _, o := range m.outputs {
		h.addMap(o)
	}
	m.inputsTree = h.addList(m.inputComms)
	m.outputsTree = h.addList(m.outputComms)
	var buf bytes.Buffer
	buf.Write(m.global.commitment())
	_ = wire.WriteVarInt(&buf, 0, uint64(len(m.inputs)))
	ir := m.inputsTree.Root()
	buf.Write(ir[:])
	_ = wire.WriteVarInt(&buf, 0, uint64(len(m.outputs)))
	or := m.outputsTree.Root()
	buf.Write(or[:])
	return buf.Bytes()
}
