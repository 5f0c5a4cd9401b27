package bitbox02

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"

	"github.com/hwbridge/hwbridge/device"
	pb "github.com/hwbridge/hwbridge/internal/bitbox02pb"
)

// Multisig on the BitBox02 (firmware multisig.rs, registration.rs; bitbox-api-rs btc.rs
// make_script_config_multisig): a p2wsh or p2wsh-p2sh sortedmulti account at
// m/48'/coin'/account'/2' (or /1'), described by every cosigner's account xpub, our index
// among them, the threshold and the script type. The device signs only for a registered
// account: SignPSBT registers one it does not know (the person confirms the name and the
// cosigners on the device). The cosigners' xpubs come from the PSBT's global xpubs
// (PSBT_GLOBAL_XPUB), matched to the witness script's keys through their derivations.

// globalXPub is one PSBT_GLOBAL_XPUB entry.
type globalXPub struct {
	key  *hdkeychain.ExtendedKey
	fp   device.Fingerprint
	path []uint32
}

// globalXPubs reads the PSBT_GLOBAL_XPUB entries (key 0x01‖78-byte xpub, value
// fingerprint‖path), which btcd's psbt keeps among the unknowns.
func globalXPubs(p *psbt.Packet) []globalXPub {
	var out []globalXPub
	for _, u := range p.Unknowns {
		if len(u.Key) != 79 || u.Key[0] != 0x01 || len(u.Value) < 4 || (len(u.Value)-4)%4 != 0 {
			continue
		}
		k := u.Key[1:]
		key := hdkeychain.NewExtendedKey(k[0:4], k[45:78], k[13:45], k[5:9], k[4], binary.BigEndian.Uint32(k[9:13]), false)
		if _, err := key.ECPubKey(); err != nil {
			continue
		}
		var path []uint32
		for i := 4; i < len(u.Value); i += 4 {
			path = append(path, binary.LittleEndian.Uint32(u.Value[i:]))
		}
		out = append(out, globalXPub{key: key, fp: device.Fingerprint(binary.BigEndian.Uint32(u.Value[:4])), path: path})
	}
	return out
}

func pbXPub(k *hdkeychain.ExtendedKey) *pb.XPub {
	pub, _ := k.ECPubKey()
	return &pb.XPub{
		Depth: []byte{k.Depth()}, ParentFingerprint: binary.BigEndian.AppendUint32(nil, k.ParentFingerprint()),
		ChildNum: k.ChildIndex(), ChainCode: k.ChainCode(), PublicKey: pub.SerializeCompressed(),
	}
}

// ourMultisig recognises a sortedmulti p2wsh or p2wsh-p2sh output the device holds a key
// of, and returns its script config, our full keypath and key.
func ourMultisig(fp device.Fingerprint, pkScript, redeem, ws []byte, derivs []*psbt.Bip32Derivation, xpubs []globalXPub, net *chaincfg.Params) (*pb.BTCScriptConfigWithKeypath, []uint32, []byte, bool) {
	nested := txscript.IsPayToScriptHash(pkScript)
	if len(ws) == 0 || !(txscript.IsPayToWitnessScriptHash(pkScript) || nested && txscript.IsPayToWitnessScriptHash(redeem)) {
		return nil, nil, nil, false
	}
	if isMS, err := txscript.IsMultisigScript(ws); err != nil || !isMS {
		return nil, nil, nil, false
	}
	_, threshold, err := txscript.CalcMultiSigStats(ws)
	if err != nil {
		return nil, nil, nil, false
	}
	pushes, err := txscript.PushedData(ws)
	if err != nil {
		return nil, nil, nil, false
	}
	var pubs [][]byte
	for _, p := range pushes {
		if len(p) == 33 {
			pubs = append(pubs, p)
		}
	}
	if !slices.IsSortedFunc(pubs, bytes.Compare) {
		return nil, nil, nil, false // the BitBox02 knows sortedmulti only
	}
	var ourPath []uint32
	var ourPub []byte
	var cos []*hdkeychain.ExtendedKey
	for _, pub := range pubs {
		i := slices.IndexFunc(derivs, func(d *psbt.Bip32Derivation) bool { return bytes.Equal(d.PubKey, pub) })
		if i < 0 {
			return nil, nil, nil, false
		}
		d := derivs[i]
		var found *hdkeychain.ExtendedKey
		for _, x := range xpubs {
			if x.fp != device.FingerprintFromPSBT(d.MasterKeyFingerprint) || len(d.Bip32Path) != len(x.path)+2 || !slices.Equal(d.Bip32Path[:len(x.path)], x.path) {
				continue
			}
			k, err := x.key.Derive(d.Bip32Path[len(x.path)])
			if err == nil {
				k, err = k.Derive(d.Bip32Path[len(x.path)+1])
			}
			if kp, _ := k.ECPubKey(); err == nil && kp != nil && bytes.Equal(kp.SerializeCompressed(), pub) {
				found = x.key
				break
			}
		}
		if found == nil {
			return nil, nil, nil, false
		}
		cos = append(cos, found)
		if device.FingerprintFromPSBT(d.MasterKeyFingerprint) == fp {
			ourPath, ourPub = d.Bip32Path, pub
		}
	}
	if ourPath == nil || len(ourPath) != 6 {
		return nil, nil, nil, false
	}
	// A canonical order (by serialized xpub) so that the same account compares equal
	// wherever it appears; the device sorts for its registration hash anyway.
	slices.SortFunc(cos, func(a, b *hdkeychain.ExtendedKey) int { return bytes.Compare(pbXPub(a).PublicKey, pbXPub(b).PublicKey) })
	ms := &pb.BTCScriptConfig_Multisig{Threshold: uint32(threshold), ScriptType: pb.BTCScriptConfig_Multisig_P2WSH}
	if nested {
		ms.ScriptType = pb.BTCScriptConfig_Multisig_P2WSH_P2SH
	}
	for i, k := range cos {
		x := pbXPub(k)
		ms.Xpubs = append(ms.Xpubs, x)
		derived, err := k.Derive(ourPath[4])
		if err == nil {
			derived, err = derived.Derive(ourPath[5])
		}
		if err == nil {
			if kp, _ := derived.ECPubKey(); kp != nil && bytes.Equal(kp.SerializeCompressed(), ourPub) {
				ms.OurXpubIndex = uint32(i)
			}
		}
	}
	return &pb.BTCScriptConfigWithKeypath{ScriptConfig: &pb.BTCScriptConfig{Config: &pb.BTCScriptConfig_Multisig_{Multisig: ms}}, Keypath: slices.Clone(ourPath[:4])}, ourPath, ourPub, true
}

// registerMultisig registers each multisig account of the plan the device does not know.
func (d *Driver) registerMultisig(ctx context.Context, c *channel, pl *plan) error {
	for _, sc := range pl.init.GetScriptConfigs() {
		ms := sc.GetScriptConfig().GetMultisig()
		if ms == nil {
			continue
		}
		reg := &pb.BTCScriptConfigRegistration{Coin: pl.init.GetCoin(), ScriptConfig: sc.GetScriptConfig(), Keypath: sc.GetKeypath()}
		r, err := btcCall(ctx, c, "multisig registered?", &pb.BTCRequest{Request: &pb.BTCRequest_IsScriptConfigRegistered{
			IsScriptConfigRegistered: &pb.BTCIsScriptConfigRegisteredRequest{Registration: reg}}})
		if err != nil {
			return err
		}
		if r.GetIsScriptConfigRegistered().GetIsRegistered() {
			continue
		}
		h := sha256.New()
		for _, x := range ms.GetXpubs() {
			h.Write(x.GetPublicKey())
		}
		name := fmt.Sprintf("hwbridge %d-of-%d %s", ms.GetThreshold(), len(ms.GetXpubs()), hex.EncodeToString(h.Sum(nil))[:8])
		r, err = btcCall(ctx, c, "register multisig", &pb.BTCRequest{Request: &pb.BTCRequest_RegisterScriptConfig{
			RegisterScriptConfig: &pb.BTCRegisterScriptConfigRequest{Registration: reg, Name: name, XpubType: pb.BTCRegisterScriptConfigRequest_AUTO_XPUB_TPUB}}})
		if err != nil {
			return err
		}
		if r.GetSuccess() == nil {
			return fmt.Errorf("%w: register multisig: %T", device.ErrProtocol, r.GetResponse())
		}
	}
	return nil
}
