package bitcoin

import (
	"context"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	hwpsbt "github.com/hwbridge/hwbridge/psbt"
)

// ErrFeeTooHigh is wrapped when a fee passes the sanity cap and the caller did not force it.
var ErrFeeTooHigh = errors.New("fee above the sanity cap")

// Fee sanity caps (SendRequest.MaxFee/MaxFeeRate override them).
const (
	DefaultMaxFee     = 1_000_000 // sat (0.01 BTC)
	DefaultMaxFeeRate = FeeRate(1_000_000)
)

// RBFSequence signals replaceability (BIP-125) and allows nLockTime.
const RBFSequence = wire.MaxTxInSequenceNum - 2

// Payment is one requested output.
type Payment struct {
	Address btcutil.Address
	Amount  int64
}

// SendRequest is what the user asked for.
type SendRequest struct {
	Payments []Payment
	FeeRate  FeeRate
	// MaxFee and MaxFeeRate cap the fee (0: DefaultMaxFee, DefaultMaxFeeRate); Force
	// skips the caps.
	MaxFee     int64
	MaxFeeRate FeeRate
	Force      bool
	// MinConf is the confirmations a coin needs to be spent (0 allows mempool coins).
	MinConf int64
	// NoRBF leaves the inputs final (sequence 0xffffffff).
	NoRBF bool
	// Coins restricts selection to these outpoints (bump-fee); nil uses every coin.
	Coins []wire.OutPoint
}

// Plan is a built, unsigned send: the PSBT and what the checks before broadcast expect.
type Plan struct {
	PSBT    *psbt.Packet
	Inputs  []UTXO
	Fee     int64
	VSize   int64
	FeeRate FeeRate
	Method  string // coin selection method
	// Change is set when the transaction has a change output.
	Change *ChangeOutput
	Expect hwpsbt.Expect
}

// ChangeOutput is the change output of a plan.
type ChangeOutput struct {
	Index   int // output index
	Branch  uint32
	Child   uint32
	Amount  int64
	Address string
}

// DustLimit is the smallest standard output for a script (3 sat/vB to create and spend).
func DustLimit(script []byte) int64 {
	switch txscript.GetScriptClass(script) {
	case txscript.WitnessV0PubKeyHashTy:
		return 294
	case txscript.WitnessV0ScriptHashTy, txscript.WitnessV1TaprootTy:
		return 330
	case txscript.ScriptHashTy:
		return 540
	}
	return 546
}

// inputWeight is the weight of spending a coin of the wallet once signed.
func (w *Wallet) inputWeight(st *State, u UTXO) (int64, error) {
	pos, ok := st.Positions[string(u.PkScript)]
	if !ok {
		return 0, fmt.Errorf("coin %s is not the wallet's", u.OutPoint)
	}
	s, err := w.Desc.Derive(pos[0], pos[1])
	if err != nil {
		return 0, err
	}
	sz, err := hwpsbt.InputSize(s.PkScript, s.RedeemScript, s.WitnessScript)
	if err != nil {
		return 0, err
	}
	nonWitness := int64(32 + 4 + 4 + wire.VarIntSerializeSize(uint64(sz.ScriptSig)) + sz.ScriptSig)
	return nonWitness*4 + int64(sz.Witness), nil
}

func (w *Wallet) segwit() bool { return w.Desc.Kind != KindPKH && w.Desc.Kind != KindSHMulti }

// BuildSend selects coins from st, adds change at the next unused change index, and
// builds the PSBT a device needs: for every input the previous transaction
// (non_witness_utxo; not for taproot), the witness_utxo (segwit), redeem and witness
// scripts, and bip32 derivations with the master fingerprint (taproot: internal key and
// tap bip32 derivation); the change output carries its scripts and derivation so the
// device shows it as change; multisig PSBTs carry the cosigners' xpubs.
func (w *Wallet) BuildSend(ctx context.Context, st *State, req SendRequest) (*Plan, error) {
	if len(req.Payments) == 0 {
		return nil, fmt.Errorf("nothing to pay")
	}
	if req.FeeRate <= 0 {
		return nil, fmt.Errorf("no fee rate")
	}
	maxFee, maxRate := req.MaxFee, req.MaxFeeRate
	if maxFee == 0 {
		maxFee = DefaultMaxFee
	}
	if maxRate == 0 {
		maxRate = DefaultMaxFeeRate
	}
	if req.FeeRate > maxRate && !req.Force {
		return nil, fmt.Errorf("%w: %s is above %s (pass --force if you mean it)", ErrFeeTooHigh, req.FeeRate, maxRate)
	}
	tx := wire.NewMsgTx(2)
	var target int64
	var expect []hwpsbt.Payment
	for _, p := range req.Payments {
		if !p.Address.IsForNet(w.Net) {
			return nil, fmt.Errorf("%w: %s is not a %s address", ErrAddress, p.Address, w.Net.Name)
		}
		script, err := txscript.PayToAddrScript(p.Address)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrAddress, p.Address, err)
		}
		if p.Amount < DustLimit(script) {
			return nil, fmt.Errorf("%w: %d sat to %s is below the dust limit of %d sat", ErrAmount, p.Amount, p.Address, DustLimit(script))
		}
		tx.AddTxOut(wire.NewTxOut(p.Amount, script))
		target += p.Amount
		expect = append(expect, hwpsbt.Payment{Script: script, Amount: p.Amount})
	}
	changeIdx := st.NextIndex[1]
	branch := uint32(1)
	if w.Desc.Branches() < 2 {
		branch = 0
		changeIdx = st.NextIndex[0]
	}
	change, err := w.Desc.Derive(branch, changeIdx)
	if err != nil {
		return nil, err
	}
	// Base weight: version, locktime, counts, the payment outputs, segwit marker and flag.
	base := int64(4+4+wire.VarIntSerializeSize(uint64(len(st.UTXOs)))+wire.VarIntSerializeSize(uint64(len(tx.TxOut)+1))) * 4
	for _, o := range tx.TxOut {
		base += int64(o.SerializeSize()) * 4
	}
	if w.segwit() {
		base += 2
	}
	changeOut := wire.NewTxOut(0, change.PkScript)
	var coins []UTXO
	allowed := map[wire.OutPoint]bool{}
	for _, op := range req.Coins {
		allowed[op] = true
	}
	for _, u := range st.UTXOs {
		if !u.Spendable() || u.Confirmations < req.MinConf {
			continue
		}
		if req.Coins != nil && !allowed[u.OutPoint] {
			continue
		}
		coins = append(coins, u)
	}
	var weightErr error
	spendChange, err := w.inputWeight(&State{Positions: map[string][2]uint32{string(change.PkScript): {branch, changeIdx}}}, UTXO{PkScript: change.PkScript})
	if err != nil {
		return nil, err
	}
	sel, err := selectCoins(selectParams{
		coins: coins,
		inputWeight: func(u UTXO) int64 {
			wt, err := w.inputWeight(st, u)
			if err != nil && weightErr == nil {
				weightErr = err
			}
			return wt
		},
		target:       target,
		baseWeight:   base,
		changeWeight: int64(changeOut.SerializeSize()) * 4,
		changeSpend:  spendChange,
		rate:         req.FeeRate,
		dust:         DustLimit(change.PkScript),
	})
	if weightErr != nil {
		return nil, weightErr
	}
	if err != nil {
		return nil, err
	}
	if sel.fee > maxFee && !req.Force {
		return nil, fmt.Errorf("%w: the fee would be %s BTC, above the cap of %s BTC (pass --force if you mean it)", ErrFeeTooHigh, FormatBTC(sel.fee), FormatBTC(maxFee))
	}
	seq := uint32(RBFSequence)
	if req.NoRBF {
		seq = wire.MaxTxInSequenceNum - 1
	}
	var inputs []wire.OutPoint
	for _, u := range sel.coins {
		tx.AddTxIn(&wire.TxIn{PreviousOutPoint: u.OutPoint, Sequence: seq})
		inputs = append(inputs, u.OutPoint)
	}
	plan := &Plan{Inputs: sel.coins, Fee: sel.fee, FeeRate: req.FeeRate, Method: sel.method}
	if sel.change > 0 {
		changeOut.Value = sel.change
		tx.AddTxOut(changeOut)
		addr, _ := w.Desc.Address(branch, changeIdx, w.Net)
		plan.Change = &ChangeOutput{Index: len(tx.TxOut) - 1, Branch: branch, Child: changeIdx, Amount: sel.change}
		if addr != nil {
			plan.Change.Address = addr.EncodeAddress()
		}
	}
	p, err := psbt.NewFromUnsignedTx(tx)
	if err != nil {
		return nil, fmt.Errorf("create psbt: %w", err)
	}
	prevTxs := map[chainhash.Hash]*wire.MsgTx{}
	for i, u := range sel.coins {
		pos := st.Positions[string(u.PkScript)]
		s, err := w.Desc.Derive(pos[0], pos[1])
		if err != nil {
			return nil, err
		}
		in := &p.Inputs[i]
		if w.Desc.Kind != KindTR {
			prev, ok := prevTxs[u.OutPoint.Hash]
			if !ok {
				if prev, err = w.Backend.RawTx(ctx, u.OutPoint.Hash); err != nil {
					return nil, fmt.Errorf("previous transaction of input %d: %w", i, err)
				}
				prevTxs[u.OutPoint.Hash] = prev
			}
			in.NonWitnessUtxo = prev
			if int(u.OutPoint.Index) >= len(prev.TxOut) || prev.TxOut[u.OutPoint.Index].Value != u.Value {
				return nil, fmt.Errorf("the backend's previous transaction for input %d does not hold the coin", i)
			}
		}
		if w.segwit() {
			in.WitnessUtxo = wire.NewTxOut(u.Value, u.PkScript)
		}
		in.RedeemScript, in.WitnessScript = s.RedeemScript, s.WitnessScript
		in.Bip32Derivation, in.TaprootBip32Derivation = s.PSBTDerivations(w.Desc.Kind)
		if w.Desc.Kind == KindTR {
			in.TaprootInternalKey = s.InternalKey
		}
	}
	if plan.Change != nil {
		out := &p.Outputs[plan.Change.Index]
		out.RedeemScript, out.WitnessScript = change.RedeemScript, change.WitnessScript
		out.Bip32Derivation, out.TaprootBip32Derivation = change.PSBTDerivations(w.Desc.Kind)
		if w.Desc.Kind == KindTR {
			out.TaprootInternalKey = change.InternalKey
		}
	}
	if w.Desc.Kind.multisig() {
		xpubs, err := w.Desc.GlobalXPubs()
		if err != nil {
			return nil, err
		}
		for _, kv := range xpubs {
			p.Unknowns = append(p.Unknowns, &psbt.Unknown{Key: kv[0], Value: kv[1]})
		}
	}
	vsize, err := hwpsbt.EstimateVSize(p)
	if err != nil {
		return nil, err
	}
	if got := in(p) - out(p); got != plan.Fee {
		return nil, fmt.Errorf("internal error: built a fee of %d sat, planned %d", got, plan.Fee)
	}
	plan.PSBT, plan.VSize = p, vsize
	plan.Expect = hwpsbt.Expect{Inputs: inputs, Payments: expect, Fee: plan.Fee, Owner: w.Desc}
	return plan, nil
}

func in(p *psbt.Packet) int64 {
	var v int64
	for i := range p.Inputs {
		if o := hwpsbt.SpentOutput(p, i); o != nil {
			v += o.Value
		}
	}
	return v
}

func out(p *psbt.Packet) int64 {
	var v int64
	for _, o := range p.UnsignedTx.TxOut {
		v += o.Value
	}
	return v
}
