package bitbox02

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/device"
	pb "github.com/hwbridge/hwbridge/internal/bitbox02pb"
)

// Bitcoin signing on the BitBox02 (bitbox02-firmware hww/api/bitcoin/signtx.rs, bitbox-api-rs
// src/btc.rs). The device takes no PSBT: after BTCSignInitRequest it asks for each piece of
// the transaction in turn (BTCSignNextResponse.type): every input (pass 1), the previous
// transaction of each input unless all inputs are taproot (PREVTX_INIT/INPUT/OUTPUT), every
// output (the recipients and the total are confirmed there), then every input again
// (pass 2), answering each with its signature. Segwit v0 inputs in pass 2 run anti-klepto:
// the input carries the host nonce commitment, the device answers HOST_NONCE with its
// signer commitment, the host sends the nonce (BTCRequest.antiklepto_signature). Taproot
// inputs are signed with BIP-340 Schnorr and no anti-klepto (the firmware refuses it).

// SignMessage implements device.Device.
func (d *Driver) SignMessage(ctx context.Context, req device.MessageRequest) (device.MessageSignature, error) {
	switch req.Chain {
	case device.ChainETH:
		return d.ethMessage(ctx, req)
	case device.ChainBTC:
	default:
		return device.MessageSignature{}, fmt.Errorf("bitbox02: sign message: %w: chain %q", device.ErrInvalidInput, string(req.Chain))
	}
	st, err := simpleType(req.Script)
	if err != nil {
		return device.MessageSignature{}, err
	}
	var header byte
	switch st {
	case pb.BTCScriptConfig_P2WPKH:
		header = 39
	case pb.BTCScriptConfig_P2WPKH_P2SH:
		header = 35
	default:
		return device.MessageSignature{}, ErrTaprootMessage
	}
	nonce, com, err := newHostNonce()
	if err != nil {
		return device.MessageSignature{}, err
	}
	var out device.MessageSignature
	err = d.do(ctx, "sign message", func(c *channel) error {
		r, err := btcCall(ctx, c, "sign message", &pb.BTCRequest{Request: &pb.BTCRequest_SignMessage{SignMessage: &pb.BTCSignMessageRequest{
			Coin: coin(req.Network), Msg: req.Message,
			ScriptConfig:        &pb.BTCScriptConfigWithKeypath{ScriptConfig: simpleConfig(st), Keypath: req.Path},
			HostNonceCommitment: &pb.AntiKleptoHostNonceCommitment{Commitment: com},
		}}})
		if err != nil {
			return err
		}
		signer := r.GetAntikleptoSignerCommitment().GetCommitment()
		if signer == nil {
			return fmt.Errorf("%w: sign message: no anti-klepto signer commitment (%T)", device.ErrProtocol, r.GetResponse())
		}
		r, err = btcCall(ctx, c, "sign message", &pb.BTCRequest{Request: &pb.BTCRequest_AntikleptoSignature{
			AntikleptoSignature: &pb.AntiKleptoSignatureRequest{HostNonce: nonce},
		}})
		if err != nil {
			return err
		}
		sig := r.GetSignMessage().GetSignature()
		if len(sig) != 65 || sig[64] > 3 {
			return fmt.Errorf("%w: sign message: signature of %d bytes", device.ErrProtocol, len(sig))
		}
		if err := verifyAntiKlepto(nonce, signer, sig); err != nil {
			return err
		}
		out.Signature = append([]byte{header + sig[64]}, sig[:64]...)
		out.Address, err = d.btcAddress(ctx, c, req.Network, st, req.Path, false)
		return err
	})
	return out, err
}

func btcCall(ctx context.Context, c *channel, op string, req *pb.BTCRequest) (*pb.BTCResponse, error) {
	r, err := c.call(ctx, op, &pb.Request{Request: &pb.Request_Btc{Btc: req}})
	if err != nil {
		return nil, err
	}
	b := r.GetBtc()
	if b == nil {
		return nil, unexpected(op, r)
	}
	return b, nil
}

// signInput is one PSBT input as the device sees it.
type signInput struct {
	req     *pb.BTCSignInputRequest
	prevTx  *wire.MsgTx // nil for taproot-only transactions
	taproot bool
	pubKey  []byte // the key that signs (33-byte compressed for segwit v0)
}

// plan is a PSBT converted into the device's signing steps.
type plan struct {
	init    *pb.BTCSignInitRequest
	inputs  []signInput
	outputs []*pb.BTCSignOutputRequest
}

// scriptConfigs collects the distinct (script type, account) pairs of a transaction.
type scriptConfigs []*pb.BTCScriptConfigWithKeypath

func (s *scriptConfigs) index(st pb.BTCScriptConfig_SimpleType, account []uint32) uint32 {
	return s.indexOf(&pb.BTCScriptConfigWithKeypath{ScriptConfig: simpleConfig(st), Keypath: slices.Clone(account)})
}

func (s *scriptConfigs) indexOf(cfg *pb.BTCScriptConfigWithKeypath) uint32 {
	for i, c := range *s {
		if proto.Equal(c, cfg) {
			return uint32(i)
		}
	}
	*s = append(*s, cfg)
	return uint32(len(*s) - 1)
}

// ourKey finds the device's key among a PSBT input's or output's derivations and the
// single-sig script type the pkScript pays to.
func ourKey(fp device.Fingerprint, pkScript, redeem []byte, derivs []*psbt.Bip32Derivation, tr []*psbt.TaprootBip32Derivation) (st pb.BTCScriptConfig_SimpleType, path []uint32, pub []byte, ok bool) {
	switch {
	case txscript.IsPayToTaproot(pkScript):
		for _, t := range tr {
			if device.FingerprintFromPSBT(t.MasterKeyFingerprint) == fp && len(t.LeafHashes) == 0 {
				return pb.BTCScriptConfig_P2TR, t.Bip32Path, t.XOnlyPubKey, true
			}
		}
	case txscript.IsPayToWitnessPubKeyHash(pkScript):
		st = pb.BTCScriptConfig_P2WPKH
	case txscript.IsPayToScriptHash(pkScript) && txscript.IsPayToWitnessPubKeyHash(redeem):
		st = pb.BTCScriptConfig_P2WPKH_P2SH
	default:
		return 0, nil, nil, false
	}
	for _, dv := range derivs {
		if device.FingerprintFromPSBT(dv.MasterKeyFingerprint) == fp {
			return st, dv.Bip32Path, dv.PubKey, true
		}
	}
	return 0, nil, nil, false
}

// accountOf is the account part (purpose'/coin'/account') of a single-sig keypath.
func accountOf(path []uint32) ([]uint32, error) {
	if len(path) != 5 {
		return nil, fmt.Errorf("%w: keypath %v is not purpose'/coin'/account'/change/index", device.ErrInvalidInput, path)
	}
	return path[:3], nil
}

// externalOutput maps a pkScript onto the device's output type and payload.
func externalOutput(pkScript []byte) (pb.BTCOutputType, []byte, error) {
	class, _, _, err := txscript.ExtractPkScriptAddrs(pkScript, &chaincfg.MainNetParams)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: output script: %w", device.ErrInvalidInput, err)
	}
	switch class {
	case txscript.PubKeyHashTy:
		return pb.BTCOutputType_P2PKH, pkScript[3:23], nil
	case txscript.ScriptHashTy:
		return pb.BTCOutputType_P2SH, pkScript[2:22], nil
	case txscript.WitnessV0PubKeyHashTy:
		return pb.BTCOutputType_P2WPKH, pkScript[2:22], nil
	case txscript.WitnessV0ScriptHashTy:
		return pb.BTCOutputType_P2WSH, pkScript[2:34], nil
	case txscript.WitnessV1TaprootTy:
		return pb.BTCOutputType_P2TR, pkScript[2:34], nil
	case txscript.NullDataTy:
		pushes, err := txscript.PushedData(pkScript)
		if err != nil || len(pushes) != 1 {
			return 0, nil, fmt.Errorf("%w: op_return output must push exactly one item", device.ErrInvalidInput)
		}
		return pb.BTCOutputType_OP_RETURN, pushes[0], nil
	}
	return 0, nil, fmt.Errorf("%w: output script %x is not a standard address type", device.ErrInvalidInput, pkScript)
}

// newPlan converts p into signing steps for the device whose master fingerprint is fp.
func newPlan(p *psbt.Packet, net *chaincfg.Params, fp device.Fingerprint) (*plan, error) {
	tx := p.UnsignedTx
	if len(tx.TxIn) == 0 || len(tx.TxOut) == 0 || len(p.Inputs) != len(tx.TxIn) || len(p.Outputs) != len(tx.TxOut) {
		return nil, fmt.Errorf("%w: psbt has no inputs or outputs, or its maps do not match the transaction", device.ErrInvalidInput)
	}
	var cfgs scriptConfigs
	pl := &plan{}
	xpubs := globalXPubs(p)
	allTaproot := true
	for i, in := range p.Inputs {
		var spent *wire.TxOut
		op := tx.TxIn[i].PreviousOutPoint
		switch {
		case in.WitnessUtxo != nil:
			spent = in.WitnessUtxo
		case in.NonWitnessUtxo != nil && int(op.Index) < len(in.NonWitnessUtxo.TxOut):
			spent = in.NonWitnessUtxo.TxOut[op.Index]
		default:
			return nil, fmt.Errorf("input %d: %w: no utxo", i, device.ErrInvalidInput)
		}
		if in.NonWitnessUtxo != nil && in.NonWitnessUtxo.TxHash() != op.Hash {
			return nil, fmt.Errorf("input %d: %w: non_witness_utxo is not the spent transaction", i, device.ErrInvalidInput)
		}
		st, path, pub, ok := ourKey(fp, spent.PkScript, in.RedeemScript, in.Bip32Derivation, in.TaprootBip32Derivation)
		if !ok {
			if cfg, path, pub, ok := ourMultisig(fp, spent.PkScript, in.RedeemScript, in.WitnessScript, in.Bip32Derivation, xpubs, net); ok {
				if sh := in.SighashType; sh != 0 && sh != txscript.SigHashAll {
					return nil, fmt.Errorf("input %d: %w (sighash 0x%02x)", i, ErrSighash, uint32(sh))
				}
				allTaproot = false
				pl.inputs = append(pl.inputs, signInput{
					req: &pb.BTCSignInputRequest{
						PrevOutHash: op.Hash[:], PrevOutIndex: op.Index, PrevOutValue: uint64(spent.Value),
						Sequence: tx.TxIn[i].Sequence, Keypath: path, ScriptConfigIndex: cfgs.indexOf(cfg),
					},
					prevTx: in.NonWitnessUtxo, pubKey: pub,
				})
				continue
			}
			if txscript.IsPayToPubKeyHash(spent.PkScript) {
				return nil, fmt.Errorf("input %d: %w", i, ErrNoPKH)
			}
			return nil, fmt.Errorf("input %d: %w", i, ErrForeignInput)
		}
		taproot := st == pb.BTCScriptConfig_P2TR
		if sh := in.SighashType; sh != 0 && sh != txscript.SigHashAll || taproot && sh == txscript.SigHashAll {
			if !(taproot && sh == txscript.SigHashDefault) {
				return nil, fmt.Errorf("input %d: %w (sighash 0x%02x)", i, ErrSighash, uint32(sh))
			}
		}
		allTaproot = allTaproot && taproot
		account, err := accountOf(path)
		if err != nil {
			return nil, fmt.Errorf("input %d: %w", i, err)
		}
		if spent.Value < 0 {
			return nil, fmt.Errorf("input %d: %w: negative amount", i, device.ErrInvalidInput)
		}
		pl.inputs = append(pl.inputs, signInput{
			req: &pb.BTCSignInputRequest{
				PrevOutHash: op.Hash[:], PrevOutIndex: op.Index, PrevOutValue: uint64(spent.Value),
				Sequence: tx.TxIn[i].Sequence, Keypath: path, ScriptConfigIndex: cfgs.index(st, account),
			},
			prevTx: in.NonWitnessUtxo, taproot: taproot, pubKey: pub,
		})
	}
	if !allTaproot {
		for i, in := range pl.inputs {
			if in.prevTx == nil {
				return nil, fmt.Errorf("input %d: %w", i, ErrNeedPrevTx)
			}
		}
	}
	for i, out := range p.Outputs {
		txo := tx.TxOut[i]
		if txo.Value < 0 {
			return nil, fmt.Errorf("output %d: %w: negative amount", i, device.ErrInvalidInput)
		}
		if cfg, path, _, ok := ourMultisig(fp, txo.PkScript, out.RedeemScript, out.WitnessScript, out.Bip32Derivation, xpubs, net); ok &&
			slices.ContainsFunc(cfgs, func(c *pb.BTCScriptConfigWithKeypath) bool { return proto.Equal(c, cfg) }) {
			pl.outputs = append(pl.outputs, &pb.BTCSignOutputRequest{Ours: true, Value: uint64(txo.Value), Keypath: path, ScriptConfigIndex: cfgs.indexOf(cfg)})
			continue
		}
		if st, path, _, ok := ourKey(fp, txo.PkScript, out.RedeemScript, out.Bip32Derivation, out.TaprootBip32Derivation); ok {
			if account, err := accountOf(path); err == nil {
				pl.outputs = append(pl.outputs, &pb.BTCSignOutputRequest{
					Ours: true, Value: uint64(txo.Value), Keypath: path, ScriptConfigIndex: cfgs.index(st, account),
				})
				continue
			}
		}
		typ, payload, err := externalOutput(txo.PkScript)
		if err != nil {
			return nil, fmt.Errorf("output %d: %w", i, err)
		}
		pl.outputs = append(pl.outputs, &pb.BTCSignOutputRequest{Type: typ, Value: uint64(txo.Value), Payload: payload})
	}
	if tx.LockTime >= 500000000 {
		return nil, fmt.Errorf("%w: time-based locktime %d is not supported by the device", device.ErrInvalidInput, tx.LockTime)
	}
	pl.init = &pb.BTCSignInitRequest{
		Coin: coin(net), ScriptConfigs: cfgs, Version: uint32(tx.Version),
		NumInputs: uint32(len(tx.TxIn)), NumOutputs: uint32(len(tx.TxOut)), Locktime: tx.LockTime,
	}
	return pl, nil
}

// SignPSBT implements device.Device.
func (d *Driver) SignPSBT(ctx context.Context, p *psbt.Packet, net *chaincfg.Params) error {
	if p == nil || p.UnsignedTx == nil {
		return fmt.Errorf("bitbox02: sign psbt: %w: no transaction", device.ErrInvalidInput)
	}
	return d.do(ctx, "sign psbt", func(c *channel) error {
		fp, err := d.fingerprint(ctx, c)
		if err != nil {
			return err
		}
		pl, err := newPlan(p, net, fp)
		if err != nil {
			return err
		}
		if err := d.registerMultisig(ctx, c, pl); err != nil {
			return err
		}
		sigs, err := runSign(func(req *pb.Request) (*pb.Response, error) { return c.call(ctx, "sign psbt", req) }, pl)
		if err != nil {
			return err
		}
		for i, in := range pl.inputs {
			if in.taproot {
				if len(sigs[i]) != 64 {
					return fmt.Errorf("%w: input %d: schnorr signature of %d bytes", device.ErrProtocol, i, len(sigs[i]))
				}
				p.Inputs[i].TaprootKeySpendSig = sigs[i]
				continue
			}
			der, err := derSig(sigs[i])
			if err != nil {
				return fmt.Errorf("input %d: %w", i, err)
			}
			ps := &psbt.PartialSig{PubKey: in.pubKey, Signature: append(der, byte(txscript.SigHashAll))}
			if !slices.ContainsFunc(p.Inputs[i].PartialSigs, func(o *psbt.PartialSig) bool { return bytes.Equal(o.PubKey, ps.PubKey) }) {
				p.Inputs[i].PartialSigs = append(p.Inputs[i].PartialSigs, ps)
			}
		}
		return nil
	})
}

// derSig turns a 64-byte r‖s into DER.
func derSig(rs []byte) ([]byte, error) {
	if len(rs) != 64 {
		return nil, fmt.Errorf("%w: ecdsa signature of %d bytes", device.ErrProtocol, len(rs))
	}
	var r, s btcec.ModNScalar
	if r.SetByteSlice(rs[:32]) || s.SetByteSlice(rs[32:]) {
		return nil, fmt.Errorf("%w: ecdsa signature out of range", device.ErrBadSignature)
	}
	return ecdsa.NewSignature(&r, &s).Serialize(), nil
}

// next is the step the device asks for; nested replies (to BTCRequest) come wrapped in
// BTCResponse.sign_next, top-level ones in Response.btc_sign_next.
func signNext(r *pb.Response, op string) (*pb.BTCSignNextResponse, error) {
	if n := r.GetBtcSignNext(); n != nil {
		return n, nil
	}
	if n := r.GetBtc().GetSignNext(); n != nil {
		return n, nil
	}
	return nil, unexpected(op, r)
}

// maxSteps bounds the exchange: a device that keeps asking is not signing.
func maxSteps(pl *plan) int {
	n := 8 + 3*len(pl.inputs) + 2*len(pl.outputs)
	for _, in := range pl.inputs {
		if in.prevTx != nil {
			n += 1 + len(in.prevTx.TxIn) + len(in.prevTx.TxOut)
		}
	}
	return n
}

// runSign streams the plan to the device (exchange sends one request and returns the
// response) and returns one signature per input. Everything the device answers is checked
// before use (FuzzSignSteps plays a device answering anything).
func runSign(exchange func(*pb.Request) (*pb.Response, error), pl *plan) ([][]byte, error) {
	const op = "sign psbt"
	call := func(req *pb.Request) (*pb.BTCSignNextResponse, error) {
		r, err := exchange(req)
		if err != nil {
			return nil, err
		}
		return signNext(r, op)
	}
	nested := func(req *pb.BTCRequest) (*pb.BTCSignNextResponse, error) {
		return call(&pb.Request{Request: &pb.Request_Btc{Btc: req}})
	}
	sigs := make([][]byte, len(pl.inputs))
	next, err := call(&pb.Request{Request: &pb.Request_BtcSignInit{BtcSignInit: pl.init}})
	if err != nil {
		return nil, err
	}
	pass2 := false
	for step := 0; ; step++ {
		if step > maxSteps(pl) {
			return nil, fmt.Errorf("%w: the device asked for more than %d signing steps", device.ErrProtocol, maxSteps(pl))
		}
		idx := int(next.GetIndex())
		var in *signInput
		if next.GetType() != pb.BTCSignNextResponse_OUTPUT && next.GetType() != pb.BTCSignNextResponse_DONE {
			if idx >= len(pl.inputs) {
				return nil, fmt.Errorf("%w: the device asked for input %d of %d", device.ErrProtocol, idx, len(pl.inputs))
			}
			in = &pl.inputs[idx]
		}
		switch next.GetType() {
		case pb.BTCSignNextResponse_INPUT:
			req := cloneInput(in.req)
			var nonce []byte
			if pass2 && !in.taproot {
				var com []byte
				if nonce, com, err = newHostNonce(); err != nil {
					return nil, err
				}
				req.HostNonceCommitment = &pb.AntiKleptoHostNonceCommitment{Commitment: com}
			}
			next, err = call(&pb.Request{Request: &pb.Request_BtcSignInput{BtcSignInput: req}})
			if err != nil {
				return nil, err
			}
			if nonce != nil {
				if next.GetType() != pb.BTCSignNextResponse_HOST_NONCE {
					return nil, fmt.Errorf("%w: input %d: the device skipped anti-klepto (asked for %v)", device.ErrProtocol, idx, next.GetType())
				}
				signer := next.GetAntiKleptoSignerCommitment().GetCommitment()
				if signer == nil {
					return nil, fmt.Errorf("%w: input %d: no anti-klepto signer commitment", device.ErrProtocol, idx)
				}
				next, err = nested(&pb.BTCRequest{Request: &pb.BTCRequest_AntikleptoSignature{AntikleptoSignature: &pb.AntiKleptoSignatureRequest{HostNonce: nonce}}})
				if err != nil {
					return nil, err
				}
				if !next.GetHasSignature() {
					return nil, fmt.Errorf("%w: input %d: no signature after the host nonce", device.ErrProtocol, idx)
				}
				if err := verifyAntiKlepto(nonce, signer, next.GetSignature()); err != nil {
					return nil, fmt.Errorf("input %d: %w", idx, err)
				}
			}
			if pass2 {
				if !next.GetHasSignature() {
					return nil, fmt.Errorf("%w: input %d: no signature in pass 2", device.ErrProtocol, idx)
				}
				sigs[idx] = next.GetSignature()
			}
			if idx == len(pl.inputs)-1 {
				pass2 = true
			}
		case pb.BTCSignNextResponse_PREVTX_INIT:
			if in.prevTx == nil {
				return nil, fmt.Errorf("input %d: %w", idx, ErrNeedPrevTx)
			}
			t := in.prevTx
			next, err = nested(&pb.BTCRequest{Request: &pb.BTCRequest_PrevtxInit{PrevtxInit: &pb.BTCPrevTxInitRequest{
				Version: uint32(t.Version), NumInputs: uint32(len(t.TxIn)), NumOutputs: uint32(len(t.TxOut)), Locktime: t.LockTime,
			}}})
		case pb.BTCSignNextResponse_PREVTX_INPUT:
			pi := int(next.GetPrevIndex())
			if in.prevTx == nil || pi >= len(in.prevTx.TxIn) {
				return nil, fmt.Errorf("%w: the device asked for previous input %d of input %d", device.ErrProtocol, pi, idx)
			}
			ti := in.prevTx.TxIn[pi]
			next, err = nested(&pb.BTCRequest{Request: &pb.BTCRequest_PrevtxInput{PrevtxInput: &pb.BTCPrevTxInputRequest{
				PrevOutHash: ti.PreviousOutPoint.Hash[:], PrevOutIndex: ti.PreviousOutPoint.Index,
				SignatureScript: ti.SignatureScript, Sequence: ti.Sequence,
			}}})
		case pb.BTCSignNextResponse_PREVTX_OUTPUT:
			pi := int(next.GetPrevIndex())
			if in.prevTx == nil || pi >= len(in.prevTx.TxOut) {
				return nil, fmt.Errorf("%w: the device asked for previous output %d of input %d", device.ErrProtocol, pi, idx)
			}
			to := in.prevTx.TxOut[pi]
			next, err = nested(&pb.BTCRequest{Request: &pb.BTCRequest_PrevtxOutput{PrevtxOutput: &pb.BTCPrevTxOutputRequest{
				Value: uint64(to.Value), PubkeyScript: to.PkScript,
			}}})
		case pb.BTCSignNextResponse_OUTPUT:
			if idx >= len(pl.outputs) {
				return nil, fmt.Errorf("%w: the device asked for output %d of %d", device.ErrProtocol, idx, len(pl.outputs))
			}
			next, err = call(&pb.Request{Request: &pb.Request_BtcSignOutput{BtcSignOutput: pl.outputs[idx]}})
		case pb.BTCSignNextResponse_DONE:
			for i, s := range sigs {
				if s == nil {
					return nil, fmt.Errorf("%w: done without a signature for input %d", device.ErrProtocol, i)
				}
			}
			return sigs, nil
		default:
			return nil, fmt.Errorf("%w: unexpected signing step %v", device.ErrProtocol, next.GetType())
		}
		if err != nil {
			return nil, err
		}
	}
}

func cloneInput(r *pb.BTCSignInputRequest) *pb.BTCSignInputRequest {
	return &pb.BTCSignInputRequest{
		PrevOutHash: r.PrevOutHash, PrevOutIndex: r.PrevOutIndex, PrevOutValue: r.PrevOutValue,
		Sequence: r.Sequence, Keypath: r.Keypath, ScriptConfigIndex: r.ScriptConfigIndex,
	}
}
