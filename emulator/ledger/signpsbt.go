package ledgeremu

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// SIGN_PSBT (ledger.md §5.4): the host commits to a PSBT v2 as merkleised maps; the device
// fetches what it needs through client commands, shows the outputs and the fee, and
// yields one signature per internal input and internal key.

// PSBT v2 key types used here (BIP-174/370).
const (
	psbtGlobalTxVersion      = 0x02
	psbtGlobalFallbackLock   = 0x03
	psbtInNonWitnessUTXO     = 0x00
	psbtInWitnessUTXO        = 0x01
	psbtInSighashType        = 0x03
	psbtInRedeemScript       = 0x04
	psbtInWitnessScript      = 0x05
	psbtInBIP32Derivation    = 0x06
	psbtInPrevTxid           = 0x0E
	psbtInOutputIndex        = 0x0F
	psbtInSequence           = 0x10
	psbtInTapBIP32Derivation = 0x16
	psbtOutBIP32Derivation   = 0x02
	psbtOutAmount            = 0x03
	psbtOutScript            = 0x04
	psbtOutTapBIP32          = 0x07
)

// Caps.
const (
	maxPSBTInputs     = 512
	maxPSBTOutputs    = 512
	maxNonWitnessUTXO = maxPreimage - 1
	maxScript         = 10000
	maxChangeOutputs  = 10
	mapCommitmentLen  = 9 + 64
)

// EC codes of SIGN_PSBT (ledger.md §5.8).
const (
	ecMissingHMAC        = 0x0000
	ecNameForDefault     = 0x0001
	ecNoInternalKey      = 0x0002
	ecNoUTXO             = 0x0003
	ecNonWitnessUTXOTxid = 0x0004
	ecUTXOMismatch       = 0x0005
	ecLegacyUTXO         = 0x0006
	ecSegwitNoWitUTXO    = 0x0007
	ecSighashSingle      = 0x0008
	ecTooManyChange      = 0x0009
	ecWitnessScript      = 0x000A
	ecRedeemScript       = 0x000B
)

// psbtInput is what the device learned about one input.
type psbtInput struct {
	prevout   wire.OutPoint
	sequence  uint32
	amount    int64
	spk       []byte
	hasWitUT  bool
	hasNonWit bool
	sighash   uint32
	hasSighas bool
	internal  bool
	change    bool
	index     uint32
}

// psbtOutput is one output.
type psbtOutput struct {
	amount int64
	spk    []byte
	change bool
}

// derivation is one BIP-32 derivation entry of a PSBT map.
type derivation struct {
	fpr  uint32
	path []uint32
}

func parseDerivation(v []byte, tap bool) (derivation, bool) {
	r := &reader{b: v}
	if tap {
		n := r.varint()
		if n > 64 {
			return derivation{}, false
		}
		r.bytes(32 * int(n))
	}
	fp := r.bytes(4)
	if r.bad || r.left()%4 != 0 || r.left()/4 > maxBIP32Steps {
		return derivation{}, false
	}
	d := derivation{fpr: binary.BigEndian.Uint32(fp)}
	for r.left() > 0 {
		d.path = append(d.path, binary.LittleEndian.Uint32(r.bytes(4)))
	}
	return d, true
}

// matchPolicy finds change/index for a derivation of one of our keys in the policy.
func (p *walletPolicy) matchPolicy(app *btcApp, d derivation) (change bool, index uint32, ok bool) {
	if d.fpr != app.wallet.Fingerprint() || len(d.path) < 2 {
		return false, 0, false
	}
	for _, ke := range p.tree.keyExprs() {
		k := p.keys[ke.idx]
		if !k.hasOrigin || len(k.origin)+2 != len(d.path) || !p.isInternal(ke.idx, app) {
			continue
		}
		if !equalPath(k.origin, d.path[:len(k.origin)]) {
			continue
		}
		step, idx := d.path[len(d.path)-2], d.path[len(d.path)-1]
		if idx >= hardened {
			continue
		}
		switch step {
		case ke.m:
			return false, idx, true
		case ke.n:
			return true, idx, true
		}
	}
	return false, 0, false
}

func equalPath(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// ownScript checks a map's derivations against the policy: ok when one of them is ours
// and the policy's script at that change/index equals spk.
func (h btcHost) ownScript(app *btcApp, p *walletPolicy, m *mmap, plainType, tapType byte, spk []byte) (change bool, index uint32, ok bool, err error) {
	for _, t := range []byte{plainType, tapType} {
		for _, ki := range m.keysWithType(t) {
			v, err := h.valueAt(m, ki, 1+64*32+4+4*maxBIP32Steps)
			if err != nil {
				return false, 0, false, err
			}
			d, good := parseDerivation(v, t == tapType)
			if !good {
				return false, 0, false, fail(swIncorrectData, "malformed bip32 derivation")
			}
			ch, idx, match := p.matchPolicy(app, d)
			if !match {
				continue
			}
			s, err := p.scripts(ch, idx)
			if err != nil {
				return false, 0, false, err
			}
			if bytes.Equal(s.spk, spk) {
				return ch, idx, true, nil
			}
		}
	}
	return false, 0, false, nil
}

func (cn *conn) btcSignPSBT(app *btcApp, h btcHost, r *reader) ([]byte, error) {
	global, ok := parseMapCommitment(r)
	nIn := r.varint()
	var inRoot, outRoot, id [32]byte
	copy(inRoot[:], r.bytes(32))
	nOut := r.varint()
	copy(outRoot[:], r.bytes(32))
	copy(id[:], r.bytes(32))
	mac := r.bytes(32)
	if !ok || r.bad {
		return nil, fail(swWrongDataLength, "short sign psbt")
	}
	if nIn == 0 || nIn > maxPSBTInputs || nOut > maxPSBTOutputs {
		return nil, fail(swNotSupported, "%d inputs, %d outputs", nIn, nOut)
	}

	// Global map.
	if err := h.loadKeys(&global); err != nil {
		return nil, err
	}
	txv, found, err := h.get(&global, []byte{psbtGlobalTxVersion}, 4)
	if err != nil {
		return nil, err
	}
	if !found || len(txv) != 4 {
		return nil, fail(swIncorrectData, "psbt lacks its tx version")
	}
	var lockTime uint32
	if lt, found, err := h.get(&global, []byte{psbtGlobalFallbackLock}, 4); err != nil {
		return nil, err
	} else if found {
		if len(lt) != 4 {
			return nil, fail(swIncorrectData, "bad fallback locktime")
		}
		lockTime = binary.LittleEndian.Uint32(lt)
	}

	// Wallet policy.
	p, err := h.fetchPolicy(id, app)
	if err != nil {
		return nil, err
	}
	isDefault, err := app.checkPolicyAuth(p, mac, failEC(swIncorrectData, ecMissingHMAC, "non-default policy without hmac"))
	if err != nil {
		return nil, err
	}
	if isDefault && p.name != "" {
		return nil, failEC(swIncorrectData, ecNameForDefault, "default policy with a name")
	}
	// The app reads each key placeholder's key from the host again to find its own
	// (app-bitcoin-new 2.4.6, as its Speculos transcripts show).
	if err := h.refetchKeys(p); err != nil {
		return nil, err
	}
	var internalKeys []keyExpr
	for _, ke := range p.tree.keyExprs() {
		if p.isInternal(ke.idx, app) {
			internalKeys = append(internalKeys, ke)
		}
	}
	if len(internalKeys) == 0 {
		return nil, failEC(swIncorrectData, ecNoInternalKey, "policy has no internal key")
	}

	// Inputs.
	inputs := make([]psbtInput, nIn)
	var inTotal int64
	warnExternal, warnNoNonWit, warnSighash := false, false, false
	nInternal := 0
	for i := range inputs {
		in, err := h.readInput(app, p, inRoot, int(nIn), i)
		if err != nil {
			return nil, err
		}
		inputs[i] = *in
		inTotal += in.amount
		if in.internal {
			nInternal++
			if p.tree.kind != "tr" && p.tree.isSegwit() && !in.hasNonWit {
				warnNoNonWit = true
			}
		} else {
			warnExternal = true
		}
		if in.hasSighas {
			def := uint32(txscript.SigHashAll)
			if p.tree.kind == "tr" {
				def = uint32(txscript.SigHashDefault)
			}
			if in.sighash != def {
				warnSighash = true
			}
			if in.internal && in.sighash&0x1F == uint32(txscript.SigHashSingle) && i >= int(nOut) {
				return nil, failEC(swNotSupported, ecSighashSingle, "sighash single without matching output")
			}
		}
	}
	if nInternal == 0 {
		return nil, fail(swIncorrectData, "no input belongs to the wallet policy")
	}

	// Outputs.
	outputs := make([]psbtOutput, nOut)
	var outTotal int64
	nChange := 0
	for i := range outputs {
		o, err := h.readOutput(app, p, outRoot, int(nOut), i)
		if err != nil {
			return nil, err
		}
		outputs[i] = *o
		outTotal += o.amount
		if o.change {
			nChange++
		}
	}
	if inTotal < outTotal {
		return nil, fail(swIncorrectData, "negative fee")
	}
	if nChange > maxChangeOutputs {
		return nil, failEC(swNotSupported, ecTooManyChange, "%d change outputs", nChange)
	}
	fee := inTotal - outTotal

	// Review.
	if warnExternal {
		cn.show("Warning", "there are external inputs", "only the wallet's inputs are signed")
	}
	if warnNoNonWit {
		cn.show("Warning", "unverified inputs", "update your wallet software")
	}
	if warnSighash {
		cn.show("Warning", "non-default sighash")
	}
	if 10*fee >= inTotal && inTotal > 100000 {
		cn.show("Warning", "fees are above 10% of the amount")
	}
	var lines []string
	if !isDefault {
		lines = append(lines, "wallet: "+p.name)
	}
	n := 0
	for _, o := range outputs {
		if o.change {
			continue
		}
		n++
		lines = append(lines, fmt.Sprintf("output %d: %s", n, app.scriptDisplay(o.spk)), "amount: "+app.amount(o.amount))
	}
	lines = append(lines, "fee: "+app.amount(fee))
	approved, err := cn.ask("Sign transaction", lines...)
	if err != nil {
		return nil, err
	}
	if !approved {
		return nil, fail(swDeny, "rejected")
	}

	// Sign.
	tx := wire.NewMsgTx(int32(binary.LittleEndian.Uint32(txv)))
	tx.LockTime = lockTime
	fetcher := txscript.NewMultiPrevOutFetcher(nil)
	for _, in := range inputs {
		tx.AddTxIn(&wire.TxIn{PreviousOutPoint: in.prevout, Sequence: in.sequence})
		fetcher.AddPrevOut(in.prevout, wire.NewTxOut(in.amount, in.spk))
	}
	for _, o := range outputs {
		tx.AddTxOut(wire.NewTxOut(o.amount, o.spk))
	}
	hashes := txscript.NewTxSigHashes(tx, fetcher)
	for i, in := range inputs {
		if !in.internal {
			continue
		}
		s, err := p.scripts(in.change, in.index)
		if err != nil {
			return nil, err
		}
		for _, ke := range internalKeys {
			if err := cn.signInput(app, h, p, tx, hashes, i, in, s, ke); err != nil {
				return nil, err
			}
		}
	}
	return nil, nil
}

// amount formats satoshis with the app's ticker.
func (a *btcApp) amount(sat int64) string {
	return formatUnits(uint64(sat), 8) + " " + a.ticker
}

func (h btcHost) readInput(app *btcApp, p *walletPolicy, root [32]byte, n, i int) (*psbtInput, error) {
	raw, err := h.element(root, n, i, mapCommitmentLen)
	if err != nil {
		return nil, err
	}
	mr := &reader{b: raw}
	m, ok := parseMapCommitment(mr)
	if !ok || mr.left() != 0 {
		return nil, fail(swIncorrectData, "bad input map commitment")
	}
	if err := h.loadKeysEager(&m, 1+64*32+4+4*maxBIP32Steps, psbtInBIP32Derivation, psbtInTapBIP32Derivation); err != nil {
		return nil, err
	}
	in := &psbtInput{sequence: 0xFFFFFFFF}
	txid, found, err := h.get(&m, []byte{psbtInPrevTxid}, 32)
	if err != nil {
		return nil, err
	}
	vout, found2, err := h.get(&m, []byte{psbtInOutputIndex}, 4)
	if err != nil {
		return nil, err
	}
	if !found || !found2 || len(txid) != 32 || len(vout) != 4 {
		return nil, fail(swIncorrectData, "input %d lacks its previous outpoint", i)
	}
	copy(in.prevout.Hash[:], txid)
	in.prevout.Index = binary.LittleEndian.Uint32(vout)
	// sequence and sighash type: read last (readInputRest), in the app's order

	nonWit, hasNonWit, err := h.get(&m, []byte{psbtInNonWitnessUTXO}, maxNonWitnessUTXO)
	if err != nil {
		return nil, err
	}
	wit, hasWit, err := h.get(&m, []byte{psbtInWitnessUTXO}, 8+3+maxScript)
	if err != nil {
		return nil, err
	}
	if !hasNonWit && !hasWit {
		return nil, failEC(swIncorrectData, ecNoUTXO, "input %d has no utxo", i)
	}
	in.hasNonWit, in.hasWitUT = hasNonWit, hasWit
	if hasNonWit {
		var prev wire.MsgTx
		// Deserialize reads both the legacy and the BIP-144 witness serialization (a
		// non-witness UTXO often carries witnesses); the txid ignores them either way.
		// DeserializeNoWitness first would misread a witness marker as zero inputs.
		if err := prev.Deserialize(bytes.NewReader(nonWit)); err != nil {
			return nil, fail(swIncorrectData, "input %d: bad non-witness utxo", i)
		}
		if prev.TxHash() != in.prevout.Hash {
			return nil, failEC(swIncorrectData, ecNonWitnessUTXOTxid, "input %d: non-witness utxo txid mismatch", i)
		}
		if int(in.prevout.Index) >= len(prev.TxOut) {
			return nil, failEC(swIncorrectData, ecNonWitnessUTXOTxid, "input %d: output index out of range", i)
		}
		o := prev.TxOut[in.prevout.Index]
		in.amount, in.spk = o.Value, o.PkScript
	}
	if hasWit {
		wr := &reader{b: wit}
		amt := wr.bytes(8)
		sl := wr.varint()
		spk := wr.bytes(int(min(sl, maxScript+1)))
		if wr.bad || wr.left() != 0 {
			return nil, fail(swIncorrectData, "input %d: bad witness utxo", i)
		}
		a := int64(binary.LittleEndian.Uint64(amt))
		if hasNonWit && (a != in.amount || !bytes.Equal(spk, in.spk)) {
			return nil, failEC(swIncorrectData, ecUTXOMismatch, "input %d: witness and non-witness utxo differ", i)
		}
		in.amount, in.spk = a, spk
	}
	if in.amount < 0 || in.amount > 21e14 {
		return nil, fail(swIncorrectData, "input %d: bad amount", i)
	}

	// The app reads the policy's keys again to derive the input's script.
	if err := h.refetchKeys(p); err != nil {
		return nil, err
	}
	ch, idx, own, err := h.ownScript(app, p, &m, psbtInBIP32Derivation, psbtInTapBIP32Derivation, in.spk)
	if err != nil {
		return nil, err
	}
	if !own {
		return in, h.readInputRest(&m, in)
	}
	in.internal, in.change, in.index = true, ch, idx
	if p.tree.isSegwit() {
		if !hasWit {
			return nil, failEC(swIncorrectData, ecSegwitNoWitUTXO, "segwit input %d lacks its witness utxo", i)
		}
	} else if !hasNonWit || hasWit {
		return nil, failEC(swIncorrectData, ecLegacyUTXO, "legacy input %d needs a non-witness utxo only", i)
	}
	s, err := p.scripts(ch, idx)
	if err != nil {
		return nil, err
	}
	if rs, found, err := h.get(&m, []byte{psbtInRedeemScript}, maxScript); err != nil {
		return nil, err
	} else if found && !bytes.Equal(rs, s.redeemScript) {
		return nil, failEC(swIncorrectData, ecRedeemScript, "input %d: redeem script mismatch", i)
	}
	if ws, found, err := h.get(&m, []byte{psbtInWitnessScript}, maxScript); err != nil {
		return nil, err
	} else if found && !bytes.Equal(ws, s.witnessScript) {
		return nil, failEC(swIncorrectData, ecWitnessScript, "input %d: witness script mismatch", i)
	}
	return in, h.readInputRest(&m, in)
}

// readInputRest reads an input's sequence and sighash type.
func (h btcHost) readInputRest(m *mmap, in *psbtInput) error {
	if seq, found, err := h.get(m, []byte{psbtInSequence}, 4); err != nil {
		return err
	} else if found {
		if len(seq) != 4 {
			return fail(swIncorrectData, "bad sequence")
		}
		in.sequence = binary.LittleEndian.Uint32(seq)
	}
	if sh, found, err := h.get(m, []byte{psbtInSighashType}, 4); err != nil {
		return err
	} else if found {
		if len(sh) != 4 {
			return fail(swIncorrectData, "bad sighash type")
		}
		in.sighash, in.hasSighas = binary.LittleEndian.Uint32(sh), true
	}
	return nil
}

func (h btcHost) readOutput(app *btcApp, p *walletPolicy, root [32]byte, n, i int) (*psbtOutput, error) {
	raw, err := h.element(root, n, i, mapCommitmentLen)
	if err != nil {
		return nil, err
	}
	mr := &reader{b: raw}
	m, ok := parseMapCommitment(mr)
	if !ok || mr.left() != 0 {
		return nil, fail(swIncorrectData, "bad output map commitment")
	}
	if err := h.loadKeys(&m); err != nil {
		return nil, err
	}
	amt, found, err := h.get(&m, []byte{psbtOutAmount}, 8)
	if err != nil {
		return nil, err
	}
	spk, found2, err := h.get(&m, []byte{psbtOutScript}, maxScript)
	if err != nil {
		return nil, err
	}
	if !found || !found2 || len(amt) != 8 {
		return nil, fail(swIncorrectData, "output %d lacks amount or script", i)
	}
	o := &psbtOutput{amount: int64(binary.LittleEndian.Uint64(amt)), spk: spk}
	if o.amount < 0 || o.amount > 21e14 {
		return nil, fail(swIncorrectData, "output %d: bad amount", i)
	}
	ch, _, own, err := h.ownScript(app, p, &m, psbtOutBIP32Derivation, psbtOutTapBIP32, spk)
	if err != nil {
		return nil, err
	}
	o.change = own && ch
	return o, nil
}

// signInput signs input i for key placeholder ke and yields the signature.
func (cn *conn) signInput(app *btcApp, h btcHost, p *walletPolicy, tx *wire.MsgTx, hashes *txscript.TxSigHashes, i int, in psbtInput, s policyScripts, ke keyExpr) error {
	k := p.keys[ke.idx]
	step := ke.m
	if in.change {
		step = ke.n
	}
	path := append(append(hdpath.Path{}, k.origin...), step, in.index)
	priv, err := app.wallet.PrivKey(path)
	if err != nil {
		return fail(swBadState, "derive: %v", err)
	}
	var pub, sig []byte
	switch {
	case p.tree.kind == "tr":
		ht := txscript.SigHashDefault
		if in.hasSighas {
			ht = txscript.SigHashType(in.sighash)
		}
		sig, err = txscript.RawTxInTaprootSignature(tx, hashes, i, in.amount, in.spk, []byte{}, ht, priv)
		tweaked := txscript.ComputeTaprootKeyNoScript(priv.PubKey())
		pub = xonly(tweaked)
	case p.tree.isSegwit():
		ht := txscript.SigHashAll
		if in.hasSighas {
			ht = txscript.SigHashType(in.sighash)
		}
		sub := s.witnessScript
		if sub == nil {
			sub = s.spk
			if s.redeemScript != nil {
				sub = s.redeemScript
			}
		}
		sig, err = txscript.RawTxInWitnessSignature(tx, hashes, i, in.amount, sub, ht, priv)
		pub = priv.PubKey().SerializeCompressed()
	default:
		ht := txscript.SigHashAll
		if in.hasSighas {
			ht = txscript.SigHashType(in.sighash)
		}
		sub := s.spk
		if s.redeemScript != nil {
			sub = s.redeemScript
		}
		sig, err = txscript.RawTxInSignature(tx, i, sub, ht, priv)
		pub = priv.PubKey().SerializeCompressed()
	}
	if err != nil {
		return fail(swBadState, "sign input %d: %v", i, err)
	}
	out := appendVarint(nil, uint64(i))
	if app.protocol >= 1 {
		out = append(out, byte(len(pub)))
		out = append(out, pub...)
	}
	return h.yield(append(out, sig...))
}
