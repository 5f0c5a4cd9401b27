package trezoremu

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	pb "github.com/hwbridge/hwbridge/internal/trezorpb"
)

// coin is one entry of the firmware's coin table (common/defs/bitcoin/*.json, trezor.md §11).
type coin struct {
	name       string
	shortcut   string
	params     *chaincfg.Params
	xpub, ypub uint32
	zpub       uint32
	// msYpub, msZpub: xpub_magic_multisig_segwit_p2sh and _native (Ypub/Zpub, Upub/Vpub),
	// used to show the cosigners' keys of a p2sh-p2wsh or p2wsh multisig address.
	msYpub, msZpub uint32
}

var coins = map[string]*coin{
	"Bitcoin": {name: "Bitcoin", shortcut: "BTC", params: &chaincfg.MainNetParams, xpub: 0x0488B21E, ypub: 0x049D7CB2, zpub: 0x04B24746, msYpub: 0x0295B43F, msZpub: 0x02AA7ED3},
	"Testnet": {name: "Testnet", shortcut: "TEST", params: &chaincfg.TestNet3Params, xpub: 0x043587CF, ypub: 0x044A5262, zpub: 0x045F1CF6, msYpub: 0x024289EF, msZpub: 0x02575483},
	"Regtest": {name: "Regtest", shortcut: "REGTEST", params: &chaincfg.RegressionNetParams, xpub: 0x043587CF, ypub: 0x044A5262, zpub: 0x045F1CF6, msYpub: 0x024289EF, msZpub: 0x02575483},
}

func coinByName(name string) (*coin, error) {
	if c, ok := coins[name]; ok {
		return c, nil
	}
	return nil, dataError("Invalid coin name")
}

func versionBytes(v uint32) []byte {
	return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}

// checkScriptType refuses, before the seed is used, script types no key of the device
// has: SPENDMULTISIG is p2sh multisig (it needs the multisig field, see scriptFor).
func checkScriptType(t pb.InputScriptType) error {
	switch t {
	case pb.InputScriptType_SPENDADDRESS, pb.InputScriptType_SPENDMULTISIG, pb.InputScriptType_SPENDP2SHWITNESS,
		pb.InputScriptType_SPENDWITNESS, pb.InputScriptType_SPENDTAPROOT:
		return nil
	case pb.InputScriptType_EXTERNAL:
		return dataError("External inputs are unsupported by this emulator")
	}
	return dataError("Invalid script type")
}

// checkPath refuses paths no wallet uses (deeper than 8 levels, as core's validation).
func checkPath(p []uint32) (hdpath.Path, error) {
	if len(p) > 8 {
		return nil, dataError("Forbidden key path")
	}
	return hdpath.Path(p), nil
}

func (d *Device) getPublicKey(ctx context.Context, s *session, m *pb.GetPublicKey) (*pb.PublicKey, error) {
	if c := m.GetEcdsaCurveName(); c != "" && c != "secp256k1" {
		return nil, dataError("Unsupported curve")
	}
	c, err := coinByName(m.GetCoinName())
	if err != nil {
		return nil, err
	}
	p, err := checkPath(m.AddressN)
	if err != nil {
		return nil, err
	}
	ver := c.xpub
	if !m.GetIgnoreXpubMagic() {
		switch m.GetScriptType() {
		case pb.InputScriptType_SPENDADDRESS, pb.InputScriptType_SPENDTAPROOT:
		case pb.InputScriptType_SPENDP2SHWITNESS:
			ver = c.ypub
		case pb.InputScriptType_SPENDWITNESS:
			ver = c.zpub
		default:
			return nil, dataError("Invalid script type")
		}
	}
	w, err := d.wallet(ctx, s)
	if err != nil {
		return nil, err
	}
	node, xpub, err := hdNode(w, p, versionBytes(ver))
	if err != nil {
		return nil, err
	}
	if m.GetShowDisplay() {
		if err := s.confirm(ctx, pb.ButtonRequestType_ButtonRequest_PublicKey, emulator.Screen{Title: "Public key", Lines: []string{xpub, p.String(), c.name}}); err != nil {
			return nil, err
		}
	}
	out := &pb.PublicKey{Node: node, Xpub: proto.String(xpub), RootFingerprint: proto.Uint32(w.Fingerprint())}
	if !d.persona.legacy {
		_, plain, err := hdNode(w, p, versionBytes(c.xpub))
		if err != nil {
			return nil, err
		}
		if desc := xpubDescriptor(m.GetScriptType(), w.Fingerprint(), p, plain); desc != "" {
			out.Descriptor_ = proto.String(desc)
		}
	}
	return out, nil
}

func hdNode(w *emulator.Wallet, p hdpath.Path, version []byte) (*pb.HDNodeType, string, error) {
	k, err := w.Public(p, version)
	if err != nil {
		return nil, "", fail(pb.FailureType_Failure_ProcessError, "Key derivation failed")
	}
	pub, err := k.ECPubKey()
	if err != nil {
		return nil, "", fail(pb.FailureType_Failure_ProcessError, "Key derivation failed")
	}
	return &pb.HDNodeType{
		Depth:       proto.Uint32(uint32(k.Depth())),
		Fingerprint: proto.Uint32(k.ParentFingerprint()),
		ChildNum:    proto.Uint32(k.ChildIndex()),
		ChainCode:   bytes.Clone(k.ChainCode()),
		PublicKey:   pub.SerializeCompressed(),
	}, k.String(), nil
}

// address derives the address of a key of the device for a script type, single-key or,
// with ms, multisig (the firmware's addresses.get_address).
func address(w *emulator.Wallet, c *coin, p hdpath.Path, t pb.InputScriptType, ms *pb.MultisigRedeemScriptType) (string, *derived, error) {
	d, err := scriptFor(w, p, t, ms)
	if err != nil {
		return "", nil, err
	}
	_, addrs, _, err := txscript.ExtractPkScriptAddrs(d.pkScript, c.params)
	if err != nil || len(addrs) != 1 {
		return "", nil, fail(pb.FailureType_Failure_ProcessError, "Address encoding failed")
	}
	return addrs[0].EncodeAddress(), d, nil
}

func (d *Device) getAddress(ctx context.Context, s *session, m *pb.GetAddress) (*pb.Address, error) {
	c, err := coinByName(m.GetCoinName())
	if err != nil {
		return nil, err
	}
	p, err := checkPath(m.AddressN)
	if err != nil {
		return nil, err
	}
	if err := checkScriptType(m.GetScriptType()); err != nil {
		return nil, err
	}
	w, err := d.wallet(ctx, s)
	if err != nil {
		return nil, err
	}
	addr, dv, err := address(w, c, p, m.GetScriptType(), m.Multisig)
	if err != nil {
		return nil, err
	}
	if m.GetShowDisplay() {
		sc := emulator.Screen{Title: "Receive address", Lines: []string{addr, p.String(), c.name}}
		var more []emulator.Screen
		if ms := dv.ms; ms != nil {
			// The address with "Multisig m of n", then the cosigners' xpubs, yours marked.
			xp := ms.xpubs(c, m.GetScriptType())
			sc = emulator.Screen{Title: fmt.Sprintf("Multisig %d of %d", ms.m, len(ms.pubs)), Lines: append([]string{addr, p.String(), c.name}, xp...)}
			for i, x := range xp {
				for page := 1; page <= 2; page++ {
					more = append(more, emulator.Screen{Title: fmt.Sprintf("XPUB #%d (%d/2)", i+1, page), Lines: []string{x}})
				}
			}
		}
		if err := s.confirmAddress(ctx, sc, more...); err != nil {
			return nil, err
		}
	}
	return &pb.Address{Address: proto.String(addr)}, nil
}

// legacyVerifyAddress is the Trezor One's first screen when signing a message: the
// signing address (layoutVerifyAddress, ButtonRequest Other, in fsm_msgSignMessage and
// fsm_msgEthereumSignMessage, 1.13.1). Core shows the address with the message.
func (s *session) legacyVerifyAddress(ctx context.Context, addr string) error {
	if !s.d.persona.legacy {
		return nil
	}
	return s.confirm(ctx, pb.ButtonRequestType_ButtonRequest_Other, emulator.Screen{Title: "Confirm address", Lines: []string{addr}})
}

// messageDigest is SHA-256d(varint(24) ‖ "Bitcoin Signed Message:\n" ‖ varint(len) ‖ msg).
func messageDigest(msg []byte) []byte {
	var b bytes.Buffer
	const magic = "Bitcoin Signed Message:\n"
	_ = wire.WriteVarString(&b, 0, magic)
	_ = wire.WriteVarInt(&b, 0, uint64(len(msg)))
	b.Write(msg)
	return chainhash.DoubleHashB(b.Bytes())
}

// maxMessage caps a message to sign or verify (the firmware's limit is 1024 bytes).
const maxMessage = 1024

func messageLines(msg []byte) []string {
	if utf8.Valid(msg) {
		return strings.Split(string(msg), "\n")
	}
	return []string{"hex:" + hex.EncodeToString(msg)}
}

func (d *Device) signMessage(ctx context.Context, s *session, m *pb.SignMessage) (*pb.MessageSignature, error) {
	c, err := coinByName(m.GetCoinName())
	if err != nil {
		return nil, err
	}
	if len(m.GetMessage()) > maxMessage {
		return nil, dataError("Message too long")
	}
	p, err := checkPath(m.AddressN)
	if err != nil {
		return nil, err
	}
	var off byte
	switch m.GetScriptType() {
	case pb.InputScriptType_SPENDADDRESS:
	case pb.InputScriptType_SPENDP2SHWITNESS:
		off = 4
	case pb.InputScriptType_SPENDWITNESS:
		off = 8
	default:
		return nil, fail(pb.FailureType_Failure_ProcessError, "Unsupported script type")
	}
	if m.GetNoScriptType() {
		off = 0
	}
	w, err := d.wallet(ctx, s)
	if err != nil {
		return nil, err
	}
	addr, _, err := address(w, c, p, m.GetScriptType(), nil)
	if err != nil {
		return nil, err
	}
	if err := s.legacyVerifyAddress(ctx, addr); err != nil {
		return nil, err
	}
	lines := append([]string{addr}, messageLines(m.GetMessage())...)
	if err := s.confirm(ctx, pb.ButtonRequestType_ButtonRequest_Other, emulator.Screen{Title: "Sign message", Lines: lines}); err != nil {
		return nil, err
	}
	priv, err := w.PrivKey(p)
	if err != nil {
		return nil, fail(pb.FailureType_Failure_ProcessError, "Key derivation failed")
	}
	sig := ecdsa.SignCompact(priv, messageDigest(m.GetMessage()), true)
	sig[0] += off
	return &pb.MessageSignature{Address: proto.String(addr), Signature: sig}, nil
}

func (d *Device) verifyMessage(ctx context.Context, s *session, m *pb.VerifyMessage) (*pb.Success, error) {
	c, err := coinByName(m.GetCoinName())
	if err != nil {
		return nil, err
	}
	sig, msg := m.GetSignature(), m.GetMessage()
	if len(msg) > maxMessage {
		return nil, dataError("Message too long")
	}
	if len(sig) != 65 {
		return nil, dataError("Invalid signature")
	}
	h := sig[0]
	var kind emulator.ScriptKind
	compressed := true
	switch {
	case h >= 27 && h <= 30:
		kind, compressed = emulator.P2PKH, false
	case h >= 31 && h <= 34:
		kind = emulator.P2PKH
	case h >= 35 && h <= 38:
		kind, h = emulator.P2SHP2WPKH, h-4
	case h >= 39 && h <= 42:
		kind, h = emulator.P2WPKH, h-8
	default:
		return nil, dataError("Invalid signature")
	}
	norm := append([]byte{h}, sig[1:]...)
	pub, wasCompressed, err := ecdsa.RecoverCompact(norm, messageDigest(msg))
	if err != nil || wasCompressed != compressed {
		return nil, fail(pb.FailureType_Failure_InvalidSignature, "Invalid signature")
	}
	want, err := btcutil.DecodeAddress(m.GetAddress(), c.params)
	if err != nil || !want.IsForNet(c.params) {
		return nil, dataError("Invalid address")
	}
	if kind == emulator.P2PKH && compressed {
		// A 31–34 header (Electrum / no_script_type style) is accepted for any single-key
		// address type: the address says which.
		switch want.(type) {
		case *btcutil.AddressScriptHash:
			kind = emulator.P2SHP2WPKH
		case *btcutil.AddressWitnessPubKeyHash:
			kind = emulator.P2WPKH
		}
	}
	var got btcutil.Address
	if !compressed {
		got, err = btcutil.NewAddressPubKeyHash(btcutil.Hash160(pub.SerializeUncompressed()), c.params)
	} else {
		got, err = emulator.Address(pub, kind, c.params)
	}
	if err != nil || got.EncodeAddress() != want.EncodeAddress() {
		return nil, fail(pb.FailureType_Failure_InvalidSignature, "Invalid signature")
	}
	lines := append([]string{m.GetAddress()}, messageLines(msg)...)
	if err := s.confirm(ctx, pb.ButtonRequestType_ButtonRequest_Other, emulator.Screen{Title: "Verify message", Lines: lines}); err != nil {
		return nil, err
	}
	return &pb.Success{Message: proto.String("Message verified")}, nil
}
