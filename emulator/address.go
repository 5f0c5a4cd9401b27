package emulator

import (
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
)

// ScriptKind is a single-key output type a device derives addresses for.
type ScriptKind int

// The single-key script kinds.
const (
	P2PKH      ScriptKind = iota // legacy, BIP-44
	P2SHP2WPKH                   // nested segwit, BIP-49
	P2WPKH                       // native segwit v0, BIP-84
	P2TR                         // taproot key path with no script tree, BIP-86
)

func (k ScriptKind) String() string {
	switch k {
	case P2PKH:
		return "p2pkh"
	case P2SHP2WPKH:
		return "p2sh-p2wpkh"
	case P2WPKH:
		return "p2wpkh"
	case P2TR:
		return "p2tr"
	}
	return fmt.Sprintf("ScriptKind(%d)", int(k))
}

// Address returns the address of kind for the public key on the network.
func Address(pub *btcec.PublicKey, kind ScriptKind, net *chaincfg.Params) (btcutil.Address, error) {
	h := btcutil.Hash160(pub.SerializeCompressed())
	switch kind {
	case P2PKH:
		return btcutil.NewAddressPubKeyHash(h, net)
	case P2WPKH:
		return btcutil.NewAddressWitnessPubKeyHash(h, net)
	case P2SHP2WPKH:
		return btcutil.NewAddressScriptHash(P2SHRedeemScript(pub), net)
	case P2TR:
		out := txscript.ComputeTaprootKeyNoScript(pub)
		return btcutil.NewAddressTaproot(schnorr.SerializePubKey(out), net)
	}
	return nil, fmt.Errorf("emulator: unknown script kind %d", int(kind))
}

// P2SHRedeemScript is the redeem script of a nested p2wpkh output: 0014<hash160(pub)>.
func P2SHRedeemScript(pub *btcec.PublicKey) []byte {
	return append([]byte{txscript.OP_0, 20}, btcutil.Hash160(pub.SerializeCompressed())...)
}

// PkScript returns the output script of kind for the public key.
func PkScript(pub *btcec.PublicKey, kind ScriptKind) ([]byte, error) {
	addr, err := Address(pub, kind, &chaincfg.MainNetParams)
	if err != nil {
		return nil, err
	}
	return txscript.PayToAddrScript(addr)
}
