package ethereum

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"math/big"
	"testing"

	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/tyler-smith/go-bip39"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// testMnemonic is the standard test mnemonic (never a real wallet's seed).
const testMnemonic = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"

// softSigner is a test-only Signer holding keys in memory: from a BIP-39 mnemonic (keys
// derived per path) or one fixed key for every path. It signs exactly as a device would
// (RFC 6979, v 27/28 for messages).
type softSigner struct {
	master *hdkeychain.ExtendedKey
	fixed  *ecdsa.PrivateKey
}

func mnemonicSigner(t testing.TB, mnemonic string) *softSigner {
	t.Helper()
	seed, err := bip39.NewSeedWithErrorChecking(mnemonic, "")
	if err != nil {
		t.Fatal(err)
	}
	m, err := hdkeychain.NewMaster(seed, &chaincfg.MainNetParams)
	if err != nil {
		t.Fatal(err)
	}
	return &softSigner{master: m}
}

func keySigner(t testing.TB, hexKey string) *softSigner {
	t.Helper()
	k, err := crypto.HexToECDSA(hexKey)
	if err != nil {
		t.Fatal(err)
	}
	return &softSigner{fixed: k}
}

func (s *softSigner) key(path hdpath.Path) (*ecdsa.PrivateKey, error) {
	if s.fixed != nil {
		return s.fixed, nil
	}
	k := s.master
	for _, i := range path {
		var err error
		if k, err = k.Derive(i); err != nil {
			return nil, err
		}
	}
	pk, err := k.ECPrivKey()
	if err != nil {
		return nil, err
	}
	return pk.ToECDSA(), nil
}

func (s *softSigner) Address(_ context.Context, req device.AddressRequest) (string, error) {
	k, err := s.key(req.Path)
	if err != nil {
		return "", err
	}
	return crypto.PubkeyToAddress(k.PublicKey).Hex(), nil
}

func (s *softSigner) SignEthTx(_ context.Context, path hdpath.Path, tx *types.Transaction, chainID *big.Int) (*types.Transaction, error) {
	k, err := s.key(path)
	if err != nil {
		return nil, err
	}
	return types.SignTx(tx, types.LatestSignerForChainID(chainID), k)
}

func (s *softSigner) SignMessage(_ context.Context, req device.MessageRequest) (device.MessageSignature, error) {
	if req.Chain != device.ChainETH {
		return device.MessageSignature{}, fmt.Errorf("soft signer signs ethereum messages only")
	}
	k, err := s.key(req.Path)
	if err != nil {
		return device.MessageSignature{}, err
	}
	sig, err := crypto.Sign(accounts.TextHash(req.Message), k)
	if err != nil {
		return device.MessageSignature{}, err
	}
	sig[64] += 27
	return device.MessageSignature{Address: crypto.PubkeyToAddress(k.PublicKey).Hex(), Signature: sig}, nil
}

func (s *softSigner) SignTypedHash(_ context.Context, path hdpath.Path, ds [32]byte, mh []byte) ([]byte, error) {
	k, err := s.key(path)
	if err != nil {
		return nil, err
	}
	sig, err := crypto.Sign(device.TypedDataDigest(ds, mh), k)
	if err != nil {
		return nil, err
	}
	sig[64] += 27
	return sig, nil
}

var _ Signer = (*softSigner)(nil)
