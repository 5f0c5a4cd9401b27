package bitbox02

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/hwbridge/hwbridge/emulator"
	pb "github.com/hwbridge/hwbridge/internal/bitbox02pb"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// Transaction signing as bitbox02-firmware hww/api/bitcoin/signtx.rs runs it: the device
// asks for every input (pass 1) and, unless all inputs are taproot, each input's previous
// transaction, whose hash and spent amount it checks; then every output, confirming the
// recipients and at the last one the total and fee; then every input again (pass 2),
// answering each with its signature. Segwit v0 inputs that carry a host nonce commitment
// run anti-klepto (HOST_NONCE); taproot inputs refuse it. Responses to requests nested in
// BTCRequest (previous transactions, host nonce) are wrapped in BTCResponse.sign_next.

// Caps on what the host may declare.
const (
	maxTxInputs   = 1000
	maxTxOutputs  = 1000
	maxPrevInOut  = 10000
	maxScriptSize = 10000
)

type signer struct {
	w      *apiWorker
	nested bool // the request in hand came wrapped in BTCRequest
}

// step answers the request in hand with next and returns the host's next request.
func (s *signer) step(next *pb.BTCSignNextResponse) (*pb.Request, error) {
	var resp *pb.Response
	if s.nested {
		resp = &pb.Response{Response: &pb.Response_Btc{Btc: &pb.BTCResponse{Response: &pb.BTCResponse_SignNext{SignNext: next}}}}
	} else {
		resp = &pb.Response{Response: &pb.Response_BtcSignNext{BtcSignNext: next}}
	}
	req, err := s.w.next(resp)
	if err != nil {
		return nil, err
	}
	_, s.nested = req.Request.(*pb.Request_Btc)
	return req, nil
}

func (s *signer) input(next *pb.BTCSignNextResponse, idx uint32) (*pb.BTCSignInputRequest, error) {
	next.Type, next.Index = pb.BTCSignNextResponse_INPUT, idx
	req, err := s.step(next)
	if err != nil {
		return nil, err
	}
	in := req.GetBtcSignInput()
	if in == nil {
		return nil, errInvalidInput
	}
	return in, nil
}

func (s *signer) nestedStep(next *pb.BTCSignNextResponse) (*pb.BTCRequest, error) {
	req, err := s.step(next)
	if err != nil {
		return nil, err
	}
	b := req.GetBtc()
	if b == nil {
		return nil, errInvalidInput
	}
	return b, nil
}

// pass1Input is what pass 1 learnt about an input.
type pass1Input struct {
	req      *pb.BTCSignInputRequest
	pkScript []byte
	redeem   []byte // the script code source: p2sh-p2wpkh's redeem script, a multisig's witness script
	kind     emulator.ScriptKind
	ms       bool
}

// txConfig is one script config of a transaction: single-sig or a registered multisig.
type txConfig struct {
	account []uint32
	kind    emulator.ScriptKind
	purpose uint32
	coin    uint32
	ms      *msConfig
}

func (w *apiWorker) txConfig(c *pb.BTCScriptConfigWithKeypath, coin pb.BTCCoin, net *chaincfg.Params, coinType uint32) (txConfig, error) {
	switch sc := c.GetScriptConfig().GetConfig().(type) {
	case *pb.BTCScriptConfig_SimpleType_:
		purpose, kind, err := purposeOf(sc.SimpleType)
		if err != nil {
			return txConfig{}, err
		}
		if len(c.GetKeypath()) != 3 || !validAccount(c.GetKeypath(), purpose, coinType) {
			return txConfig{}, errInvalidInput
		}
		return txConfig{account: c.GetKeypath(), kind: kind, purpose: purpose, coin: coinType}, nil
	case *pb.BTCScriptConfig_Multisig_:
		ms, err := w.cn.d.multisigConfig(sc.Multisig, c.GetKeypath(), net, coinType)
		if err != nil {
			return txConfig{}, err
		}
		name, ok := w.cn.d.registeredName(ms.regKey(coin))
		if !ok {
			return txConfig{}, errInvalidInput // the account must be registered first
		}
		if err := w.ask("Spend from", strconv.Itoa(int(ms.threshold))+"-of-"+strconv.Itoa(len(ms.xpubs)), name); err != nil {
			return txConfig{}, err
		}
		return txConfig{account: c.GetKeypath(), ms: ms}, nil
	}
	return txConfig{}, errInvalidInput
}

// scripts returns the output script at keypath kp and the script code source for BIP-143
// (nil: the output script itself).
func (c txConfig) scripts(d *Device, kp []uint32) (pkScript, code []byte, err error) {
	if c.ms != nil {
		return c.ms.scripts(kp)
	}
	if !validAddressPath(kp, c.purpose, c.coin) || !slices.Equal(kp[:3], c.account) {
		return nil, nil, errInvalidInput
	}
	pub, err := d.wallet.PubKey(hdpath.Path(kp))
	if err != nil {
		return nil, nil, errGeneric
	}
	pk, err := emulator.PkScript(pub, c.kind)
	if err != nil {
		return nil, nil, errGeneric
	}
	if c.kind == emulator.P2SHP2WPKH {
		return pk, emulator.P2SHRedeemScript(pub), nil
	}
	return pk, nil, nil
}

func (w *apiWorker) signTx(init *pb.BTCSignInitRequest) (*pb.Response, error) {
	net, coinType, err := coinParams(init.GetCoin())
	if err != nil {
		return nil, err
	}
	if init.GetLocktime() >= 500000000 || (init.GetVersion() != 1 && init.GetVersion() != 2) ||
		init.GetNumInputs() < 1 || init.GetNumOutputs() < 1 ||
		init.GetNumInputs() > maxTxInputs || init.GetNumOutputs() > maxTxOutputs ||
		init.GetContainsSilentPaymentOutputs() || len(init.GetOutputScriptConfigs()) > 0 {
		return nil, errInvalidInput
	}
	var cfgs []txConfig
	for _, c := range init.GetScriptConfigs() {
		tc, err := w.txConfig(c, init.GetCoin(), net, coinType)
		if err != nil {
			return nil, err
		}
		cfgs = append(cfgs, tc)
	}
	if len(cfgs) == 0 {
		return nil, errInvalidInput
	}
	taprootOnly := !slices.ContainsFunc(cfgs, func(c txConfig) bool { return c.ms != nil || c.kind != emulator.P2TR })
	d := w.cn.d
	s := &signer{w: w}
	next := &pb.BTCSignNextResponse{}
	ins := make([]pass1Input, init.GetNumInputs())
	var inSum uint64
	locktimeApplies := false

	check := func(in *pb.BTCSignInputRequest) (txConfig, error) {
		i := int(in.GetScriptConfigIndex())
		if i >= len(cfgs) || len(in.GetPrevOutHash()) != 32 || in.GetSequence() < 0xfffffffd {
			return txConfig{}, errInvalidInput
		}
		return cfgs[i], nil
	}

	for i := range ins {
		in, err := s.input(next, uint32(i))
		if err != nil {
			return nil, err
		}
		*next = pb.BTCSignNextResponse{}
		c, err := check(in)
		if err != nil {
			return nil, err
		}
		if in.GetHostNonceCommitment() != nil {
			return nil, errInvalidInput // only in pass 2
		}
		pk, redeem, err := c.scripts(d, in.GetKeypath())
		if err != nil {
			return nil, err
		}
		if inSum+in.GetPrevOutValue() < inSum {
			return nil, errInvalidInput
		}
		inSum += in.GetPrevOutValue()
		if in.GetSequence() < 0xffffffff {
			locktimeApplies = true
		}
		ins[i] = pass1Input{req: in, pkScript: pk, redeem: redeem, kind: c.kind, ms: c.ms != nil}
		if !taprootOnly {
			if err := s.prevTx(next, uint32(i), in); err != nil {
				return nil, err
			}
		}
	}

	// Outputs: the recipients, then the total and fee.
	tx := wire.NewMsgTx(int32(init.GetVersion()))
	tx.LockTime = init.GetLocktime()
	prevOuts := txscript.NewMultiPrevOutFetcher(nil)
	for _, in := range ins {
		var h chainhash.Hash
		copy(h[:], in.req.GetPrevOutHash())
		op := wire.OutPoint{Hash: h, Index: in.req.GetPrevOutIndex()}
		tx.AddTxIn(&wire.TxIn{PreviousOutPoint: op, Sequence: in.req.GetSequence()})
		prevOuts.AddPrevOut(op, &wire.TxOut{Value: int64(in.req.GetPrevOutValue()), PkScript: in.pkScript})
	}
	var outSum, external uint64
	unit := coinUnit(init.GetCoin())
	for i := range init.GetNumOutputs() {
		next.Type, next.Index = pb.BTCSignNextResponse_OUTPUT, i
		req, err := s.step(next)
		if err != nil {
			return nil, err
		}
		*next = pb.BTCSignNextResponse{}
		out := req.GetBtcSignOutput()
		if out == nil {
			return nil, errInvalidInput
		}
		var pk []byte
		if out.GetOurs() {
			ci := int(out.GetScriptConfigIndex())
			if ci >= len(cfgs) {
				return nil, errInvalidInput
			}
			if pk, _, err = cfgs[ci].scripts(d, out.GetKeypath()); err != nil {
				return nil, err
			}
		} else {
			addr, script, err := outputScript(out.GetType(), out.GetPayload(), net)
			if err != nil {
				return nil, err
			}
			pk = script
			external += out.GetValue()
			if err := w.ask("Send to", addr, formatAmount(out.GetValue(), unit)); err != nil {
				return nil, err
			}
		}
		if outSum+out.GetValue() < outSum || out.GetValue() > 21e14 {
			return nil, errInvalidInput
		}
		outSum += out.GetValue()
		tx.AddTxOut(&wire.TxOut{Value: int64(out.GetValue()), PkScript: pk})
	}
	if outSum > inSum {
		return nil, errInvalidInput
	}
	fee := inSum - outSum
	if locktimeApplies && tx.LockTime > 0 {
		if err := w.ask("Locktime on block:", strconv.FormatUint(uint64(tx.LockTime), 10), "Transaction is not RBF"); err != nil {
			return nil, err
		}
	}
	if err := w.ask("Total", formatAmount(external+fee, unit), "Fee "+formatAmount(fee, unit)); err != nil {
		return nil, err
	}
	w.cn.show("Transaction confirmed")

	// Pass 2: sign.
	hashes := txscript.NewTxSigHashes(tx, prevOuts)
	for i := range ins {
		in, err := s.input(next, uint32(i))
		if err != nil {
			return nil, err
		}
		*next = pb.BTCSignNextResponse{}
		if _, err := check(in); err != nil {
			return nil, err
		}
		p1 := ins[i].req
		if !bytes.Equal(in.GetPrevOutHash(), p1.GetPrevOutHash()) || in.GetPrevOutIndex() != p1.GetPrevOutIndex() ||
			in.GetPrevOutValue() != p1.GetPrevOutValue() || in.GetSequence() != p1.GetSequence() ||
			!slices.Equal(in.GetKeypath(), p1.GetKeypath()) || in.GetScriptConfigIndex() != p1.GetScriptConfigIndex() {
			return nil, errInvalidInput
		}
		priv, err := d.wallet.PrivKey(hdpath.Path(in.GetKeypath()))
		if err != nil {
			return nil, errGeneric
		}
		next.HasSignature = true
		if !ins[i].ms && ins[i].kind == emulator.P2TR {
			if in.GetHostNonceCommitment() != nil {
				return nil, errInvalidInput // anti-klepto is not supported for Schnorr
			}
			h, err := txscript.CalcTaprootSignatureHash(hashes, txscript.SigHashDefault, tx, i, prevOuts)
			if err != nil {
				return nil, errGeneric
			}
			sig, err := schnorr.Sign(txscript.TweakTaprootPrivKey(*priv, nil), h)
			if err != nil {
				return nil, errGeneric
			}
			next.Signature = sig.Serialize()
			continue
		}
		script := ins[i].pkScript
		if ins[i].redeem != nil {
			script = ins[i].redeem
		}
		h, err := txscript.CalcWitnessSigHash(script, hashes, txscript.SigHashAll, tx, i, int64(in.GetPrevOutValue()))
		if err != nil {
			return nil, errGeneric
		}
		next.Signature, err = s.antiKlepto(next, uint32(i), priv, h, in.GetHostNonceCommitment())
		if err != nil {
			return nil, err
		}
		next.HasSignature = true
	}
	next.Type, next.Index = pb.BTCSignNextResponse_DONE, 0
	if s.nested {
		return &pb.Response{Response: &pb.Response_Btc{Btc: &pb.BTCResponse{Response: &pb.BTCResponse_SignNext{SignNext: next}}}}, nil
	}
	return &pb.Response{Response: &pb.Response_BtcSignNext{BtcSignNext: next}}, nil
}

// antiKlepto signs h for input idx: with the host's nonce after a HOST_NONCE step when the
// input carried a commitment, else with a zero host contribution (as the firmware does for
// old hosts).
func (s *signer) antiKlepto(next *pb.BTCSignNextResponse, idx uint32, priv *btcec.PrivateKey, h []byte, hc *pb.AntiKleptoHostNonceCommitment) ([]byte, error) {
	if hc == nil {
		zero := make([]byte, 32)
		c := tagged("s2c/ecdsa/data", zero)
		sig, _ := s2cSign(priv, h, c[:], zero)
		return sig, nil
	}
	com := hc.GetCommitment()
	if len(com) != 32 {
		return nil, errInvalidInput
	}
	*next = pb.BTCSignNextResponse{Type: pb.BTCSignNextResponse_HOST_NONCE, Index: idx,
		AntiKleptoSignerCommitment: &pb.AntiKleptoSignerCommitment{Commitment: s2cCommit(priv, h, com)}}
	req, err := s.nestedStep(next)
	if err != nil {
		return nil, err
	}
	*next = pb.BTCSignNextResponse{}
	nonce := req.GetAntikleptoSignature().GetHostNonce()
	if len(nonce) != 32 || !hostCommitmentOK(nonce, com) {
		return nil, errInvalidInput
	}
	sig, _ := s2cSign(priv, h, com, nonce)
	return sig, nil
}

// prevTx streams input idx's previous transaction and checks it against the input.
func (s *signer) prevTx(next *pb.BTCSignNextResponse, idx uint32, in *pb.BTCSignInputRequest) error {
	next.Type, next.Index = pb.BTCSignNextResponse_PREVTX_INIT, idx
	r, err := s.nestedStep(next)
	if err != nil {
		return err
	}
	*next = pb.BTCSignNextResponse{}
	pi := r.GetPrevtxInit()
	if pi == nil || pi.GetNumInputs() < 1 || pi.GetNumOutputs() < 1 || pi.GetNumInputs() > maxPrevInOut || pi.GetNumOutputs() > maxPrevInOut {
		return errInvalidInput
	}
	prev := wire.NewMsgTx(int32(pi.GetVersion()))
	prev.LockTime = pi.GetLocktime()
	for j := range pi.GetNumInputs() {
		next.Type, next.Index, next.PrevIndex = pb.BTCSignNextResponse_PREVTX_INPUT, idx, j
		r, err := s.nestedStep(next)
		if err != nil {
			return err
		}
		*next = pb.BTCSignNextResponse{}
		ti := r.GetPrevtxInput()
		if ti == nil || len(ti.GetPrevOutHash()) != 32 || len(ti.GetSignatureScript()) > maxScriptSize {
			return errInvalidInput
		}
		var h chainhash.Hash
		copy(h[:], ti.GetPrevOutHash())
		prev.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Hash: h, Index: ti.GetPrevOutIndex()}, SignatureScript: ti.GetSignatureScript(), Sequence: ti.GetSequence()})
	}
	for j := range pi.GetNumOutputs() {
		next.Type, next.Index, next.PrevIndex = pb.BTCSignNextResponse_PREVTX_OUTPUT, idx, j
		r, err := s.nestedStep(next)
		if err != nil {
			return err
		}
		*next = pb.BTCSignNextResponse{}
		to := r.GetPrevtxOutput()
		if to == nil || len(to.GetPubkeyScript()) > maxScriptSize || to.GetValue() > 21e14 {
			return errInvalidInput
		}
		prev.AddTxOut(&wire.TxOut{Value: int64(to.GetValue()), PkScript: to.GetPubkeyScript()})
	}
	h := prev.TxHash() // legacy serialisation, as the firmware hashes it
	if !bytes.Equal(h[:], in.GetPrevOutHash()) || int(in.GetPrevOutIndex()) >= len(prev.TxOut) ||
		uint64(prev.TxOut[in.GetPrevOutIndex()].Value) != in.GetPrevOutValue() {
		return errInvalidInput
	}
	return nil
}

// outputScript builds an external output's script and its address for the screen.
func outputScript(t pb.BTCOutputType, payload []byte, net *chaincfg.Params) (string, []byte, error) {
	var a btcutil.Address
	var err error
	switch t {
	case pb.BTCOutputType_P2PKH:
		a, err = btcutil.NewAddressPubKeyHash(payload, net)
	case pb.BTCOutputType_P2SH:
		a, err = btcutil.NewAddressScriptHashFromHash(payload, net)
	case pb.BTCOutputType_P2WPKH:
		a, err = btcutil.NewAddressWitnessPubKeyHash(payload, net)
	case pb.BTCOutputType_P2WSH:
		a, err = btcutil.NewAddressWitnessScriptHash(payload, net)
	case pb.BTCOutputType_P2TR:
		a, err = btcutil.NewAddressTaproot(payload, net)
	case pb.BTCOutputType_OP_RETURN:
		if len(payload) > 80 {
			return "", nil, errInvalidInput
		}
		script, err := txscript.NullDataScript(payload)
		if err != nil {
			return "", nil, errInvalidInput
		}
		return "OP_RETURN " + fmt.Sprintf("%x", payload), script, nil
	default:
		return "", nil, errInvalidInput
	}
	if err != nil {
		return "", nil, errInvalidInput
	}
	script, err := txscript.PayToAddrScript(a)
	if err != nil {
		return "", nil, errInvalidInput
	}
	return a.EncodeAddress(), script, nil
}

func coinUnit(c pb.BTCCoin) string {
	if c == pb.BTCCoin_BTC {
		return "BTC"
	}
	return "TBTC"
}

// formatAmount prints satoshis as the device does: the coin unit with up to 8 decimals,
// trailing zeros dropped. Integer arithmetic only.
func formatAmount(sat uint64, unit string) string {
	whole, frac := sat/1e8, sat%1e8
	s := strconv.FormatUint(whole, 10)
	if frac != 0 {
		f := fmt.Sprintf("%08d", frac)
		for f[len(f)-1] == '0' {
			f = f[:len(f)-1]
		}
		s += "." + f
	}
	return s + " " + unit
}

func (w *apiWorker) btcSignMessage(r *pb.BTCSignMessageRequest) (*pb.Response, error) {
	net, coinType, err := coinParams(r.GetCoin())
	if err != nil {
		return nil, err
	}
	st, ok := r.GetScriptConfig().GetScriptConfig().GetConfig().(*pb.BTCScriptConfig_SimpleType_)
	if !ok || st.SimpleType == pb.BTCScriptConfig_P2TR {
		return nil, errInvalidInput // the firmware signs messages for p2wpkh and p2wpkh-p2sh only
	}
	purpose, kind, err := purposeOf(st.SimpleType)
	if err != nil {
		return nil, err
	}
	kp := r.GetScriptConfig().GetKeypath()
	if !validAddressPath(kp, purpose, coinType) || len(r.GetMsg()) > 1024 {
		return nil, errInvalidInput
	}
	com := r.GetHostNonceCommitment().GetCommitment()
	if len(com) != 32 {
		return nil, errInvalidInput
	}
	addr, err := w.address(kp, kind, net)
	if err != nil {
		return nil, err
	}
	if err := w.ask("Sign message", addr, messageText(r.GetMsg())); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	_ = wire.WriteVarString(&buf, 0, "Bitcoin Signed Message:\n")
	_ = wire.WriteVarBytes(&buf, 0, r.GetMsg())
	h := chainhash.DoubleHashB(buf.Bytes())
	priv, err := w.cn.d.wallet.PrivKey(hdpath.Path(kp))
	if err != nil {
		return nil, errGeneric
	}
	req, err := w.next(&pb.Response{Response: &pb.Response_Btc{Btc: &pb.BTCResponse{Response: &pb.BTCResponse_AntikleptoSignerCommitment{
		AntikleptoSignerCommitment: &pb.AntiKleptoSignerCommitment{Commitment: s2cCommit(priv, h, com)},
	}}}})
	if err != nil {
		return nil, err
	}
	nonce := req.GetBtc().GetAntikleptoSignature().GetHostNonce()
	if len(nonce) != 32 || !hostCommitmentOK(nonce, com) {
		return nil, errInvalidInput
	}
	sig, recid := s2cSign(priv, h, com, nonce)
	return &pb.Response{Response: &pb.Response_Btc{Btc: &pb.BTCResponse{Response: &pb.BTCResponse_SignMessage{
		SignMessage: &pb.BTCSignMessageResponse{Signature: append(sig, recid)},
	}}}}, nil
}

// messageText is how the device shows a message: the text if it is printable ASCII, else
// its hex.
func messageText(m []byte) string {
	for _, c := range m {
		if c < 0x20 || c > 0x7e {
			return fmt.Sprintf("0x%x", m)
		}
	}
	return string(m)
}
