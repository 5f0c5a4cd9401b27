package trezor

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/internal/btcwire"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/internal/trezorpb"
	hwpsbt "github.com/hwbridge/hwbridge/psbt"
)

// PSBT signing: the BIP-174 packet is mapped onto the SignTx/TxRequest/TxAck streaming flow
// the way HWI does it (trezor.md §6.2), with serialize=false so that only signatures come
// back. The host always answers with the legacy TxAck{tx: TransactionType}.

const (
	// maxMultisigKeys is the largest multisig the firmware signs (and HWI parses).
	maxMultisigKeys = 15
)

// ownKey is a key of this device found in an input's derivations.
type ownKey struct {
	pub  []byte // compressed, or x-only for taproot
	path hdpath.Path
}

// signInput is one PSBT input prepared for the device.
type signInput struct {
	tx      *trezorpb.TxInputType // sent as is, with address_n set per pass
	taproot bool
	keys    []ownKey // keys still to sign for; never empty for inputs we sign
	fill    ownKey   // a key to name when keys are all used up (signature discarded)
}

// signPlan is everything the TxRequest loop needs.
type signPlan struct {
	coin    string
	version uint32
	lock    uint32
	inputs  []signInput
	outputs []*trezorpb.TxOutputType
	prev    map[chainhash.Hash]*wire.MsgTx
}

// SignPSBT signs every input of p with this device's keys (matched through the master
// fingerprint) and adds the signatures: ECDSA sig‖SIGHASH_ALL to PartialSigs, 64-byte
// BIP-340 signatures to TaprootKeySpendSig. Inputs without a key of this device are refused:
// current firmware signs only transactions whose inputs are all its own.
func (d *Driver) SignPSBT(ctx context.Context, p *psbt.Packet, net *chaincfg.Params) error {
	if p == nil || p.UnsignedTx == nil {
		return fmt.Errorf("trezor: sign psbt: %w: empty psbt", device.ErrInvalidInput)
	}
	net = btcwire.NetOrMain(net)
	coin, err := coinName(net)
	if err != nil {
		return fmt.Errorf("trezor: sign psbt: %w", err)
	}
	return d.do(ctx, "sign psbt", func(s *session) error {
		fp, err := s.fingerprint()
		if err != nil {
			return err
		}
		plan, err := planPSBT(p, net, coin, fp, s.caps())
		if err != nil {
			return err
		}
		passes := 0
		for _, in := range plan.inputs {
			passes = max(passes, len(in.keys))
		}
		for pass := 0; pass < passes; pass++ {
			used := make([]*ownKey, len(plan.inputs)) // the key whose signature we keep
			for i := range plan.inputs {
				in := &plan.inputs[i]
				k := in.fill
				if pass < len(in.keys) {
					k = in.keys[pass]
					used[i] = &in.keys[pass]
				}
				in.tx.AddressN = k.path
			}
			sigs, err := s.streamSignTx(plan)
			if err != nil {
				return err
			}
			for i, k := range used {
				if k == nil {
					continue
				}
				if plan.inputs[i].taproot {
					if len(sigs[i]) != schnorr.SignatureSize {
						return fmt.Errorf("%w: taproot signature of %d bytes for input %d", device.ErrProtocol, len(sigs[i]), i)
					}
					p.Inputs[i].TaprootKeySpendSig = sigs[i]
					continue
				}
				sig := append(append([]byte{}, sigs[i]...), byte(txscript.SigHashAll))
				p.Inputs[i].PartialSigs = append(p.Inputs[i].PartialSigs, &psbt.PartialSig{PubKey: k.pub, Signature: sig})
			}
		}
		return nil
	})
}

// streamSignTx runs one SignTx workflow and returns the signature for every input.
func (s *session) streamSignTx(plan *signPlan) ([][]byte, error) {
	sigs := make([][]byte, len(plan.inputs))
	var req proto.Message = &trezorpb.SignTx{
		OutputsCount: proto.Uint32(uint32(len(plan.outputs))),
		InputsCount:  proto.Uint32(uint32(len(plan.inputs))),
		CoinName:     proto.String(plan.coin),
		Version:      proto.Uint32(plan.version),
		LockTime:     proto.Uint32(plan.lock),
		Serialize:    proto.Bool(false),
	}
	for {
		r, err := expect[*trezorpb.TxRequest](s, req)
		if err != nil {
			return nil, err
		}
		if ser := r.GetSerialized(); ser != nil && ser.SignatureIndex != nil {
			i := int(ser.GetSignatureIndex())
			if i >= len(sigs) || len(ser.GetSignature()) == 0 {
				return nil, fmt.Errorf("%w: signature for input %d of %d", device.ErrProtocol, i, len(sigs))
			}
			if sigs[i] != nil {
				return nil, fmt.Errorf("%w: second signature for input %d", device.ErrProtocol, i)
			}
			sigs[i] = ser.GetSignature()
		}
		if r.GetRequestType() == trezorpb.RequestType_TXFINISHED {
			break
		}
		tx, err := plan.answer(r)
		if err != nil {
			return nil, err
		}
		req = &trezorpb.TxAck{Tx: tx}
	}
	for i, sig := range sigs {
		if sig == nil {
			return nil, fmt.Errorf("%w: the device finished without signing input %d", device.ErrProtocol, i)
		}
	}
	return sigs, nil
}

// answer builds the TransactionType for one TxRequest (trezor.md §6.1 "what trezorlib does
// with each request").
func (plan *signPlan) answer(r *trezorpb.TxRequest) (*trezorpb.TransactionType, error) {
	det := r.GetDetails()
	idx := int(det.GetRequestIndex())
	if h := det.GetTxHash(); len(h) > 0 {
		prev, err := btcwire.PrevTx(plan.prev, h)
		if err != nil {
			return nil, err
		}
		switch r.GetRequestType() {
		case trezorpb.RequestType_TXMETA:
			return &trezorpb.TransactionType{
				Version:      proto.Uint32(uint32(prev.Version)),
				LockTime:     proto.Uint32(prev.LockTime),
				InputsCnt:    proto.Uint32(uint32(len(prev.TxIn))),
				OutputsCnt:   proto.Uint32(uint32(len(prev.TxOut))),
				ExtraDataLen: proto.Uint32(0),
			}, nil
		case trezorpb.RequestType_TXINPUT:
			if idx >= len(prev.TxIn) {
				return nil, fmt.Errorf("%w: device asked for input %d of a previous tx with %d", device.ErrProtocol, idx, len(prev.TxIn))
			}
			in := prev.TxIn[idx]
			return &trezorpb.TransactionType{Inputs: []*trezorpb.TxInputType{{
				PrevHash:  btcwire.DisplayHash(in.PreviousOutPoint.Hash),
				PrevIndex: proto.Uint32(in.PreviousOutPoint.Index),
				ScriptSig: append([]byte{}, in.SignatureScript...),
				Sequence:  proto.Uint32(in.Sequence),
			}}}, nil
		case trezorpb.RequestType_TXOUTPUT:
			if idx >= len(prev.TxOut) {
				return nil, fmt.Errorf("%w: device asked for output %d of a previous tx with %d", device.ErrProtocol, idx, len(prev.TxOut))
			}
			out := prev.TxOut[idx]
			return &trezorpb.TransactionType{BinOutputs: []*trezorpb.TxOutputBinType{{
				Amount: proto.Uint64(uint64(out.Value)), ScriptPubkey: append([]byte{}, out.PkScript...),
			}}}, nil
		case trezorpb.RequestType_TXEXTRADATA:
			return extraData(det)
		}
		return nil, fmt.Errorf("%w: request type %v for a previous tx (hwbridge never sends original or payment-request data)", device.ErrProtocol, r.GetRequestType())
	}
	switch r.GetRequestType() {
	case trezorpb.RequestType_TXINPUT:
		if idx >= len(plan.inputs) {
			return nil, fmt.Errorf("%w: device asked for input %d of %d", device.ErrProtocol, idx, len(plan.inputs))
		}
		return &trezorpb.TransactionType{Inputs: []*trezorpb.TxInputType{plan.inputs[idx].tx}}, nil
	case trezorpb.RequestType_TXOUTPUT:
		if idx >= len(plan.outputs) {
			return nil, fmt.Errorf("%w: device asked for output %d of %d", device.ErrProtocol, idx, len(plan.outputs))
		}
		return &trezorpb.TransactionType{Outputs: []*trezorpb.TxOutputType{plan.outputs[idx]}}, nil
	case trezorpb.RequestType_TXMETA:
		return &trezorpb.TransactionType{
			Version:    proto.Uint32(plan.version),
			LockTime:   proto.Uint32(plan.lock),
			InputsCnt:  proto.Uint32(uint32(len(plan.inputs))),
			OutputsCnt: proto.Uint32(uint32(len(plan.outputs))),
		}, nil
	case trezorpb.RequestType_TXEXTRADATA:
		return extraData(det)
	}
	return nil, fmt.Errorf("%w: request type %v (hwbridge never sends original or payment-request data)", device.ErrProtocol, r.GetRequestType())
}

// extraData answers TXEXTRADATA: Bitcoin transactions carry none, so only an empty range
// is valid.
func extraData(det *trezorpb.TxRequestDetailsType) (*trezorpb.TransactionType, error) {
	if det.GetExtraDataLen() != 0 {
		return nil, fmt.Errorf("%w: device asked for %d bytes of extra data of a bitcoin transaction", device.ErrProtocol, det.GetExtraDataLen())
	}
	return &trezorpb.TransactionType{ExtraData: []byte{}}, nil
}

// planPSBT checks p and maps it onto TxInputType/TxOutputType (trezor.md §6.2).
func planPSBT(p *psbt.Packet, net *chaincfg.Params, coin string, fp device.Fingerprint, caps device.Capabilities) (*signPlan, error) {
	tx := p.UnsignedTx
	if len(p.Inputs) != len(tx.TxIn) || len(p.Outputs) != len(tx.TxOut) || len(tx.TxIn) == 0 || len(tx.TxOut) == 0 {
		return nil, fmt.Errorf("%w: psbt has %d/%d inputs and %d/%d outputs", device.ErrInvalidInput, len(p.Inputs), len(tx.TxIn), len(p.Outputs), len(tx.TxOut))
	}
	plan := &signPlan{
		coin: coin, version: uint32(tx.Version), lock: tx.LockTime,
		prev: map[chainhash.Hash]*wire.MsgTx{},
	}
	xpubs := globalXPubs(p)
	allTaproot := true
	for i := range p.Inputs {
		in, err := planInput(p, i, net, fp, caps, xpubs)
		if err != nil {
			return nil, fmt.Errorf("input %d: %w", i, err)
		}
		allTaproot = allTaproot && in.taproot
		plan.inputs = append(plan.inputs, in)
		if nw := p.Inputs[i].NonWitnessUtxo; nw != nil {
			plan.prev[nw.TxHash()] = nw
		}
	}
	if !allTaproot {
		// The firmware streams the previous transaction of every input unless all are
		// taproot (core 2.3.1 / legacy 1.9.1 and later; trezor.md §0.4).
		for i, pin := range p.Inputs {
			if pin.NonWitnessUtxo == nil {
				return nil, fmt.Errorf("%w: input %d has no non_witness_utxo (the full previous transaction): the trezor checks the previous transaction of every non-taproot input, so add it (bitcoin core: utxoupdatepsbt / walletprocesspsbt)", device.ErrInvalidInput, i)
			}
		}
	}
	for j := range p.Outputs {
		out, err := planOutput(p, j, net, fp, xpubs)
		if err != nil {
			return nil, fmt.Errorf("output %d: %w", j, err)
		}
		plan.outputs = append(plan.outputs, out)
	}
	return plan, nil
}

func planInput(p *psbt.Packet, i int, net *chaincfg.Params, fp device.Fingerprint, caps device.Capabilities, xpubs []globalXPub) (signInput, error) {
	pin := &p.Inputs[i]
	txin := p.UnsignedTx.TxIn[i]
	if len(pin.FinalScriptSig) > 0 || len(pin.FinalScriptWitness) > 0 {
		return signInput{}, fmt.Errorf("%w: already finalized; trezor signs only transactions whose inputs are all its own and unsigned", device.ErrInvalidInput)
	}
	out, err := btcwire.UTXO(p, i)
	if err != nil {
		return signInput{}, err
	}
	ti := &trezorpb.TxInputType{
		PrevHash:  btcwire.DisplayHash(txin.PreviousOutPoint.Hash),
		PrevIndex: proto.Uint32(txin.PreviousOutPoint.Index),
		Sequence:  proto.Uint32(txin.Sequence),
		Amount:    proto.Uint64(uint64(out.Value)),
	}
	si := signInput{tx: ti}

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
	var multisigScript []byte
	switch cls := txscript.GetScriptClass(script); cls {
	case txscript.WitnessV0PubKeyHashTy:
		ti.ScriptType = trezorpb.InputScriptType_SPENDWITNESS.Enum()
		if wrapped {
			ti.ScriptType = trezorpb.InputScriptType_SPENDP2SHWITNESS.Enum()
		}
	case txscript.WitnessV0ScriptHashTy:
		if len(pin.WitnessScript) == 0 {
			return signInput{}, fmt.Errorf("%w: spends p2wsh but has no witness_script", device.ErrInvalidInput)
		}
		if h := chainhash.HashB(pin.WitnessScript); !bytes.Equal(script[2:], h) {
			return signInput{}, fmt.Errorf("%w: witness_script does not hash to the p2wsh output it spends", device.ErrInvalidInput)
		}
		ti.ScriptType = trezorpb.InputScriptType_SPENDWITNESS.Enum()
		if wrapped {
			ti.ScriptType = trezorpb.InputScriptType_SPENDP2SHWITNESS.Enum()
		}
		multisigScript = pin.WitnessScript
	case txscript.WitnessV1TaprootTy:
		if wrapped {
			return signInput{}, fmt.Errorf("%w: taproot inside p2sh is not spendable", device.ErrInvalidInput)
		}
		if !caps.Taproot {
			return signInput{}, fmt.Errorf("spending taproot needs firmware 2.4.3 (model T) or 1.10.4 (model one): %w", errors.ErrUnsupported)
		}
		ti.ScriptType = trezorpb.InputScriptType_SPENDTAPROOT.Enum()
		si.taproot = true
	case txscript.PubKeyHashTy:
		if wrapped {
			return signInput{}, fmt.Errorf("p2sh wrapping a p2pkh script is not a standard wallet script: %w", errors.ErrUnsupported)
		}
		ti.ScriptType = trezorpb.InputScriptType_SPENDADDRESS.Enum()
	case txscript.MultiSigTy:
		if !wrapped {
			return signInput{}, fmt.Errorf("bare multisig outputs: %w (only p2sh, p2wsh and p2sh-p2wsh multisig)", errors.ErrUnsupported)
		}
		ti.ScriptType = trezorpb.InputScriptType_SPENDMULTISIG.Enum()
		multisigScript = script
	default:
		return signInput{}, fmt.Errorf("spending a %s output: %w", cls, errors.ErrUnsupported)
	}
	if err := checkSighash(pin, si.taproot); err != nil {
		return signInput{}, err
	}

	if si.taproot {
		k, ok := taprootKey(pin, fp)
		if !ok {
			return signInput{}, fmt.Errorf("%w: no taproot key-path derivation (tap_bip32_derivation of tap_internal_key) with fingerprint %s: trezor signs only its own inputs, by key path", device.ErrInvalidInput, fp)
		}
		if err := checkTaprootOutput(out.PkScript, pin); err != nil {
			return signInput{}, err
		}
		si.fill = k
		if len(pin.TaprootKeySpendSig) == 0 {
			si.keys = []ownKey{k}
		}
		return si, checkCoinType(k.path, net)
	}

	if multisigScript != nil {
		ms, err := multisigField(multisigScript, pin.Bip32Derivation, xpubs)
		if err != nil {
			return signInput{}, err
		}
		ti.Multisig = ms
	}
	var all []ownKey
	for _, der := range pin.Bip32Derivation {
		if device.FingerprintFromPSBT(der.MasterKeyFingerprint) != fp {
			continue
		}
		k := ownKey{pub: der.PubKey, path: hdpath.Path(der.Bip32Path)}
		if multisigScript == nil && !btcwire.OwnsSingleKey(script, k.pub) ||
			multisigScript != nil && !scriptHasKey(multisigScript, k.pub) {
			continue
		}
		all = append(all, k)
	}
	if len(all) == 0 {
		return signInput{}, fmt.Errorf("%w: no bip32 derivation with fingerprint %s for the key it spends: trezor signs only transactions whose inputs are all its own", device.ErrInvalidInput, fp)
	}
	si.fill = all[0]
	for _, k := range all {
		if !hasPartialSig(pin, k.pub) {
			si.keys = append(si.keys, k)
		}
	}
	return si, checkCoinType(si.fill.path, net)
}

// scriptHasKey reports whether a multisig script pushes pub.
func scriptHasKey(script, pub []byte) bool {
	pushes, err := txscript.PushedData(script)
	return err == nil && slices.ContainsFunc(pushes, func(b []byte) bool { return bytes.Equal(b, pub) })
}

func hasPartialSig(pin *psbt.PInput, pub []byte) bool {
	for _, ps := range pin.PartialSigs {
		if bytes.Equal(ps.PubKey, pub) {
			return true
		}
	}
	return false
}

// checkSighash refuses sighash types the firmware does not sign with (it signs ECDSA with
// SIGHASH_ALL and taproot with SIGHASH_DEFAULT).
func checkSighash(pin *psbt.PInput, taproot bool) error {
	switch {
	case pin.SighashType == 0:
		return nil
	case taproot && pin.SighashType == txscript.SigHashDefault:
		return nil
	case !taproot && pin.SighashType == txscript.SigHashAll:
		return nil
	}
	return fmt.Errorf("sighash type 0x%02x (trezor signs with SIGHASH_ALL, taproot with SIGHASH_DEFAULT): %w", uint32(pin.SighashType), errors.ErrUnsupported)
}

// taprootKey finds the key-path derivation: the tap_bip32_derivation of tap_internal_key
// (or, without an internal key, one with no leaf hashes) under our fingerprint.
func taprootKey(pin *psbt.PInput, fp device.Fingerprint) (ownKey, bool) {
	for _, der := range pin.TaprootBip32Derivation {
		if device.FingerprintFromPSBT(der.MasterKeyFingerprint) != fp {
			continue
		}
		if len(pin.TaprootInternalKey) > 0 && !bytes.Equal(der.XOnlyPubKey, pin.TaprootInternalKey) {
			continue
		}
		if len(pin.TaprootInternalKey) == 0 && len(der.LeafHashes) > 0 {
			continue
		}
		return ownKey{pub: der.XOnlyPubKey, path: hdpath.Path(der.Bip32Path)}, true
	}
	return ownKey{}, false
}

// checkTaprootOutput makes sure the output is the BIP-86 key-path output of the internal
// key: the firmware signs for that output key and nothing else.
func checkTaprootOutput(pkScript []byte, pin *psbt.PInput) error {
	if len(pin.TaprootInternalKey) == 0 {
		return nil
	}
	if len(pin.TaprootMerkleRoot) > 0 {
		return fmt.Errorf("taproot outputs with a script tree: %w (trezor signs BIP-86 key-path outputs)", errors.ErrUnsupported)
	}
	internal, err := schnorr.ParsePubKey(pin.TaprootInternalKey)
	if err != nil {
		return fmt.Errorf("%w: tap_internal_key: %w", device.ErrInvalidInput, err)
	}
	if !bytes.Equal(schnorr.SerializePubKey(txscript.ComputeTaprootKeyNoScript(internal)), pkScript[2:]) {
		return fmt.Errorf("%w: the output is not the BIP-86 tweak of tap_internal_key", device.ErrInvalidInput)
	}
	return nil
}

// checkCoinType catches a PSBT for another network: BIP-44-style paths carry the coin type
// (0' for mainnet, 1' for every test network) in their second step.
func checkCoinType(path hdpath.Path, net *chaincfg.Params) error {
	if len(path) < 2 {
		return nil
	}
	switch path[0] {
	case 44 + hdpath.Hardened, 48 + hdpath.Hardened, 49 + hdpath.Hardened, 84 + hdpath.Hardened, 86 + hdpath.Hardened:
	default:
		return nil
	}
	want := net.HDCoinType + hdpath.Hardened
	switch {
	case path[1] == want:
		return nil
	case path[1] == hdpath.Hardened && net.Net != chaincfg.MainNetParams.Net:
		return fmt.Errorf("%w: the psbt spends mainnet keys (%s) but the network is %s: pass the right --network", device.ErrInvalidInput, path, net.Name)
	case path[1] == 1+hdpath.Hardened && net.Net == chaincfg.MainNetParams.Net:
		return fmt.Errorf("%w: the psbt spends test-network keys (%s) but the network is mainnet: pass the right --network", device.ErrInvalidInput, path)
	}
	return nil
}

// globalXPub is a PSBT_GLOBAL_XPUB entry with its fingerprint as the device prints it.
type globalXPub struct {
	key  *hdkeychain.ExtendedKey
	fp   device.Fingerprint
	path hdpath.Path
}

// globalXPubs reads the PSBT's global xpubs (hwpsbt.GlobalXPubs).
func globalXPubs(p *psbt.Packet) []globalXPub {
	var out []globalXPub
	for _, x := range hwpsbt.GlobalXPubs(p) {
		var fp [4]byte
		binary.LittleEndian.PutUint32(fp[:], x.Fingerprint)
		out = append(out, globalXPub{key: x.Key, fp: device.Fingerprint(binary.BigEndian.Uint32(fp[:])), path: x.Path})
	}
	return out
}

// multisigField builds the multisig description HWI sends: the keys in script order, each
// as a global xpub's node plus the rest of its path where one matches, else as a bare node
// (depth 0, zero chain code), with m and empty signatures.
func multisigField(script []byte, ders []*psbt.Bip32Derivation, xpubs []globalXPub) (*trezorpb.MultisigRedeemScriptType, error) {
	ok, err := txscript.IsMultisigScript(script)
	if err != nil || !ok {
		return nil, fmt.Errorf("only multisig scripts (OP_m keys OP_n OP_CHECKMULTISIG) are supported in p2sh/p2wsh: %w", errors.ErrUnsupported)
	}
	nKeys, m, err := txscript.CalcMultiSigStats(script)
	if err != nil || nKeys > maxMultisigKeys {
		return nil, fmt.Errorf("%w: multisig with %d keys (at most %d)", device.ErrInvalidInput, nKeys, maxMultisigKeys)
	}
	pushes, err := txscript.PushedData(script)
	if err != nil || len(pushes) != nKeys {
		return nil, fmt.Errorf("%w: malformed multisig script", device.ErrInvalidInput)
	}
	ms := &trezorpb.MultisigRedeemScriptType{M: proto.Uint32(uint32(m))}
	for _, pub := range pushes {
		if len(pub) != btcec.PubKeyBytesLenCompressed {
			return nil, fmt.Errorf("%w: multisig key of %d bytes (only compressed keys)", device.ErrInvalidInput, len(pub))
		}
		ms.Pubkeys = append(ms.Pubkeys, multisigNode(pub, ders, xpubs))
		ms.Signatures = append(ms.Signatures, []byte{})
	}
	return ms, nil
}

func multisigNode(pub []byte, ders []*psbt.Bip32Derivation, xpubs []globalXPub) *trezorpb.HDNodePathType {
	for _, der := range ders {
		if !bytes.Equal(der.PubKey, pub) {
			continue
		}
		fp := device.FingerprintFromPSBT(der.MasterKeyFingerprint)
		for _, x := range xpubs {
			if x.fp != fp || len(der.Bip32Path) < len(x.path) || !slices.Equal(der.Bip32Path[:len(x.path)], []uint32(x.path)) {
				continue
			}
			rest := hdpath.Path(der.Bip32Path[len(x.path):])
			child := x.key
			for _, step := range rest {
				var err error
				if child, err = child.Derive(step); err != nil {
					break
				}
			}
			if cp, err := child.ECPubKey(); err != nil || !bytes.Equal(cp.SerializeCompressed(), pub) {
				continue
			}
			xp, _ := x.key.ECPubKey()
			return &trezorpb.HDNodePathType{
				Node: &trezorpb.HDNodeType{
					Depth:       proto.Uint32(uint32(x.key.Depth())),
					Fingerprint: proto.Uint32(x.key.ParentFingerprint()),
					ChildNum:    proto.Uint32(x.key.ChildIndex()),
					ChainCode:   x.key.ChainCode(),
					PublicKey:   xp.SerializeCompressed(),
				},
				AddressN: []uint32(rest),
			}
		}
	}
	return &trezorpb.HDNodePathType{Node: &trezorpb.HDNodeType{
		Depth: proto.Uint32(0), Fingerprint: proto.Uint32(0), ChildNum: proto.Uint32(0),
		ChainCode: make([]byte, 32), PublicKey: pub,
	}, AddressN: []uint32{}}
}

// planOutput maps one output: change (a key of ours whose script we can re-derive) goes by
// path, OP_RETURN by data, everything else by address.
func planOutput(p *psbt.Packet, j int, net *chaincfg.Params, fp device.Fingerprint, xpubs []globalXPub) (*trezorpb.TxOutputType, error) {
	out := p.UnsignedTx.TxOut[j]
	po := &p.Outputs[j]
	to := &trezorpb.TxOutputType{Amount: proto.Uint64(uint64(out.Value))}
	if out.Value < 0 {
		return nil, fmt.Errorf("%w: negative amount", device.ErrInvalidInput)
	}
	if change := changeOutput(out.PkScript, po, fp, xpubs); change != nil {
		change.Amount = to.Amount
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
		to.ScriptType = trezorpb.OutputScriptType_PAYTOOPRETURN.Enum()
		to.OpReturnData = append([]byte{}, pushes[0]...)
		return to, nil
	}
	_, addrs, _, err := txscript.ExtractPkScriptAddrs(out.PkScript, net)
	cls := txscript.GetScriptClass(out.PkScript)
	if err != nil || len(addrs) != 1 || cls == txscript.PubKeyTy || cls == txscript.MultiSigTy {
		return nil, fmt.Errorf("paying to a script with no address (%s): %w", cls, errors.ErrUnsupported)
	}
	to.Address = proto.String(addrs[0].EncodeAddress())
	to.ScriptType = trezorpb.OutputScriptType_PAYTOADDRESS.Enum()
	return to, nil
}

// changeOutput returns the by-path form of an output that pays to a key of ours, or nil. It
// re-derives the script from the PSBT's key data so that the device builds exactly the
// script the transaction carries.
func changeOutput(pkScript []byte, po *psbt.POutput, fp device.Fingerprint, xpubs []globalXPub) *trezorpb.TxOutputType {
	if txscript.GetScriptClass(pkScript) == txscript.WitnessV1TaprootTy {
		for _, der := range po.TaprootBip32Derivation {
			if device.FingerprintFromPSBT(der.MasterKeyFingerprint) != fp || len(po.TaprootTapTree) > 0 ||
				!bytes.Equal(der.XOnlyPubKey, po.TaprootInternalKey) {
				continue
			}
			internal, err := schnorr.ParsePubKey(der.XOnlyPubKey)
			if err != nil || !bytes.Equal(schnorr.SerializePubKey(txscript.ComputeTaprootKeyNoScript(internal)), pkScript[2:]) {
				continue
			}
			return &trezorpb.TxOutputType{AddressN: der.Bip32Path, ScriptType: trezorpb.OutputScriptType_PAYTOTAPROOT.Enum()}
		}
		return nil
	}
	script, wrapped := pkScript, false
	if txscript.IsPayToScriptHash(pkScript) {
		if len(po.RedeemScript) == 0 || !bytes.Equal(pkScript[2:22], btcutil.Hash160(po.RedeemScript)) {
			return nil
		}
		script, wrapped = po.RedeemScript, true
	}
	var ours *psbt.Bip32Derivation
	for _, der := range po.Bip32Derivation {
		if device.FingerprintFromPSBT(der.MasterKeyFingerprint) == fp {
			ours = der
			break
		}
	}
	if ours == nil {
		return nil
	}
	switch txscript.GetScriptClass(script) {
	case txscript.PubKeyHashTy:
		if wrapped || !btcwire.OwnsSingleKey(script, ours.PubKey) {
			return nil
		}
		return &trezorpb.TxOutputType{AddressN: ours.Bip32Path, ScriptType: trezorpb.OutputScriptType_PAYTOADDRESS.Enum()}
	case txscript.WitnessV0PubKeyHashTy:
		if !btcwire.OwnsSingleKey(script, ours.PubKey) {
			return nil
		}
		st := trezorpb.OutputScriptType_PAYTOWITNESS
		if wrapped {
			st = trezorpb.OutputScriptType_PAYTOP2SHWITNESS
		}
		return &trezorpb.TxOutputType{AddressN: ours.Bip32Path, ScriptType: st.Enum()}
	case txscript.WitnessV0ScriptHashTy:
		if len(po.WitnessScript) == 0 || !bytes.Equal(script[2:], chainhash.HashB(po.WitnessScript)) {
			return nil
		}
		ms, err := multisigField(po.WitnessScript, po.Bip32Derivation, xpubs)
		if err != nil {
			return nil
		}
		st := trezorpb.OutputScriptType_PAYTOWITNESS
		if wrapped {
			st = trezorpb.OutputScriptType_PAYTOP2SHWITNESS
		}
		return &trezorpb.TxOutputType{AddressN: ours.Bip32Path, ScriptType: st.Enum(), Multisig: ms}
	case txscript.MultiSigTy:
		if !wrapped {
			return nil
		}
		ms, err := multisigField(script, po.Bip32Derivation, xpubs)
		if err != nil {
			return nil
		}
		return &trezorpb.TxOutputType{AddressN: ours.Bip32Path, ScriptType: trezorpb.OutputScriptType_PAYTOMULTISIG.Enum(), Multisig: ms}
	}
	return nil
}
