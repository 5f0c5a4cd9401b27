package device

import (
	"context"
	"fmt"
	"math/big"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// Family is a device family; it is for display and error messages, never for dispatch.
type Family string

const (
	FamilyTrezor Family = "trezor"
	FamilyLedger Family = "ledger"
	// FamilyBitBox02 is a BitBox02 (device/bitbox02).
	FamilyBitBox02 Family = "bitbox02"
	// FamilyColdcard: Bitcoin-only; PSBTs over its USB protocol or on microSD.
	FamilyColdcard Family = "coldcard"
	// FamilyKeepKey is ShapeShift's KeepKey (a fork of Trezor's legacy firmware and protocol).
	FamilyKeepKey Family = "keepkey"
)

// Chain names a blockchain a request is for.
type Chain string

const (
	ChainBTC Chain = "btc"
	ChainETH Chain = "eth"
)

// ScriptType is a single-key Bitcoin output type, named as in output descriptors.
type ScriptType string

const (
	ScriptPKH    ScriptType = "pkh"     // BIP-44, p2pkh
	ScriptSHWPKH ScriptType = "sh-wpkh" // BIP-49, p2sh-p2wpkh
	ScriptWPKH   ScriptType = "wpkh"    // BIP-84, p2wpkh
	ScriptTR     ScriptType = "tr"      // BIP-86, p2tr key path
)

// Purpose returns the BIP-44-style purpose for the script type (44, 49, 84, 86).
func (s ScriptType) Purpose() (uint32, error) {
	switch s {
	case ScriptPKH:
		return 44, nil
	case ScriptSHWPKH:
		return 49, nil
	case ScriptWPKH:
		return 84, nil
	case ScriptTR:
		return 86, nil
	}
	return 0, fmt.Errorf("%w: script type %q (use pkh, sh-wpkh, wpkh or tr)", ErrInvalidInput, string(s))
}

// Fingerprint is a BIP-32 key fingerprint: the first four bytes of HASH160(pubkey), read
// big-endian (as Trezor's HDNodeType.fingerprint and descriptors print it).
type Fingerprint uint32

func (f Fingerprint) String() string { return fmt.Sprintf("%08x", uint32(f)) }

// PSBT returns the fingerprint as btcd's psbt package stores it (the same four bytes read
// little-endian).
func (f Fingerprint) PSBT() uint32 {
	return uint32(f)>>24 | uint32(f)>>8&0xff00 | uint32(f)<<8&0xff0000 | uint32(f)<<24
}

// FingerprintFromPSBT converts a psbt.Bip32Derivation.MasterKeyFingerprint.
func FingerprintFromPSBT(v uint32) Fingerprint { return Fingerprint(Fingerprint(v).PSBT()) }

// Capabilities are the optional features a device supports.
type Capabilities struct {
	Taproot        bool `json:"taproot"`
	Multisig       bool `json:"multisig"`
	EIP1559        bool `json:"eip1559"`
	EIP712Hash     bool `json:"eip712_hash"` // SignTypedHash: signs EIP-712 hashes
	EIP712         bool `json:"eip712"`      // signs EIP-712 documents (SignTypedData), by either path
	DisplayAddress bool `json:"display_address"`
}

// Features describes a device as it reports itself.
type Features struct {
	Family       Family       `json:"family"`
	Model        string       `json:"model"`
	Vendor       string       `json:"vendor,omitempty"`
	Version      string       `json:"version"`
	Label        string       `json:"label,omitempty"`
	DeviceID     string       `json:"device_id,omitempty"`
	App          string       `json:"app,omitempty"` // Ledger: the app that is open
	Initialized  bool         `json:"initialized"`
	PINProtected bool         `json:"pin_protection"`
	Passphrase   bool         `json:"passphrase_protection"`
	Unlocked     bool         `json:"unlocked"`
	Emulator     bool         `json:"emulator"`
	Capabilities Capabilities `json:"capabilities"`
}

// XPubRequest asks for the extended public key at Path.
type XPubRequest struct {
	Path    hdpath.Path
	Network *chaincfg.Params // selects xpub or tpub; nil means mainnet
	Display bool             // show it on the device for the user to compare
}

// AddressRequest asks for an address at Path.
type AddressRequest struct {
	Chain   Chain
	Path    hdpath.Path
	Script  ScriptType       // Bitcoin only
	Network *chaincfg.Params // Bitcoin only; nil means mainnet
	Display bool             // show it on the device; the call returns after the user confirms
}

// MessageRequest asks the device to sign a message with the key at Path.
type MessageRequest struct {
	Chain   Chain
	Path    hdpath.Path
	Message []byte
	Script  ScriptType       // Bitcoin only: selects the signature header and address
	Network *chaincfg.Params // Bitcoin only
}

// MessageSignature is a signed message. Bitcoin: 65 bytes header‖r‖s (BIP-137 header,
// base64 in text). Ethereum: 65 bytes r‖s‖v with v 27 or 28 (EIP-191 personal_sign).
type MessageSignature struct {
	Address   string `json:"address"`
	Signature []byte `json:"signature"`
}

// Device is one hardware wallet, reached through a driver. Every method that talks to the
// device takes a context; cancelling it interrupts the exchange. Implementations serialise
// their own exchanges and return ErrBusy only when asked not to wait.
type Device interface {
	// Features reports identity, state and capabilities.
	Features(ctx context.Context) (Features, error)
	// Fingerprint returns the master key fingerprint.
	Fingerprint(ctx context.Context) (Fingerprint, error)
	// XPub returns the extended public key (xpub or tpub version bytes, never SLIP-132).
	XPub(ctx context.Context, req XPubRequest) (string, error)
	// Address returns an address, showing it on the device if asked.
	Address(ctx context.Context, req AddressRequest) (string, error)
	// SignPSBT signs every input of p that the device holds a key for (matched through the
	// bip32 derivations and the master fingerprint) and adds the signatures to p: ECDSA
	// partial signatures with the sighash byte, or taproot key-path signatures.
	SignPSBT(ctx context.Context, p *psbt.Packet, net *chaincfg.Params) error
	// SignEthTx signs tx (legacy or EIP-1559) with the key at path for chainID and returns the
	// signed transaction.
	SignEthTx(ctx context.Context, path hdpath.Path, tx *types.Transaction, chainID *big.Int) (*types.Transaction, error)
	// SignMessage signs a Bitcoin (BIP-137) or Ethereum (EIP-191) message.
	SignMessage(ctx context.Context, req MessageRequest) (MessageSignature, error)
	// SignTypedHash signs an EIP-712 message given its domain separator and message hash
	// (messageHash nil for domain-only data). It returns 65 bytes r‖s‖v with v 27 or 28.
	SignTypedHash(ctx context.Context, path hdpath.Path, domainSeparator [32]byte, messageHash []byte) ([]byte, error)
	// Close releases the link.
	Close() error
}
