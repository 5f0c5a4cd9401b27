package keepkeyemu

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	pb "github.com/hwbridge/hwbridge/internal/keepkeypb"
)

// The SignTx flow of keepkey-firmware lib/firmware/signing.c (7.10.0), stage by stage:
//
//	phase 1  TXINPUT i                      each input (STAGE_REQUEST_1_INPUT)
//	         TXMETA/TXINPUT/TXOUTPUT + hash  the previous tx of a non-segwit input (2_PREV_*),
//	                                        whose hash must be prev_hash
//	         TXOUTPUT j                     each output, confirmed unless change (3_OUTPUT)
//	         fee screen(s), then "Send"     signing_check_fee
//	phase 2  per input i, in order:
//	           non-segwit: TXINPUT 0..n-1, TXOUTPUT 0..m-1 (4_INPUT/4_OUTPUT), then sign;
//	             the next request carries signature_index, signature and the input
//	           segwit: TXINPUT i (SEGWIT_INPUT); the next request carries the input
//	         TXOUTPUT j (5_OUTPUT): the next request carries the output
//	         if any input is segwit: TXINPUT i (SEGWIT_WITNESS), signed by BIP-143; the next
//	           request carries signature_index, signature and the witness (an empty one for
//	           a non-segwit input)
//	         TXFINISHED
//
// Serialized chunks: the header (version, the segwit marker when any input is segwit, the
// input count) comes with the first input, the output count with the first output, and
// lock_time with the last output of a non-segwit transaction or the last witness. Mixing
// segwit and non-segwit inputs is allowed (ENABLE_SEGWIT_NONSEGWIT_MIXING is 1).

// maxTxItems caps the inputs and outputs of a transaction to sign or of a previous one.
const maxTxItems = 10000

type txIn struct {
	msg    *pb.TxInputType
	amount uint64
	kind   emulator.ScriptKind
	segwit bool
	path   hdpath.Path
	script []byte // the key's output script
}

type txOut struct {
	msg    *pb.TxOutputType
	script []byte
}

type signer struct {
	d      *Device
	s      *session
	coin   *coin
	m      *pb.SignTx
	ins    []txIn
	outs   []txOut
	segwit bool // any input is segwit: the transaction carries witnesses
	ser    *pb.TxRequestSerializedType
}

func (d *Device) signTx(ctx context.Context, s *session, m *pb.SignTx) (*pb.TxRequest, error) {
	c, err := coinByName(m.GetCoinName())
	if err != nil {
		return nil, err
	}
	if m.GetInputsCount() < 1 {
		return nil, syntaxError("Transaction must have at least one input")
	}
	if m.GetOutputsCount() < 1 {
		return nil, syntaxError("Transaction must have at least one output")
	}
	if m.GetInputsCount() > maxTxItems || m.GetOutputsCount() > maxTxItems {
		return nil, syntaxError("Value overflow")
	}
	if m.Overwintered != nil || m.Expiry != nil || m.VersionGroupId != nil || m.BranchId != nil {
		return nil, syntaxError("Zcash and Decred fields are unsupported by this emulator")
	}
	t := &signer{d: d, s: s, coin: c, m: m}
	return t.run(ctx)
}

// ask sends a TxRequest (with the serialized part gathered since the last one) and returns
// the TransactionType of the TxAck.
func (t *signer) ask(ctx context.Context, typ pb.RequestType, index int, txHash []byte) (*pb.TransactionType, error) {
	req := &pb.TxRequest{RequestType: typ.Enum(), Details: &pb.TxRequestDetailsType{}, Serialized: t.ser}
	t.ser = nil
	if index >= 0 {
		req.Details.RequestIndex = proto.Uint32(uint32(index))
	}
	if txHash != nil {
		req.Details.TxHash = bytes.Clone(txHash)
	}
	ack, err := expect[*pb.TxAck](ctx, t.s, req, pb.MessageType_MessageType_TxAck)
	if err != nil {
		return nil, err
	}
	if ack.Tx == nil {
		return nil, syntaxError("Transaction is empty")
	}
	return ack.Tx, nil
}

func (t *signer) askInput(ctx context.Context, i int, txHash []byte) (*pb.TxInputType, error) {
	tx, err := t.ask(ctx, pb.RequestType_TXINPUT, i, txHash)
	if err != nil {
		return nil, err
	}
	if len(tx.Inputs) != 1 {
		return nil, syntaxError("Expected one input")
	}
	in := tx.Inputs[0]
	if len(in.GetPrevHash()) != 32 {
		return nil, fail(pb.FailureType_Failure_Other, "Encountered invalid prevhash")
	}
	if in.Multisig != nil {
		return nil, syntaxError("Multisig inputs are unsupported by this emulator")
	}
	return in, nil
}

func (t *signer) askOutput(ctx context.Context, j int) (*pb.TxOutputType, error) {
	tx, err := t.ask(ctx, pb.RequestType_TXOUTPUT, j, nil)
	if err != nil {
		return nil, err
	}
	if len(tx.Outputs) != 1 {
		return nil, syntaxError("Expected one output")
	}
	return tx.Outputs[0], nil
}

var errChanged = syntaxError("Transaction has changed during signing")

func (t *signer) run(ctx context.Context) (*pb.TxRequest, error) {
	var toSpend, spending, change uint64
	// Phase 1: inputs.
	for i := 0; i < int(t.m.GetInputsCount()); i++ {
		in, err := t.askInput(ctx, i, nil)
		if err != nil {
			return nil, err
		}
		ti, err := t.checkInput(in)
		if err != nil {
			return nil, err
		}
		if !ti.segwit {
			amt, err := t.prevTx(ctx, in)
			if err != nil {
				return nil, err
			}
			ti.amount = amt
		} else {
			if in.Amount == nil {
				return nil, syntaxError("Segwit input without amount")
			}
			ti.amount = in.GetAmount()
			t.segwit = true
		}
		if toSpend+ti.amount < toSpend {
			return nil, syntaxError("Value overflow")
		}
		toSpend += ti.amount
		t.ins = append(t.ins, ti)
	}
	// Phase 1: outputs.
	for j := 0; j < int(t.m.GetOutputsCount()); j++ {
		o, err := t.askOutput(ctx, j)
		if err != nil {
			return nil, err
		}
		script, isChange, sc, err := t.compileOutput(o)
		if err != nil {
			return nil, err
		}
		if spending+o.GetAmount() < spending {
			return nil, syntaxError("Value overflow")
		}
		spending += o.GetAmount()
		if isChange {
			change += o.GetAmount()
		} else {
			code := pb.ButtonRequestType_ButtonRequest_ConfirmOutput
			if o.GetAddressType() == pb.OutputAddressType_TRANSFER {
				code = pb.ButtonRequestType_ButtonRequest_ConfirmTransferToAccount
			}
			if err := t.s.confirm(ctx, code, sc); err != nil {
				return nil, cancelled(err, "Signing cancelled by user")
			}
		}
		t.outs = append(t.outs, txOut{msg: o, script: script})
	}
	// signing_check_fee.
	if spending > toSpend {
		return nil, fail(pb.FailureType_Failure_NotEnoughFunds, "Not enough funds")
	}
	fee := toSpend - spending
	if fee > t.weight()*t.coin.maxFeeKB/4000 {
		if err := t.s.confirm(ctx, pb.ButtonRequestType_ButtonRequest_FeeOverThreshold, emulator.Screen{Title: "Confirm Fee",
			Lines: []string{fmt.Sprintf("Really spend %s on fees?", fmtAmount(fee, t.coin.shortcut))}}); err != nil {
			return nil, cancelled(err, "Fee over threshold. Signing cancelled.")
		}
	}
	if err := t.s.confirm(ctx, pb.ButtonRequestType_ButtonRequest_SignTx, emulator.Screen{Title: "Transaction",
		Lines: []string{"Send " + fmtAmount(toSpend-change, t.coin.shortcut), "Fee: " + fmtAmount(fee, t.coin.shortcut)}}); err != nil {
		return nil, cancelled(err, "Signing cancelled by user.")
	}
	return t.phase2(ctx)
}

func cancelled(err error, msg string) error {
	if err == errRejected {
		return fail(pb.FailureType_Failure_ActionCancelled, "%s", msg)
	}
	return err
}

// weight estimates the transaction weight as tx_input_weight/tx_output_weight do.
func (t *signer) weight() uint64 {
	w := uint64(4 * (4 + 4 + 1 + 1)) // version, lock_time, counts
	if t.segwit {
		w += 2
	}
	for _, in := range t.ins {
		switch in.kind {
		case emulator.P2PKH:
			w += 4 * (32 + 4 + 1 + 107 + 4)
		case emulator.P2SHP2WPKH:
			w += 4*(32+4+1+23+4) + 108
		default:
			w += 4*(32+4+1+4) + 108
		}
	}
	for _, o := range t.outs {
		w += uint64(4 * (8 + 1 + len(o.script)))
	}
	return w
}

func (t *signer) checkInput(in *pb.TxInputType) (txIn, error) {
	var kind emulator.ScriptKind
	switch in.GetScriptType() {
	case pb.InputScriptType_SPENDADDRESS:
		kind = emulator.P2PKH
	case pb.InputScriptType_SPENDP2SHWITNESS:
		kind = emulator.P2SHP2WPKH
	case pb.InputScriptType_SPENDWITNESS:
		kind = emulator.P2WPKH
	default:
		// SPENDTAPROOT ("we don't handle spendtaproot input types"), SPENDMULTISIG without
		// multisig, EXTERNAL.
		return txIn{}, syntaxError("Wrong input script type")
	}
	p, err := checkPath(in.AddressN)
	if err != nil {
		return txIn{}, err
	}
	pub, err := t.d.wallet.PubKey(p)
	if err != nil {
		return txIn{}, fail(pb.FailureType_Failure_Other, "Failed to derive private key")
	}
	script, err := emulator.PkScript(pub, kind)
	if err != nil {
		return txIn{}, fail(pb.FailureType_Failure_Other, "Failed to compile input")
	}
	return txIn{msg: in, kind: kind, segwit: kind != emulator.P2PKH, path: p, script: script}, nil
}

// prevTx streams the previous transaction of a non-segwit input (TXMETA, its inputs, its
// outputs), checks its hash against prev_hash and returns the spent output's amount.
func (t *signer) prevTx(ctx context.Context, in *pb.TxInputType) (uint64, error) {
	h := in.GetPrevHash()
	meta, err := t.ask(ctx, pb.RequestType_TXMETA, -1, h)
	if err != nil {
		return 0, err
	}
	nin, nout := meta.GetInputsCnt(), meta.GetOutputsCnt()
	if nout <= in.GetPrevIndex() {
		return 0, syntaxError("Not enough outputs in previous transaction.")
	}
	if nin > maxTxItems || nout > maxTxItems {
		return 0, syntaxError("Value overflow")
	}
	if meta.GetExtraDataLen() > 0 {
		return 0, syntaxError("Extra data is unsupported by this emulator")
	}
	prev := wire.NewMsgTx(int32(meta.GetVersion()))
	prev.LockTime = meta.GetLockTime()
	for k := 0; k < int(nin); k++ {
		tx, err := t.ask(ctx, pb.RequestType_TXINPUT, k, h)
		if err != nil {
			return 0, err
		}
		if len(tx.Inputs) != 1 || len(tx.Inputs[0].GetPrevHash()) != 32 {
			return 0, fail(pb.FailureType_Failure_Other, "Encountered invalid prevhash")
		}
		pi := tx.Inputs[0]
		prev.AddTxIn(&wire.TxIn{PreviousOutPoint: outPoint(pi), SignatureScript: pi.GetScriptSig(), Sequence: pi.GetSequence()})
	}
	var amount uint64
	for k := 0; k < int(nout); k++ {
		tx, err := t.ask(ctx, pb.RequestType_TXOUTPUT, k, h)
		if err != nil {
			return 0, err
		}
		if len(tx.BinOutputs) != 1 {
			return 0, syntaxError("Expected one previous output")
		}
		bo := tx.BinOutputs[0]
		if bo.GetAmount() > math.MaxInt64 {
			return 0, syntaxError("Value overflow")
		}
		prev.AddTxOut(wire.NewTxOut(int64(bo.GetAmount()), bo.GetScriptPubkey()))
		if k == int(in.GetPrevIndex()) {
			amount = bo.GetAmount()
		}
	}
	got := prev.TxHash()
	if !bytes.Equal(reversed(got[:]), h) {
		return 0, syntaxError("Encountered invalid prevhash")
	}
	return amount, nil
}

func outPoint(in *pb.TxInputType) wire.OutPoint {
	var h chainhash.Hash
	copy(h[:], reversed(in.GetPrevHash()))
	return wire.OutPoint{Hash: h, Index: in.GetPrevIndex()}
}

func reversed(b []byte) []byte {
	r := bytes.Clone(b)
	slices.Reverse(r)
	return r
}

// compileOutput is run_policy_compile_output for the output types this emulator takes: an
// address (confirmed), or a key of the device by address_n (change, not shown, unless its
// address_type is TRANSFER).
func (t *signer) compileOutput(o *pb.TxOutputType) (script []byte, change bool, sc emulator.Screen, err error) {
	if o.Amount == nil {
		return nil, false, sc, syntaxError("Output without amount")
	}
	switch {
	case o.Multisig != nil:
		return nil, false, sc, syntaxError("Multisig outputs are unsupported by this emulator")
	case o.GetScriptType() == pb.OutputScriptType_PAYTOOPRETURN:
		// op_return_data max_size 80 (types.options); the amount must be zero.
		data := o.GetOpReturnData()
		if o.GetAmount() != 0 || len(data) > 80 || len(o.AddressN) > 0 || o.Address != nil {
			return nil, false, sc, syntaxError("OP_RETURN output with non-zero amount")
		}
		script, err := txscript.NullDataScript(data)
		if err != nil {
			return nil, false, sc, syntaxError("Failed to compile output")
		}
		return script, false, emulator.Screen{Title: "Confirm OP_RETURN", Lines: messageLines(data)}, nil
	case len(o.AddressN) > 0:
		var kind emulator.ScriptKind
		switch o.GetScriptType() {
		case pb.OutputScriptType_PAYTOADDRESS:
			kind = emulator.P2PKH
		case pb.OutputScriptType_PAYTOP2SHWITNESS:
			kind = emulator.P2SHP2WPKH
		case pb.OutputScriptType_PAYTOWITNESS:
			kind = emulator.P2WPKH
		default:
			return nil, false, sc, syntaxError("Invalid output script type")
		}
		p, err := checkPath(o.AddressN)
		if err != nil {
			return nil, false, sc, err
		}
		addr, script, err := t.d.address(t.coin, p, kind)
		if err != nil {
			return nil, false, sc, err
		}
		change = o.GetAddressType() != pb.OutputAddressType_TRANSFER
		sc = emulator.Screen{Title: "Transfer", Lines: []string{"Transfer " + fmtAmount(o.GetAmount(), t.coin.shortcut) + " to " + p.String(), addr}}
		return script, change, sc, nil
	case o.Address != nil:
		if o.GetScriptType() != pb.OutputScriptType_PAYTOADDRESS && o.GetScriptType() != pb.OutputScriptType_PAYTOSCRIPTHASH {
			return nil, false, sc, syntaxError("Invalid output script type")
		}
		a, err := decodeAddress(o.GetAddress(), t.coin)
		if err != nil {
			return nil, false, sc, err
		}
		script, err := txscript.PayToAddrScript(a)
		if err != nil {
			return nil, false, sc, syntaxError("Invalid output address")
		}
		sc = emulator.Screen{Title: "Send", Lines: []string{"Send " + fmtAmount(o.GetAmount(), t.coin.shortcut) + " to", o.GetAddress()}}
		return script, false, sc, nil
	}
	return nil, false, sc, syntaxError("Missing to address")
}

// sameInput and sameOutput are the firmware's hash_check over what phase 2 reads again.
func sameInput(a, b *pb.TxInputType) bool {
	return bytes.Equal(a.GetPrevHash(), b.GetPrevHash()) && a.GetPrevIndex() == b.GetPrevIndex() &&
		a.GetSequence() == b.GetSequence() && a.GetScriptType() == b.GetScriptType() &&
		slices.Equal(a.AddressN, b.AddressN) && a.GetAmount() == b.GetAmount()
}

func sameOutput(a, b *pb.TxOutputType) bool { return proto.Equal(a, b) }

// unsigned is the transaction being signed, without scripts or witnesses.
func (t *signer) unsigned() *wire.MsgTx {
	tx := wire.NewMsgTx(int32(t.m.GetVersion()))
	tx.LockTime = t.m.GetLockTime()
	for _, in := range t.ins {
		tx.AddTxIn(&wire.TxIn{PreviousOutPoint: outPoint(in.msg), Sequence: in.msg.GetSequence()})
	}
	for _, o := range t.outs {
		tx.AddTxOut(wire.NewTxOut(int64(o.msg.GetAmount()), o.script))
	}
	return tx
}

func (t *signer) phase2(ctx context.Context) (*pb.TxRequest, error) {
	tx := t.unsigned()
	fetch := txscript.NewMultiPrevOutFetcher(nil)
	for i, in := range t.ins {
		fetch.AddPrevOut(tx.TxIn[i].PreviousOutPoint, wire.NewTxOut(int64(in.amount), in.script))
	}
	hashes := txscript.NewTxSigHashes(tx, fetch)
	for i, in := range t.ins {
		var chunk bytes.Buffer
		if i == 0 {
			t.header(&chunk)
		}
		txin := *tx.TxIn[i]
		if !in.segwit {
			// STAGE_REQUEST_4: the whole transaction again, then the signature.
			for k := range t.ins {
				got, err := t.askInput(ctx, k, nil)
				if err != nil {
					return nil, err
				}
				if !sameInput(got, t.ins[k].msg) {
					return nil, errChanged
				}
			}
			for j := range t.outs {
				got, err := t.askOutput(ctx, j)
				if err != nil {
					return nil, err
				}
				if !sameOutput(got, t.outs[j].msg) {
					return nil, errChanged
				}
			}
			h, err := txscript.CalcSignatureHash(in.script, txscript.SigHashAll, tx, i)
			if err != nil {
				return nil, fail(pb.FailureType_Failure_Other, "Signing failed")
			}
			der, pub, err := t.sign(in.path, h)
			if err != nil {
				return nil, err
			}
			ss, err := txscript.NewScriptBuilder().AddData(append(bytes.Clone(der), byte(txscript.SigHashAll))).AddData(pub).Script()
			if err != nil {
				return nil, fail(pb.FailureType_Failure_Other, "Failed to compile input")
			}
			txin.SignatureScript = ss
			writeTxIn(&chunk, &txin)
			t.ser = &pb.TxRequestSerializedType{SignatureIndex: proto.Uint32(uint32(i)), Signature: der, SerializedTx: chunk.Bytes()}
			continue
		}
		// STAGE_REQUEST_SEGWIT_INPUT: the input again; its scriptSig is the p2sh redeem
		// script push for p2sh-p2wpkh and empty for p2wpkh.
		got, err := t.askInput(ctx, i, nil)
		if err != nil {
			return nil, err
		}
		if !sameInput(got, in.msg) {
			return nil, errChanged
		}
		if in.kind == emulator.P2SHP2WPKH {
			pub, err := t.d.wallet.PubKey(in.path)
			if err != nil {
				return nil, fail(pb.FailureType_Failure_Other, "Failed to derive private key")
			}
			txin.SignatureScript = append([]byte{0x16}, emulator.P2SHRedeemScript(pub)...)
		}
		writeTxIn(&chunk, &txin)
		t.ser = &pb.TxRequestSerializedType{SerializedTx: chunk.Bytes()}
	}
	// STAGE_REQUEST_5_OUTPUT.
	for j, o := range t.outs {
		got, err := t.askOutput(ctx, j)
		if err != nil {
			return nil, err
		}
		if !sameOutput(got, o.msg) {
			return nil, errChanged
		}
		var chunk bytes.Buffer
		if j == 0 {
			_ = wire.WriteVarInt(&chunk, 0, uint64(len(t.outs)))
		}
		_ = wire.WriteTxOut(&chunk, 0, 0, tx.TxOut[j])
		if j == len(t.outs)-1 && !t.segwit {
			_ = binary.Write(&chunk, binary.LittleEndian, tx.LockTime)
		}
		t.ser = &pb.TxRequestSerializedType{SerializedTx: chunk.Bytes()}
	}
	// STAGE_REQUEST_SEGWIT_WITNESS.
	if t.segwit {
		for i, in := range t.ins {
			got, err := t.askInput(ctx, i, nil)
			if err != nil {
				return nil, err
			}
			if !sameInput(got, in.msg) {
				return nil, errChanged
			}
			var chunk bytes.Buffer
			ser := &pb.TxRequestSerializedType{}
			if in.segwit {
				pub, err := t.d.wallet.PubKey(in.path)
				if err != nil {
					return nil, fail(pb.FailureType_Failure_Other, "Failed to derive private key")
				}
				// BIP-143 scriptCode of a p2wpkh key: its p2pkh script.
				code, err := emulator.PkScript(pub, emulator.P2PKH)
				if err != nil {
					return nil, fail(pb.FailureType_Failure_Other, "Signing failed")
				}
				h, err := txscript.CalcWitnessSigHash(code, hashes, txscript.SigHashAll, tx, i, int64(in.amount))
				if err != nil {
					return nil, fail(pb.FailureType_Failure_Other, "Signing failed")
				}
				der, pubB, err := t.sign(in.path, h)
				if err != nil {
					return nil, err
				}
				_ = wire.WriteVarInt(&chunk, 0, 2)
				_ = wire.WriteVarBytes(&chunk, 0, append(bytes.Clone(der), byte(txscript.SigHashAll)))
				_ = wire.WriteVarBytes(&chunk, 0, pubB)
				ser.SignatureIndex, ser.Signature = proto.Uint32(uint32(i)), der
			} else {
				chunk.WriteByte(0) // an empty witness
			}
			if i == len(t.ins)-1 {
				_ = binary.Write(&chunk, binary.LittleEndian, tx.LockTime)
			}
			ser.SerializedTx = chunk.Bytes()
			t.ser = ser
		}
	}
	return &pb.TxRequest{RequestType: pb.RequestType_TXFINISHED.Enum(), Serialized: t.ser}, nil
}

// header is tx_serialize_header: version, the segwit marker and flag, the input count.
func (t *signer) header(b *bytes.Buffer) {
	_ = binary.Write(b, binary.LittleEndian, t.m.GetVersion())
	if t.segwit {
		b.Write([]byte{0x00, 0x01})
	}
	_ = wire.WriteVarInt(b, 0, uint64(len(t.ins)))
}

func writeTxIn(b *bytes.Buffer, in *wire.TxIn) {
	b.Write(in.PreviousOutPoint.Hash[:])
	_ = binary.Write(b, binary.LittleEndian, in.PreviousOutPoint.Index)
	_ = wire.WriteVarBytes(b, 0, in.SignatureScript)
	_ = binary.Write(b, binary.LittleEndian, in.Sequence)
}

// sign returns the DER signature (low S, as trezor-crypto's ecdsa_sign_digest) and the
// compressed public key.
func (t *signer) sign(p hdpath.Path, hash []byte) ([]byte, []byte, error) {
	priv, err := t.d.wallet.PrivKey(p)
	if err != nil {
		return nil, nil, fail(pb.FailureType_Failure_Other, "Failed to derive private key")
	}
	return ecdsa.Sign(priv, hash).Serialize(), priv.PubKey().SerializeCompressed(), nil
}
