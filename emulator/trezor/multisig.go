package trezoremu

// Multisig as core firmware does it (trezor-firmware core/src/apps/bitcoin: multisig.py,
// scripts.py, addresses.py, sign_tx/matchcheck.py, sign_tx/tx_info.py). The host describes the
// script with MultisigRedeemScriptType: m, the cosigners' keys as HD nodes plus a
// non-hardened path each (pubkeys[i].node + pubkeys[i].address_n, as HWI sends them, or the
// older nodes[i] + one shared address_n), and the signatures it already has. The device
// derives the keys in the order given — it never sorts: sortedmulti is the host's job —
// and builds OP_m <keys> OP_n OP_CHECKMULTISIG. Its own key (the input's or output's
// address_n) must be among them.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"strconv"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	pb "github.com/hwbridge/hwbridge/internal/trezorpb"
)

// Caps on a multisig description. The firmware allows 1 to 15 keys (OP_1..OP_15); the
// protobuf definitions cap signatures at 15 of at most 73 bytes. The path cap bounds the
// derivation work a host can ask for (the firmware's is the message size).
const (
	maxMultisigKeys = 15
	maxMultisigSig  = 73
	maxMultisigPath = 8
)

var errMultisigParams = dataError("Invalid multisig parameters")

// multisig is a MultisigRedeemScriptType the device has checked and derived.
type multisig struct {
	m      int
	nodes  []*pb.HDNodeType // the cosigners' nodes as sent, for the address screens
	pubs   [][]byte         // the derived keys, in the order sent (script order)
	sigs   [][]byte         // signatures the host supplied (DER, no hash type), as sent
	script []byte           // OP_m <pubs> OP_n OP_CHECKMULTISIG
	fp     [32]byte         // multisig_fingerprint: what change detection compares
	own    int              // index of the device's key in pubs
}

// newMultisig checks and derives ms for the device's key own (33 bytes), in the order the
// firmware's get_address does: hardened steps, then the search for own ("Pubkey not found
// in multisig script"), then the script parameters.
func newMultisig(ms *pb.MultisigRedeemScriptType, own []byte) (*multisig, error) {
	hardened := func(p []uint32) bool {
		return slices.ContainsFunc(p, func(s uint32) bool { return s >= hdpath.Hardened })
	}
	if hardened(ms.AddressN) || slices.ContainsFunc(ms.Pubkeys, func(hd *pb.HDNodePathType) bool { return hardened(hd.GetAddressN()) }) {
		return nil, dataError("Cannot perform hardened derivation from XPUB")
	}
	out := &multisig{m: int(ms.GetM()), own: -1}
	var paths [][]uint32
	if len(ms.Nodes) > 0 {
		for _, n := range ms.Nodes {
			out.nodes, paths = append(out.nodes, n), append(paths, ms.AddressN)
		}
	} else {
		for _, hd := range ms.Pubkeys {
			out.nodes, paths = append(out.nodes, hd.GetNode()), append(paths, hd.GetAddressN())
		}
	}
	if len(out.nodes) > maxMultisigKeys || len(ms.Signatures) > maxMultisigKeys {
		return nil, errMultisigParams
	}
	for i, n := range out.nodes {
		if n == nil || len(n.GetPublicKey()) != btcec.PubKeyBytesLenCompressed || len(n.GetChainCode()) != 32 || len(paths[i]) > maxMultisigPath {
			return nil, errMultisigParams
		}
		pub, err := derivePublic(n, paths[i])
		if err != nil {
			return nil, errMultisigParams
		}
		out.pubs = append(out.pubs, pub)
		if out.own < 0 && bytes.Equal(pub, own) {
			out.own = i
		}
	}
	if out.own < 0 {
		return nil, dataError("Pubkey not found in multisig script")
	}
	n := len(out.pubs)
	if out.m < 1 || out.m > maxMultisigKeys || out.m > n {
		return nil, errMultisigParams
	}
	for _, s := range ms.Signatures {
		if len(s) > maxMultisigSig {
			return nil, errMultisigParams
		}
		out.sigs = append(out.sigs, bytes.Clone(s))
	}
	out.script = multisigScript(out.pubs, out.m)
	out.fp = multisigFingerprint(out.m, out.nodes)
	return out, nil
}

// derivePublic derives a public child of a host-supplied node along a non-hardened path.
// Only the key and chain code matter; depth, parent fingerprint and child number are the
// host's claims and are not used.
func derivePublic(n *pb.HDNodeType, path []uint32) ([]byte, error) {
	if _, err := btcec.ParsePubKey(n.GetPublicKey()); err != nil {
		return nil, err
	}
	k := hdkeychain.NewExtendedKey(make([]byte, 4), n.GetPublicKey(), n.GetChainCode(), make([]byte, 4), 0, 0, false)
	for _, step := range path {
		var err error
		if k, err = k.Derive(step); err != nil {
			return nil, err
		}
	}
	pub, err := k.ECPubKey()
	if err != nil {
		return nil, err
	}
	return pub.SerializeCompressed(), nil
}

// multisigScript is OP_m <33-byte keys> OP_n OP_CHECKMULTISIG (scripts.write_output_script_multisig).
func multisigScript(pubs [][]byte, m int) []byte {
	s := make([]byte, 0, 3+34*len(pubs))
	s = append(s, byte(txscript.OP_1-1+m))
	for _, p := range pubs {
		s = append(s, byte(len(p)))
		s = append(s, p...)
	}
	return append(s, byte(txscript.OP_1-1+len(pubs)), txscript.OP_CHECKMULTISIG)
}

// multisigFingerprint is SHA-256 of m, n and each node's depth, fingerprint, child number
// (uint32 little-endian), chain code and public key, in the order sent. Two descriptions
// of the same wallet at different indexes share it, which is what makes change detectable.
func multisigFingerprint(m int, nodes []*pb.HDNodeType) [32]byte {
	h := sha256.New()
	var b [4]byte
	u32 := func(v uint32) {
		binary.LittleEndian.PutUint32(b[:], v)
		h.Write(b[:])
	}
	u32(uint32(m))
	u32(uint32(len(nodes)))
	for _, n := range nodes {
		u32(n.GetDepth())
		u32(n.GetFingerprint())
		u32(n.GetChildNum())
		h.Write(n.GetChainCode())
		h.Write(n.GetPublicKey())
	}
	var fp [32]byte
	h.Sum(fp[:0])
	return fp
}

// witnessProgram is 0020<sha256(script)>, the p2wsh output script and the p2sh-p2wsh
// redeem script.
func (ms *multisig) witnessProgram() []byte {
	h := sha256.Sum256(ms.script)
	return append([]byte{txscript.OP_0, 32}, h[:]...)
}

// p2sh is OP_HASH160 <hash160(redeem)> OP_EQUAL.
func p2sh(redeem []byte) []byte {
	return append(append([]byte{txscript.OP_HASH160, 20}, btcutil.Hash160(redeem)...), txscript.OP_EQUAL)
}

// withOwn returns the signatures to serialize: the host's, stretched with empty ones to
// the number of keys, with the device's in its slot, which must be empty. Only non-empty
// ones are serialized (scripts.write_witness_multisig).
func (ms *multisig) withOwn(sig []byte) ([][]byte, error) {
	sigs := slices.Clone(ms.sigs)
	for len(sigs) < len(ms.pubs) {
		sigs = append(sigs, nil)
	}
	if len(sigs[ms.own]) > 0 {
		return nil, errMultisigParams
	}
	sigs[ms.own] = sig
	return sigs, nil
}

// witness is the p2wsh witness the firmware serializes: an empty item for
// OP_CHECKMULTISIG's extra pop, each present signature with SIGHASH_ALL, and the witness
// script. Missing signatures get no placeholder.
func (ms *multisig) witness(sig []byte) (wire.TxWitness, error) {
	sigs, err := ms.withOwn(sig)
	if err != nil {
		return nil, err
	}
	w := wire.TxWitness{{}}
	for _, s := range sigs {
		if len(s) > 0 {
			w = append(w, append(slices.Clone(s), byte(txscript.SigHashAll)))
		}
	}
	return append(w, slices.Clone(ms.script)), nil
}

// scriptSig is the p2sh multisig scriptSig: OP_0, each present signature with
// SIGHASH_ALL, the redeem script (scripts._write_input_script_multisig_prefixed). The
// firmware indexes the host's signature list without stretching it here, so a list shorter
// than the keys fails as its IndexError does.
func (ms *multisig) scriptSig(sig []byte) ([]byte, error) {
	if ms.own >= len(ms.sigs) {
		return nil, fail(pb.FailureType_Failure_FirmwareError, "Firmware error")
	}
	sigs, err := ms.withOwn(sig)
	if err != nil {
		return nil, err
	}
	s := []byte{txscript.OP_0}
	for _, sg := range sigs {
		if len(sg) > 0 {
			s = appendPush(s, append(slices.Clone(sg), byte(txscript.SigHashAll)))
		}
	}
	return appendPush(s, ms.script), nil
}

// appendPush appends a data push as the firmware's write_op_push does: a length byte below
// 0x4c, else OP_PUSHDATA1, OP_PUSHDATA2.
func appendPush(s, data []byte) []byte {
	switch n := len(data); {
	case n < txscript.OP_PUSHDATA1:
		s = append(s, byte(n))
	case n <= 0xff:
		s = append(s, txscript.OP_PUSHDATA1, byte(n))
	default:
		s = append(s, txscript.OP_PUSHDATA2, byte(n), byte(n>>8))
	}
	return append(s, data...)
}

// xpubs renders the cosigners' nodes for the address screens with the coin's multisig
// version bytes for the script type (Ypub/Zpub style for segwit, xpub for p2sh), marking
// the device's own.
func (ms *multisig) xpubs(c *coin, t pb.InputScriptType) []string {
	ver := c.xpub
	switch t {
	case pb.InputScriptType_SPENDWITNESS:
		ver = c.msZpub
	case pb.InputScriptType_SPENDP2SHWITNESS:
		ver = c.msYpub
	}
	var lines []string
	for i, n := range ms.nodes {
		fp := binary.BigEndian.AppendUint32(nil, n.GetFingerprint())
		k := hdkeychain.NewExtendedKey(versionBytes(ver), n.GetPublicKey(), n.GetChainCode(), fp, uint8(n.GetDepth()), n.GetChildNum(), false)
		who := "cosigner"
		if i == ms.own {
			who = "yours"
		}
		lines = append(lines, "XPUB #"+strconv.Itoa(i+1)+" ("+who+"): "+k.String())
	}
	return lines
}

// derived is what the device works out for a key of its own and a script type. kind
// tells the signer how the input is spent (P2PKH: legacy, including p2sh multisig;
// P2SHP2WPKH: nested segwit; P2WPKH: native segwit v0; P2TR: taproot key path).
type derived struct {
	pub      *btcec.PublicKey
	kind     emulator.ScriptKind
	ms       *multisig // nil for a single key
	pkScript []byte
}

// scriptFor is the firmware's addresses.get_address for a key of the device: the output
// script of script type t at path p, single-key or, with ms, multisig.
func scriptFor(w *emulator.Wallet, p hdpath.Path, t pb.InputScriptType, ms *pb.MultisigRedeemScriptType) (*derived, error) {
	pub, err := w.PubKey(p)
	if err != nil {
		return nil, fail(pb.FailureType_Failure_ProcessError, "Key derivation failed")
	}
	d := &derived{pub: pub}
	if ms != nil {
		if d.ms, err = newMultisig(ms, pub.SerializeCompressed()); err != nil {
			return nil, err
		}
	}
	switch t {
	case pb.InputScriptType_SPENDADDRESS, pb.InputScriptType_SPENDMULTISIG:
		d.kind = emulator.P2PKH
		if d.ms != nil {
			d.pkScript = p2sh(d.ms.script)
			return d, nil
		}
		if t == pb.InputScriptType_SPENDMULTISIG {
			return nil, fail(pb.FailureType_Failure_ProcessError, "Multisig details required")
		}
	case pb.InputScriptType_SPENDWITNESS:
		d.kind = emulator.P2WPKH
		if d.ms != nil {
			d.pkScript = d.ms.witnessProgram()
			return d, nil
		}
	case pb.InputScriptType_SPENDP2SHWITNESS:
		d.kind = emulator.P2SHP2WPKH
		if d.ms != nil {
			d.pkScript = p2sh(d.ms.witnessProgram())
			return d, nil
		}
	case pb.InputScriptType_SPENDTAPROOT:
		d.kind = emulator.P2TR
		if d.ms != nil {
			return nil, fail(pb.FailureType_Failure_ProcessError, "Multisig not supported for taproot")
		}
	case pb.InputScriptType_EXTERNAL:
		return nil, dataError("External inputs are unsupported by this emulator")
	default:
		return nil, dataError("Invalid script type")
	}
	if d.pkScript, err = emulator.PkScript(pub, d.kind); err != nil {
		return nil, fail(pb.FailureType_Failure_ProcessError, "Script derivation failed")
	}
	return d, nil
}
