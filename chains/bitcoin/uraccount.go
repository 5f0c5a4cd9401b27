package bitcoin

// A QR signer's account export (SafePal, Keystone, Passport, Jade: "connect software
// wallet"): the UR crypto-account of BCR-2020-015 (the master fingerprint and one
// crypto-output per script type, each an account xpub with its origin), or a single
// crypto-hdkey or crypto-output. It is the key source of a watch-only wallet whose PSBTs
// the device signs through QR codes (--export-qr / --import-qr).

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/ur"
)

// URAccount is a parsed account export: a KeySource without a device.
type URAccount struct {
	XFP  device.Fingerprint
	Keys []URAccountKey
}

// URAccountKey is one account key of the export.
type URAccountKey struct {
	Path    hdpath.Path
	Scripts []uint64 // the output's script expressions, outermost first (ur.TagWPKH, …)
	Key     *ur.HDKey
}

// urPurposes are the BIP-44/49/84/86 purposes of single-key script expressions.
var urPurposes = map[string]uint32{
	fmt.Sprint([]uint64{ur.TagPKH}):            44,
	fmt.Sprint([]uint64{ur.TagSH, ur.TagWPKH}): 49,
	fmt.Sprint([]uint64{ur.TagWPKH}):           84,
	fmt.Sprint([]uint64{ur.TagTR}):             86,
}

// ReadURs collects the URs in text: one UR part a line (blank lines and lines starting with
// # ignored), several URs one after another, each single-part or multi-part in any order.
func ReadURs(text string) ([]ur.UR, error) {
	var out []ur.UR
	d := ur.NewDecoder()
	pending := false
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := d.Receive(line); err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", device.ErrInvalidInput, n+1, err)
		}
		pending = true
		if d.Done() {
			u, err := d.Result()
			if err != nil {
				return nil, fmt.Errorf("%w: %w", device.ErrInvalidInput, err)
			}
			out = append(out, u)
			d, pending = ur.NewDecoder(), false
		}
	}
	if pending {
		_, err := d.Result()
		return nil, fmt.Errorf("%w: %w", device.ErrInvalidInput, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no UR (ur:…) found", device.ErrInvalidInput)
	}
	return out, nil
}

// IsUR says whether b looks like UR text rather than a file of another kind.
func IsUR(b []byte) bool {
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		return len(line) > 3 && strings.EqualFold(line[:3], "ur:")
	}
	return false
}

// ParseURAccount reads an account export: crypto-account, or crypto-hdkey / crypto-output
// URs whose origins name the master fingerprint. Each key must be a public key at the depth
// of its origin path; a single-key output must sit at its script type's BIP-44/49/84/86
// path (pkh at 44', sh(wpkh) at 49', wpkh at 84', tr at 86'); keys one level below the
// master must name it as their parent.
func ParseURAccount(text string) (*URAccount, error) {
	if len(text) > MaxWalletExport {
		return nil, fmt.Errorf("%w: account export: %d bytes is more than the %d accepted", device.ErrInvalidInput, len(text), MaxWalletExport)
	}
	urs, err := ReadURs(text)
	if err != nil {
		return nil, err
	}
	a := &URAccount{}
	haveXFP := false
	setXFP := func(fp uint32) error {
		if haveXFP && device.Fingerprint(fp) != a.XFP {
			return fmt.Errorf("keys of two wallets (master fingerprints %s and %s)", a.XFP, device.Fingerprint(fp))
		}
		a.XFP, haveXFP = device.Fingerprint(fp), true
		return nil
	}
	var outs []ur.Output
	for _, u := range urs {
		switch u.Type {
		case ur.TypeCryptoAccount:
			acct, err := ur.DecodeAccount(u)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", device.ErrInvalidInput, err)
			}
			if err := setXFP(acct.MasterFingerprint); err != nil {
				return nil, fmt.Errorf("%w: account export: %w", device.ErrInvalidInput, err)
			}
			outs = append(outs, acct.Outputs...)
		case ur.TypeCryptoOutput:
			o, err := ur.DecodeOutput(u)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", device.ErrInvalidInput, err)
			}
			outs = append(outs, *o)
		case ur.TypeCryptoHDKey:
			k, err := ur.DecodeHDKey(u)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", device.ErrInvalidInput, err)
			}
			outs = append(outs, ur.Output{Key: k})
		default:
			return nil, fmt.Errorf("%w: account export: a %s UR (want crypto-account, crypto-hdkey or crypto-output)", device.ErrInvalidInput, u.Type)
		}
	}
	for _, o := range outs {
		if o.Key.Origin != nil && o.Key.Origin.Fingerprint != 0 {
			if err := setXFP(o.Key.Origin.Fingerprint); err != nil {
				return nil, fmt.Errorf("%w: account export: %w", device.ErrInvalidInput, err)
			}
		}
	}
	if !haveXFP {
		return nil, fmt.Errorf("%w: account export: no master fingerprint (its keys' origins name none)", device.ErrInvalidInput)
	}
	for i, o := range outs {
		k, err := a.check(o)
		if err != nil {
			return nil, fmt.Errorf("%w: account export: key %d: %w", device.ErrInvalidInput, i+1, err)
		}
		a.Keys = append(a.Keys, *k)
	}
	return a, nil
}

func (a *URAccount) check(o ur.Output) (*URAccountKey, error) {
	k := o.Key
	if k.Origin == nil || len(k.Origin.Path) == 0 {
		return nil, errors.New("no origin path: the wallet cannot tell which account it is")
	}
	path := hdpath.Path(k.Origin.Path)
	if len(path) > 255 {
		return nil, fmt.Errorf("an origin path of %d levels (BIP-32 depth is one byte)", len(path))
	}
	if k.Origin.Depth != len(path) {
		return nil, fmt.Errorf("origin %s at depth %d: a path from the master is needed", path, k.Origin.Depth)
	}
	if len(path) == 1 && k.ParentFingerprint != 0 && device.Fingerprint(k.ParentFingerprint) != a.XFP {
		return nil, fmt.Errorf("%s names parent %08x, not the master %s", path, k.ParentFingerprint, a.XFP)
	}
	if _, err := btcec.ParsePubKey(k.KeyData); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if want, ok := urPurposes[fmt.Sprint(o.Scripts)]; ok && path[0] != want+hdpath.Hardened {
		return nil, fmt.Errorf("a %s output at %s (its script type belongs at m/%d'/…)", urScriptName(o.Scripts), path, want)
	}
	return &URAccountKey{Path: path, Scripts: o.Scripts, Key: k}, nil
}

func urScriptName(s []uint64) string {
	names := map[uint64]string{ur.TagSH: "sh", ur.TagWSH: "wsh", ur.TagPK: "pk", ur.TagPKH: "pkh", ur.TagWPKH: "wpkh", ur.TagCombo: "combo", ur.TagTR: "tr"}
	var b strings.Builder
	for _, t := range s {
		b.WriteString(names[t] + "(")
	}
	b.WriteString("KEY" + strings.Repeat(")", len(s)))
	return b.String()
}

// Fingerprint is the master fingerprint of the exported wallet (KeySource).
func (a *URAccount) Fingerprint(context.Context) (device.Fingerprint, error) { return a.XFP, nil }

// XPub is the exported key at req.Path as an xpub or tpub for req.Network (KeySource);
// ErrNoExportedAccount when the export has none there, ErrInvalidInput when the key was
// exported for the other network (mainnet vs test networks).
func (a *URAccount) XPub(_ context.Context, req device.XPubRequest) (string, error) {
	net := req.Network
	if net == nil {
		net = &chaincfg.MainNetParams
	}
	want := hdpath.Path(req.Path).String()
	for _, k := range a.Keys {
		if k.Path.String() != want {
			continue
		}
		if k.Key.Testnet != (net.Net != chaincfg.MainNetParams.Net) {
			return "", fmt.Errorf("%w: the exported key at %s is for %s, not %s", device.ErrInvalidInput, want, map[bool]string{true: "a test network", false: "mainnet"}[k.Key.Testnet], net.Name)
		}
		var parent [4]byte
		binary.BigEndian.PutUint32(parent[:], k.Key.ParentFingerprint)
		if len(k.Path) == 1 {
			binary.BigEndian.PutUint32(parent[:], uint32(a.XFP))
		}
		x := hdkeychain.NewExtendedKey(net.HDPublicKeyID[:], k.Key.KeyData, k.Key.ChainCode, parent[:], uint8(len(k.Path)), k.Path[len(k.Path)-1], false)
		return x.String(), nil
	}
	var have []string
	for _, k := range a.Keys {
		have = append(have, k.Path.String())
	}
	sort.Strings(have)
	return "", fmt.Errorf("%w (%s; it holds %s)", ErrNoExportedAccount, want, strings.Join(have, ", "))
}

// ParseWalletExport reads a watch-only wallet's export: a QR signer's UR account export
// (ParseURAccount) or a Coldcard's Generic JSON (ParseColdcardExport). label names it in
// the journal and the audit log.
func ParseWalletExport(b []byte) (keys KeySource, label string, err error) {
	if IsUR(b) {
		a, err := ParseURAccount(string(b))
		if err != nil {
			return nil, "", err
		}
		return a, "ur-account:" + a.XFP.String(), nil
	}
	ex, err := ParseColdcardExport(b)
	if err != nil {
		return nil, "", err
	}
	return ex, "coldcard-export:" + ex.XFP.String(), nil
}

// URAccountOf is the crypto-account export of keys (used by the QR signer emulator and
// tests): each key's xpub at its origin path, with its parent's fingerprint.
func URAccountOf(xfp device.Fingerprint, keys []URAccountKey) ur.UR {
	acct := &ur.Account{MasterFingerprint: uint32(xfp)}
	for _, k := range keys {
		acct.Outputs = append(acct.Outputs, ur.Output{Scripts: k.Scripts, Key: k.Key})
	}
	return ur.AccountUR(acct)
}
