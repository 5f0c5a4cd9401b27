// Package btcwire holds the Bitcoin helpers the Trezor and KeepKey drivers share around
// their SignTx/TxRequest streaming flow and GetPublicKey: reading a PSBT input's UTXO,
// matching a single-key script, hashes in display order, and checking a returned xpub.
// None of it depends on a family's messages. Hand-written over btcd.
package btcwire

import (
	"bytes"
	"fmt"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/hwbridge/hwbridge/device"
)

// NetOrMain is net, or mainnet for nil.
func NetOrMain(net *chaincfg.Params) *chaincfg.Params {
	if net == nil {
		return &chaincfg.MainNetParams
	}
	return net
}

// DisplayHash returns the txid bytes in display (RPC) order, as prev_hash wants them.
func DisplayHash(h chainhash.Hash) []byte {
	b := make([]byte, chainhash.HashSize)
	for i := range h {
		b[i] = h[len(h)-1-i]
	}
	return b
}

// PrevTx returns the previous transaction the device asks for by its hash in display
// order.
func PrevTx(prev map[chainhash.Hash]*wire.MsgTx, display []byte) (*wire.MsgTx, error) {
	if len(display) != chainhash.HashSize {
		return nil, fmt.Errorf("%w: tx hash of %d bytes", device.ErrProtocol, len(display))
	}
	var h chainhash.Hash
	for i := range h {
		h[i] = display[len(display)-1-i]
	}
	tx, ok := prev[h]
	if !ok {
		return nil, fmt.Errorf("%w: device asked for previous tx %s, which the psbt does not carry", device.ErrProtocol, h)
	}
	return tx, nil
}

// UTXO returns the output input i spends, checking non_witness_utxo against the outpoint.
func UTXO(p *psbt.Packet, i int) (*wire.TxOut, error) {
	op := p.UnsignedTx.TxIn[i].PreviousOutPoint
	pin := &p.Inputs[i]
	if nw := pin.NonWitnessUtxo; nw != nil {
		if nw.TxHash() != op.Hash {
			return nil, fmt.Errorf("%w: non_witness_utxo is transaction %s, but the input spends %s", device.ErrInvalidInput, nw.TxHash(), op.Hash)
		}
		if int(op.Index) >= len(nw.TxOut) {
			return nil, fmt.Errorf("%w: non_witness_utxo has no output %d", device.ErrInvalidInput, op.Index)
		}
		out := nw.TxOut[op.Index]
		if w := pin.WitnessUtxo; w != nil && (w.Value != out.Value || !bytes.Equal(w.PkScript, out.PkScript)) {
			return nil, fmt.Errorf("%w: witness_utxo and non_witness_utxo disagree", device.ErrInvalidInput)
		}
		return out, nil
	}
	if pin.WitnessUtxo != nil {
		return pin.WitnessUtxo, nil
	}
	return nil, fmt.Errorf("%w: no witness_utxo or non_witness_utxo: the amount and script being spent are unknown (bitcoin core: utxoupdatepsbt)", device.ErrInvalidInput)
}

// OwnsSingleKey reports whether pub is the key a single-key script pays to.
func OwnsSingleKey(script, pub []byte) bool {
	h := btcutil.Hash160(pub)
	switch txscript.GetScriptClass(script) {
	case txscript.WitnessV0PubKeyHashTy:
		return bytes.Equal(script[2:], h)
	case txscript.PubKeyHashTy:
		return bytes.Equal(script[3:23], h)
	}
	return false
}

// CheckXPub makes sure the xpub string parses, is for net, sits at depth and, when the
// device also returned the node's public key (nodePub), agrees with it.
func CheckXPub(xpub string, nodePub []byte, net *chaincfg.Params, depth int) error {
	k, err := hdkeychain.NewKeyFromString(xpub)
	if err != nil {
		return fmt.Errorf("%w: device returned an xpub that does not parse: %w", device.ErrProtocol, err)
	}
	if !k.IsForNet(net) {
		return fmt.Errorf("%w: device returned an xpub for another network", device.ErrProtocol)
	}
	if k.IsPrivate() || int(k.Depth()) != depth%256 {
		return fmt.Errorf("%w: device returned an xpub at depth %d for a path of depth %d", device.ErrProtocol, k.Depth(), depth)
	}
	if len(nodePub) > 0 {
		pub, err := k.ECPubKey()
		if err != nil || string(pub.SerializeCompressed()) != string(nodePub) {
			return fmt.Errorf("%w: the xpub and the node the device returned disagree", device.ErrProtocol)
		}
	}
	return nil
}
