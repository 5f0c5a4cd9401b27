package bitcoin_test

import (
	"bytes"
	"context"
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	hwpsbt "github.com/hwbridge/hwbridge/psbt"
)

// softSigner is a test-only key holder for what the Trezor emulator does not do yet
// (multisig): it implements the KeySource and Signer parts of device.Device from an
// emulator.Wallet and signs p2wsh multisig inputs for its own derivations.
type softSigner struct{ w *emulator.Wallet }

func newSoftSigner(mnemonic string) (*softSigner, error) {
	w, err := emulator.NewWallet(mnemonic, "")
	if err != nil {
		return nil, err
	}
	return &softSigner{w: w}, nil
}

func (s *softSigner) Fingerprint(context.Context) (device.Fingerprint, error) {
	return device.Fingerprint(s.w.Fingerprint()), nil
}

func (s *softSigner) XPub(_ context.Context, req device.XPubRequest) (string, error) {
	net := req.Network
	if net == nil {
		net = &chaincfg.MainNetParams
	}
	k, err := s.w.Public(req.Path, net.HDPublicKeyID[:])
	if err != nil {
		return "", err
	}
	return k.String(), nil
}

func (s *softSigner) SignPSBT(_ context.Context, p *psbt.Packet, _ *chaincfg.Params) error {
	fp := device.Fingerprint(s.w.Fingerprint()).PSBT()
	prevOuts := txscript.NewMultiPrevOutFetcher(nil)
	for i, in := range p.UnsignedTx.TxIn {
		prevOuts.AddPrevOut(in.PreviousOutPoint, hwpsbt.SpentOutput(p, i))
	}
	hashes := txscript.NewTxSigHashes(p.UnsignedTx, prevOuts)
	for i := range p.Inputs {
		in := &p.Inputs[i]
		if in.WitnessScript == nil {
			return fmt.Errorf("soft signer: input %d is not p2wsh", i)
		}
		for _, d := range in.Bip32Derivation {
			if d.MasterKeyFingerprint != fp {
				continue
			}
			key, err := s.w.PrivKey(hdpath.Path(d.Bip32Path))
			if err != nil {
				return err
			}
			if !bytes.Equal(key.PubKey().SerializeCompressed(), d.PubKey) {
				return fmt.Errorf("soft signer: derivation %v is not our key", d.Bip32Path)
			}
			digest, err := txscript.CalcWitnessSigHash(in.WitnessScript, hashes, txscript.SigHashAll, p.UnsignedTx, i, in.WitnessUtxo.Value)
			if err != nil {
				return err
			}
			sig := append(ecdsa.Sign(key, digest).Serialize(), byte(txscript.SigHashAll))
			in.PartialSigs = append(in.PartialSigs, &psbt.PartialSig{PubKey: d.PubKey, Signature: sig})
		}
	}
	return nil
}

func hexEncode(b []byte) string { return fmt.Sprintf("%x", b) }
