package trezoremu

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"slices"
	"strconv"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	pb "github.com/hwbridge/hwbridge/internal/trezorpb"
)

// Caps on counts the host declares. The firmware streams, so its limits are about time;
// ours also bound memory for the transaction being signed.
const (
	maxTxIO      = 10000   // inputs or outputs of the transaction being signed
	maxPrevTxIO  = 1 << 20 // inputs or outputs of a previous transaction
	maxScriptLen = 10000   // script_sig / script_pubkey of a previous transaction
	maxOpReturn  = 80
)

// signer is the state of one SignTx workflow (core firmware's Bitcoin signer, trezor.md §6.1).
type signer struct {
	s         *session
	w         *emulator.Wallet
	c         *coin
	version   uint32
	lockTime  uint32
	serialize bool
	nIn, nOut int

	inputs  []*pb.TxInputType
	inKind  []emulator.ScriptKind
	inMS    []*multisig // nil for single-key inputs
	inPub   []*btcec.PublicKey
	inPath  []hdpath.Path
	inPkScr [][]byte
	outputs []*pb.TxOutputType
	outTx   []*wire.TxOut
	change  []bool

	// buf holds the serialized bytes produced since the last TxRequest; sigIdx/sig the
	// signature to report on the next one.
	buf    bytes.Buffer
	sigIdx int
	sig    []byte
}

func (d *Device) signTx(ctx context.Context, s *session, m *pb.SignTx) (*pb.TxRequest, error) {
	c, err := coinByName(m.GetCoinName())
	if err != nil {
		return nil, err
	}
	if m.InputsCount == nil || m.OutputsCount == nil {
		return nil, dataError("Missing field: inputs_count and outputs_count are required")
	}
	nIn, nOut := int(m.GetInputsCount()), int(m.GetOutputsCount())
	if nIn < 1 || nIn > maxTxIO {
		return nil, dataError("Invalid number of inputs (1 to %d)", maxTxIO)
	}
	if nOut < 1 || nOut > maxTxIO {
		return nil, dataError("Invalid number of outputs (1 to %d)", maxTxIO)
	}
	if m.GetAmountUnit() != pb.AmountUnit_BITCOIN && m.GetAmountUnit() > pb.AmountUnit_SATOSHI {
		return nil, dataError("Invalid amount unit")
	}
	w, err := d.wallet(ctx, s)
	if err != nil {
		return nil, err
	}
	t := &signer{s: s, w: w, c: c, version: m.GetVersion(), lockTime: m.GetLockTime(), serialize: m.GetSerialize(), nIn: nIn, nOut: nOut, sigIdx: -1}
	return t.run(ctx)
}

func (t *signer) run(ctx context.Context) (*pb.TxRequest, error) {
	// 1: inputs.
	var totalIn uint64
	seen := make(map[wire.OutPoint]bool, t.nIn)
	for i := range t.nIn {
		in, err := t.input(ctx, i)
		if err != nil {
			return nil, err
		}
		if err := t.addInput(in); err != nil {
			return nil, err
		}
		op := outPoint(in)
		if seen[op] {
			return nil, dataError("Duplicate input")
		}
		seen[op] = true
		if totalIn+in.GetAmount() < totalIn {
			return nil, dataError("Amount overflow")
		}
		totalIn += in.GetAmount()
	}
	// 2: outputs, each external one confirmed.
	var totalOut, changeOut uint64
	for j := range t.nOut {
		out, err := t.output(ctx, j)
		if err != nil {
			return nil, err
		}
		isChange, err := t.addOutput(out)
		if err != nil {
			return nil, err
		}
		if totalOut+out.GetAmount() < totalOut {
			return nil, dataError("Amount overflow")
		}
		totalOut += out.GetAmount()
		if isChange {
			changeOut += out.GetAmount()
			continue
		}
		if err := t.s.confirm(ctx, pb.ButtonRequestType_ButtonRequest_ConfirmOutput, t.outputScreen(j)); err != nil {
			return nil, err
		}
	}
	if totalOut > totalIn {
		return nil, fail(pb.FailureType_Failure_NotEnoughFunds, "Not enough funds")
	}
	fee := totalIn - totalOut
	lines := []string{
		"Total amount: " + emulator.FormatCoins(totalIn-changeOut, t.c.shortcut),
		"Including fee: " + emulator.FormatCoins(fee, t.c.shortcut),
		"Coin: " + t.c.name,
	}
	if t.lockTime != 0 {
		lines = append(lines, "Locktime: "+strconv.FormatUint(uint64(t.lockTime), 10))
	}
	if err := t.s.confirm(ctx, pb.ButtonRequestType_ButtonRequest_SignTx, emulator.Screen{Title: "Confirm transaction", Lines: lines}); err != nil {
		return nil, err
	}

	// 3: previous transactions, unless every input is taproot.
	if slices.ContainsFunc(t.inKind, func(k emulator.ScriptKind) bool { return k != emulator.P2TR }) {
		for i := range t.nIn {
			if err := t.recheckInput(ctx, i); err != nil {
				return nil, err
			}
			if err := t.verifyPrevTx(ctx, i); err != nil {
				return nil, err
			}
		}
	}

	tx := t.msgTx()
	fetcher := txscript.NewMultiPrevOutFetcher(nil)
	for i, in := range tx.TxIn {
		fetcher.AddPrevOut(in.PreviousOutPoint, wire.NewTxOut(int64(t.inputs[i].GetAmount()), t.inPkScr[i]))
	}
	hashes := txscript.NewTxSigHashes(tx, fetcher)
	segwit := slices.ContainsFunc(t.inKind, func(k emulator.ScriptKind) bool { return k != emulator.P2PKH })

	// legacyOrder: the Trezor One's request order in stages 4 and 6 (legacy/firmware/signing.c),
	// pinned by device/trezor's transcripts for serialize=false.
	legacyOrder := t.s.d.persona.legacy

	// 4: serialize inputs; sign legacy ones (re-streaming the whole transaction each time).
	var scratch [8]byte
	binary.LittleEndian.PutUint32(scratch[:4], t.version)
	t.buf.Write(scratch[:4])
	if segwit {
		t.buf.Write([]byte{0x00, 0x01})
	}
	_ = wire.WriteVarInt(&t.buf, 0, uint64(t.nIn))
	for i := range t.nIn {
		var scriptSig []byte
		switch t.inKind[i] {
		case emulator.P2PKH:
			for k := range t.nIn {
				if err := t.recheckInput(ctx, k); err != nil {
					return nil, err
				}
			}
			for j := range t.nOut {
				if err := t.recheckOutput(ctx, j); err != nil {
					return nil, err
				}
			}
			// The script code is the spent script: p2pkh, or for p2sh multisig the
			// redeem script.
			code := t.inPkScr[i]
			if ms := t.inMS[i]; ms != nil {
				code = ms.script
			}
			h, err := txscript.CalcSignatureHash(code, txscript.SigHashAll, tx, i)
			if err != nil {
				return nil, fail(pb.FailureType_Failure_ProcessError, "Signing failed")
			}
			der, err := t.ecdsaSign(i, h)
			if err != nil {
				return nil, err
			}
			if ms := t.inMS[i]; ms != nil {
				if t.serialize {
					if scriptSig, err = ms.scriptSig(der); err != nil {
						return nil, err
					}
				}
			} else if scriptSig, err = txscript.NewScriptBuilder().AddData(append(der, byte(txscript.SigHashAll))).AddData(t.inPub[i].SerializeCompressed()).Script(); err != nil {
				return nil, fail(pb.FailureType_Failure_ProcessError, "Signing failed")
			}
			t.sigIdx, t.sig = i, der
		default:
			// The Trezor One without serialization asks nothing for a segwit input here
			// (recorded from legacy 1.13.1); core asks it once to serialize it.
			if !(legacyOrder && !t.serialize) {
				if err := t.recheckInput(ctx, i); err != nil {
					return nil, err
				}
			}
			switch {
			case t.inKind[i] == emulator.P2SHP2WPKH && t.inMS[i] != nil:
				scriptSig = appendPush(nil, t.inMS[i].witnessProgram()) // 22 0020<sha256(witness script)>
			case t.inKind[i] == emulator.P2SHP2WPKH:
				scriptSig = appendPush(nil, emulator.P2SHRedeemScript(t.inPub[i])) // 16 0014<hash160(key)>
			}
		}
		tx.TxIn[i].SignatureScript = scriptSig
		writeTxIn(&t.buf, tx.TxIn[i])
	}

	// 5: serialize outputs.
	if t.serialize {
		_ = wire.WriteVarInt(&t.buf, 0, uint64(t.nOut))
		for j := range t.nOut {
			if err := t.recheckOutput(ctx, j); err != nil {
				return nil, err
			}
			_ = wire.WriteTxOut(&t.buf, 0, 0, t.outTx[j])
		}
	}

	// 6: witnesses: BIP-143 for segwit v0, BIP-341 key path for taproot.
	if segwit {
		for i := range t.nIn {
			if t.inKind[i] == emulator.P2PKH {
				if legacyOrder && !t.serialize {
					// the Trezor One asks every input in this stage, a non-segwit one too
					if err := t.recheckInput(ctx, i); err != nil {
						return nil, err
					}
				}
				t.buf.WriteByte(0x00)
				continue
			}
			if err := t.recheckInput(ctx, i); err != nil {
				return nil, err
			}
			witness, sig, err := t.signWitness(tx, hashes, fetcher, i)
			if err != nil {
				return nil, err
			}
			t.sigIdx, t.sig = i, sig
			if !t.serialize {
				continue
			}
			if ms := t.inMS[i]; ms != nil {
				if witness, err = ms.witness(sig); err != nil {
					return nil, err
				}
			}
			_ = wire.WriteVarInt(&t.buf, 0, uint64(len(witness)))
			for _, item := range witness {
				_ = wire.WriteVarBytes(&t.buf, 0, item)
			}
		}
	}

	// 7: lock_time and TXFINISHED.
	binary.LittleEndian.PutUint32(scratch[:4], t.lockTime)
	t.buf.Write(scratch[:4])
	return t.request(pb.RequestType_TXFINISHED, nil, nil), nil
}

// writeTxIn serializes one input: outpoint, scriptSig, sequence.
func writeTxIn(b *bytes.Buffer, in *wire.TxIn) {
	var scratch [4]byte
	b.Write(in.PreviousOutPoint.Hash[:])
	binary.LittleEndian.PutUint32(scratch[:], in.PreviousOutPoint.Index)
	b.Write(scratch[:])
	_ = wire.WriteVarBytes(b, 0, in.SignatureScript)
	binary.LittleEndian.PutUint32(scratch[:], in.Sequence)
	b.Write(scratch[:])
}

func outPoint(in *pb.TxInputType) wire.OutPoint {
	var h chainhash.Hash
	copy(h[:], reversed(in.GetPrevHash()))
	return wire.OutPoint{Hash: h, Index: in.GetPrevIndex()}
}

func reversed(b []byte) []byte {
	r := slices.Clone(b)
	slices.Reverse(r)
	return r
}

func (t *signer) msgTx() *wire.MsgTx {
	tx := wire.NewMsgTx(int32(t.version))
	tx.LockTime = t.lockTime
	for _, in := range t.inputs {
		op := outPoint(in)
		ti := wire.NewTxIn(&op, nil, nil)
		ti.Sequence = in.GetSequence()
		tx.AddTxIn(ti)
	}
	for _, o := range t.outTx {
		tx.AddTxOut(o)
	}
	return tx
}

// request builds a TxRequest carrying what was serialized and signed since the last one.
// details is always present (trezorlib 0.12.4 reads it unconditionally); serialized too on
// core, only when not empty on the Trezor One (as recorded from its firmware).
func (t *signer) request(typ pb.RequestType, index *uint32, txHash []byte) *pb.TxRequest {
	req := &pb.TxRequest{RequestType: typ.Enum(), Details: &pb.TxRequestDetailsType{}, Serialized: &pb.TxRequestSerializedType{}}
	if index != nil {
		req.Details.RequestIndex = proto.Uint32(*index)
	}
	if txHash != nil {
		req.Details.TxHash = slices.Clone(txHash)
	}
	if t.serialize && t.buf.Len() > 0 {
		req.Serialized.SerializedTx = slices.Clone(t.buf.Bytes())
	}
	t.buf.Reset()
	if t.sigIdx >= 0 {
		req.Serialized.SignatureIndex = proto.Uint32(uint32(t.sigIdx))
		req.Serialized.Signature = t.sig
		t.sigIdx, t.sig = -1, nil
	}
	if t.s.d.persona.legacy && typ == pb.RequestType_TXFINISHED {
		req.Details = nil // legacy signing.c sends TXFINISHED without details
	}
	if t.s.d.persona.legacy && req.Serialized.SerializedTx == nil && req.Serialized.Signature == nil {
		req.Serialized = nil // legacy signing.c sets has_serialized only when it carries something
	}
	return req
}

// ask sends a TxRequest and returns the TransactionType of the TxAck (id 22), which is read
// by context: the caller knows which slot it asked for.
func (t *signer) ask(ctx context.Context, typ pb.RequestType, index *uint32, txHash []byte) (*pb.TransactionType, error) {
	ack, err := expect[*pb.TxAck](ctx, t.s, t.request(typ, index, txHash), pb.MessageType_MessageType_TxAck)
	if err != nil {
		return nil, err
	}
	if ack.Tx == nil {
		return nil, dataError("Missing field: tx")
	}
	return ack.Tx, nil
}

func u32(i int) *uint32 { v := uint32(i); return &v }

func (t *signer) input(ctx context.Context, i int) (*pb.TxInputType, error) {
	tx, err := t.ask(ctx, pb.RequestType_TXINPUT, u32(i), nil)
	if err != nil {
		return nil, err
	}
	if len(tx.Inputs) != 1 {
		return nil, dataError("Expected one input in TxAck")
	}
	return tx.Inputs[0], nil
}

func (t *signer) output(ctx context.Context, j int) (*pb.TxOutputType, error) {
	tx, err := t.ask(ctx, pb.RequestType_TXOUTPUT, u32(j), nil)
	if err != nil {
		return nil, err
	}
	if len(tx.Outputs) != 1 {
		return nil, dataError("Expected one output in TxAck")
	}
	return tx.Outputs[0], nil
}

var errChanged = dataError("Transaction has changed during signing")

func (t *signer) recheckInput(ctx context.Context, i int) error {
	in, err := t.input(ctx, i)
	if err != nil {
		return err
	}
	if !proto.Equal(in, t.inputs[i]) {
		return errChanged
	}
	return nil
}

func (t *signer) recheckOutput(ctx context.Context, j int) error {
	out, err := t.output(ctx, j)
	if err != nil {
		return err
	}
	if !proto.Equal(out, t.outputs[j]) {
		return errChanged
	}
	return nil
}

func (t *signer) addInput(in *pb.TxInputType) error {
	if len(in.GetPrevHash()) != 32 {
		return dataError("Invalid prev_hash")
	}
	if in.Amount == nil {
		return dataError("Missing amount field")
	}
	switch st := in.GetScriptType(); {
	case in.Multisig != nil && st != pb.InputScriptType_SPENDMULTISIG && st != pb.InputScriptType_SPENDP2SHWITNESS && st != pb.InputScriptType_SPENDWITNESS:
		return dataError("Multisig field provided but not expected.")
	case in.Multisig == nil && st == pb.InputScriptType_SPENDMULTISIG:
		return dataError("Multisig details required.")
	}
	if len(in.GetOrigHash()) > 0 {
		return dataError("Replacement transactions are unsupported by this emulator")
	}
	if len(in.GetScriptSig()) > 0 || len(in.GetWitness()) > 0 {
		return dataError("Input script_sig or witness must be empty")
	}
	if err := checkScriptType(in.GetScriptType()); err != nil {
		return err
	}
	if len(in.AddressN) == 0 {
		return dataError("Missing address_n field")
	}
	p, err := checkPath(in.AddressN)
	if err != nil {
		return err
	}
	d, err := scriptFor(t.w, p, in.GetScriptType(), in.Multisig)
	if err != nil {
		return err
	}
	t.inputs = append(t.inputs, in)
	t.inKind = append(t.inKind, d.kind)
	t.inMS = append(t.inMS, d.ms)
	t.inPub = append(t.inPub, d.pub)
	t.inPath = append(t.inPath, p)
	t.inPkScr = append(t.inPkScr, d.pkScript)
	return nil
}

// changeInputType maps a change output's script type onto the input script type whose
// script it pays to (the firmware's CHANGE_OUTPUT_TO_INPUT_SCRIPT_TYPES).
func changeInputType(t pb.OutputScriptType) (pb.InputScriptType, bool) {
	switch t {
	case pb.OutputScriptType_PAYTOADDRESS:
		return pb.InputScriptType_SPENDADDRESS, true
	case pb.OutputScriptType_PAYTOMULTISIG:
		return pb.InputScriptType_SPENDMULTISIG, true
	case pb.OutputScriptType_PAYTOP2SHWITNESS:
		return pb.InputScriptType_SPENDP2SHWITNESS, true
	case pb.OutputScriptType_PAYTOWITNESS:
		return pb.InputScriptType_SPENDWITNESS, true
	case pb.OutputScriptType_PAYTOTAPROOT:
		return pb.InputScriptType_SPENDTAPROOT, true
	}
	return 0, false
}

// Change-output limits of the firmware's tx_info: the change chain and the largest index.
const (
	changeChain    = 1
	maxChangeIndex = 1_000_000
)

// addOutput derives the output script and says whether the output is change: a
// single-key output by address_n with a script type and account that match one of the
// inputs; a multisig output as the firmware's tx_info.output_is_change decides it.
func (t *signer) addOutput(o *pb.TxOutputType) (change bool, err error) {
	switch st := o.GetScriptType(); {
	case o.Multisig != nil && st != pb.OutputScriptType_PAYTOMULTISIG && st != pb.OutputScriptType_PAYTOP2SHWITNESS && st != pb.OutputScriptType_PAYTOWITNESS:
		return false, dataError("Multisig field provided but not expected.")
	case o.Multisig == nil && st == pb.OutputScriptType_PAYTOMULTISIG:
		return false, dataError("Multisig details required.")
	}
	if o.Amount == nil {
		return false, dataError("Missing amount field")
	}
	if len(o.GetOrigHash()) > 0 {
		return false, dataError("Replacement transactions are unsupported by this emulator")
	}
	var script []byte
	switch {
	case o.GetScriptType() == pb.OutputScriptType_PAYTOOPRETURN:
		if o.GetAmount() != 0 {
			return false, dataError("OP_RETURN output with non-zero amount")
		}
		if o.Address != nil || len(o.AddressN) > 0 {
			return false, dataError("OP_RETURN output with address or address_n")
		}
		if len(o.GetOpReturnData()) > maxOpReturn {
			return false, dataError("OP_RETURN data too long")
		}
		script, err = txscript.NullDataScript(o.GetOpReturnData())
		if err != nil {
			return false, dataError("Invalid OP_RETURN data")
		}
	case len(o.AddressN) > 0:
		st, ok := changeInputType(o.GetScriptType())
		if !ok {
			return false, dataError("Invalid output script type")
		}
		p, err := checkPath(o.AddressN)
		if err != nil {
			return false, err
		}
		d, err := scriptFor(t.w, p, st, o.Multisig)
		if err != nil {
			return false, err
		}
		script = d.pkScript
		if d.ms != nil {
			change = t.multisigChange(o, st, d.ms, p)
			break
		}
		// Change only when every input has the output's script type and account path
		// (address_n[:-2]): core's MatchChecker (sign_tx/matchcheck.py) and legacy
		// signing.c both treat a transaction with mixed inputs as having no change.
		change = len(t.inKind) > 0 && len(p) >= 3 && p[len(p)-2] <= changeChain
		for i, k := range t.inKind {
			ip := t.inPath[i]
			if k != d.kind || len(ip) != len(p) || !slices.Equal(ip[:len(ip)-2], p[:len(p)-2]) {
				change = false
				break
			}
		}
	case o.Address != nil:
		if o.GetScriptType() != pb.OutputScriptType_PAYTOADDRESS && o.GetScriptType() != pb.OutputScriptType_PAYTOSCRIPTHASH {
			return false, dataError("Invalid output script type")
		}
		a, err := btcutil.DecodeAddress(o.GetAddress(), t.c.params)
		if err != nil || !a.IsForNet(t.c.params) {
			return false, dataError("Invalid address")
		}
		script, err = txscript.PayToAddrScript(a)
		if err != nil {
			return false, dataError("Invalid address")
		}
	default:
		return false, dataError("Missing address")
	}
	if o.GetAmount() > math.MaxInt64 {
		return false, dataError("Invalid amount")
	}
	t.outputs = append(t.outputs, o)
	t.outTx = append(t.outTx, wire.NewTxOut(int64(o.GetAmount()), script))
	t.change = append(t.change, change)
	return change, nil
}

// multisigChange says whether a multisig output of the device's key is change, as the
// firmware decides it: every input is multisig with the same fingerprint (same m, same
// cosigner nodes in the same order), of the same script type (SPENDMULTISIG counting as
// SPENDADDRESS), and from the same wallet (address_n but the last two steps); the output
// is on the receive or change chain at an index of at most 1,000,000, with a non-zero
// amount. A multisig output that fails this is an external output: shown, not refused.
func (t *signer) multisigChange(o *pb.TxOutputType, st pb.InputScriptType, ms *multisig, p hdpath.Path) bool {
	legacy := func(s pb.InputScriptType) pb.InputScriptType {
		if s == pb.InputScriptType_SPENDMULTISIG {
			return pb.InputScriptType_SPENDADDRESS
		}
		return s
	}
	if len(p) <= 2 || p[len(p)-2] > changeChain || p[len(p)-1] > maxChangeIndex || o.GetAmount() == 0 {
		return false
	}
	wallet := p[:len(p)-2]
	for i, in := range t.inputs {
		ims, ip := t.inMS[i], t.inPath[i]
		if ims == nil || ims.fp != ms.fp || legacy(in.GetScriptType()) != legacy(st) ||
			len(ip) <= 2 || !slices.Equal(ip[:len(ip)-2], wallet) {
			return false
		}
	}
	return true
}

func (t *signer) outputScreen(j int) emulator.Screen {
	o := t.outputs[j]
	if o.GetScriptType() == pb.OutputScriptType_PAYTOOPRETURN {
		return emulator.Screen{Title: "Confirm OP_RETURN", Lines: []string{hex.EncodeToString(o.GetOpReturnData())}}
	}
	addr := o.GetAddress()
	if len(o.AddressN) > 0 {
		if _, addrs, _, err := txscript.ExtractPkScriptAddrs(t.outTx[j].PkScript, t.c.params); err == nil && len(addrs) == 1 {
			addr = addrs[0].EncodeAddress()
		}
	}
	return emulator.Screen{Title: "Confirm output", Lines: []string{addr, emulator.FormatCoins(o.GetAmount(), t.c.shortcut)}}
}

// verifyPrevTx streams the previous transaction of input i and checks its txid, the
// amount and the scriptPubKey of the spent output.
func (t *signer) verifyPrevTx(ctx context.Context, i int) error {
	in := t.inputs[i]
	h := in.GetPrevHash()
	meta, err := t.ask(ctx, pb.RequestType_TXMETA, nil, h)
	if err != nil {
		return err
	}
	if meta.InputsCnt == nil || meta.OutputsCnt == nil {
		return dataError("Missing field: inputs_cnt and outputs_cnt are required")
	}
	nIn, nOut := meta.GetInputsCnt(), meta.GetOutputsCnt()
	if nIn > maxPrevTxIO || nOut > maxPrevTxIO {
		return dataError("Previous transaction too large")
	}
	if meta.GetExtraDataLen() > 0 {
		return dataError("Extra data is not allowed for %s", t.c.name)
	}
	if in.GetPrevIndex() >= nOut {
		return dataError("Not enough outputs in previous transaction")
	}
	hasher := sha256.New()
	var scratch [8]byte
	binary.LittleEndian.PutUint32(scratch[:4], meta.GetVersion())
	hasher.Write(scratch[:4])
	_ = wire.WriteVarInt(hasher, 0, uint64(nIn))
	for k := range nIn {
		tx, err := t.ask(ctx, pb.RequestType_TXINPUT, &k, h)
		if err != nil {
			return err
		}
		if len(tx.Inputs) != 1 {
			return dataError("Expected one previous input in TxAck")
		}
		pi := tx.Inputs[0]
		if len(pi.GetPrevHash()) != 32 {
			return dataError("Invalid prev_hash in previous transaction")
		}
		if len(pi.GetScriptSig()) > maxScriptLen {
			return dataError("Previous input script_sig too long")
		}
		hasher.Write(reversed(pi.GetPrevHash()))
		binary.LittleEndian.PutUint32(scratch[:4], pi.GetPrevIndex())
		hasher.Write(scratch[:4])
		_ = wire.WriteVarBytes(hasher, 0, pi.GetScriptSig())
		binary.LittleEndian.PutUint32(scratch[:4], pi.GetSequence())
		hasher.Write(scratch[:4])
	}
	_ = wire.WriteVarInt(hasher, 0, uint64(nOut))
	for k := range nOut {
		tx, err := t.ask(ctx, pb.RequestType_TXOUTPUT, &k, h)
		if err != nil {
			return err
		}
		if len(tx.BinOutputs) != 1 {
			return dataError("Expected one previous output in TxAck")
		}
		bo := tx.BinOutputs[0]
		if len(bo.GetScriptPubkey()) > maxScriptLen {
			return dataError("Previous output script_pubkey too long")
		}
		binary.LittleEndian.PutUint64(scratch[:], bo.GetAmount())
		hasher.Write(scratch[:])
		_ = wire.WriteVarBytes(hasher, 0, bo.GetScriptPubkey())
		if k == in.GetPrevIndex() {
			if bo.GetAmount() != in.GetAmount() {
				return dataError("Invalid amount specified")
			}
			if !bytes.Equal(bo.GetScriptPubkey(), t.inPkScr[i]) {
				return dataError("Input does not match scriptPubKey")
			}
		}
	}
	binary.LittleEndian.PutUint32(scratch[:4], meta.GetLockTime())
	hasher.Write(scratch[:4])
	first := hasher.Sum(nil)
	txid := sha256.Sum256(first)
	if !bytes.Equal(reversed(txid[:]), h) {
		return dataError("Encountered invalid prev_hash")
	}
	return nil
}

func (t *signer) ecdsaSign(i int, hash []byte) ([]byte, error) {
	priv, err := t.w.PrivKey(t.inPath[i])
	if err != nil {
		return nil, fail(pb.FailureType_Failure_ProcessError, "Key derivation failed")
	}
	return ecdsa.Sign(priv, hash).Serialize(), nil
}

// signWitness signs segwit input i: BIP-143 with SIGHASH_ALL for p2wpkh, p2sh-p2wpkh,
// p2wsh and p2sh-p2wsh multisig, BIP-341 key path with SIGHASH_DEFAULT (64-byte signature)
// for taproot. For multisig the caller builds the witness from the signature.
func (t *signer) signWitness(tx *wire.MsgTx, hashes *txscript.TxSigHashes, fetcher txscript.PrevOutputFetcher, i int) (wire.TxWitness, []byte, error) {
	amount := int64(t.inputs[i].GetAmount())
	switch t.inKind[i] {
	case emulator.P2TR:
		h, err := txscript.CalcTaprootSignatureHash(hashes, txscript.SigHashDefault, tx, i, fetcher)
		if err != nil {
			return nil, nil, fail(pb.FailureType_Failure_ProcessError, "Signing failed")
		}
		priv, err := t.w.PrivKey(t.inPath[i])
		if err != nil {
			return nil, nil, fail(pb.FailureType_Failure_ProcessError, "Key derivation failed")
		}
		sig, err := schnorr.Sign(txscript.TweakTaprootPrivKey(*priv, nil), h)
		if err != nil {
			return nil, nil, fail(pb.FailureType_Failure_ProcessError, "Signing failed")
		}
		raw := sig.Serialize()
		return wire.TxWitness{raw}, raw, nil
	default:
		// The script code: the witness script for multisig, the p2pkh script of the key
		// otherwise. btcd derives the latter from the p2wpkh program. Like the firmware
		// (write_bip143_script_code_prefixed tests the number of keys, not the multisig
		// field), a 1-of-1 multisig is signed with the p2pkh script code of its key.
		script := emulator.P2SHRedeemScript(t.inPub[i])
		if ms := t.inMS[i]; ms != nil && len(ms.pubs) > 1 {
			script = ms.script
		}
		h, err := txscript.CalcWitnessSigHash(script, hashes, txscript.SigHashAll, tx, i, amount)
		if err != nil {
			return nil, nil, fail(pb.FailureType_Failure_ProcessError, "Signing failed")
		}
		der, err := t.ecdsaSign(i, h)
		if err != nil {
			return nil, nil, err
		}
		return wire.TxWitness{append(slices.Clone(der), byte(txscript.SigHashAll)), t.inPub[i].SerializeCompressed()}, der, nil
	}
}
