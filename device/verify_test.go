package device_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/tyler-smith/go-bip39"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/devicetest"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// softDevice is a software signer holding the test mnemonic, with switches that make it
// misbehave the ways Verify must catch. It exists only to test Verify and the suite.
type softDevice struct {
	mu      sync.Mutex // hdkeychain caches public keys lazily: serialise, as a device does
	master  *hdkeychain.ExtendedKey
	reject  bool
	corrupt string // "", "psbt-ecdsa", "psbt-taproot", "psbt-wrongkey", "eth-wrongkey", "eth-payload", "msg-btc", "msg-eth", "msg-address", "typed"
}

func newSoft(t *testing.T) *softDevice {
	t.Helper()
	m, err := hdkeychain.NewMaster(bip39.NewSeed(devicetest.Mnemonic, ""), &chaincfg.MainNetParams)
	if err != nil {
		t.Fatal(err)
	}
	return &softDevice{master: m}
}

func (s *softDevice) priv(path []uint32) *btcec.PrivateKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.master
	for _, step := range path {
		var err error
		if k, err = k.Derive(step); err != nil {
			panic(err) // test helper: the mnemonic's keys always derive
		}
	}
	p, _ := k.ECPrivKey()
	return p
}

func (s *softDevice) Close() error { return nil }

func (s *softDevice) Features(context.Context) (device.Features, error) {
	return device.Features{Family: "soft", Model: "soft", Version: "1.0.0", Initialized: true, Unlocked: true, Emulator: true,
		Capabilities: device.Capabilities{Taproot: true, Multisig: true, EIP1559: true, EIP712Hash: true, DisplayAddress: true}}, nil
}

func (s *softDevice) Fingerprint(context.Context) (device.Fingerprint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pub, _ := s.master.ECPubKey()
	h := btcutil.Hash160(pub.SerializeCompressed())
	return device.Fingerprint(uint32(h[0])<<24 | uint32(h[1])<<16 | uint32(h[2])<<8 | uint32(h[3])), nil
}

func (s *softDevice) XPub(_ context.Context, req device.XPubRequest) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.master
	for _, step := range req.Path {
		k, _ = k.Derive(step)
	}
	n, err := k.Neuter()
	if err != nil {
		return "", err
	}
	if req.Network != nil {
		n.SetNet(req.Network)
	}
	return n.String(), nil
}

func (s *softDevice) Address(_ context.Context, req device.AddressRequest) (string, error) {
	if req.Display && s.reject {
		return "", device.ErrUserRejected
	}
	pub := s.priv(req.Path).PubKey()
	if req.Chain == device.ChainETH {
		return crypto.PubkeyToAddress(*pub.ToECDSA()).Hex(), nil
	}
	return btcAddress(pub, req.Script, req.Network)
}

func btcAddress(pub *btcec.PublicKey, st device.ScriptType, net *chaincfg.Params) (string, error) {
	if net == nil {
		net = &chaincfg.MainNetParams
	}
	h := btcutil.Hash160(pub.SerializeCompressed())
	var a btcutil.Address
	var err error
	switch st {
	case device.ScriptPKH, "":
		a, err = btcutil.NewAddressPubKeyHash(h, net)
	case device.ScriptWPKH:
		a, err = btcutil.NewAddressWitnessPubKeyHash(h, net)
	case device.ScriptSHWPKH:
		redeem, _ := txscript.NewScriptBuilder().AddOp(txscript.OP_0).AddData(h).Script()
		a, err = btcutil.NewAddressScriptHash(redeem, net)
	case device.ScriptTR:
		a, err = btcutil.NewAddressTaproot(schnorr.SerializePubKey(txscript.ComputeTaprootKeyNoScript(pub)), net)
	default:
		return "", fmt.Errorf("%w: script %q", device.ErrInvalidInput, st)
	}
	if err != nil {
		return "", err
	}
	return a.EncodeAddress(), nil
}

func (s *softDevice) SignPSBT(ctx context.Context, p *psbt.Packet, net *chaincfg.Params) error {
	if s.reject {
		return device.ErrUserRejected
	}
	if net == nil {
		net = &chaincfg.MainNetParams
	}
	fp, _ := s.Fingerprint(ctx)
	prevOuts := txscript.NewMultiPrevOutFetcher(nil)
	for i, in := range p.UnsignedTx.TxIn {
		out := p.Inputs[i].WitnessUtxo
		if out == nil {
			out = p.Inputs[i].NonWitnessUtxo.TxOut[in.PreviousOutPoint.Index]
		}
		prevOuts.AddPrevOut(in.PreviousOutPoint, out)
	}
	hashes := txscript.NewTxSigHashes(p.UnsignedTx, prevOuts)
	type sig struct {
		i        int
		pub, sig []byte
		taproot  bool
	}
	var sigs []sig
	for i := range p.Inputs {
		in := &p.Inputs[i]
		prev := prevOuts.FetchPrevOutput(p.UnsignedTx.TxIn[i].PreviousOutPoint)
		var paths [][]uint32
		for _, d := range in.Bip32Derivation {
			if device.FingerprintFromPSBT(d.MasterKeyFingerprint) == fp {
				paths = append(paths, d.Bip32Path)
			}
		}
		for _, d := range in.TaprootBip32Derivation {
			if device.FingerprintFromPSBT(d.MasterKeyFingerprint) == fp {
				paths = append(paths, d.Bip32Path)
			}
		}
		if paths == nil {
			return fmt.Errorf("%w: input %d is not ours", device.ErrInvalidInput, i)
		}
		for _, path := range paths {
			if len(path) > 1 && path[1] != net.HDCoinType+hdpath.Hardened {
				return fmt.Errorf("%w: input %d is for another network", device.ErrInvalidInput, i)
			}
			key := s.priv(path)
			if s.corrupt == "psbt-wrongkey" {
				key = s.priv(hdpath.MustParse("m/1'"))
			}
			pub := s.priv(path).PubKey().SerializeCompressed()
			var sg []byte
			var err error
			switch cls := txscript.GetScriptClass(prev.PkScript); cls {
			case txscript.WitnessV1TaprootTy:
				sg, err = txscript.RawTxInTaprootSignature(p.UnsignedTx, hashes, i, prev.Value, prev.PkScript, nil, txscript.SigHashDefault, key)
				if err == nil && s.corrupt == "psbt-taproot" {
					sg[10] ^= 1
				}
				sigs = append(sigs, sig{i: i, sig: sg, taproot: true})
			case txscript.PubKeyHashTy:
				sg, err = txscript.RawTxInSignature(p.UnsignedTx, i, prev.PkScript, txscript.SigHashAll, key)
				sigs = append(sigs, sig{i: i, pub: pub, sig: sg})
			default:
				script := prev.PkScript
				if cls == txscript.ScriptHashTy {
					script = in.RedeemScript
				}
				if len(in.WitnessScript) > 0 {
					script = in.WitnessScript
				}
				sg, err = txscript.RawTxInWitnessSignature(p.UnsignedTx, hashes, i, prev.Value, script, txscript.SigHashAll, key)
				sigs = append(sigs, sig{i: i, pub: pub, sig: sg})
			}
			if err != nil {
				return err
			}
		}
	}
	for _, sg := range sigs {
		if sg.taproot {
			p.Inputs[sg.i].TaprootKeySpendSig = sg.sig
			continue
		}
		if s.corrupt == "psbt-ecdsa" {
			// Re-sign a different digest: a well-formed signature that does not verify.
			bad := ecdsa.Sign(s.priv(hdpath.MustParse("m/84'/0'/0'/0/0")), make([]byte, 32)).Serialize()
			sg.sig = append(bad, byte(txscript.SigHashAll))
		}
		p.Inputs[sg.i].PartialSigs = append(p.Inputs[sg.i].PartialSigs, &psbt.PartialSig{PubKey: sg.pub, Signature: sg.sig})
	}
	return nil
}

func (s *softDevice) SignEthTx(_ context.Context, path hdpath.Path, tx *types.Transaction, chainID *big.Int) (*types.Transaction, error) {
	if s.reject {
		return nil, device.ErrUserRejected
	}
	key := s.priv(path)
	if s.corrupt == "eth-wrongkey" {
		key = s.priv(hdpath.MustParse("m/44'/60'/0'/0/1"))
	}
	if s.corrupt == "eth-payload" {
		inner := &types.LegacyTx{Nonce: tx.Nonce() + 1, GasPrice: tx.GasPrice(), Gas: tx.Gas(), To: tx.To(), Value: tx.Value(), Data: tx.Data()}
		tx = types.NewTx(inner)
	}
	return types.SignTx(tx, types.LatestSignerForChainID(chainID), key.ToECDSA())
}

func (s *softDevice) SignMessage(_ context.Context, req device.MessageRequest) (device.MessageSignature, error) {
	if s.reject {
		return device.MessageSignature{}, device.ErrUserRejected
	}
	key := s.priv(req.Path)
	if req.Chain == device.ChainETH {
		sig, err := crypto.Sign(accounts.TextHash(req.Message), key.ToECDSA())
		if err != nil {
			return device.MessageSignature{}, err
		}
		sig[64] += 27
		if s.corrupt == "msg-eth" {
			sig[40] ^= 1
		}
		return device.MessageSignature{Address: crypto.PubkeyToAddress(*key.PubKey().ToECDSA()).Hex(), Signature: sig}, nil
	}
	sig := ecdsa.SignCompact(key, device.BitcoinMessageDigest(req.Message), true)
	switch req.Script {
	case device.ScriptSHWPKH:
		sig[0] += 4
	case device.ScriptWPKH:
		sig[0] += 8
	}
	if s.corrupt == "msg-btc" {
		sig[20] ^= 1
	}
	addr, err := btcAddress(key.PubKey(), req.Script, req.Network)
	if s.corrupt == "msg-address" {
		addr, err = btcAddress(s.priv(hdpath.MustParse("m/84'/0'/0'/0/1")).PubKey(), req.Script, req.Network)
	}
	return device.MessageSignature{Address: addr, Signature: sig}, err
}

func (s *softDevice) SignTypedHash(_ context.Context, path hdpath.Path, domain [32]byte, msgHash []byte) ([]byte, error) {
	if s.reject {
		return nil, device.ErrUserRejected
	}
	digest := device.TypedDataDigest(domain, msgHash)
	if s.corrupt == "typed" {
		digest = crypto.Keccak256(digest)
	}
	sig, err := crypto.Sign(digest, s.priv(path).ToECDSA())
	if err != nil {
		return nil, err
	}
	sig[64] += 27
	return sig, nil
}

// TestVerifyConformance runs the conformance suite on the verified software signer: it
// checks the suite itself and that Verify passes every honest signature.
func TestVerifyConformance(t *testing.T) {
	devicetest.Run(t, func(t *testing.T) device.Device { return device.Verify(newSoft(t)) }, devicetest.Capabilities{
		Taproot: true, EIP1559: true, EIP712Hash: true, Multisig: true,
		OpenRejecting: func(t *testing.T) device.Device {
			s := newSoft(t)
			s.reject = true
			return device.Verify(s)
		},
	})
}

func TestVerifyCatchesBadSignatures(t *testing.T) {
	to := common.HexToAddress("0x1d1c328764a41bda0492b66baa30c4a339ff85ef")
	ethPath := hdpath.MustParse("m/44'/60'/0'/0/0")
	tests := []struct {
		corrupt string
		call    func(t *testing.T, ctx context.Context, d device.Device) error
	}{
		{"psbt-ecdsa", signPSBT(device.ScriptWPKH)},
		{"psbt-ecdsa", signPSBT(device.ScriptPKH)},
		{"psbt-ecdsa", signPSBT(device.ScriptSHWPKH)},
		{"psbt-wrongkey", signPSBT(device.ScriptWPKH)},
		{"psbt-wrongkey", signPSBT(device.ScriptTR)},
		{"psbt-taproot", signPSBT(device.ScriptTR)},
		{"eth-wrongkey", func(_ *testing.T, ctx context.Context, d device.Device) error {
			_, err := d.SignEthTx(ctx, ethPath, types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(1), GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2), Gas: 21000, To: &to}), big.NewInt(1))
			return err
		}},
		{"eth-payload", func(_ *testing.T, ctx context.Context, d device.Device) error {
			_, err := d.SignEthTx(ctx, ethPath, types.NewTx(&types.LegacyTx{GasPrice: big.NewInt(1), Gas: 21000, To: &to}), big.NewInt(1))
			return err
		}},
		{"msg-btc", signMsg(device.ChainBTC, "m/84'/0'/0'/0/0", device.ScriptWPKH)},
		{"msg-btc", signMsg(device.ChainBTC, "m/44'/0'/0'/0/0", device.ScriptPKH)},
		{"msg-address", signMsg(device.ChainBTC, "m/84'/0'/0'/0/0", device.ScriptWPKH)},
		{"msg-eth", signMsg(device.ChainETH, "m/44'/60'/0'/0/0", "")},
		{"typed", func(_ *testing.T, ctx context.Context, d device.Device) error {
			_, err := d.SignTypedHash(ctx, ethPath, [32]byte{1}, crypto.Keccak256([]byte("m")))
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.corrupt, func(t *testing.T) {
			ctx := t.Context()
			soft := newSoft(t)
			if err := tt.call(t, ctx, device.Verify(soft)); err != nil {
				t.Fatalf("honest device: %v", err)
			}
			soft.corrupt = tt.corrupt
			err := tt.call(t, ctx, device.Verify(soft))
			if !errors.Is(err, device.ErrBadSignature) {
				t.Fatalf("err %v, want device.ErrBadSignature", err)
			}
		})
	}
}

func signPSBT(st device.ScriptType) func(t *testing.T, ctx context.Context, d device.Device) error {
	return func(t *testing.T, ctx context.Context, d device.Device) error {
		p := devicetest.NewSpend(t, ctx, d, &chaincfg.MainNetParams, []device.ScriptType{st, st}, devicetest.SpendOptions{})
		var before bytes.Buffer
		if err := p.Serialize(&before); err != nil {
			return err
		}
		err := d.SignPSBT(ctx, p, &chaincfg.MainNetParams)
		if err != nil {
			var after bytes.Buffer
			_ = p.Serialize(&after)
			if !bytes.Equal(before.Bytes(), after.Bytes()) {
				t.Error("a psbt with a bad signature was modified")
			}
			return err
		}
		if _, err := devicetest.FinalizeAndExecute(p); err != nil {
			t.Errorf("verified psbt does not execute: %v", err)
		}
		return nil
	}
}

func signMsg(chain device.Chain, path string, st device.ScriptType) func(t *testing.T, ctx context.Context, d device.Device) error {
	return func(_ *testing.T, ctx context.Context, d device.Device) error {
		_, err := d.SignMessage(ctx, device.MessageRequest{Chain: chain, Path: hdpath.MustParse(path), Script: st, Message: []byte("hello")})
		return err
	}
}
