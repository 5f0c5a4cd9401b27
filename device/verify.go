package device

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/hwbridge/hwbridge/internal/hdpath"
	hwpsbt "github.com/hwbridge/hwbridge/psbt"
)

// Verify wraps d so that every signature it returns is checked before the caller sees it
// (design.md: "verify every signature a device returns before it leaves the daemon"):
//
//   - PSBT signatures against the sighash of the input they sign (legacy, BIP-143 or
//     BIP-341) and the key its script commits to;
//   - Ethereum transactions by recovering the sender and comparing it with the device's
//     address for the path, and checking the signed payload is the one asked for;
//   - messages (BIP-137, EIP-191) and EIP-712 hashes by recovering the signer and comparing
//     it with the device's address for the path.
//
// A signature that fails gives an error wrapping ErrBadSignature and nothing else: SignPSBT
// then leaves the packet untouched. Checks that need an address ask the device for it (no
// confirmation on the device).
func Verify(d Device) Device { return &verifier{Device: d} }

type verifier struct{ Device }

func badSig(format string, args ...any) error {
	return fmt.Errorf("verify: %w: "+format, append([]any{ErrBadSignature}, args...)...)
}

// SignPSBT signs a copy of p, checks every new signature, and only then copies them to p.
func (v *verifier) SignPSBT(ctx context.Context, p *psbt.Packet, net *chaincfg.Params) error {
	work, err := clonePSBT(p)
	if err != nil {
		return err
	}
	if err := v.Device.SignPSBT(ctx, work, net); err != nil {
		return err
	}
	if len(work.Inputs) != len(p.Inputs) || work.UnsignedTx.TxHash() != p.UnsignedTx.TxHash() {
		return badSig("the device changed the transaction it was given")
	}
	prevOuts := txscript.NewMultiPrevOutFetcher(nil)
	for i, in := range work.UnsignedTx.TxIn {
		if out := spentOutput(work, i); out != nil {
			prevOuts.AddPrevOut(in.PreviousOutPoint, out)
		}
	}
	hashes := txscript.NewTxSigHashes(work.UnsignedTx, prevOuts)
	for i := range work.Inputs {
		for _, ps := range work.Inputs[i].PartialSigs {
			if hasSig(p.Inputs[i].PartialSigs, ps) {
				continue
			}
			if err := verifyECDSAInput(work, i, ps, hashes); err != nil {
				return fmt.Errorf("input %d: %w", i, err)
			}
		}
		if ts := work.Inputs[i].TaprootKeySpendSig; len(ts) > 0 && !bytes.Equal(ts, p.Inputs[i].TaprootKeySpendSig) {
			if err := verifyTaprootInput(work, i, ts, hashes, prevOuts); err != nil {
				return fmt.Errorf("input %d: %w", i, err)
			}
		}
	}
	for i := range p.Inputs {
		p.Inputs[i].PartialSigs = work.Inputs[i].PartialSigs
		p.Inputs[i].TaprootKeySpendSig = work.Inputs[i].TaprootKeySpendSig
	}
	return nil
}

func clonePSBT(p *psbt.Packet) (*psbt.Packet, error) {
	if p == nil || p.UnsignedTx == nil {
		return nil, fmt.Errorf("%w: empty psbt", ErrInvalidInput)
	}
	c, err := hwpsbt.Clone(p)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	return c, nil
}

func hasSig(sigs []*psbt.PartialSig, s *psbt.PartialSig) bool {
	for _, o := range sigs {
		if bytes.Equal(o.PubKey, s.PubKey) && bytes.Equal(o.Signature, s.Signature) {
			return true
		}
	}
	return false
}

// spentOutput returns the output input i spends, or nil if the PSBT does not say.
func spentOutput(p *psbt.Packet, i int) *wire.TxOut {
	in := &p.Inputs[i]
	if in.WitnessUtxo != nil {
		return in.WitnessUtxo
	}
	op := p.UnsignedTx.TxIn[i].PreviousOutPoint
	if nw := in.NonWitnessUtxo; nw != nil && nw.TxHash() == op.Hash && int(op.Index) < len(nw.TxOut) {
		return nw.TxOut[op.Index]
	}
	return nil
}

func verifyECDSAInput(p *psbt.Packet, i int, ps *psbt.PartialSig, hashes *txscript.TxSigHashes) error {
	out := spentOutput(p, i)
	if out == nil {
		return badSig("no utxo to check the signature against")
	}
	if len(ps.Signature) < 2 {
		return badSig("empty signature")
	}
	hType := txscript.SigHashType(ps.Signature[len(ps.Signature)-1])
	sig, err := ecdsa.ParseDERSignature(ps.Signature[:len(ps.Signature)-1])
	if err != nil {
		return badSig("signature is not DER: %v", err)
	}
	pub, err := btcec.ParsePubKey(ps.PubKey)
	if err != nil {
		return badSig("public key: %v", err)
	}
	in := &p.Inputs[i]
	script := out.PkScript
	if txscript.IsPayToScriptHash(script) {
		if !bytes.Equal(script[2:22], btcutil.Hash160(in.RedeemScript)) {
			return badSig("redeem script does not match the output")
		}
		script = in.RedeemScript
	}
	var digest []byte
	keyH := btcutil.Hash160(ps.PubKey)
	switch txscript.GetScriptClass(script) {
	case txscript.WitnessV0PubKeyHashTy:
		if !bytes.Equal(script[2:], keyH) {
			return badSig("signed with a key the output does not pay to")
		}
		digest, err = txscript.CalcWitnessSigHash(script, hashes, hType, p.UnsignedTx, i, out.Value)
	case txscript.WitnessV0ScriptHashTy:
		if !bytes.Equal(script[2:], chainhash.HashB(in.WitnessScript)) || !pushesKey(in.WitnessScript, ps.PubKey) {
			return badSig("signed with a key the witness script does not hold")
		}
		digest, err = txscript.CalcWitnessSigHash(in.WitnessScript, hashes, hType, p.UnsignedTx, i, out.Value)
	case txscript.PubKeyHashTy:
		if !bytes.Equal(script[3:23], keyH) {
			return badSig("signed with a key the output does not pay to")
		}
		digest, err = txscript.CalcSignatureHash(script, hType, p.UnsignedTx, i)
	case txscript.MultiSigTy:
		if !pushesKey(script, ps.PubKey) {
			return badSig("signed with a key the multisig script does not hold")
		}
		digest, err = txscript.CalcSignatureHash(script, hType, p.UnsignedTx, i)
	default:
		return badSig("cannot check a signature for a %s output", txscript.GetScriptClass(script))
	}
	if err != nil {
		return badSig("sighash: %v", err)
	}
	if !sig.Verify(digest, pub) {
		return badSig("ecdsa signature does not verify against the sighash")
	}
	return nil
}

func pushesKey(script, pub []byte) bool {
	pushes, err := txscript.PushedData(script)
	if err != nil {
		return false
	}
	for _, b := range pushes {
		if bytes.Equal(b, pub) {
			return true
		}
	}
	return false
}

func verifyTaprootInput(p *psbt.Packet, i int, raw []byte, hashes *txscript.TxSigHashes, prevOuts txscript.PrevOutputFetcher) error {
	out := spentOutput(p, i)
	if out == nil {
		return badSig("no utxo to check the signature against")
	}
	if txscript.GetScriptClass(out.PkScript) != txscript.WitnessV1TaprootTy {
		return badSig("taproot signature for a non-taproot output")
	}
	for j := range p.UnsignedTx.TxIn {
		if spentOutput(p, j) == nil {
			return badSig("taproot sighash needs every spent output; input %d has none", j)
		}
	}
	hType := txscript.SigHashDefault
	switch len(raw) {
	case schnorr.SignatureSize:
	case schnorr.SignatureSize + 1:
		hType = txscript.SigHashType(raw[64])
		if hType == txscript.SigHashDefault {
			return badSig("65-byte taproot signature with sighash 0")
		}
	default:
		return badSig("taproot signature of %d bytes", len(raw))
	}
	sig, err := schnorr.ParseSignature(raw[:schnorr.SignatureSize])
	if err != nil {
		return badSig("schnorr signature: %v", err)
	}
	key, err := schnorr.ParsePubKey(out.PkScript[2:])
	if err != nil {
		return badSig("output key: %v", err)
	}
	digest, err := txscript.CalcTaprootSignatureHash(hashes, hType, p.UnsignedTx, i, prevOuts)
	if err != nil {
		return badSig("sighash: %v", err)
	}
	if !sig.Verify(digest, key) {
		return badSig("schnorr signature does not verify against the output key")
	}
	return nil
}

// SignEthTx checks that the signed transaction carries the payload asked for and that its
// sender is the device's address for path.
func (v *verifier) SignEthTx(ctx context.Context, path hdpath.Path, tx *types.Transaction, chainID *big.Int) (*types.Transaction, error) {
	signed, err := v.Device.SignEthTx(ctx, path, tx, chainID)
	if err != nil {
		return nil, err
	}
	if signed == nil {
		return nil, badSig("no transaction returned")
	}
	signer := types.LatestSignerForChainID(chainID)
	if signed.Type() != tx.Type() || signer.Hash(signed) != signer.Hash(tx) {
		return nil, badSig("the device signed a different transaction")
	}
	from, err := types.Sender(signer, signed)
	if err != nil {
		return nil, badSig("sender: %v", err)
	}
	if err := v.checkETHSigner(ctx, path, from); err != nil {
		return nil, err
	}
	return signed, nil
}

func (v *verifier) checkETHSigner(ctx context.Context, path hdpath.Path, from common.Address) error {
	want, err := v.Device.Address(ctx, AddressRequest{Chain: ChainETH, Path: path})
	if err != nil {
		return fmt.Errorf("verify: address for %s: %w", path, err)
	}
	if !common.IsHexAddress(want) || common.HexToAddress(want) != from {
		return badSig("signed by %s, but the device's address for %s is %s", from.Hex(), path, want)
	}
	return nil
}

// SignMessage recovers the signer and compares it with the device's address for the path.
func (v *verifier) SignMessage(ctx context.Context, req MessageRequest) (MessageSignature, error) {
	sig, err := v.Device.SignMessage(ctx, req)
	if err != nil {
		return MessageSignature{}, err
	}
	switch req.Chain {
	case ChainETH:
		from, err := recoverETH(accounts.TextHash(req.Message), sig.Signature)
		if err != nil {
			return MessageSignature{}, err
		}
		if sig.Address != "" && (!common.IsHexAddress(sig.Address) || common.HexToAddress(sig.Address) != from) {
			return MessageSignature{}, badSig("the device says %s signed, but the signature recovers %s", sig.Address, from.Hex())
		}
		if err := v.checkETHSigner(ctx, req.Path, from); err != nil {
			return MessageSignature{}, err
		}
	case ChainBTC:
		addr, err := RecoverBitcoinMessage(req.Message, sig.Signature, req.Script, req.Network)
		if err != nil {
			return MessageSignature{}, err
		}
		if sig.Address != addr {
			return MessageSignature{}, badSig("the device says %s signed, but the signature recovers %s", sig.Address, addr)
		}
		want, err := v.Device.Address(ctx, AddressRequest{Chain: ChainBTC, Path: req.Path, Script: scriptOrPKH(req.Script), Network: req.Network})
		if err != nil {
			return MessageSignature{}, fmt.Errorf("verify: address for %s: %w", req.Path, err)
		}
		if want != addr {
			return MessageSignature{}, badSig("signed by %s, but the device's address for %s is %s", addr, req.Path, want)
		}
	default:
		return MessageSignature{}, fmt.Errorf("verify: %w: chain %q", ErrInvalidInput, string(req.Chain))
	}
	return sig, nil
}

// SignTypedHash recovers the signer of the EIP-712 digest and compares it with the device's
// address for path.
func (v *verifier) SignTypedHash(ctx context.Context, path hdpath.Path, domainSeparator [32]byte, messageHash []byte) ([]byte, error) {
	sig, err := v.Device.SignTypedHash(ctx, path, domainSeparator, messageHash)
	if err != nil {
		return nil, err
	}
	from, err := recoverETH(TypedDataDigest(domainSeparator, messageHash), sig)
	if err != nil {
		return nil, err
	}
	if err := v.checkETHSigner(ctx, path, from); err != nil {
		return nil, err
	}
	return sig, nil
}

// TypedDataDigest is the EIP-712 signing digest keccak256(0x19 0x01 ‖ domainSeparator ‖
// messageHash); messageHash is omitted for domain-only data.
func TypedDataDigest(domainSeparator [32]byte, messageHash []byte) []byte {
	return crypto.Keccak256([]byte{0x19, 0x01}, domainSeparator[:], messageHash)
}

// recoverETH recovers the address from a 65-byte r‖s‖v signature with v 27 or 28 (0 or 1
// accepted too).
func recoverETH(digest, sig []byte) (common.Address, error) {
	if len(sig) != crypto.SignatureLength {
		return common.Address{}, badSig("signature of %d bytes, want 65", len(sig))
	}
	rsv := append([]byte{}, sig...)
	if rsv[64] >= 27 {
		rsv[64] -= 27
	}
	if rsv[64] > 1 {
		return common.Address{}, badSig("recovery byte %d", sig[64])
	}
	pub, err := crypto.SigToPub(digest, rsv)
	if err != nil {
		return common.Address{}, badSig("recover: %v", err)
	}
	return crypto.PubkeyToAddress(*pub), nil
}

func scriptOrPKH(s ScriptType) ScriptType {
	if s == "" {
		return ScriptPKH
	}
	return s
}

// BitcoinMessageDigest is the BIP-137 digest: SHA-256d of the varint-prefixed magic
// "Bitcoin Signed Message:\n" and the varint-prefixed message.
func BitcoinMessageDigest(msg []byte) []byte {
	var buf bytes.Buffer
	const magic = "Bitcoin Signed Message:\n"
	_ = wire.WriteVarString(&buf, 0, magic)
	_ = wire.WriteVarBytes(&buf, 0, msg)
	return chainhash.DoubleHashB(buf.Bytes())
}

// RecoverBitcoinMessage recovers the address that made a BIP-137 signature (65 bytes,
// header‖r‖s) for the script type (empty means pkh). The header must agree with the script
// type: 27–34 p2pkh, 35–38 p2sh-p2wpkh, 39–42 p2wpkh.
func RecoverBitcoinMessage(msg, sig []byte, script ScriptType, net *chaincfg.Params) (string, error) {
	if net == nil {
		net = &chaincfg.MainNetParams
	}
	if len(sig) != 65 {
		return "", badSig("message signature of %d bytes, want 65", len(sig))
	}
	h := sig[0]
	if h < 27 || h > 42 {
		return "", badSig("header byte %d is not BIP-137", h)
	}
	compact := append([]byte{}, sig...)
	compressed := h >= 31
	compact[0] = 27 + (h-27)&3
	if compressed {
		compact[0] += 4
	}
	pub, wasCompressed, err := ecdsa.RecoverCompact(compact, BitcoinMessageDigest(msg))
	if err != nil {
		return "", badSig("recover: %v", err)
	}
	var pubBytes []byte
	if wasCompressed {
		pubBytes = pub.SerializeCompressed()
	} else {
		pubBytes = pub.SerializeUncompressed()
	}
	keyHash := btcutil.Hash160(pubBytes)
	var addr btcutil.Address
	switch scriptOrPKH(script) {
	case ScriptPKH:
		if h > 34 {
			return "", badSig("header %d is for a segwit address, but a p2pkh signature was asked for", h)
		}
		addr, err = btcutil.NewAddressPubKeyHash(keyHash, net)
	case ScriptSHWPKH:
		if h < 35 || h > 38 {
			return "", badSig("header %d is not a p2sh-p2wpkh header (35-38)", h)
		}
		var redeem []byte
		redeem, err = txscript.NewScriptBuilder().AddOp(txscript.OP_0).AddData(keyHash).Script()
		if err == nil {
			addr, err = btcutil.NewAddressScriptHash(redeem, net)
		}
	case ScriptWPKH:
		if h < 39 {
			return "", badSig("header %d is not a p2wpkh header (39-42)", h)
		}
		addr, err = btcutil.NewAddressWitnessPubKeyHash(keyHash, net)
	default:
		return "", fmt.Errorf("verify: message signatures for script type %q: %w", string(script), errors.ErrUnsupported)
	}
	if err != nil {
		return "", badSig("address: %v", err)
	}
	return addr.EncodeAddress(), nil
}
