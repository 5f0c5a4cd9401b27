package emulator

import (
	"crypto/ecdsa"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/tyler-smith/go-bip39"

	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// DefaultMnemonic is the standard test mnemonic ("abandon" ×11 "about"): the BIP-84/86
// reference vectors and every hardware-wallet test suite use it. Its master fingerprint is
// 73c5da0a.
const DefaultMnemonic = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"

// ErrBadMnemonic is wrapped when the words are not a valid BIP-39 mnemonic.
var ErrBadMnemonic = errors.New("emulator: invalid bip-39 mnemonic")

// Wallet is the key store of an emulated device: a BIP-32 master key made from a BIP-39
// mnemonic and passphrase. It is safe for concurrent use. Derived private keys are cached
// per path, as a device keeps its account nodes warm; the cache never leaves the process.
type Wallet struct {
	master *hdkeychain.ExtendedKey
	fp     uint32

	mu    sync.Mutex
	cache map[string]*hdkeychain.ExtendedKey
}

// maxCache bounds the derived-key cache; a scan over many paths just starts over.
const maxCache = 4096

// NewWallet builds the wallet for a mnemonic and passphrase (BIP-39 seed, then the BIP-32
// master with mainnet version bytes). The mnemonic is checked against the English word list
// and its checksum.
func NewWallet(mnemonic, passphrase string) (*Wallet, error) {
	words := strings.Join(strings.Fields(mnemonic), " ")
	seed, err := bip39.NewSeedWithErrorChecking(words, passphrase)
	if err != nil {
		return nil, fmt.Errorf("%w (check the words and their order): %w", ErrBadMnemonic, err)
	}
	master, err := hdkeychain.NewMaster(seed, &chaincfg.MainNetParams)
	if err != nil {
		return nil, fmt.Errorf("emulator: master key from seed: %w", err)
	}
	pub, err := master.ECPubKey()
	if err != nil {
		return nil, fmt.Errorf("emulator: master public key: %w", err)
	}
	fp := binary.BigEndian.Uint32(btcutil.Hash160(pub.SerializeCompressed())[:4])
	return &Wallet{master: master, fp: fp, cache: make(map[string]*hdkeychain.ExtendedKey)}, nil
}

// Fingerprint is the master key fingerprint: the first four bytes of hash160 of the master
// public key, read big-endian (73c5da0a for DefaultMnemonic without passphrase).
func (w *Wallet) Fingerprint() uint32 { return w.fp }

// Master returns the master extended private key.
func (w *Wallet) Master() *hdkeychain.ExtendedKey { return w.master }

// Derive returns the extended private key at path (BIP-32 private child derivation).
func (w *Wallet) Derive(path hdpath.Path) (*hdkeychain.ExtendedKey, error) {
	if len(path) == 0 {
		return w.master, nil
	}
	if len(path) > hdpath.MaxDepth {
		return nil, fmt.Errorf("emulator: derive: path has %d levels (max %d)", len(path), hdpath.MaxDepth)
	}
	key := string(pathKey(path))
	w.mu.Lock()
	k, ok := w.cache[key]
	w.mu.Unlock()
	if ok {
		return k, nil
	}
	// Start from the longest cached ancestor: signing many inputs of one account then costs
	// one or two derivations per input.
	start, k := 0, w.master
	w.mu.Lock()
	for i := len(path) - 1; i > 0; i-- {
		if a, ok := w.cache[string(pathKey(path[:i]))]; ok {
			start, k = i, a
			break
		}
	}
	w.mu.Unlock()
	var err error
	for i := start; i < len(path); i++ {
		k, err = k.Derive(path[i])
		if err != nil {
			return nil, fmt.Errorf("emulator: derive %s: %w", path, err)
		}
		if i == len(path)-2 || i == len(path)-1 {
			w.store(path[:i+1], k)
		}
	}
	return k, nil
}

func (w *Wallet) store(p hdpath.Path, k *hdkeychain.ExtendedKey) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.cache) >= maxCache {
		clear(w.cache)
	}
	w.cache[string(pathKey(p))] = k
}

func pathKey(p hdpath.Path) []byte {
	b := make([]byte, 4*len(p))
	for i, v := range p {
		binary.BigEndian.PutUint32(b[4*i:], v)
	}
	return b
}

// PrivKey returns the private key at path.
func (w *Wallet) PrivKey(path hdpath.Path) (*btcec.PrivateKey, error) {
	k, err := w.Derive(path)
	if err != nil {
		return nil, err
	}
	return k.ECPrivKey()
}

// PubKey returns the public key at path.
func (w *Wallet) PubKey(path hdpath.Path) (*btcec.PublicKey, error) {
	k, err := w.Derive(path)
	if err != nil {
		return nil, err
	}
	return k.ECPubKey()
}

// Public returns the neutered extended key at path with the given version bytes (xpub,
// ypub, zpub, tpub, …), as a device reports it.
func (w *Wallet) Public(path hdpath.Path, version []byte) (*hdkeychain.ExtendedKey, error) {
	k, err := w.Derive(path)
	if err != nil {
		return nil, err
	}
	n, err := k.Neuter()
	if err != nil {
		return nil, fmt.Errorf("emulator: neuter %s: %w", path, err)
	}
	return n.CloneWithVersion(version)
}

// EthAddress returns the Ethereum address of the key at path.
func (w *Wallet) EthAddress(path hdpath.Path) (common.Address, error) {
	pub, err := w.PubKey(path)
	if err != nil {
		return common.Address{}, err
	}
	return EthAddressOf(pub), nil
}

// EthAddressOf is keccak256 of the uncompressed public key (without its 04 prefix), last 20
// bytes.
func EthAddressOf(pub *btcec.PublicKey) common.Address {
	return common.BytesToAddress(crypto.Keccak256(pub.SerializeUncompressed()[1:])[12:])
}

// EthKey returns the key at path in go-ethereum's form, for crypto.Sign.
func (w *Wallet) EthKey(path hdpath.Path) (*ecdsa.PrivateKey, error) {
	k, err := w.PrivKey(path)
	if err != nil {
		return nil, err
	}
	return crypto.ToECDSA(k.Serialize())
}
