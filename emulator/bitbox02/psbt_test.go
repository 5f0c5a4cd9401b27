package bitbox02

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// spendPSBT builds a PSBT spending one output of a funding transaction per input kind (keys
// of w at m/purpose'/coin'/0'/0/i), paying an external p2wpkh and change to
// m/84'/coin'/0'/1/0, with the key origins a wallet puts in a PSBT.
func spendPSBT(t *testing.T, w *emulator.Wallet, net *chaincfg.Params, kinds []emulator.ScriptKind) *psbt.Packet {
	t.Helper()
	coin := uint32(1)
	if net.Net == chaincfg.MainNetParams.Net {
		coin = 0
	}
	fpBE := w.Fingerprint()
	var fb [4]byte
	binary.BigEndian.PutUint32(fb[:], fpBE)
	fp := binary.LittleEndian.Uint32(fb[:])
	purpose := map[emulator.ScriptKind]uint32{emulator.P2SHP2WPKH: 49, emulator.P2WPKH: 84, emulator.P2TR: 86}

	funding := wire.NewMsgTx(2)
	seed := chainhash.HashH([]byte("bitbox02 emulator funding"))
	funding.AddTxIn(wire.NewTxIn(wire.NewOutPoint(&seed, 0), []byte{txscript.OP_TRUE}, nil))
	type key struct {
		path hdpath.Path
		pub  []byte
		kind emulator.ScriptKind
	}
	var keys []key
	var total int64
	for i, k := range kinds {
		path := hdpath.Path{purpose[k] + hardened, coin + hardened, hardened, 0, uint32(i)}
		pub, err := w.PubKey(path)
		if err != nil {
			t.Fatal(err)
		}
		pk, err := emulator.PkScript(pub, k)
		if err != nil {
			t.Fatal(err)
		}
		v := int64(100_000 + 1_000*i)
		total += v
		funding.AddTxOut(wire.NewTxOut(v, pk))
		keys = append(keys, key{path, pub.SerializeCompressed(), k})
	}
	tx := wire.NewMsgTx(2)
	for i := range kinds {
		tx.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Hash: funding.TxHash(), Index: uint32(i)}, Sequence: wire.MaxTxInSequenceNum - 2})
	}
	ext := bytes.Repeat([]byte{0x42}, 20)
	extScript, _ := txscript.NewScriptBuilder().AddOp(txscript.OP_0).AddData(ext).Script()
	changePath := hdpath.Path{84 + hardened, coin + hardened, hardened, 1, 0}
	changePub, err := w.PubKey(changePath)
	if err != nil {
		t.Fatal(err)
	}
	changeScript, _ := emulator.PkScript(changePub, emulator.P2WPKH)
	tx.AddTxOut(wire.NewTxOut(50_000, extScript))
	tx.AddTxOut(wire.NewTxOut(total-50_000-2_000, changeScript))
	p, err := psbt.NewFromUnsignedTx(tx)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		in := &p.Inputs[i]
		in.WitnessUtxo = funding.TxOut[i]
		in.NonWitnessUtxo = funding
		switch k.kind {
		case emulator.P2TR:
			xonly := k.pub[1:]
			in.TaprootInternalKey = xonly
			in.TaprootBip32Derivation = []*psbt.TaprootBip32Derivation{{XOnlyPubKey: xonly, MasterKeyFingerprint: fp, Bip32Path: k.path}}
		default:
			in.Bip32Derivation = []*psbt.Bip32Derivation{{PubKey: k.pub, MasterKeyFingerprint: fp, Bip32Path: k.path}}
			in.SighashType = txscript.SigHashAll
			if k.kind == emulator.P2SHP2WPKH {
				pub, _ := w.PubKey(k.path)
				in.RedeemScript = emulator.P2SHRedeemScript(pub)
			}
		}
	}
	p.Outputs[1].Bip32Derivation = []*psbt.Bip32Derivation{{PubKey: changePub.SerializeCompressed(), MasterKeyFingerprint: fp, Bip32Path: changePath}}
	return p
}

func psbtBase64(t *testing.T, p *psbt.Packet) string {
	t.Helper()
	var buf bytes.Buffer
	if err := p.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

// finalizeAndRun finalises a signed PSBT and runs every input's script: the signatures must
// be valid for the transaction as a node would check it.
func finalizeAndRun(p *psbt.Packet) error {
	prevOuts := txscript.NewMultiPrevOutFetcher(nil)
	for i, in := range p.UnsignedTx.TxIn {
		prevOuts.AddPrevOut(in.PreviousOutPoint, p.Inputs[i].WitnessUtxo)
	}
	for i, in := range p.Inputs {
		if len(in.TaprootKeySpendSig) == 64 {
			if _, err := schnorr.ParseSignature(in.TaprootKeySpendSig); err != nil {
				return fmt.Errorf("input %d: %w", i, err)
			}
		}
	}
	if err := psbt.MaybeFinalizeAll(p); err != nil {
		return err
	}
	tx, err := psbt.Extract(p)
	if err != nil {
		return err
	}
	hashes := txscript.NewTxSigHashes(tx, prevOuts)
	for i, in := range tx.TxIn {
		prev := prevOuts.FetchPrevOutput(in.PreviousOutPoint)
		vm, err := txscript.NewEngine(prev.PkScript, tx, i, txscript.StandardVerifyFlags, nil, hashes, prev.Value, prevOuts)
		if err != nil {
			return fmt.Errorf("input %d: %w", i, err)
		}
		if err := vm.Execute(); err != nil {
			return fmt.Errorf("input %d: %w", i, err)
		}
	}
	return nil
}
