package psbt

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// Summary is a PSBT described for people; its JSON form is what `hwbridge psbt decode
// --json` prints.
type Summary struct {
	Network  string          `json:"network"`
	TxID     string          `json:"txid"`
	Version  int32           `json:"version"`
	LockTime uint32          `json:"locktime"`
	Inputs   []InputSummary  `json:"inputs"`
	Outputs  []OutputSummary `json:"outputs"`
	// InputTotal is the sum of the known spent amounts; Fee is set only when every input's
	// amount is known.
	InputTotal  int64  `json:"input_total_sat"`
	OutputTotal int64  `json:"output_total_sat"`
	Fee         *int64 `json:"fee_sat,omitempty"`
	// EstimatedVSize is the virtual size once signed, when every input's script type is
	// known; FeeRate is Fee over it.
	EstimatedVSize int64    `json:"estimated_vsize,omitempty"`
	FeeRate        *float64 `json:"fee_rate_sat_vb,omitempty"`
	RBF            bool     `json:"rbf"`
	Complete       bool     `json:"complete"`
	GlobalXPubs    []string `json:"global_xpubs,omitempty"`
	Unknowns       int      `json:"unknown_fields,omitempty"`
}

// Derivation is one bip32 (or taproot bip32) derivation of a key.
type Derivation struct {
	PubKey      string `json:"pubkey"`
	Fingerprint string `json:"fingerprint"`
	Path        string `json:"path"`
	Taproot     bool   `json:"taproot,omitempty"`
}

// InputSummary describes one input.
type InputSummary struct {
	Prevout     string       `json:"prevout"`
	Sequence    uint32       `json:"sequence"`
	Amount      *int64       `json:"amount_sat,omitempty"`
	Script      string       `json:"script_pubkey,omitempty"`
	Type        string       `json:"type,omitempty"`
	Address     string       `json:"address,omitempty"`
	UTXO        string       `json:"utxo"` // "witness", "non-witness", "both" or "none"
	Derivations []Derivation `json:"derivations,omitempty"`
	// Signatures counts partial signatures; KeySpendSig says a taproot key-path signature
	// is there; Finalized says the final scriptSig or witness is set.
	Signatures  int    `json:"signatures"`
	KeySpendSig bool   `json:"taproot_key_sig,omitempty"`
	Finalized   bool   `json:"finalized"`
	Status      string `json:"status"` // "unsigned", "partially signed", "signed", "finalized"
}

// OutputSummary describes one output.
type OutputSummary struct {
	Amount      int64        `json:"amount_sat"`
	Script      string       `json:"script_pubkey"`
	Type        string       `json:"type"`
	Address     string       `json:"address,omitempty"`
	Derivations []Derivation `json:"derivations,omitempty"`
}

// Describe summarises p, rendering addresses for net (nil means mainnet).
func Describe(p *psbt.Packet, net *chaincfg.Params) (*Summary, error) {
	if p == nil || p.UnsignedTx == nil {
		return nil, fmt.Errorf("%w: no unsigned transaction", ErrMalformed)
	}
	if net == nil {
		net = &chaincfg.MainNetParams
	}
	tx := p.UnsignedTx
	s := &Summary{
		Network: net.Name, TxID: tx.TxHash().String(), Version: tx.Version, LockTime: tx.LockTime,
		Complete: true, Unknowns: len(p.Unknowns),
	}
	allKnown := true
	for _, u := range p.Unknowns {
		if len(u.Key) == 79 && u.Key[0] == 0x01 {
			s.GlobalXPubs = append(s.GlobalXPubs, fmt.Sprintf("%x (origin %x)", u.Key[1:], u.Value))
			s.Unknowns--
		}
	}
	for i, txIn := range tx.TxIn {
		in := &p.Inputs[i]
		is := InputSummary{Prevout: txIn.PreviousOutPoint.String(), Sequence: txIn.Sequence, UTXO: "none"}
		if txIn.Sequence < wire.MaxTxInSequenceNum-1 {
			s.RBF = true
		}
		switch {
		case in.WitnessUtxo != nil && in.NonWitnessUtxo != nil:
			is.UTXO = "both"
		case in.WitnessUtxo != nil:
			is.UTXO = "witness"
		case in.NonWitnessUtxo != nil:
			is.UTXO = "non-witness"
		}
		if out := SpentOutput(p, i); out != nil {
			v := out.Value
			is.Amount = &v
			s.InputTotal += v
			is.Script = hex.EncodeToString(out.PkScript)
			is.Type, is.Address = scriptInfo(out.PkScript, net)
		} else {
			allKnown = false
		}
		is.Derivations = derivations(in.Bip32Derivation, in.TaprootBip32Derivation)
		is.Signatures = len(in.PartialSigs)
		is.KeySpendSig = len(in.TaprootKeySpendSig) > 0
		is.Finalized = len(in.FinalScriptSig) > 0 || len(in.FinalScriptWitness) > 0
		switch {
		case is.Finalized:
			is.Status = "finalized"
		case is.KeySpendSig:
			is.Status = "signed"
		case is.Signatures > 0:
			is.Status = "partially signed"
			if need := requiredSigs(in, SpentOutput(p, i)); need > 0 && is.Signatures >= need {
				is.Status = "signed"
			}
		default:
			is.Status = "unsigned"
		}
		if !is.Finalized {
			s.Complete = false
		}
		s.Inputs = append(s.Inputs, is)
	}
	for i, txOut := range tx.TxOut {
		out := &p.Outputs[i]
		os := OutputSummary{Amount: txOut.Value, Script: hex.EncodeToString(txOut.PkScript)}
		os.Type, os.Address = scriptInfo(txOut.PkScript, net)
		os.Derivations = derivations(out.Bip32Derivation, out.TaprootBip32Derivation)
		s.OutputTotal += txOut.Value
		s.Outputs = append(s.Outputs, os)
	}
	if allKnown && len(tx.TxIn) > 0 {
		fee := s.InputTotal - s.OutputTotal
		s.Fee = &fee
		if vs, err := EstimateVSize(p); err == nil {
			s.EstimatedVSize = vs
			r := float64(fee) / float64(vs)
			s.FeeRate = &r
		}
	}
	return s, nil
}

// requiredSigs is the number of signatures an input needs (1, or m of a multisig script).
func requiredSigs(in *psbt.PInput, out *wire.TxOut) int {
	script := in.WitnessScript
	if script == nil {
		script = in.RedeemScript
	}
	if script != nil && txscript.GetScriptClass(script) == txscript.MultiSigTy {
		_, m, err := txscript.CalcMultiSigStats(script)
		if err == nil {
			return m
		}
	}
	if out != nil {
		return 1
	}
	return 0
}

func derivations(ecdsa []*psbt.Bip32Derivation, tap []*psbt.TaprootBip32Derivation) []Derivation {
	var out []Derivation
	for _, d := range ecdsa {
		out = append(out, Derivation{PubKey: hex.EncodeToString(d.PubKey), Fingerprint: fingerprintHex(d.MasterKeyFingerprint), Path: PathString(d.Bip32Path)})
	}
	for _, d := range tap {
		out = append(out, Derivation{PubKey: hex.EncodeToString(d.XOnlyPubKey), Fingerprint: fingerprintHex(d.MasterKeyFingerprint), Path: PathString(d.Bip32Path), Taproot: true})
	}
	return out
}

// fingerprintHex prints a fingerprint as btcd's psbt stores it (the four bytes read
// little-endian) in the usual big-endian hex ("73c5da0a").
func fingerprintHex(v uint32) string {
	return fmt.Sprintf("%02x%02x%02x%02x", byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
}

// PathString renders a bip32 path as m/84'/0'/0'/0/1.
func PathString(path []uint32) string {
	var b strings.Builder
	b.WriteString("m")
	for _, s := range path {
		if s >= 0x80000000 {
			fmt.Fprintf(&b, "/%d'", s-0x80000000)
		} else {
			fmt.Fprintf(&b, "/%d", s)
		}
	}
	return b.String()
}

// scriptInfo names a script's type and its address on net, if it has one.
func scriptInfo(script []byte, net *chaincfg.Params) (string, string) {
	class, addrs, _, err := txscript.ExtractPkScriptAddrs(script, net)
	name := class.String()
	switch class {
	case txscript.PubKeyHashTy:
		name = "p2pkh"
	case txscript.ScriptHashTy:
		name = "p2sh"
	case txscript.WitnessV0PubKeyHashTy:
		name = "p2wpkh"
	case txscript.WitnessV0ScriptHashTy:
		name = "p2wsh"
	case txscript.WitnessV1TaprootTy:
		name = "p2tr"
	case txscript.NullDataTy:
		name = "op_return"
	}
	if err != nil || len(addrs) != 1 || class == txscript.PubKeyTy || class == txscript.MultiSigTy {
		return name, ""
	}
	return name, addrs[0].EncodeAddress()
}

// SpentOutput returns the output input i spends, from witness_utxo or non_witness_utxo,
// or nil if the PSBT does not say.
func SpentOutput(p *psbt.Packet, i int) *wire.TxOut {
	in := &p.Inputs[i]
	if in.WitnessUtxo != nil {
		return in.WitnessUtxo
	}
	op := p.UnsignedTx.TxIn[i].PreviousOutPoint
	if nw := in.NonWitnessUtxo; nw != nil && nw.TxHash() == op.Hash && int(op.Index) < len(nw.TxOut) {
		return nw.TxOut[op.Index]
	}
	return nil
}

// Text renders the summary for a terminal.
func (s *Summary) Text() string {
	var b strings.Builder
	btc := formatBTC
	fmt.Fprintf(&b, "transaction %s (version %d, locktime %d, %s)\n", s.TxID, s.Version, s.LockTime, s.Network)
	fmt.Fprintf(&b, "inputs (%d):\n", len(s.Inputs))
	for i, in := range s.Inputs {
		amt := "amount unknown"
		if in.Amount != nil {
			amt = btc(*in.Amount)
		}
		who := in.Address
		if who == "" {
			who = in.Type
		}
		fmt.Fprintf(&b, "  #%d %s  %s  %s  [%s]\n", i, in.Prevout, amt, who, in.Status)
		for _, d := range in.Derivations {
			fmt.Fprintf(&b, "       key %s  [%s%s]\n", d.PubKey, d.Fingerprint, strings.TrimPrefix(d.Path, "m"))
		}
	}
	fmt.Fprintf(&b, "outputs (%d):\n", len(s.Outputs))
	for i, out := range s.Outputs {
		who := out.Address
		if who == "" {
			who = out.Type + " " + out.Script
		}
		mark := ""
		if len(out.Derivations) > 0 {
			mark = "  (key [" + out.Derivations[0].Fingerprint + strings.TrimPrefix(out.Derivations[0].Path, "m") + "])"
		}
		fmt.Fprintf(&b, "  #%d %s  %s%s\n", i, btc(out.Amount), who, mark)
	}
	if s.Fee != nil {
		fmt.Fprintf(&b, "fee: %s", btc(*s.Fee))
		if s.FeeRate != nil {
			fmt.Fprintf(&b, " (%.2f sat/vB for about %d vB)", *s.FeeRate, s.EstimatedVSize)
		}
		b.WriteString("\n")
	} else {
		b.WriteString("fee: unknown (some inputs carry no utxo)\n")
	}
	if s.RBF {
		b.WriteString("replaceable (BIP-125)\n")
	}
	if s.Complete {
		b.WriteString("status: complete, ready to extract\n")
	} else {
		b.WriteString("status: incomplete\n")
	}
	return b.String()
}

// EstimateVSize estimates the virtual size of p once every input is signed, from the
// script types of the spent outputs (and the redeem and witness scripts for p2sh/p2wsh).
// Signatures are counted at their largest DER size (72 bytes with the sighash byte), so
// the estimate is at most a few vbytes high.
func EstimateVSize(p *psbt.Packet) (int64, error) {
	tx := p.UnsignedTx
	base := int64(4 + 4 + wire.VarIntSerializeSize(uint64(len(tx.TxIn))) + wire.VarIntSerializeSize(uint64(len(tx.TxOut))))
	for _, o := range tx.TxOut {
		base += int64(o.SerializeSize())
	}
	var witness int64
	segwit := false
	for i := range tx.TxIn {
		out := SpentOutput(p, i)
		if out == nil {
			return 0, fmt.Errorf("%w: input %d has no utxo", ErrIncomplete, i)
		}
		in := &p.Inputs[i]
		sz, err := InputSize(out.PkScript, in.RedeemScript, in.WitnessScript)
		if err != nil {
			return 0, fmt.Errorf("input %d: %w", i, err)
		}
		base += 32 + 4 + 4 + int64(wire.VarIntSerializeSize(uint64(sz.ScriptSig))) + int64(sz.ScriptSig)
		if sz.Witness > 0 {
			segwit = true
			witness += int64(sz.Witness)
		} else {
			witness++ // an empty witness stack is one byte once the tx has witnesses
		}
	}
	weight := base * blockchain.WitnessScaleFactor
	if segwit {
		weight += 2 + witness
	}
	return (weight + 3) / 4, nil
}

// Size is what an input adds once signed: its scriptSig length and its witness bytes
// (count and items, 0 for a non-segwit input).
type Size struct{ ScriptSig, Witness int }

// Worst-case element sizes.
const (
	ecdsaSigLen   = 72 // DER, high-R worst case, plus the sighash byte
	schnorrSigLen = 64 // SIGHASH_DEFAULT
	pubKeyLen     = 33
)

// InputSize gives the signed size of spending pkScript (with redeem/witness scripts for
// p2sh and p2wsh). Supported: p2pkh, p2wpkh, p2sh-p2wpkh, p2tr key path, p2wsh and
// p2sh-p2wsh multisig, bare multisig.
func InputSize(pkScript, redeem, witnessScript []byte) (Size, error) {
	switch txscript.GetScriptClass(pkScript) {
	case txscript.PubKeyHashTy:
		return Size{ScriptSig: 1 + ecdsaSigLen + 1 + pubKeyLen}, nil
	case txscript.WitnessV0PubKeyHashTy:
		return Size{Witness: 1 + 1 + ecdsaSigLen + 1 + pubKeyLen}, nil
	case txscript.WitnessV1TaprootTy:
		return Size{Witness: 1 + 1 + schnorrSigLen}, nil
	case txscript.WitnessV0ScriptHashTy:
		w, err := multisigWitness(witnessScript)
		return Size{Witness: w}, err
	case txscript.ScriptHashTy:
		if redeem == nil {
			return Size{}, fmt.Errorf("%w: p2sh input without a redeem script", ErrIncomplete)
		}
		push := len(redeem) + pushLen(len(redeem))
		switch txscript.GetScriptClass(redeem) {
		case txscript.WitnessV0PubKeyHashTy:
			return Size{ScriptSig: push, Witness: 1 + 1 + ecdsaSigLen + 1 + pubKeyLen}, nil
		case txscript.WitnessV0ScriptHashTy:
			w, err := multisigWitness(witnessScript)
			return Size{ScriptSig: push, Witness: w}, err
		case txscript.MultiSigTy:
			_, m, err := txscript.CalcMultiSigStats(redeem)
			if err != nil {
				return Size{}, err
			}
			return Size{ScriptSig: 1 + m*(1+ecdsaSigLen) + push}, nil
		}
		return Size{}, fmt.Errorf("%w: p2sh redeem script of type %s", ErrIncomplete, txscript.GetScriptClass(redeem))
	case txscript.MultiSigTy:
		_, m, err := txscript.CalcMultiSigStats(pkScript)
		if err != nil {
			return Size{}, err
		}
		return Size{ScriptSig: 1 + m*(1+ecdsaSigLen)}, nil
	}
	return Size{}, fmt.Errorf("%w: cannot size an input spending a %s output", ErrIncomplete, txscript.GetScriptClass(pkScript))
}

func multisigWitness(ws []byte) (int, error) {
	if ws == nil || txscript.GetScriptClass(ws) != txscript.MultiSigTy {
		return 0, fmt.Errorf("%w: p2wsh input needs a multisig witness script", ErrIncomplete)
	}
	_, m, err := txscript.CalcMultiSigStats(ws)
	if err != nil {
		return 0, err
	}
	// count, empty dummy, m signatures, the script
	return 1 + 1 + m*(1+ecdsaSigLen) + wire.VarIntSerializeSize(uint64(len(ws))) + len(ws), nil
}

func pushLen(n int) int {
	switch {
	case n < txscript.OP_PUSHDATA1:
		return 1
	case n <= 0xff:
		return 2
	case n <= 0xffff:
		return 3
	}
	return 5
}

// formatBTC prints satoshis as BTC with 8 decimals.
func formatBTC(sat int64) string {
	sign := ""
	if sat < 0 {
		sign, sat = "-", -sat
	}
	return fmt.Sprintf("%s%d.%08d BTC", sign, sat/1e8, sat%1e8)
}
