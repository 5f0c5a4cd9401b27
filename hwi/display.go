package hwi

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/btcutil/psbt"

	"github.com/hwbridge/hwbridge/chains/bitcoin"
	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// parseDescriptor parses --desc with chains/bitcoin's parser. HWI's parse_descriptor raises
// ValueError for any malformed descriptor or checksum, which HWI answers as -13.
func parseDescriptor(desc string) (*bitcoin.Descriptor, error) {
	d, err := bitcoin.ParseDescriptor(desc)
	if err != nil {
		return nil, &codedError{code: CodeUnknownError, msg: fmt.Sprintf("descriptor %q: %v", desc, err)}
	}
	return d, nil
}

// singleKeyScript is the device script type of a single-key descriptor kind.
func singleKeyScript(k bitcoin.Kind) (device.ScriptType, bool) {
	switch k {
	case bitcoin.KindPKH:
		return device.ScriptPKH, true
	case bitcoin.KindSHWPKH:
		return device.ScriptSHWPKH, true
	case bitcoin.KindWPKH:
		return device.ScriptWPKH, true
	case bitcoin.KindTR:
		return device.ScriptTR, true
	}
	return "", false
}

// displayAddress is displayaddress --desc (HWI's displayaddress): a multisig descriptor
// goes to displayMultisig; a single-key one must name a key of this device by its origin.
// The address the device shows must equal the one the descriptor gives (position 0 of a
// ranged descriptor, branch 0 of a multipath one, as HWI's get_full_derivation_path(0)).
func (s *Signer) displayAddress(ctx context.Context, d device.Device, desc string) (map[string]string, error) {
	pd, err := parseDescriptor(desc)
	if err != nil {
		return nil, err
	}
	want, err := pd.Address(0, 0, s.net)
	if err != nil {
		return nil, errorf(CodeBadArgument, "descriptor %q: %v", desc, err)
	}
	st, single := singleKeyScript(pd.Kind)
	if !single {
		return s.displayMultisig(ctx, d, desc, pd, want.EncodeAddress())
	}
	k := pd.Keys[0]
	if !k.HasOrigin {
		return nil, errorf(CodeBadArgument, "Descriptor missing origin info: %s", desc)
	}
	fp, err := d.Fingerprint(ctx)
	if err != nil {
		return nil, err
	}
	if device.Fingerprint(k.Fingerprint) != fp {
		return nil, errorf(CodeBadArgument, "Descriptor fingerprint does not match device: %s", desc)
	}
	xpub, err := d.XPub(ctx, device.XPubRequest{Path: k.OriginPath, Network: s.net})
	if err != nil {
		return nil, err
	}
	if !sameKey(k, xpub) {
		return nil, errorf(CodeBadArgument, "Key in descriptor does not match device: %s", desc)
	}
	sc, err := pd.Derive(0, 0)
	if err != nil {
		return nil, errorf(CodeBadArgument, "descriptor %q: %v", desc, err)
	}
	got, err := d.Address(device.WithAppSwitch(ctx), device.AddressRequest{Chain: device.ChainBTC, Path: sc.Keys[0].Path, Script: st, Network: s.net, Display: true})
	if err != nil {
		return nil, err
	}
	if got != want.EncodeAddress() {
		return nil, errorf(CodeUnknownError, "the device showed %s but the descriptor gives %s: do not use this address", got, want)
	}
	return map[string]string{"address": got}, nil
}

// displayPath is displayaddress --path: the single-key address of the type at the path,
// shown on the device (HWI's display_singlesig_address).
func (s *Signer) displayPath(ctx context.Context, d device.Device, path, addrType string) (map[string]string, error) {
	p, err := parsePath(path)
	if err != nil {
		return nil, err
	}
	if len(p) == 0 {
		return nil, errorf(CodeBadArgument, "--path %q names the master key, which has no address", path)
	}
	got, err := d.Address(device.WithAppSwitch(ctx), device.AddressRequest{Chain: device.ChainBTC, Path: p, Script: addrTypeScript(addrType), Network: s.net, Display: true})
	if err != nil {
		return nil, err
	}
	return map[string]string{"address": got}, nil
}

// sameKey compares a descriptor key with the device's xpub at its origin path: the same
// public key and chain code for an xpub (whatever the version bytes), the same public key
// (or its x coordinate) for a raw key (HWI: pubkey == xpub, xpub_to_pub_hex or
// xpub_to_xonly_pub_hex).
func sameKey(k *bitcoin.Key, deviceXPub string) bool {
	dk, err := hdkeychain.NewKeyFromString(deviceXPub)
	if err != nil {
		return false
	}
	dpub, err := dk.ECPubKey()
	if err != nil {
		return false
	}
	if k.XPub != nil {
		pub, err := k.XPub.ECPubKey()
		return err == nil && bytes.Equal(pub.SerializeCompressed(), dpub.SerializeCompressed()) && bytes.Equal(k.XPub.ChainCode(), dk.ChainCode())
	}
	if k.XOnly {
		return bytes.Equal(schnorr.SerializePubKey(k.Pub), schnorr.SerializePubKey(dpub))
	}
	return k.Pub.IsEqual(dpub)
}

// multisigSteps is the change and index a multisig descriptor's keys all end in below
// their xpubs, at HWI's position 0: /c/* (c, 0), /c/i (c, i) or /<0;1>/* (0, 0).
func multisigSteps(pd *bitcoin.Descriptor) (change, index uint32, err error) {
	var first *[2]uint32
	for _, k := range pd.Keys {
		if k.XPub == nil {
			return 0, 0, errorf(CodeBadArgument, "Ledger Bitcoin app requires derivation paths ending with /0/* or /1/* for multisig")
		}
		var steps []uint32
		steps = append(steps, k.Steps...)
		if k.Multipath != nil {
			steps = append(steps, k.Multipath[0])
		}
		if k.Wildcard {
			steps = append(steps, 0)
		}
		if len(steps) != 2 || steps[0] > 1 {
			// HWI's message; hwbridge also takes /<0;1>/* and a fixed /0/N or /1/N.
			return 0, 0, errorf(CodeBadArgument, "Ledger Bitcoin app requires derivation paths ending with /0/* or /1/* for multisig")
		}
		cs := [2]uint32{steps[0], steps[1]}
		if first != nil && *first != cs {
			return 0, 0, errorf(CodeBadArgument, "Ledger Bitcoin app requires all derivation paths to end with /0/*, or all with /1/* for multisig")
		}
		first = &cs
	}
	return first[0], first[1], nil
}

// ownKey finds the device's key among a descriptor's keys by origin fingerprint.
func ownKey(pd *bitcoin.Descriptor, fp device.Fingerprint) (int, bool) {
	for i, k := range pd.Keys {
		if k.HasOrigin && device.Fingerprint(k.Fingerprint) == fp {
			return i, true
		}
	}
	return 0, false
}

// MultisigDevice shows multisig addresses from the cosigners' keys (a Trezor:
// GetAddress with MultisigRedeemScriptType). device/trezor.Driver implements it.
type MultisigDevice interface {
	MultisigAddress(ctx context.Context, req device.MultisigAddressRequest) (string, error)
}

// displayMultisig is HWI's display_multisig_address: a Trezor is sent the cosigners' keys
// (sorted by derived key for sortedmulti, as HWI does), a Ledger the wallet policy HWI
// builds ("M of N Multisig", registered; hwbridged keeps the registration). The address
// shown must equal want, computed from the descriptor.
func (s *Signer) displayMultisig(ctx context.Context, d device.Device, desc string, pd *bitcoin.Descriptor, want string) (map[string]string, error) {
	fp, err := d.Fingerprint(ctx)
	if err != nil {
		return nil, err
	}
	own, ok := ownKey(pd, fp)
	if !ok {
		return nil, errorf(CodeBadArgument, "No path supplied matched device keys")
	}
	var got string
	switch inner := device.Inner(d).(type) {
	case PolicyDevice:
		change, index, serr := multisigSteps(pd)
		if serr != nil {
			return nil, serr
		}
		pol, perr := multisigPolicy(pd)
		if perr != nil {
			return nil, perr
		}
		got, err = s.policyAddress(ctx, inner, pol, nil, change, index)
	case MultisigDevice:
		got, err = s.trezorMultisig(ctx, inner, pd, own)
	default:
		return nil, errorf(CodeUnavailableAction, "this device does not show multisig addresses through hwbridge")
	}
	if err != nil {
		return nil, err
	}
	if got != want {
		return nil, errorf(CodeUnknownError, "the device showed %s but the descriptor gives %s: do not use this address", got, want)
	}
	return map[string]string{"address": got}, nil
}

func multisigScript(k bitcoin.Kind) device.MultisigScript {
	switch k {
	case bitcoin.KindSHMulti:
		return device.MultisigSH
	case bitcoin.KindSHWSH:
		return device.MultisigSHWSH
	}
	return device.MultisigWSH
}

// trezorMultisig is HWI's Trezor display_multisig_address: each key as its node and the
// steps below it at position 0 (a plain key as a node with a zero chain code), sorted by
// derived key for sortedmulti; the device's own key by its full path.
func (s *Signer) trezorMultisig(ctx context.Context, md MultisigDevice, pd *bitcoin.Descriptor, own int) (string, error) {
	sc, err := pd.Derive(0, 0)
	if err != nil {
		return "", errorf(CodeBadArgument, "%v", err)
	}
	type entry struct {
		pub []byte
		key device.MultisigKey
	}
	var keys []entry
	for i, k := range pd.Keys {
		pub := sc.Keys[i].Pub.SerializeCompressed()
		e := entry{pub: pub, key: device.MultisigKey{Pub: pub}}
		if k.XPub != nil {
			steps := hdpath.Path(append([]uint32{}, k.Steps...))
			if k.Multipath != nil {
				steps = append(steps, k.Multipath[0])
			}
			if k.Wildcard {
				steps = append(steps, 0)
			}
			e.key = device.MultisigKey{XPub: k.XPub.String(), Steps: steps}
		}
		keys = append(keys, e)
	}
	if pd.Sorted {
		slices.SortStableFunc(keys, func(a, b entry) int { return bytes.Compare(a.pub, b.pub) })
	}
	req := device.MultisigAddressRequest{Script: multisigScript(pd.Kind), Threshold: pd.Threshold, Path: sc.Keys[own].Path, Network: s.net, Display: true}
	for _, e := range keys {
		req.Keys = append(req.Keys, e.key)
	}
	return md.MultisigAddress(device.WithAppSwitch(ctx), req)
}

func (s *Signer) signTx(ctx context.Context, d device.Device, b64 string) (map[string]any, error) {
	p, err := psbt.NewFromRawBytes(strings.NewReader(strings.TrimSpace(b64)), true)
	if err != nil {
		return nil, errorf(CodeInvalidTx, "the PSBT does not decode (base64 BIP-174 expected): %v", err)
	}
	if err := d.SignPSBT(device.WithAppSwitch(ctx), p, s.net); err != nil {
		return nil, err
	}
	out, err := p.B64Encode()
	if err != nil {
		return nil, errorf(CodeInvalidTx, "encode the signed PSBT: %v", err)
	}
	return map[string]any{"psbt": out, "signed": out != strings.TrimSpace(b64)}, nil
}

// rangedDescriptor prints kind([fp/origin]xpub/steps/*) with its checksum (chains/bitcoin's
// printer), as HWI's getdescriptor.
func rangedDescriptor(st device.ScriptType, fp device.Fingerprint, origin hdpath.Path, xpub string, steps hdpath.Path) (string, error) {
	kind, err := bitcoin.KindOf(st)
	if err != nil {
		return "", err
	}
	x, err := hdkeychain.NewKeyFromString(xpub)
	if err != nil {
		return "", fmt.Errorf("the device's xpub %q: %w", xpub, err)
	}
	k := &bitcoin.Key{HasOrigin: true, Fingerprint: uint32(fp), OriginPath: origin, XPub: x, Steps: steps, Wildcard: true}
	return (&bitcoin.Descriptor{Kind: kind, Keys: []*bitcoin.Key{k}}).String(), nil
}
