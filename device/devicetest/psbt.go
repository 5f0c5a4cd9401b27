package devicetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
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
}

// key is one public key of the device with its path.
type key struct {
	pub  *btcec.PublicKey
	path hdpath.Path
}

// deviceKey derives m/purpose'/coin'/0'/change/index from the device's account xpub: the
// suite never needs the seed.
func deviceKey(t *testing.T, ctx context.Context, dev device.Device, st device.ScriptType, net *chaincfg.Params, change, index uint32) key {
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
func scriptFor(t *testing.T, k *btcec.PublicKey, st device.ScriptType) (pkScript, redeem []byte) {
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
func NewSpend(t *testing.T, ctx context.Context, dev device.Device, net *chaincfg.Params, inputs []device.ScriptType, opts SpendOptions) *psbt.Packet {
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

	spend := wire.NewMsgTx(2)
	for i := range inputs {
		spend.AddTxIn(&wire.TxIn{PreviousOutPoint: *wire.NewOutPoint(&fundingID, uint32(i)), Sequence: wire.MaxTxInSequenceNum - 2})
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
			in.NonWitnessUtxo = funding
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

func serialize(t *testing.T, p *psbt.Packet) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := p.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
