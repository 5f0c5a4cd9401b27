package keepkey

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/internal/keepkeypb"
)

// PSBT signing: KeepKey has no PSBT of its own. The BIP-174 packet is mapped onto the
// legacy SignTx/TxRequest/TxAck streaming flow of keepkey-firmware lib/firmware/signing.c,
// as hdwallet-keepkey's btcSignTx and HWI's keepkey client do: inputs by path and script
// type with their amounts, the previous transaction of each non-segwit input, outputs by
// address, or by path (address_type CHANGE) for change. KeepKey always serializes: the
// signatures arrive in TxRequest.serialized next to the transaction chunks, which the
// driver does not need (it adds the signatures to the PSBT).

// signInput is one PSBT input prepared for the device.
type signInput struct {
	tx  *keepkeypb.TxInputType
	pub []byte
}

// signPlan is everything the TxRequest loop needs.
type signPlan struct {
	coin    string
	version uint32
	lock    uint32
	inputs  []signInput
	outputs []*keepkeypb.TxOutputType
	prev    map[chainhash.Hash]*wire.MsgTx
}

// maxTxItems caps the inputs and outputs of a PSBT sent to the device.
const maxTxItems = 10000

// SignPSBT signs every input of p with this device's keys (matched through the master
// fingerprint) and adds ECDSA signatures with SIGHASH_ALL to PartialSigs. Every input must
// be a single-key p2pkh, p2sh-p2wpkh or p2wpkh input of this device: KeepKey signs only
// transactions whose inputs are all its own, has no taproot, and the driver maps no PSBT
// multisig onto the firmware's.
func (d *Driver) SignPSBT(ctx context.Context, p *psbt.Packet, net *chaincfg.Params) error {
	if p == nil || p.UnsignedTx == nil {
		return fmt.Errorf("keepkey: sign psbt: %w: empty psbt", device.ErrInvalidInput)
	}
	net = netOrMain(net)
	coin, err := coinName(net)
	if err != nil {
		return fmt.Errorf("keepkey: sign psbt: %w", err)
	}
	return d.do(ctx, "sign psbt", func(s *session) error {
		fp, err := s.fingerprint()
		if err != nil {
			return err
		}
		plan, err := planPSBT(p, net, coin, fp)
		if err != nil {
			return err
		}
		sigs, err := s.streamSignTx(plan)
		if err != nil {
			return err
		}
		for i, in := range plan.inputs {
			sig := append(bytes.Clone(sigs[i]), byte(txscript.SigHashAll))
			p.Inputs[i].PartialSigs = append(p.Inputs[i].PartialSigs, &psbt.PartialSig{PubKey: in.pub, Signature: sig})
		}
		return nil
	})
}

// streamSignTx runs one SignTx workflow and returns the DER signature of every input.
func (s *session) streamSignTx(plan *signPlan) ([][]byte, error) {
	sigs := make([][]byte, len(plan.inputs))
	var req proto.Message = &keepkeypb.SignTx{
		OutputsCount: proto.Uint32(uint32(len(plan.outputs))),
		InputsCount:  proto.Uint32(uint32(len(plan.inputs))),
		CoinName:     proto.String(plan.coin),
		Version:      proto.Uint32(plan.version),
		LockTime:     proto.Uint32(plan.lock),
	}
	for {
		r, err := expect[*keepkeypb.TxRequest](s, req)
		if err != nil {
			return nil, err
		}
		if err := takeSignature(r, sigs); err != nil {
			return nil, err
		}
		if r.GetRequestType() == keepkeypb.RequestType_TXFINISHED {
			break
		}
		tx, err := plan.answer(r)
		if err != nil {
			return nil, err
		}
		req = &keepkeypb.TxAck{Tx: tx}
	}
	for i, sig := range sigs {
		if sig == nil {
			return nil, fmt.Errorf("%w: the device finished without signing input %d", device.ErrProtocol, i)
		}
	}
	return sigs, nil
}

// takeSignature records the signature a TxRequest carries, if any.
func takeSignature(r *keepkeypb.TxRequest, sigs [][]byte) error {
	ser := r.GetSerialized()
	if ser == nil || ser.SignatureIndex == nil {
		return nil
	}
	i := int(ser.GetSignatureIndex())
	if i >= len(sigs) || len(ser.GetSignature()) == 0 {
		return fmt.Errorf("%w: signature for input %d of %d", device.ErrProtocol, i, len(sigs))
	}
	if sigs[i] != nil {
		return fmt.Errorf("%w: second signature for input %d", device.ErrProtocol, i)
	}
	sigs[i] = bytes.Clone(ser.GetSignature())
	return nil
}

// answer builds the TransactionType for one TxRequest.
func (plan *signPlan) answer(r *keepkeypb.TxRequest) (*keepkeypb.TransactionType, error) {
	det := r.GetDetails()
	idx := int(det.GetRequestIndex())
	if h := det.GetTxHash(); len(h) > 0 {
		prev, err := plan.prevTx(h)
		if err != nil {
			return nil, err
		}
		switch r.GetRequestType() {
		case keepkeypb.RequestType_TXMETA:
			return &keepkeypb.TransactionType{
				Version:      proto.Uint32(uint32(prev.Version)),
				LockTime:     proto.Uint32(prev.LockTime),
				InputsCnt:    proto.Uint32(uint32(len(prev.TxIn))),
				OutputsCnt:   proto.Uint32(uint32(len(prev.TxOut))),
				ExtraDataLen: proto.Uint32(0),
			}, nil
		case keepkeypb.RequestType_TXINPUT:
			if idx >= len(prev.TxIn) {
				return nil, fmt.Errorf("%w: device asked for input %d of a previous tx with %d", device.ErrProtocol, idx, len(prev.TxIn))
			}
			in := prev.TxIn[idx]
			return &keepkeypb.TransactionType{Inputs: []*keepkeypb.TxInputType{{
				PrevHash:  displayHash(in.PreviousOutPoint.Hash),
				PrevIndex: proto.Uint32(in.PreviousOutPoint.Index),
				ScriptSig: bytes.Clone(in.SignatureScript),
				Sequence:  proto.Uint32(in.Sequence),
			}}}, nil
		case keepkeypb.RequestType_TXOUTPUT:
			if idx >= len(prev.TxOut) {
				return nil, fmt.Errorf("%w: device asked for output %d of a previous tx with %d", device.ErrProtocol, idx, len(prev.TxOut))
			}
			out := prev.TxOut[idx]
			return &keepkeypb.TransactionType{BinOutputs: []*keepkeypb.TxOutputBinType{{
				Amount: proto.Uint64(uint64(out.Value)), ScriptPubkey: bytes.Clone(out.PkScript),
			}}}, nil
		}
		return nil, fmt.Errorf("%w: request type %v for a previous tx (bitcoin transactions carry no extra data)", device.ErrProtocol, r.GetRequestType())
	}
	switch r.GetRequestType() {
	case keepkeypb.RequestType_TXINPUT:
		if idx >= len(plan.inputs) {
			return nil, fmt.Errorf("%w: device asked for input %d of %d", device.ErrProtocol, idx, len(plan.inputs))
		}
		return &keepkeypb.TransactionType{Inputs: []*keepkeypb.TxInputType{plan.inputs[idx].tx}}, nil
	case keepkeypb.RequestType_TXOUTPUT:
		if idx >= len(plan.outputs) {
			return nil, fmt.Errorf("%w: device asked for output %d of %d", device.ErrProtocol, idx, len(plan.outputs))
		}
		return &keepkeypb.TransactionType{Outputs: []*keepkeypb.TxOutputType{plan.outputs[idx]}}, nil
	case keepkeypb.RequestType_TXMETA:
		return &keepkeypb.TransactionType{
			Version:    proto.Uint32(plan.version),
			LockTime:   proto.Uint32(plan.lock),
			InputsCnt:  proto.Uint32(uint32(len(plan.inputs))),
			OutputsCnt: proto.Uint32(uint32(len(plan.outputs))),
		}, nil
	}
	return nil, fmt.Errorf("%w: request type %v (bitcoin transactions carry no extra data)", device.ErrProtocol, r.GetRequestType())
}

func (plan *signPlan) prevTx(display []byte) (*wire.MsgTx, error) {
	if len(display) != chainhash.HashSize {
		return nil, fmt.Errorf("%w: tx hash of %d bytes", device.ErrProtocol, len(display))
	}
	var h chainhash.Hash
	for i := range h {
		h[i] = display[len(display)-1-i]
	}
	prev, ok := plan.prev[h]
	if !ok {
		return nil, fmt.Errorf("%w: device asked for previous tx %s, which the psbt does not carry", device.ErrProtocol, h)
	}
	return prev, nil
}

// displayHash returns the txid bytes in display (RPC) order, as prev_hash wants them.
func displayHash(h chainhash.Hash) []byte {
	b := make([]byte, chainhash.HashSize)
	for i := range h {
		b[i] = h[len(h)-1-i]
	}
	return b
}

// planPSBT checks p and maps it onto TxInputType/TxOutputType.
func planPSBT(p *psbt.Packet, net *chaincfg.Params, coin string, fp device.Fingerprint) (*signPlan, error) {
	tx := p.UnsignedTx
	if len(p.Inputs) != len(tx.TxIn) || len(p.Outputs) != len(tx.TxOut) || len(tx.TxIn) == 0 || len(tx.TxOut) == 0 {
		return nil, fmt.Errorf("%w: psbt has %d/%d inputs and %d/%d outputs", device.ErrInvalidInput, len(p.Inputs), len(tx.TxIn), len(p.Outputs), len(tx.TxOut))
	}
	if len(tx.TxIn) > maxTxItems || len(tx.TxOut) > maxTxItems {
		return nil, fmt.Errorf("%w: %d inputs and %d outputs (at most %d each)", device.ErrInvalidInput, len(tx.TxIn), len(tx.TxOut), maxTxItems)
	}
	plan := &signPlan{coin: coin, version: uint32(tx.Version), lock: tx.LockTime, prev: map[chainhash.Hash]*wire.MsgTx{}}
	for i := range p.Inputs {
		in, err := planInput(p, i, net, fp)
		if err != nil {
			return nil, fmt.Errorf("input %d: %w", i, err)
		}
		plan.inputs = append(plan.inputs, in)
		if in.tx.GetScriptType() == keepkeypb.InputScriptType_SPENDADDRESS {
			// signing.c streams the previous transaction of every non-segwit input.
			nw := p.Inputs[i].NonWitnessUtxo
			if nw == nil {
				return nil, fmt.Errorf("%w: input %d spends p2pkh but has no non_witness_utxo (the full previous transaction): the keepkey checks it, so add it (bitcoin core: utxoupdatepsbt)", device.ErrInvalidInput, i)
			}
			plan.prev[nw.TxHash()] = nw
		}
	}
	for j := range p.Outputs {
		out, err := planOutput(p, j, net, fp)
		if err != nil {
			return nil, fmt.Errorf("output %d: %w", j, err)
		}
		plan.outputs = append(plan.outputs, out)
	}
	return plan, nil
}

// utxo returns the output input i spends, checking non_witness_utxo against the outpoint.
func utxo(p *psbt.Packet, i int) (*wire.TxOut, error) {
	op := p.UnsignedTx.TxIn[i].PreviousOutPoint
	pin := &p.Inputs[i]
	if nw := pin.NonWitnessUtxo; nw != nil {
		if nw.TxHash() != op.Hash {
			return nil, fmt.Errorf("%w: non_witness_utxo is transaction %s, but the input spends %s", device.ErrInvalidInput, nw.TxHash(), op.Hash)
		}
		if int(op.Index) >= len(nw.TxOut) {
			return nil, fmt.Errorf("%w: non_witness_utxo has no output %d", device.ErrInvalidInput, op.Index)
		}
		out := nw.TxOut[op.Index]
		if w := pin.WitnessUtxo; w != nil && (w.Value != out.Value || !bytes.Equal(w.PkScript, out.PkScript)) {
			return nil, fmt.Errorf("%w: witness_utxo and non_witness_utxo disagree", device.ErrInvalidInput)
		}
		return out, nil
	}
	if pin.WitnessUtxo != nil {
		return pin.WitnessUtxo, nil
	}
	return nil, fmt.Errorf("%w: no witness_utxo or non_witness_utxo: the amount and script being spent are unknown (bitcoin core: utxoupdatepsbt)", device.ErrInvalidInput)
}

func planInput(p *psbt.Packet, i int, net *chaincfg.Params, fp device.Fingerprint) (signInput, error) {
	pin := &p.Inputs[i]
	txin := p.UnsignedTx.TxIn[i]
	if len(pin.FinalScriptSig) > 0 || len(pin.FinalScriptWitness) > 0 || len(pin.PartialSigs) > 0 {
		return signInput{}, fmt.Errorf("%w: already signed or finalized; keepkey signs only transactions whose inputs are all its own and unsigned", device.ErrInvalidInput)
	}
	out, err := utxo(p, i)
	if err != nil {
		return signInput{}, err
	}
	if out.Value < 0 {
		return signInput{}, fmt.Errorf("%w: negative amount spent", device.ErrInvalidInput)
	}
	if pin.SighashType != 0 && pin.SighashType != txscript.SigHashAll {
		return signInput{}, fmt.Errorf("sighash type 0x%02x (keepkey signs with SIGHASH_ALL): %w", uint32(pin.SighashType), errors.ErrUnsupported)
	}
	ti := &keepkeypb.TxInputType{
		PrevHash:  displayHash(txin.PreviousOutPoint.Hash),
		PrevIndex: proto.Uint32(txin.PreviousOutPoint.Index),
		Sequence:  proto.Uint32(txin.Sequence),
		Amount:    proto.Uint64(uint64(out.Value)),
	}
	script := out.PkScript
	wrapped := false
	if txscript.IsPayToScriptHash(script) {
		if len(pin.RedeemScript) == 0 {
			return signInput{}, fmt.Errorf("%w: spends p2sh but has no redeem_script", device.ErrInvalidInput)
		}
		if !bytes.Equal(script[2:22], btcutil.Hash160(pin.RedeemScript)) {
			return signInput{}, fmt.Errorf("%w: redeem_script does not hash to the p2sh output it spends", device.ErrInvalidInput)
		}
		script, wrapped = pin.RedeemScript, true
	}
	switch cls := txscript.GetScriptClass(script); {
	case cls == txscript.WitnessV0PubKeyHashTy && wrapped:
		ti.ScriptType = keepkeypb.InputScriptType_SPENDP2SHWITNESS.Enum()
	case cls == txscript.WitnessV0PubKeyHashTy:
		ti.ScriptType = keepkeypb.InputScriptType_SPENDWITNESS.Enum()
	case cls == txscript.PubKeyHashTy && !wrapped:
		ti.ScriptType = keepkeypb.InputScriptType_SPENDADDRESS.Enum()
	case cls == txscript.WitnessV1TaprootTy:
		return signInput{}, errNoTaproot
	case cls == txscript.MultiSigTy || cls == txscript.WitnessV0ScriptHashTy:
		return signInput{}, fmt.Errorf("spending multisig with keepkey through hwbridge: %w (single-key p2pkh, p2sh-p2wpkh and p2wpkh inputs only)", errors.ErrUnsupported)
	default:
		return signInput{}, fmt.Errorf("spending a %s output: %w", cls, errors.ErrUnsupported)
	}
	for _, der := range pin.Bip32Derivation {
		if device.FingerprintFromPSBT(der.MasterKeyFingerprint) != fp || !ownsSingleKey(script, der.PubKey) {
			continue
		}
		path := hdpath.Path(der.Bip32Path)
		if err := checkCoinType(path, net); err != nil {
			return signInput{}, err
		}
		ti.AddressN = path
		return signInput{tx: ti, pub: der.PubKey}, nil
	}
	return signInput{}, fmt.Errorf("%w: no bip32 derivation with fingerprint %s for the key it spends: keepkey signs only transactions whose inputs are all its own", device.ErrInvalidInput, fp)
}

// ownsSingleKey reports whether pub is the key a single-key script pays to.
func ownsSingleKey(script, pub []byte) bool {
	h := btcutil.Hash160(pub)
	switch txscript.GetScriptClass(script) {
	case txscript.WitnessV0PubKeyHashTy:
		return bytes.Equal(script[2:], h)
	case txscript.PubKeyHashTy:
		return bytes.Equal(script[3:23], h)
	}
	return false
}

// checkCoinType catches a PSBT for another network: BIP-44-style paths carry the coin type
// (0' for mainnet, 1' for every test network) in their second step.
func checkCoinType(path hdpath.Path, net *chaincfg.Params) error {
	if len(path) < 2 {
		return nil
	}
	switch path[0] {
	case 44 + hdpath.Hardened, 49 + hdpath.Hardened, 84 + hdpath.Hardened:
	default:
		return nil
	}
	switch {
	case path[1] == hdpath.Hardened && net.Net != chaincfg.MainNetParams.Net:
		return fmt.Errorf("%w: the psbt spends mainnet keys (%s) but the network is %s: pass the right --network", device.ErrInvalidInput, path, net.Name)
	case path[1] == 1+hdpath.Hardened && net.Net == chaincfg.MainNetParams.Net:
		return fmt.Errorf("%w: the psbt spends test-network keys (%s) but the network is mainnet: pass the right --network", device.ErrInvalidInput, path)
	}
	return nil
}

// planOutput maps one output: change (a single key of ours whose script we can re-derive)
// goes by path with address_type CHANGE, OP_RETURN by data, everything else by address.
func planOutput(p *psbt.Packet, j int, net *chaincfg.Params, fp device.Fingerprint) (*keepkeypb.TxOutputType, error) {
	out := p.UnsignedTx.TxOut[j]
	po := &p.Outputs[j]
	if out.Value < 0 {
		return nil, fmt.Errorf("%w: negative amount", device.ErrInvalidInput)
	}
	amount := proto.Uint64(uint64(out.Value))
	if change := changeOutput(out.PkScript, po, fp); change != nil {
		change.Amount = amount
		return change, nil
	}
	if len(out.PkScript) > 0 && out.PkScript[0] == txscript.OP_RETURN {
		pushes, err := txscript.PushedData(out.PkScript)
		if err != nil || len(pushes) != 1 || !txscript.IsNullData(out.PkScript) {
			return nil, fmt.Errorf("op_return outputs with other than one data push: %w", errors.ErrUnsupported)
		}
		if out.Value != 0 {
			return nil, fmt.Errorf("%w: op_return output with a non-zero amount burns coins", device.ErrInvalidInput)
		}
		return &keepkeypb.TxOutputType{Amount: amount, ScriptType: keepkeypb.OutputScriptType_PAYTOOPRETURN.Enum(),
			OpReturnData: bytes.Clone(pushes[0]), AddressType: keepkeypb.OutputAddressType_SPEND.Enum()}, nil
	}
	_, addrs, _, err := txscript.ExtractPkScriptAddrs(out.PkScript, net)
	cls := txscript.GetScriptClass(out.PkScript)
	if err != nil || len(addrs) != 1 || cls == txscript.PubKeyTy || cls == txscript.MultiSigTy {
		return nil, fmt.Errorf("paying to a script with no address (%s): %w", cls, errors.ErrUnsupported)
	}
	return &keepkeypb.TxOutputType{Amount: amount, Address: proto.String(addrs[0].EncodeAddress()),
		ScriptType: keepkeypb.OutputScriptType_PAYTOADDRESS.Enum(), AddressType: keepkeypb.OutputAddressType_SPEND.Enum()}, nil
}

// changeOutput returns the by-path form of an output that pays to a single key of ours, or
// nil. It re-derives the script from the PSBT's key data so that the device builds exactly
// the script the transaction carries.
func changeOutput(pkScript []byte, po *psbt.POutput, fp device.Fingerprint) *keepkeypb.TxOutputType {
	script, wrapped := pkScript, false
	if txscript.IsPayToScriptHash(pkScript) {
		if len(po.RedeemScript) == 0 || !bytes.Equal(pkScript[2:22], btcutil.Hash160(po.RedeemScript)) {
			return nil
		}
		script, wrapped = po.RedeemScript, true
	}
	for _, der := range po.Bip32Derivation {
		if device.FingerprintFromPSBT(der.MasterKeyFingerprint) != fp || !ownsSingleKey(script, der.PubKey) {
			continue
		}
		var st keepkeypb.OutputScriptType
		switch cls := txscript.GetScriptClass(script); {
		case cls == txscript.PubKeyHashTy && !wrapped:
			st = keepkeypb.OutputScriptType_PAYTOADDRESS
		case cls == txscript.WitnessV0PubKeyHashTy && wrapped:
			st = keepkeypb.OutputScriptType_PAYTOP2SHWITNESS
		case cls == txscript.WitnessV0PubKeyHashTy:
			st = keepkeypb.OutputScriptType_PAYTOWITNESS
		default:
			return nil
		}
		return &keepkeypb.TxOutputType{AddressN: der.Bip32Path, ScriptType: st.Enum(), AddressType: keepkeypb.OutputAddressType_CHANGE.Enum()}
	}
	return nil
}
