// Package qrsigner is hwbridge's emulated QR-code signer, the persona of an air-gapped
// device such as a SafePal S1 or a Keystone: it has no USB protocol at all. It shows its
// account export as a UR (crypto-account, BCR-2020-015), scans the unsigned PSBT as UR parts
// (crypto-psbt, fountain-coded, in any order and with losses), asks the user to confirm the
// outputs and the fee on its screen (emulator.Approver), signs every input its seed owns
// (P2PKH, P2SH-P2WPKH, P2WPKH, P2WSH and P2SH-P2WSH with its key in the witness script,
// P2TR key path) and answers with the signed PSBT as UR parts.
//
// Parts come in and go out as text (what a camera reads from and a screen shows in QR
// codes) or as PNG images of QR codes (Dir: a folder exchanged with the host, like hwemu
// --qr DIR).
package qrsigner

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/bits"
	"slices"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	hwpsbt "github.com/hwbridge/hwbridge/psbt"
	"github.com/hwbridge/hwbridge/ur"
)

// Name is the device name on the emulator's screens.
const Name = "QR signer"

// ErrNothingToSign: no input of the PSBT belongs to this device's seed.
var ErrNothingToSign = errors.New("qrsigner: no input of this PSBT belongs to this wallet")

// ErrRejected is returned when the person declines the transaction on the signer's screen;
// ErrMissingAmount when an input's amount is missing, so the fee cannot be shown. They are
// the emulator's own (internal/deptest keeps emulators apart from the drivers' errors).
var (
	ErrRejected      = errors.New("qrsigner: rejected on the device")
	ErrMissingAmount = errors.New("qrsigner: an input's amount is missing: the fee cannot be shown")
)

// Signer is one emulated QR device.
type Signer struct {
	w        *emulator.Wallet
	approver *emulator.Approver
	net      *chaincfg.Params
	// MaxFragmentLen is the largest fragment of the parts it shows (ur.DefaultMaxFragmentLen
	// when 0).
	MaxFragmentLen int
}

// New is a signer with wallet w on network net, confirming through approver.
func New(w *emulator.Wallet, approver *emulator.Approver, net *chaincfg.Params) *Signer {
	if approver == nil {
		approver = emulator.NewApprover(emulator.PolicyAuto)
	}
	return &Signer{w: w, approver: approver, net: net}
}

// accountScripts are the single-key accounts the device exports: script expressions and
// BIP-44/49/84/86 purposes.
var accountScripts = []struct {
	scripts []uint64
	purpose uint32
}{
	{[]uint64{ur.TagPKH}, 44}, {[]uint64{ur.TagSH, ur.TagWPKH}, 49}, {[]uint64{ur.TagWPKH}, 84}, {[]uint64{ur.TagTR}, 86},
}

// AccountExport is the device's "connect software wallet" QR code: the crypto-account UR
// of account number account (xpubs at m/44'/49'/84'/86' / coin' / account').
func (s *Signer) AccountExport(account uint32) (ur.UR, error) {
	acct := &ur.Account{MasterFingerprint: s.w.Fingerprint()}
	for _, a := range accountScripts {
		path := hdpath.Path{a.purpose + hdpath.Hardened, s.net.HDCoinType + hdpath.Hardened, account + hdpath.Hardened}
		k, err := s.w.Public(path, s.net.HDPublicKeyID[:])
		if err != nil {
			return ur.UR{}, err
		}
		pub, err := k.ECPubKey()
		if err != nil {
			return ur.UR{}, err
		}
		parent, err := s.w.PubKey(path[:len(path)-1])
		if err != nil {
			return ur.UR{}, err
		}
		acct.Outputs = append(acct.Outputs, ur.Output{Scripts: a.scripts, Key: &ur.HDKey{
			KeyData: pub.SerializeCompressed(), ChainCode: k.ChainCode(),
			Origin:            &ur.Keypath{Path: path, Fingerprint: s.w.Fingerprint(), Depth: len(path)},
			ParentFingerprint: fingerprint(parent), Testnet: s.net.Net != chaincfg.MainNetParams.Net,
		}})
	}
	return ur.AccountUR(acct), nil
}

func fingerprint(pub *btcec.PublicKey) uint32 {
	h := btcutil.Hash160(pub.SerializeCompressed())
	return uint32(h[0])<<24 | uint32(h[1])<<16 | uint32(h[2])<<8 | uint32(h[3])
}

// Scan reads the parts of an unsigned PSBT (any order, repeats and losses allowed, as a
// camera catches an animated QR code), signs it and returns the signed PSBT's parts to show:
// its whole fountain sequence once, then as many mixed parts again (a scanner that missed
// some frames recovers them from those).
func (s *Signer) Scan(ctx context.Context, parts []string) ([]string, error) {
	d := ur.NewDecoder()
	for _, p := range parts {
		if err := d.Receive(p); err != nil {
			continue // a misread frame: a camera just reads the next one
		}
		if d.Done() {
			break
		}
	}
	u, err := d.Result()
	if err != nil {
		return nil, fmt.Errorf("qrsigner: %w", err)
	}
	unsigned, err := ur.DecodePSBT(u)
	if err != nil {
		return nil, fmt.Errorf("qrsigner: %w", err)
	}
	signed, err := s.Sign(ctx, unsigned)
	if err != nil {
		return nil, err
	}
	e, err := ur.NewEncoder(ur.PSBT(signed), s.MaxFragmentLen)
	if err != nil {
		return nil, err
	}
	if e.SeqLen() == 1 {
		return e.Parts(1), nil
	}
	return e.Parts(2 * e.SeqLen()), nil
}

// Sign shows the PSBT's outputs and fee, waits for the user's confirmation and adds this
// wallet's signature to every input it owns (binary BIP-174 in and out). Only SIGHASH_ALL
// (and DEFAULT for taproot) is signed, as the devices it stands for do by default.
func (s *Signer) Sign(ctx context.Context, bin []byte) ([]byte, error) {
	p, err := hwpsbt.DecodeBinary(bin)
	if err != nil {
		return nil, fmt.Errorf("qrsigner: %w", err)
	}
	sum, err := hwpsbt.Describe(p, s.net)
	if err != nil {
		return nil, fmt.Errorf("qrsigner: %w", err)
	}
	if sum.Fee == nil {
		return nil, ErrMissingAmount
	}
	lines := []string{}
	for _, o := range sum.Outputs {
		lines = append(lines, fmt.Sprintf("%s %d sat", o.Address, o.Amount))
	}
	lines = append(lines, fmt.Sprintf("fee %d sat", *sum.Fee))
	ok, err := s.approver.Ask(ctx, emulator.Screen{Device: Name, Title: "Sign transaction", Lines: lines})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrRejected
	}
	fetcher := txscript.NewMultiPrevOutFetcher(nil)
	for i, in := range p.UnsignedTx.TxIn {
		out := hwpsbt.SpentOutput(p, i)
		if out == nil {
			return nil, fmt.Errorf("qrsigner: input %d: no spent output", i)
		}
		fetcher.AddPrevOut(in.PreviousOutPoint, out)
	}
	hashes := txscript.NewTxSigHashes(p.UnsignedTx, fetcher)
	signedAny := false
	for i := range p.Inputs {
		n, err := s.signInput(p, i, hashes)
		if err != nil {
			return nil, fmt.Errorf("qrsigner: input %d: %w", i, err)
		}
		signedAny = signedAny || n > 0
	}
	if !signedAny {
		return nil, ErrNothingToSign
	}
	return hwpsbt.Encode(p)
}

// signInput signs input i with each of this wallet's keys its derivations name; it returns
// how many signatures it added.
func (s *Signer) signInput(p *psbt.Packet, i int, hashes *txscript.TxSigHashes) (int, error) {
	in := &p.Inputs[i]
	tx := p.UnsignedTx
	out := hwpsbt.SpentOutput(p, i)
	mine := s.w.Fingerprint()
	if in.NonWitnessUtxo != nil && in.NonWitnessUtxo.TxHash() != tx.TxIn[i].PreviousOutPoint.Hash {
		return 0, errors.New("its previous transaction is not the one it spends")
	}
	n := 0
	for _, d := range in.TaprootBip32Derivation {
		if bits.ReverseBytes32(d.MasterKeyFingerprint) != mine || len(d.LeafHashes) != 0 {
			continue
		}
		priv, err := s.w.PrivKey(hdpath.Path(d.Bip32Path))
		if err != nil {
			return 0, err
		}
		if !bytes.Equal(schnorr.SerializePubKey(priv.PubKey()), d.XOnlyPubKey) || !bytes.Equal(in.TaprootInternalKey, d.XOnlyPubKey) {
			return 0, fmt.Errorf("the key at %s is not the input's internal key", hdpath.Path(d.Bip32Path))
		}
		want, err := txscript.PayToTaprootScript(txscript.ComputeTaprootKeyNoScript(priv.PubKey()))
		if err != nil {
			return 0, err
		}
		if !bytes.Equal(out.PkScript, want) {
			return 0, errors.New("its taproot output is not this key's (with no script tree)")
		}
		ht := txscript.SigHashDefault
		if in.SighashType != 0 && in.SighashType != txscript.SigHashDefault && in.SighashType != txscript.SigHashAll {
			return 0, fmt.Errorf("sighash type %#x is refused", in.SighashType)
		} else if in.SighashType != 0 {
			ht = in.SighashType
		}
		sig, err := txscript.RawTxInTaprootSignature(tx, hashes, i, out.Value, out.PkScript, nil, ht, priv)
		if err != nil {
			return 0, err
		}
		in.TaprootKeySpendSig = sig
		n++
	}
	for _, d := range in.Bip32Derivation {
		if bits.ReverseBytes32(d.MasterKeyFingerprint) != mine {
			continue
		}
		priv, err := s.w.PrivKey(hdpath.Path(d.Bip32Path))
		if err != nil {
			return 0, err
		}
		pub := priv.PubKey().SerializeCompressed()
		if !bytes.Equal(pub, d.PubKey) {
			return 0, fmt.Errorf("the key at %s is not the one the PSBT names", hdpath.Path(d.Bip32Path))
		}
		if in.SighashType != 0 && in.SighashType != txscript.SigHashAll {
			return 0, fmt.Errorf("sighash type %#x is refused", in.SighashType)
		}
		sig, err := s.ecdsa(p, i, hashes, out, pub, priv)
		if err != nil {
			return 0, err
		}
		in.PartialSigs = slices.DeleteFunc(in.PartialSigs, func(ps *psbt.PartialSig) bool { return bytes.Equal(ps.PubKey, pub) })
		in.PartialSigs = append(in.PartialSigs, &psbt.PartialSig{PubKey: pub, Signature: sig})
		n++
	}
	return n, nil
}

// ecdsa signs input i for pub by the script type of the output it spends.
func (s *Signer) ecdsa(p *psbt.Packet, i int, hashes *txscript.TxSigHashes, out *wire.TxOut, pub []byte, priv *btcec.PrivateKey) ([]byte, error) {
	in := &p.Inputs[i]
	tx := p.UnsignedTx
	pkh, err := txscript.NewScriptBuilder().AddOp(txscript.OP_0).AddData(btcutil.Hash160(pub)).Script()
	if err != nil {
		return nil, err
	}
	p2pkh, err := txscript.NewScriptBuilder().AddOp(txscript.OP_DUP).AddOp(txscript.OP_HASH160).AddData(btcutil.Hash160(pub)).
		AddOp(txscript.OP_EQUALVERIFY).AddOp(txscript.OP_CHECKSIG).Script()
	if err != nil {
		return nil, err
	}
	script := out.PkScript
	if txscript.IsPayToScriptHash(script) {
		if in.RedeemScript == nil || !bytes.Equal(script, mustP2SH(in.RedeemScript)) {
			return nil, errors.New("its redeem script is missing or not the spent output's")
		}
		script = in.RedeemScript
	}
	switch {
	case bytes.Equal(script, pkh): // P2WPKH, nested or native
		if in.WitnessUtxo == nil && in.NonWitnessUtxo == nil {
			return nil, errors.New("no spent output")
		}
		return txscript.RawTxInWitnessSignature(tx, hashes, i, out.Value, p2pkh, txscript.SigHashAll, priv)
	case txscript.IsPayToWitnessScriptHash(script):
		if in.WitnessScript == nil || !bytes.Equal(script, mustP2WSH(in.WitnessScript)) || !bytes.Contains(in.WitnessScript, pub) {
			return nil, errors.New("its witness script is missing, not the spent output's or without this key")
		}
		return txscript.RawTxInWitnessSignature(tx, hashes, i, out.Value, in.WitnessScript, txscript.SigHashAll, priv)
	case bytes.Equal(script, p2pkh):
		if in.NonWitnessUtxo == nil {
			return nil, errors.New("a legacy input needs its previous transaction")
		}
		return txscript.RawTxInSignature(tx, i, out.PkScript, txscript.SigHashAll, priv)
	}
	return nil, fmt.Errorf("its script %x is not one this wallet signs", script)
}

func mustP2SH(redeem []byte) []byte {
	s, _ := txscript.NewScriptBuilder().AddOp(txscript.OP_HASH160).AddData(btcutil.Hash160(redeem)).AddOp(txscript.OP_EQUAL).Script()
	return s
}

func mustP2WSH(ws []byte) []byte {
	h := sha256.Sum256(ws)
	s, _ := txscript.NewScriptBuilder().AddOp(txscript.OP_0).AddData(h[:]).Script()
	return s
}
