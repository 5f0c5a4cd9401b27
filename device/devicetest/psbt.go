package devicetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/base58"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// SpendOptions shape the PSBT NewSpend builds.
type SpendOptions struct {
	// OmitNonWitnessUTXO leaves out non_witness_utxo on segwit inputs (p2pkh inputs always
	// carry it: it is their only UTXO field).
	OmitNonWitnessUTXO bool
	// Change is the script type of the change output ("" means the first input's type).
	Change device.ScriptType
	// OpReturn adds an OP_RETURN output carrying these bytes.
	OpReturn []byte
	// OwnFunding gives each input its own one-output funding transaction (a wallet's usual
	// shape). By default every input spends an output of one funding transaction with an
	// output per input, so a device that streams each input's previous transaction streams
	// that whole transaction once per input (n inputs: n² outputs sent).
	OwnFunding bool
}

// key is one public key of the device with its path.
type key struct {
	pub  *btcec.PublicKey
	path hdpath.Path
}

// deviceKey derives m/purpose'/coin'/0'/change/index from the device's account xpub: the
// suite never needs the seed.
func deviceKey(t testing.TB, ctx context.Context, dev device.Device, st device.ScriptType, net *chaincfg.Params, change, index uint32) key {
	t.Helper()
	purpose, err := st.Purpose()
	if err != nil {
		t.Fatal(err)
	}
	acct := hdpath.Path{purpose + hdpath.Hardened, net.HDCoinType + hdpath.Hardened, hdpath.Hardened}
	xpub, err := dev.XPub(ctx, device.XPubRequest{Path: acct, Network: net})
	if err != nil {
		t.Fatalf("xpub %s: %v", acct, err)
	}
	k, err := hdkeychain.NewKeyFromString(xpub)
	if err != nil {
		t.Fatalf("xpub %q: %v", xpub, err)
	}
	for _, step := range []uint32{change, index} {
		if k, err = k.Derive(step); err != nil {
			t.Fatal(err)
		}
	}
	pub, err := k.ECPubKey()
	if err != nil {
		t.Fatal(err)
	}
	return key{pub: pub, path: acct.Child(change, index)}
}

// scriptFor returns the output script (and p2sh redeem script) paying to k as st.
func scriptFor(t testing.TB, k *btcec.PublicKey, st device.ScriptType) (pkScript, redeem []byte) {
	t.Helper()
	h := btcutil.Hash160(k.SerializeCompressed())
	b := txscript.NewScriptBuilder
	var err error
	switch st {
	case device.ScriptPKH:
		pkScript, err = b().AddOp(txscript.OP_DUP).AddOp(txscript.OP_HASH160).AddData(h).
			AddOp(txscript.OP_EQUALVERIFY).AddOp(txscript.OP_CHECKSIG).Script()
	case device.ScriptWPKH:
		pkScript, err = b().AddOp(txscript.OP_0).AddData(h).Script()
	case device.ScriptSHWPKH:
		redeem, err = b().AddOp(txscript.OP_0).AddData(h).Script()
		if err == nil {
			pkScript, err = b().AddOp(txscript.OP_HASH160).AddData(btcutil.Hash160(redeem)).AddOp(txscript.OP_EQUAL).Script()
		}
	case device.ScriptTR:
		out := txscript.ComputeTaprootKeyNoScript(k)
		pkScript, err = b().AddOp(txscript.OP_1).AddData(schnorr.SerializePubKey(out)).Script()
	default:
		t.Fatalf("script type %q", st)
	}
	if err != nil {
		t.Fatal(err)
	}
	return pkScript, redeem
}

// ExternalScript is the p2wpkh output NewSpend pays to: a key no device holds.
func ExternalScript() []byte {
	h := sha256.Sum256([]byte("hwbridge devicetest external payee"))
	s, _ := txscript.NewScriptBuilder().AddOp(txscript.OP_0).AddData(h[:20]).Script()
	return s
}

// NewSpend builds a PSBT that spends one output of the device per entry of inputs (the
// keys m/purpose'/coin'/0'/0/i), pays about half to ExternalScript and the rest, less a
// fee, to change at m/purpose'/coin'/0'/1/0. The previous transaction is synthetic but
// self-consistent (its txid is what the inputs spend).
func NewSpend(t testing.TB, ctx context.Context, dev device.Device, net *chaincfg.Params, inputs []device.ScriptType, opts SpendOptions) *psbt.Packet {
	t.Helper()
	fp, err := dev.Fingerprint(ctx)
	if err != nil {
		t.Fatalf("fingerprint: %v", err)
	}
	funding := wire.NewMsgTx(2)
	seed := chainhash.HashH([]byte("hwbridge devicetest funding"))
	funding.AddTxIn(wire.NewTxIn(wire.NewOutPoint(&seed, 0), []byte{txscript.OP_TRUE}, nil))
	keys := make([]key, len(inputs))
	var total int64
	for i, st := range inputs {
		keys[i] = deviceKey(t, ctx, dev, st, net, 0, uint32(i))
		spk, _ := scriptFor(t, keys[i].pub, st)
		v := int64(100_000 + 1_000*i)
		total += v
		funding.AddTxOut(wire.NewTxOut(v, spk))
	}
	fundingID := funding.TxHash()
	// prev is the transaction input i spends and vout the output.
	prev := func(i int) (*wire.MsgTx, uint32) { return funding, uint32(i) }
	if opts.OwnFunding {
		own := make([]*wire.MsgTx, len(inputs))
		for i := range inputs {
			tx := wire.NewMsgTx(2)
			s := chainhash.HashH(append(seed[:], byte(i), byte(i>>8)))
			tx.AddTxIn(wire.NewTxIn(wire.NewOutPoint(&s, 0), []byte{txscript.OP_TRUE}, nil))
			tx.AddTxOut(funding.TxOut[i])
			own[i] = tx
		}
		prev = func(i int) (*wire.MsgTx, uint32) { return own[i], 0 }
	}

	spend := wire.NewMsgTx(2)
	for i := range inputs {
		tx, vout := prev(i)
		id := fundingID
		if opts.OwnFunding {
			id = tx.TxHash()
		}
		spend.AddTxIn(&wire.TxIn{PreviousOutPoint: *wire.NewOutPoint(&id, vout), Sequence: wire.MaxTxInSequenceNum - 2})
	}
	changeType := opts.Change
	if changeType == "" {
		changeType = inputs[0]
	}
	changeKey := deviceKey(t, ctx, dev, changeType, net, 1, 0)
	changeSPK, changeRedeem := scriptFor(t, changeKey.pub, changeType)
	pay := total / 2
	spend.AddTxOut(wire.NewTxOut(pay, ExternalScript()))
	spend.AddTxOut(wire.NewTxOut(total-pay-2_000, changeSPK))
	if opts.OpReturn != nil {
		s, err := txscript.NullDataScript(opts.OpReturn)
		if err != nil {
			t.Fatal(err)
		}
		spend.AddTxOut(wire.NewTxOut(0, s))
	}
	p, err := psbt.NewFromUnsignedTx(spend)
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range inputs {
		in := &p.Inputs[i]
		spk, redeem := scriptFor(t, keys[i].pub, st)
		if st == device.ScriptPKH || !opts.OmitNonWitnessUTXO {
			in.NonWitnessUtxo, _ = prev(i)
		}
		if st != device.ScriptPKH {
			in.WitnessUtxo = wire.NewTxOut(funding.TxOut[i].Value, spk)
		}
		in.RedeemScript = redeem
		setDerivation(&in.Bip32Derivation, &in.TaprootBip32Derivation, &in.TaprootInternalKey, keys[i], st, fp)
	}
	out := &p.Outputs[1]
	out.RedeemScript = changeRedeem
	setDerivation(&out.Bip32Derivation, &out.TaprootBip32Derivation, &out.TaprootInternalKey, changeKey, changeType, fp)
	return p
}

func setDerivation(ecdsa *[]*psbt.Bip32Derivation, tap *[]*psbt.TaprootBip32Derivation, internal *[]byte, k key, st device.ScriptType, fp device.Fingerprint) {
	if st == device.ScriptTR {
		x := schnorr.SerializePubKey(k.pub)
		*internal = x
		*tap = []*psbt.TaprootBip32Derivation{{XOnlyPubKey: x, MasterKeyFingerprint: fp.PSBT(), Bip32Path: k.path}}
		return
	}
	*ecdsa = []*psbt.Bip32Derivation{{PubKey: k.pub.SerializeCompressed(), MasterKeyFingerprint: fp.PSBT(), Bip32Path: k.path}}
}

// FinalizeAndExecute finalizes p, extracts the network transaction and runs every input's
// script through btcd's script engine with the standard verification flags.
func FinalizeAndExecute(p *psbt.Packet) (*wire.MsgTx, error) {
	prevOuts := txscript.NewMultiPrevOutFetcher(nil)
	for i, in := range p.UnsignedTx.TxIn {
		pin := p.Inputs[i]
		switch {
		case pin.WitnessUtxo != nil:
			prevOuts.AddPrevOut(in.PreviousOutPoint, pin.WitnessUtxo)
		case pin.NonWitnessUtxo != nil:
			prevOuts.AddPrevOut(in.PreviousOutPoint, pin.NonWitnessUtxo.TxOut[in.PreviousOutPoint.Index])
		default:
			return nil, fmt.Errorf("input %d has no utxo", i)
		}
	}
	if err := psbt.MaybeFinalizeAll(p); err != nil {
		return nil, fmt.Errorf("finalize: %w", err)
	}
	tx, err := psbt.Extract(p)
	if err != nil {
		return nil, fmt.Errorf("extract: %w", err)
	}
	hashes := txscript.NewTxSigHashes(tx, prevOuts)
	for i, in := range tx.TxIn {
		prev := prevOuts.FetchPrevOutput(in.PreviousOutPoint)
		vm, err := txscript.NewEngine(prev.PkScript, tx, i, txscript.StandardVerifyFlags, nil, hashes, prev.Value, prevOuts)
		if err != nil {
			return nil, fmt.Errorf("input %d: engine: %w", i, err)
		}
		if err := vm.Execute(); err != nil {
			return nil, fmt.Errorf("input %d: script does not verify: %w", i, err)
		}
	}
	return tx, nil
}

func serialize(t testing.TB, p *psbt.Packet) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := p.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// MultisigKind selects the multisig output NewMultisigSpend spends.
type MultisigKind string

const (
	MultisigWSH   MultisigKind = "wsh"    // p2wsh(sortedmulti(2, A, B))
	MultisigSHWSH MultisigKind = "sh-wsh" // p2sh(p2wsh(sortedmulti(2, A, B)))
)

// multisigAccounts are the two cosigner accounts of NewMultisigSpend, both held by the
// device under test: m/48'/coin'/0'/2' and m/48'/coin'/1'/2' (BIP-48 script type 2').
func multisigAccounts(net *chaincfg.Params) []hdpath.Path {
	coin := net.HDCoinType + hdpath.Hardened
	return []hdpath.Path{
		{48 + hdpath.Hardened, coin, 0 + hdpath.Hardened, 2 + hdpath.Hardened},
		{48 + hdpath.Hardened, coin, 1 + hdpath.Hardened, 2 + hdpath.Hardened},
	}
}

// multisigScript returns the sortedmulti 2-of-2 witness script of the cosigners' keys at
// /change/index, with the keys and their paths.
func multisigScript(t testing.TB, accts []*hdkeychain.ExtendedKey, paths []hdpath.Path, change, index uint32) ([]byte, []key) {
	t.Helper()
	var keys []key
	for i, a := range accts {
		c, err := a.Derive(change)
		if err == nil {
			c, err = c.Derive(index)
		}
		if err != nil {
			t.Fatal(err)
		}
		pub, err := c.ECPubKey()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key{pub: pub, path: paths[i].Child(change, index)})
	}
	sortKeys(keys)
	b := txscript.NewScriptBuilder().AddOp(txscript.OP_2)
	for _, k := range keys {
		b.AddData(k.pub.SerializeCompressed())
	}
	s, err := b.AddOp(txscript.OP_2).AddOp(txscript.OP_CHECKMULTISIG).Script()
	if err != nil {
		t.Fatal(err)
	}
	return s, keys
}

func sortKeys(keys []key) {
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && bytes.Compare(keys[j].pub.SerializeCompressed(), keys[j-1].pub.SerializeCompressed()) < 0; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
}

func multisigOutput(t testing.TB, ws []byte, kind MultisigKind) (pkScript, redeem []byte) {
	t.Helper()
	h := sha256.Sum256(ws)
	wsh, err := txscript.NewScriptBuilder().AddOp(txscript.OP_0).AddData(h[:]).Script()
	if err != nil {
		t.Fatal(err)
	}
	if kind == MultisigWSH {
		return wsh, nil
	}
	sh, err := txscript.NewScriptBuilder().AddOp(txscript.OP_HASH160).AddData(btcutil.Hash160(wsh)).AddOp(txscript.OP_EQUAL).Script()
	if err != nil {
		t.Fatal(err)
	}
	return sh, wsh
}

// NewMultisigSpend builds a PSBT spending one 2-of-2 sortedmulti output whose two
// cosigner accounts are both held by the device, with multisig change and the cosigners'
// xpubs as PSBT_GLOBAL_XPUB entries. A device signs it once per own key.
func NewMultisigSpend(t testing.TB, ctx context.Context, dev device.Device, net *chaincfg.Params, kind MultisigKind) *psbt.Packet {
	t.Helper()
	fp, err := dev.Fingerprint(ctx)
	if err != nil {
		t.Fatalf("fingerprint: %v", err)
	}
	paths := multisigAccounts(net)
	var accts []*hdkeychain.ExtendedKey
	p := &psbt.Packet{}
	for _, path := range paths {
		xpub, err := dev.XPub(ctx, device.XPubRequest{Path: path, Network: net})
		if err != nil {
			t.Fatalf("xpub %s: %v", path, err)
		}
		k, err := hdkeychain.NewKeyFromString(xpub)
		if err != nil {
			t.Fatal(err)
		}
		accts = append(accts, k)
	}
	ws, keys := multisigScript(t, accts, paths, 0, 0)
	spk, redeem := multisigOutput(t, ws, kind)
	funding := wire.NewMsgTx(2)
	seed := chainhash.HashH([]byte("hwbridge devicetest multisig funding"))
	funding.AddTxIn(wire.NewTxIn(wire.NewOutPoint(&seed, 1), []byte{txscript.OP_TRUE}, nil))
	funding.AddTxOut(wire.NewTxOut(250_000, spk))
	id := funding.TxHash()
	spend := wire.NewMsgTx(2)
	spend.AddTxIn(&wire.TxIn{PreviousOutPoint: *wire.NewOutPoint(&id, 0), Sequence: wire.MaxTxInSequenceNum - 2})
	cws, ckeys := multisigScript(t, accts, paths, 1, 0)
	cspk, credeem := multisigOutput(t, cws, kind)
	spend.AddTxOut(wire.NewTxOut(100_000, ExternalScript()))
	spend.AddTxOut(wire.NewTxOut(148_000, cspk))
	pk, err := psbt.NewFromUnsignedTx(spend)
	if err != nil {
		t.Fatal(err)
	}
	*p = *pk
	in := &p.Inputs[0]
	in.NonWitnessUtxo, in.WitnessUtxo = funding, funding.TxOut[0]
	in.WitnessScript, in.RedeemScript = ws, redeem
	for _, k := range keys {
		in.Bip32Derivation = append(in.Bip32Derivation, &psbt.Bip32Derivation{PubKey: k.pub.SerializeCompressed(), MasterKeyFingerprint: fp.PSBT(), Bip32Path: k.path})
	}
	out := &p.Outputs[1]
	out.WitnessScript, out.RedeemScript = cws, credeem
	for _, k := range ckeys {
		out.Bip32Derivation = append(out.Bip32Derivation, &psbt.Bip32Derivation{PubKey: k.pub.SerializeCompressed(), MasterKeyFingerprint: fp.PSBT(), Bip32Path: k.path})
	}
	for i, a := range accts {
		p.Unknowns = append(p.Unknowns, globalXPubEntry(t, a, fp, paths[i]))
	}
	return p
}

// globalXPubEntry encodes a PSBT_GLOBAL_XPUB (BIP-174 key type 0x01): key 0x01‖78-byte
// serialized xpub, value fingerprint‖path (little-endian uint32s).
func globalXPubEntry(t testing.TB, k *hdkeychain.ExtendedKey, fp device.Fingerprint, path hdpath.Path) *psbt.Unknown {
	t.Helper()
	payload, ver, err := base58.CheckDecode(k.String())
	if err != nil {
		t.Fatal(err)
	}
	keyData := append([]byte{psbtGlobalXPub, ver}, payload...)
	val := binary.BigEndian.AppendUint32(nil, uint32(fp))
	for _, step := range path {
		val = binary.LittleEndian.AppendUint32(val, step)
	}
	return &psbt.Unknown{Key: keyData, Value: val}
}

const psbtGlobalXPub = 0x01
