package bitcoin

import (
	"context"
	"fmt"
	"sync"

	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// KeySource is the part of device.Device a watch-only wallet needs: the master fingerprint
// and account xpubs.
type KeySource interface {
	Fingerprint(ctx context.Context) (device.Fingerprint, error)
	XPub(ctx context.Context, req device.XPubRequest) (string, error)
}

// KindOf maps a device script type to a descriptor kind.
func KindOf(st device.ScriptType) (Kind, error) {
	switch st {
	case device.ScriptPKH:
		return KindPKH, nil
	case device.ScriptSHWPKH:
		return KindSHWPKH, nil
	case device.ScriptWPKH:
		return KindWPKH, nil
	case device.ScriptTR:
		return KindTR, nil
	}
	return "", fmt.Errorf("%w: script type %q (use pkh, sh-wpkh, wpkh or tr)", device.ErrInvalidInput, string(st))
}

// AccountPath is m/purpose'/coin'/account' for a single-key script type (BIP-44/49/84/86).
func AccountPath(st device.ScriptType, net *chaincfg.Params, account uint32) (hdpath.Path, error) {
	purpose, err := st.Purpose()
	if err != nil {
		return nil, err
	}
	return hdpath.Path{purpose + hdpath.Hardened, net.HDCoinType + hdpath.Hardened, account + hdpath.Hardened}, nil
}

// MultisigAccountPath is the BIP-48 path m/48'/coin'/account'/2' (native segwit multisig).
func MultisigAccountPath(net *chaincfg.Params, account uint32) hdpath.Path {
	return hdpath.Path{48 + hdpath.Hardened, net.HDCoinType + hdpath.Hardened, account + hdpath.Hardened, 2 + hdpath.Hardened}
}

// AccountKey reads the account xpub at path from a device and returns the key expression
// "[fingerprint/path]xpub/<0;1>/*".
func AccountKey(ctx context.Context, dev KeySource, path hdpath.Path, net *chaincfg.Params) (*Key, error) {
	fp, err := dev.Fingerprint(ctx)
	if err != nil {
		return nil, fmt.Errorf("fingerprint: %w", err)
	}
	s, err := dev.XPub(ctx, device.XPubRequest{Path: path, Network: net})
	if err != nil {
		return nil, fmt.Errorf("xpub %s: %w", path, err)
	}
	xpub, err := hdkeychain.NewKeyFromString(s)
	if err != nil {
		return nil, fmt.Errorf("the device's xpub %q does not parse: %w", s, err)
	}
	if xpub.IsPrivate() {
		return nil, fmt.Errorf("the device returned a private key for %s; refusing it", path)
	}
	return &Key{
		HasOrigin: true, Fingerprint: uint32(fp), OriginPath: append([]uint32{}, path...),
		XPub: xpub, base: xpub, branch: new(sync.Map), Multipath: []uint32{0, 1}, Wildcard: true,
	}, nil
}

// AccountDescriptor builds the descriptor of a device's single-key account: for example
// wpkh([73c5da0a/84h/1h/0h]tpub…/<0;1>/*).
func AccountDescriptor(ctx context.Context, dev KeySource, st device.ScriptType, net *chaincfg.Params, account uint32) (*Descriptor, error) {
	kind, err := KindOf(st)
	if err != nil {
		return nil, err
	}
	path, err := AccountPath(st, net, account)
	if err != nil {
		return nil, err
	}
	k, err := AccountKey(ctx, dev, path, net)
	if err != nil {
		return nil, err
	}
	return &Descriptor{Kind: kind, Keys: []*Key{k}}, nil
}

// MultisigDescriptor builds wsh(sortedmulti(m, …)) over the BIP-48 accounts of several
// devices.
func MultisigDescriptor(ctx context.Context, devs []KeySource, m int, net *chaincfg.Params, account uint32) (*Descriptor, error) {
	if m < 1 || m > len(devs) {
		return nil, fmt.Errorf("%w: threshold %d of %d keys", device.ErrInvalidInput, m, len(devs))
	}
	d := &Descriptor{Kind: KindWSHMulti, Threshold: m, Sorted: true}
	for i, dev := range devs {
		k, err := AccountKey(ctx, dev, MultisigAccountPath(net, account), net)
		if err != nil {
			return nil, fmt.Errorf("cosigner %d: %w", i+1, err)
		}
		d.Keys = append(d.Keys, k)
	}
	return d, nil
}

// GlobalXPubs returns the PSBT_GLOBAL_XPUB entries (key 0x01‖serialized xpub, value
// fingerprint‖path) for a multisig descriptor's keys, so devices can check change.
func (d *Descriptor) GlobalXPubs() ([][2][]byte, error) {
	var out [][2][]byte
	for _, k := range d.Keys {
		if k.XPub == nil {
			continue
		}
		ser, err := serializeXPub(k.XPub)
		if err != nil {
			return nil, err
		}
		fp, prefix := k.origin()
		val := []byte{byte(fp >> 24), byte(fp >> 16), byte(fp >> 8), byte(fp)}
		for _, s := range prefix {
			val = append(val, byte(s), byte(s>>8), byte(s>>16), byte(s>>24))
		}
		out = append(out, [2][]byte{append([]byte{0x01}, ser...), val})
	}
	return out, nil
}
