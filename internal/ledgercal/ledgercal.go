// Package ledgercal holds the facts about Ledger's signed ERC-20 token descriptors (the
// payload of the Ethereum app's PROVIDE ERC 20 TOKEN INFORMATION, INS 0x0A) that both the
// driver (device/ledger) and the emulator (emulator/ledger) need: the layout, Ledger's
// published verification key, and a test key for tokens deployed on development chains.
//
// Descriptor layout (app-ethereum doc/ethapp.adoc "PROVIDE ERC 20 TOKEN INFORMATION" and
// src/features/provide_erc20_token_information/cmd_provide_token_info.c @ de18010):
//
//	u8 tickerLen ‖ ticker ‖ contract (20) ‖ decimals (u32 BE) ‖ chainId (u32 BE) ‖ DER ECDSA signature
//
// The signature is secp256k1 ECDSA over sha256(ticker ‖ contract ‖ decimals ‖ chainId) (the
// length byte is not signed). Hand-written: no Go library speaks this format.
package ledgercal

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2"
	btcecdsa "github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// MaxTickerLen is the longest ticker the app stores (MAX_TICKER_LEN 12 with its NUL).
const MaxTickerLen = 11

// LedgerPublicKey is the production key the Ethereum app checks token descriptors with
// ("production key 2019-01-11 03:07PM (erc20signer)", app-ethereum src/public_keys.h and
// doc/ethapp.adoc @ de18010), uncompressed SEC1.
var LedgerPublicKey = mustHex("045e6c1020c14dc46442fe89f97c0b68cdb15976dc24f24c316e7b30fe4e8cc76b1489150c21514ebf440ff5dea5393d83de5358cd098fce8fd0f81daa94979183")

// Descriptor is a decoded token descriptor.
type Descriptor struct {
	Ticker    string
	Contract  common.Address
	Decimals  uint32
	ChainID   uint32
	Signature []byte // DER
	// Signed is the signed part: ticker ‖ contract ‖ decimals ‖ chainId.
	Signed []byte
}

// ErrBadDescriptor is a descriptor that does not parse.
var ErrBadDescriptor = errors.New("bad erc-20 token descriptor")

// Parse decodes a 0x0A payload. It checks the layout only, not the signature.
func Parse(b []byte) (*Descriptor, error) {
	if len(b) < 1 {
		return nil, fmt.Errorf("%w: empty", ErrBadDescriptor)
	}
	n := int(b[0])
	if n > MaxTickerLen {
		return nil, fmt.Errorf("%w: ticker of %d bytes", ErrBadDescriptor, n)
	}
	if len(b) < 1+n+20+4+4 {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadDescriptor, len(b))
	}
	d := &Descriptor{Ticker: string(b[1 : 1+n])}
	off := 1 + n
	d.Contract = common.BytesToAddress(b[off : off+20])
	d.Decimals = binary.BigEndian.Uint32(b[off+20:])
	d.ChainID = binary.BigEndian.Uint32(b[off+24:])
	d.Signed = append([]byte(nil), b[1:off+28]...)
	d.Signature = append([]byte(nil), b[off+28:]...)
	return d, nil
}

// Verify reports whether d's signature verifies with the uncompressed public key pub.
func (d *Descriptor) Verify(pub []byte) bool {
	key, err := btcec.ParsePubKey(pub)
	if err != nil {
		return false
	}
	sig, err := btcecdsa.ParseDERSignature(d.Signature)
	if err != nil {
		return false
	}
	h := sha256.Sum256(d.Signed)
	return sig.Verify(h[:], key)
}

// TestKey is the emulator-only key for descriptors of tokens deployed on development chains
// (the demo's dUSD): derived from a fixed public label, so anyone can sign with it. A real
// device never trusts it; emulator/ledger trusts it only when its config says so.
func TestKey() *ecdsa.PrivateKey {
	k, err := crypto.ToECDSA(crypto.Keccak256([]byte("hwbridge emulator erc-20 descriptor test key (not Ledger's)")))
	if err != nil {
		panic("ledgercal: test key: " + err.Error()) // a fixed 32-byte value below the order
	}
	return k
}

// TestPublicKey is TestKey's public key, uncompressed.
func TestPublicKey() []byte { return crypto.FromECDSAPub(&TestKey().PublicKey) }

// SignTest builds a descriptor signed with TestKey, for emulator, test and demo paths only.
func SignTest(ticker string, contract common.Address, decimals, chainID uint32) ([]byte, error) {
	if len(ticker) == 0 || len(ticker) > MaxTickerLen {
		return nil, fmt.Errorf("%w: ticker %q", ErrBadDescriptor, ticker)
	}
	signed := append([]byte(ticker), contract.Bytes()...)
	signed = binary.BigEndian.AppendUint32(signed, decimals)
	signed = binary.BigEndian.AppendUint32(signed, chainID)
	h := sha256.Sum256(signed)
	priv, _ := btcec.PrivKeyFromBytes(crypto.FromECDSA(TestKey()))
	sig := btcecdsa.Sign(priv, h[:])
	out := append([]byte{byte(len(ticker))}, signed...)
	return append(out, sig.Serialize()...), nil
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}
