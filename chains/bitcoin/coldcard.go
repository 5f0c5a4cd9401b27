package bitcoin

// A Coldcard's "Generic JSON" wallet export (Advanced > MicroSD > Export Wallet > Generic
// JSON; format: Coldcard/firmware docs/generic-wallet-export.md): the master fingerprint and,
// per BIP-44/49/84/86 account, its path and xpub. It is the key source of a watch-only wallet
// whose PSBTs the Coldcard signs from its microSD card.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// ErrNoExportedAccount: the wallet export holds no account at the path a send needs.
var ErrNoExportedAccount = errors.New("the wallet export has no account at this path: export the account (type and number) you send from on the Coldcard, or pick one it holds with --type and --account")

// MaxWalletExport is the largest wallet export file read, in bytes.
const MaxWalletExport = 64 << 10

// ColdcardAccount is one account of a wallet export.
type ColdcardAccount struct {
	Name  string      `json:"name"` // p2pkh, p2wpkh-p2sh, p2wpkh, p2tr (multisig sections are kept, not checked)
	Path  hdpath.Path `json:"-"`
	Deriv string      `json:"deriv"`
	XPub  string      `json:"xpub"`
	First string      `json:"first"` // the address at Deriv/0/0
}

// ColdcardExport is a parsed wallet export: a KeySource without a device.
type ColdcardExport struct {
	Net      *chaincfg.Params
	XFP      device.Fingerprint // the master fingerprint
	Accounts []ColdcardAccount
}

// coldcardChains are the export's chain codes.
var coldcardChains = map[string]*chaincfg.Params{
	"BTC": &chaincfg.MainNetParams, "XTN": &chaincfg.TestNet3Params, "XRT": &chaincfg.RegressionNetParams,
}

// coldcardKinds are the single-key section names and their descriptor kinds.
// (bip49 was named p2wpkh-p2sh before firmware 5, p2sh-p2wpkh since; shared/export.py).
var coldcardKinds = map[string]Kind{"p2pkh": KindPKH, "p2wpkh-p2sh": KindSHWPKH, "p2sh-p2wpkh": KindSHWPKH, "p2wpkh": KindWPKH, "p2tr": KindTR}

// ParseColdcardExport reads a Generic JSON wallet export and checks it: the master
// fingerprint, each account's xpub (public, at the depth of its path), and each single-key
// account's first address re-derived from its xpub.
func ParseColdcardExport(b []byte) (*ColdcardExport, error) {
	if len(b) > MaxWalletExport {
		return nil, fmt.Errorf("%w: wallet export: %d bytes is more than the %d accepted", device.ErrInvalidInput, len(b), MaxWalletExport)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, fmt.Errorf("%w: wallet export: not a Coldcard Generic JSON export: %v", device.ErrInvalidInput, err)
	}
	if top["p2wsh_deriv"] != nil || top["p2sh_p2wsh_deriv"] != nil {
		return nil, fmt.Errorf("%w: wallet export: %w", device.ErrInvalidInput, ErrMultisigExport)
	}
	var chain, xfp string
	if err := errors.Join(json.Unmarshal(top["chain"], &chain), json.Unmarshal(top["xfp"], &xfp)); err != nil {
		return nil, fmt.Errorf("%w: wallet export: chain and xfp must be strings: %v", device.ErrInvalidInput, err)
	}
	net, ok := coldcardChains[chain]
	if !ok {
		return nil, fmt.Errorf("%w: wallet export: chain %q (want BTC, XTN or XRT)", device.ErrInvalidInput, chain)
	}
	fp, err := strconv.ParseUint(xfp, 16, 32)
	if err != nil || len(xfp) != 8 {
		return nil, fmt.Errorf("%w: wallet export: xfp %q is not 8 hex digits", device.ErrInvalidInput, xfp)
	}
	ex := &ColdcardExport{Net: net, XFP: device.Fingerprint(fp)}
	for name, raw := range top {
		if !strings.HasPrefix(name, "bip") {
			continue
		}
		var a ColdcardAccount
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, fmt.Errorf("%w: wallet export: %s: %v", device.ErrInvalidInput, name, err)
		}
		if err := a.check(ex); err != nil {
			return nil, fmt.Errorf("%w: wallet export: %s: %w", device.ErrInvalidInput, name, err)
		}
		ex.Accounts = append(ex.Accounts, a)
	}
	if len(ex.Accounts) == 0 {
		return nil, fmt.Errorf("%w: wallet export: no accounts (bip44, bip49, bip84, bip86)", device.ErrInvalidInput)
	}
	return ex, nil
}

func (a *ColdcardAccount) check(ex *ColdcardExport) error {
	var err error
	if a.Path, err = hdpath.Parse(a.Deriv); err != nil {
		return fmt.Errorf("deriv %q: %w", a.Deriv, err)
	}
	k, err := hdkeychain.NewKeyFromString(a.XPub)
	if err != nil {
		return fmt.Errorf("xpub: %w", err)
	}
	if k.IsPrivate() || int(k.Depth()) != len(a.Path) {
		return fmt.Errorf("xpub is not the public key at %s", a.Deriv)
	}
	kind, single := coldcardKinds[a.Name]
	if !single {
		return nil
	}
	d, err := a.descriptor(ex.XFP, kind)
	if err != nil {
		return err
	}
	addr, err := d.Address(0, 0, ex.Net)
	if err != nil {
		return err
	}
	if a.First != addr.EncodeAddress() {
		return fmt.Errorf("its first address %q is not %s, derived from its xpub: the file is damaged or not from this wallet", a.First, addr.EncodeAddress())
	}
	return nil
}

func (a *ColdcardAccount) descriptor(fp device.Fingerprint, kind Kind) (*Descriptor, error) {
	key := fmt.Sprintf("[%s%s]%s/<0;1>/*", fp, strings.TrimPrefix(a.Path.StringH(), "m"), a.XPub)
	var s string
	switch kind {
	case KindSHWPKH:
		s = "sh(wpkh(" + key + "))"
	default:
		s = string(kind) + "(" + key + ")"
	}
	return ParseDescriptor(s)
}

// Fingerprint is the master fingerprint of the exported wallet (KeySource).
func (ex *ColdcardExport) Fingerprint(context.Context) (device.Fingerprint, error) {
	return ex.XFP, nil
}

// XPub is the exported xpub of the account at req.Path (KeySource); ErrNoExportedAccount
// when the export has none there.
func (ex *ColdcardExport) XPub(_ context.Context, req device.XPubRequest) (string, error) {
	want := hdpath.Path(req.Path).String()
	for _, a := range ex.Accounts {
		if a.Path.String() == want {
			return a.XPub, nil
		}
	}
	return "", fmt.Errorf("%w (%s; it holds %s)", ErrNoExportedAccount, want, ex.paths())
}

func (ex *ColdcardExport) paths() string {
	var ps []string
	for _, a := range ex.Accounts {
		ps = append(ps, a.Path.String())
	}
	sort.Strings(ps)
	return strings.Join(ps, ", ")
}
