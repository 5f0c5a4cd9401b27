package bitcoin

// A Coldcard's multisig keys, as its exports carry them (Coldcard/firmware, commit
// 8eb0e008f63f181e8f0834c00dedba3a07aca77c):
//   - the multisig XPUB export (Settings > Multisig Wallets > Export XPUB, file
//     ccxp-XFP.json; shared/multisig.py export_multisig_xpubs): flat keys NAME_deriv, NAME
//     (the xpub in SLIP-132 form: Ypub/Zpub, Upub/Vpub) and NAME_desc (a descriptor
//     template "wsh(sortedmulti(M,[xfp/path]tpub/0/*,...))") for NAME p2sh (m/45', account
//     0 only), p2sh_p2wsh (m/48'/coin'/acct'/1') and p2wsh (m/48'/coin'/acct'/2'), then
//     "account" (a string) and "xfp"; no chain field: the xpub versions tell it;
//   - the Generic JSON export's sections bip45, bip48_1 and bip48_2 (shared/export.py
//     generate_generic_export): name, xfp (the fingerprint of the section's own key), deriv,
//     xpub (BIP-32 version), desc (the same template) and _pub (SLIP-132).
// ParseColdcardMultisig reads either into cosigner keys; ColdcardMultisigDescriptor makes the
// M-of-N sortedmulti descriptor a chains/bitcoin Wallet builds and checks PSBTs for. `btc
// send` itself spends single-key accounts only (AccountDescriptor), so a multisig wallet is
// a library-level wallet here, not a CLI one.

import (
	"bytes"
	"encoding/binary"
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

// ErrMultisigExport: a multisig XPUB export was given where a single-signer wallet export
// is needed.
var ErrMultisigExport = errors.New("this is a Coldcard multisig XPUB export (ccxp-XFP.json): btc send spends single-key accounts; export the single-signer wallet (Advanced > MicroSD > Export Wallet > Generic JSON)")

// ColdcardMultisigKey is one cosigner key of a Coldcard multisig export.
type ColdcardMultisigKey struct {
	Name string // p2sh, p2sh_p2wsh or p2wsh (the ccxp names; Generic JSON's map onto them)
	Kind Kind   // KindSHMulti, KindSHWSH or KindWSHMulti
	Net  *chaincfg.Params
	XFP  device.Fingerprint // the master fingerprint
	Path hdpath.Path
	XPub string // BIP-32 serialization (xpub or tpub), whatever SLIP-132 form the file had
}

// Key is the key's descriptor expression with its origin: [xfp/path]xpub/<0;1>/*.
func (k ColdcardMultisigKey) Key() string {
	return fmt.Sprintf("[%s%s]%s/<0;1>/*", k.XFP, strings.TrimPrefix(k.Path.StringH(), "m"), k.XPub)
}

// coldcardMultisig are the script types of a multisig export: ccxp name, Generic JSON
// section and name, kind, BIP-48 script number (0: BIP-45), SLIP-132 public versions
// (mainnet, testnet).
var coldcardMultisig = []struct {
	name, section, generic string
	kind                   Kind
	script                 uint32
	slip132                [2]uint32
}{
	{"p2sh", "bip45", "p2sh", KindSHMulti, 0, [2]uint32{}},
	{"p2sh_p2wsh", "bip48_1", "p2sh-p2wsh", KindSHWSH, 1, [2]uint32{0x0295b43f, 0x024289ef}}, // Ypub, Upub
	{"p2wsh", "bip48_2", "p2wsh", KindWSHMulti, 2, [2]uint32{0x02aa7ed3, 0x02575483}},        // Zpub, Vpub
}

// ParseColdcardMultisig reads a Coldcard's multisig XPUB export or the multisig sections of
// its Generic JSON export and checks every key: the xpub public, at the depth of its path,
// in a version of its network and script type; the path the BIP-45/48 one for its type and
// the export's account; the descriptor template, when given, naming the same fingerprint,
// path and key; in a Generic JSON section, the section's fingerprint that of its key.
// Errors wrap device.ErrInvalidInput.
func ParseColdcardMultisig(b []byte) ([]ColdcardMultisigKey, error) {
	if len(b) > MaxWalletExport {
		return nil, fmt.Errorf("%w: multisig export: %d bytes is more than the %d accepted", device.ErrInvalidInput, len(b), MaxWalletExport)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, fmt.Errorf("%w: multisig export: not JSON: %v", device.ErrInvalidInput, err)
	}
	keys, err := parseColdcardMultisig(top)
	if err != nil {
		return nil, fmt.Errorf("%w: multisig export: %w", device.ErrInvalidInput, err)
	}
	return keys, nil
}

func parseColdcardMultisig(top map[string]json.RawMessage) ([]ColdcardMultisigKey, error) {
	var xfpText string
	if err := json.Unmarshal(top["xfp"], &xfpText); err != nil {
		return nil, fmt.Errorf("xfp must be a string: %v", err)
	}
	fp, err := strconv.ParseUint(xfpText, 16, 32)
	if err != nil || len(xfpText) != 8 {
		return nil, fmt.Errorf("xfp %q is not 8 hex digits", xfpText)
	}
	account, err := exportAccount(top["account"])
	if err != nil {
		return nil, err
	}
	var net *chaincfg.Params // the Generic JSON's chain; a ccxp file has none
	if raw, ok := top["chain"]; ok {
		var chain string
		if err := json.Unmarshal(raw, &chain); err != nil {
			return nil, fmt.Errorf("chain: %v", err)
		}
		if net = coldcardChains[chain]; net == nil {
			return nil, fmt.Errorf("chain %q (want BTC, XTN or XRT)", chain)
		}
	}
	var keys []ColdcardMultisigKey
	for _, ms := range coldcardMultisig {
		var f struct {
			Name  string `json:"name"`
			XFP   string `json:"xfp"`
			Deriv string `json:"deriv"`
			XPub  string `json:"xpub"`
			Desc  string `json:"desc"`
		}
		section, generic := top[ms.section]
		switch {
		case generic:
			if err := json.Unmarshal(section, &f); err != nil {
				return nil, fmt.Errorf("%s: %v", ms.section, err)
			}
			if f.Name != ms.generic {
				return nil, fmt.Errorf("%s: name %q, want %q", ms.section, f.Name, ms.generic)
			}
		case top[ms.name+"_deriv"] != nil:
			if err := errors.Join(json.Unmarshal(top[ms.name+"_deriv"], &f.Deriv), json.Unmarshal(top[ms.name], &f.XPub)); err != nil {
				return nil, fmt.Errorf("%s: %v", ms.name, err)
			}
			if raw, ok := top[ms.name+"_desc"]; ok {
				if err := json.Unmarshal(raw, &f.Desc); err != nil {
					return nil, fmt.Errorf("%s_desc: %v", ms.name, err)
				}
			}
		default:
			continue
		}
		k, err := checkMultisigKey(ms.name, ms.kind, ms.script, ms.slip132, device.Fingerprint(fp), account, net, f.Deriv, f.XPub, f.Desc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ms.name, err)
		}
		if generic {
			if f.XFP == "" {
				return nil, fmt.Errorf("%s: no xfp", ms.section)
			}
			if want := xpubFingerprint(k.XPub); !strings.EqualFold(f.XFP, want) {
				return nil, fmt.Errorf("%s: xfp %s is not the fingerprint %s of its xpub", ms.section, f.XFP, want)
			}
		}
		keys = append(keys, *k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no multisig keys (p2wsh, p2sh_p2wsh, p2sh; or bip48_2, bip48_1, bip45)")
	}
	return keys, nil
}

// exportAccount reads the export's account: a number (Generic JSON) or a decimal string
// (ccxp); absent is 0.
func exportAccount(raw json.RawMessage) (uint32, error) {
	if raw == nil {
		return 0, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, fmt.Errorf("account: %v", err)
		}
		n = json.Number(s)
	}
	v, err := strconv.ParseUint(string(n), 10, 32)
	if err != nil || v >= uint64(hdpath.Hardened) {
		return 0, fmt.Errorf("account %q is not an account number", n)
	}
	return uint32(v), nil
}

// xpubFingerprint is the fingerprint of xpub's own key, as Coldcard prints it (upper-case
// hex).
func xpubFingerprint(xpub string) string {
	k, err := hdkeychain.NewKeyFromString(xpub)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%08X", keyFingerprint(k))
}

func checkMultisigKey(name string, kind Kind, script uint32, slip132 [2]uint32, fp device.Fingerprint, account uint32, net *chaincfg.Params, deriv, xpub, desc string) (*ColdcardMultisigKey, error) {
	path, err := hdpath.Parse(deriv)
	if err != nil {
		return nil, fmt.Errorf("deriv %q: %w", deriv, err)
	}
	k, err := hdkeychain.NewKeyFromString(xpub)
	if err != nil {
		return nil, fmt.Errorf("xpub: %w", err)
	}
	if k.IsPrivate() || int(k.Depth()) != len(path) {
		return nil, fmt.Errorf("xpub is not the public key at %s", deriv)
	}
	version := binary.BigEndian.Uint32(k.Version())
	var keyNet *chaincfg.Params
	switch version {
	case binary.BigEndian.Uint32(chaincfg.MainNetParams.HDPublicKeyID[:]), slip132[0]:
		keyNet = &chaincfg.MainNetParams
	case binary.BigEndian.Uint32(chaincfg.TestNet3Params.HDPublicKeyID[:]), slip132[1]:
		keyNet = &chaincfg.TestNet3Params
	}
	if keyNet == nil || version == 0 {
		return nil, fmt.Errorf("xpub version %08x is not a %s key's", version, name)
	}
	if net != nil && !bytes.Equal(net.HDPublicKeyID[:], keyNet.HDPublicKeyID[:]) {
		return nil, fmt.Errorf("a %s key in a %s export", keyNet.Name, net.Name)
	}
	if net == nil {
		net = keyNet
	}
	coin := uint32(1)
	if keyNet == &chaincfg.MainNetParams {
		coin = 0
	}
	want := hdpath.Path{45 + hdpath.Hardened}
	if script != 0 {
		want = hdpath.Path{48 + hdpath.Hardened, coin + hdpath.Hardened, account + hdpath.Hardened, script + hdpath.Hardened}
	} else if account != 0 {
		return nil, fmt.Errorf("a BIP-45 key in the export of account %d (Coldcard exports it for account 0 only)", account)
	}
	if path.String() != want.String() {
		return nil, fmt.Errorf("deriv %s, want %s for account %d", path, want, account)
	}
	plain, err := k.CloneWithVersion(keyNet.HDPublicKeyID[:])
	if err != nil {
		return nil, err
	}
	mk := &ColdcardMultisigKey{Name: name, Kind: kind, Net: net, XFP: fp, Path: path, XPub: plain.String()}
	if desc != "" {
		if err := mk.checkTemplate(desc); err != nil {
			return nil, err
		}
	}
	return mk, nil
}

// checkTemplate checks a descriptor template of the export ("wsh(sortedmulti(M,KEY,...))")
// names this key: same fingerprint, path and xpub, external branch.
func (k *ColdcardMultisigKey) checkTemplate(desc string) error {
	wrap := map[Kind][2]string{KindWSHMulti: {"wsh(sortedmulti(M,", ",...))"}, KindSHWSH: {"sh(wsh(sortedmulti(M,", ",...)))"}, KindSHMulti: {"sh(sortedmulti(M,", ",...))"}}[k.Kind]
	if !strings.HasPrefix(desc, wrap[0]) || !strings.HasSuffix(desc, wrap[1]) {
		return fmt.Errorf("desc %q is not a %s template", trunc(desc), k.Kind)
	}
	key := desc[len(wrap[0]) : len(desc)-len(wrap[1])]
	d, err := ParseDescriptor(templateDescriptor(k.Kind, key))
	if err != nil {
		return fmt.Errorf("desc: %w", err)
	}
	dk := d.Keys[0]
	origin := hdpath.Path(dk.OriginPath)
	if !dk.HasOrigin || device.Fingerprint(dk.Fingerprint) != k.XFP || origin.String() != k.Path.String() || dk.XPub == nil || dk.XPub.String() != k.XPub {
		return fmt.Errorf("desc names another key than %s", k.Key())
	}
	if len(dk.Steps) != 1 || dk.Steps[0] != 0 || !dk.Wildcard {
		return fmt.Errorf("desc key %q does not end in /0/*", trunc(key))
	}
	return nil
}

// templateDescriptor is a 1-of-1 descriptor of kind around one key of a template.
func templateDescriptor(kind Kind, key string) string {
	switch kind {
	case KindSHWSH:
		return "sh(wsh(sortedmulti(1," + key + ")))"
	case KindSHMulti:
		return "sh(sortedmulti(1," + key + "))"
	}
	return "wsh(sortedmulti(1," + key + "))"
}

// ColdcardMultisigDescriptor is the M-of-N sortedmulti descriptor of kind over the
// cosigners' keys (one per cosigner, all of kind and of one network), with receive and
// change branches (<0;1>/*), as a Coldcard registers such a wallet.
func ColdcardMultisigDescriptor(m int, kind Kind, cosigners []ColdcardMultisigKey) (*Descriptor, error) {
	if !kind.multisig() {
		return nil, fmt.Errorf("%w: %s is not a multisig kind", device.ErrInvalidInput, kind)
	}
	if m < 1 || m > len(cosigners) || len(cosigners) > 15 {
		return nil, fmt.Errorf("%w: threshold %d of %d keys (1 to 15 keys)", device.ErrInvalidInput, m, len(cosigners))
	}
	seen := map[string]bool{}
	var exprs []string
	for i, c := range cosigners {
		if c.Kind != kind {
			return nil, fmt.Errorf("%w: cosigner %d's key is for %s, not %s", device.ErrInvalidInput, i+1, c.Kind, kind)
		}
		if c.Net != cosigners[0].Net {
			return nil, fmt.Errorf("%w: cosigner %d's key is for %s, cosigner 1's for %s", device.ErrInvalidInput, i+1, c.Net.Name, cosigners[0].Net.Name)
		}
		if seen[c.XPub] {
			return nil, fmt.Errorf("%w: cosigner %d's key is given twice", device.ErrInvalidInput, i+1)
		}
		seen[c.XPub] = true
		exprs = append(exprs, c.Key())
	}
	sort.Strings(exprs) // sortedmulti: the order of the keys in the text does not matter
	inner := fmt.Sprintf("sortedmulti(%d,%s)", m, strings.Join(exprs, ","))
	switch kind {
	case KindSHWSH:
		inner = "sh(wsh(" + inner + "))"
	case KindSHMulti:
		inner = "sh(" + inner + ")"
	default:
		inner = "wsh(" + inner + ")"
	}
	return ParseDescriptor(inner)
}
