package bitcoin

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
)

// Output descriptors (BIP-380 family): the subset a hardware-wallet account uses.
//
//	pkh(KEY)                       BIP-381, BIP-44 accounts
//	sh(wpkh(KEY))                  BIP-382, BIP-49 accounts
//	wpkh(KEY)                      BIP-382, BIP-84 accounts
//	tr(KEY)                        BIP-386 key path only, BIP-86 accounts
//	wsh(multi|sortedmulti(M,KEY,…)), sh(wsh(…)), sh(multi|sortedmulti(…))   BIP-383, BIP-48
//
// KEY is a hex public key (x-only in tr), a WIF or an extended key, with an optional origin
// "[fingerprint/path]", derivation steps, one BIP-389 multipath step "/<0;1>" and a final
// "/*". Private keys are accepted only to be neutered at once: hwbridge is watch-only, and a
// descriptor prints its public form. Hardened steps after an extended key therefore need
// the private key, and a hardened wildcard is refused.

// ErrDescriptor is wrapped by every descriptor parse and derivation error.
var ErrDescriptor = errors.New("bad descriptor")

// Kind is a descriptor's script template.
type Kind string

const (
	KindPKH      Kind = "pkh"
	KindSHWPKH   Kind = "sh(wpkh)"
	KindWPKH     Kind = "wpkh"
	KindTR       Kind = "tr"
	KindWSHMulti Kind = "wsh(multi)"
	KindSHWSH    Kind = "sh(wsh(multi))"
	KindSHMulti  Kind = "sh(multi)"
)

func (k Kind) multisig() bool { return k == KindWSHMulti || k == KindSHWSH || k == KindSHMulti }

// Key is one key expression.
type Key struct {
	// Origin: the master fingerprint (as printed, big-endian) and path to this key.
	HasOrigin   bool
	Fingerprint uint32
	OriginPath  []uint32

	// A fixed key (hex or WIF), or an extended public key.
	Pub          *btcec.PublicKey
	XOnly        bool // given as a 32-byte x-only key (tr)
	uncompressed bool

	XPub      *hdkeychain.ExtendedKey // as written (neutered)
	Steps     []uint32                // fixed steps after XPub
	Multipath []uint32                // BIP-389 alternatives, one per branch; nil if none
	Wildcard  bool

	base   *hdkeychain.ExtendedKey // XPub after Steps
	branch *sync.Map               // multipath step -> base's child (a cache; may be nil)
}

// Descriptor is a parsed output descriptor.
type Descriptor struct {
	Kind      Kind
	Keys      []*Key
	Threshold int  // multisig
	Sorted    bool // sortedmulti
}

// Branches is how many alternatives the multipath step offers (1 without one).
func (d *Descriptor) Branches() int {
	for _, k := range d.Keys {
		if k.Multipath != nil {
			return len(k.Multipath)
		}
	}
	return 1
}

// Ranged says the descriptor has a wildcard.
func (d *Descriptor) Ranged() bool {
	for _, k := range d.Keys {
		if k.Wildcard {
			return true
		}
	}
	return false
}

// ParseDescriptor parses a descriptor; a "#checksum" suffix is verified when present.
func ParseDescriptor(s string) (*Descriptor, error) {
	body, err := splitChecksum(strings.TrimSpace(s), false)
	if err != nil {
		return nil, err
	}
	d, err := parseTop(body)
	if err != nil {
		return nil, err
	}
	branches := 0
	for _, k := range d.Keys {
		if k.Multipath != nil {
			if branches != 0 && branches != len(k.Multipath) {
				return nil, fmt.Errorf("%w: multipath steps of different lengths", ErrDescriptor)
			}
			branches = len(k.Multipath)
		}
	}
	return d, nil
}

func inner(s, fn string) (string, bool) {
	if strings.HasPrefix(s, fn+"(") && strings.HasSuffix(s, ")") {
		return s[len(fn)+1 : len(s)-1], true
	}
	return "", false
}

func parseTop(s string) (*Descriptor, error) {
	if a, ok := inner(s, "sh"); ok {
		if b, ok := inner(a, "wpkh"); ok {
			k, err := parseKey(b, false)
			if err != nil {
				return nil, err
			}
			if err := needCompressed(k, "wpkh"); err != nil {
				return nil, err
			}
			return &Descriptor{Kind: KindSHWPKH, Keys: []*Key{k}}, nil
		}
		if b, ok := inner(a, "wsh"); ok {
			return parseMulti(b, KindSHWSH)
		}
		if strings.HasPrefix(a, "multi(") || strings.HasPrefix(a, "sortedmulti(") {
			return parseMulti(a, KindSHMulti)
		}
		return nil, fmt.Errorf("%w: sh(%s) is not supported (sh takes wpkh, wsh or multi here)", ErrDescriptor, trunc(a))
	}
	if a, ok := inner(s, "wsh"); ok {
		return parseMulti(a, KindWSHMulti)
	}
	for _, kind := range []Kind{KindPKH, KindWPKH, KindTR} {
		if a, ok := inner(s, string(kind)); ok {
			if strings.ContainsAny(a, ",{") {
				return nil, fmt.Errorf("%w: %s takes one key (taproot script trees are not supported)", ErrDescriptor, kind)
			}
			k, err := parseKey(a, kind == KindTR)
			if err != nil {
				return nil, err
			}
			if kind != KindPKH {
				if err := needCompressed(k, string(kind)); err != nil {
					return nil, err
				}
			}
			return &Descriptor{Kind: kind, Keys: []*Key{k}}, nil
		}
	}
	return nil, fmt.Errorf("%w: %q is not a supported descriptor (pkh, sh(wpkh), wpkh, tr, wsh(sortedmulti))", ErrDescriptor, trunc(s))
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func needCompressed(k *Key, where string) error {
	if k.Pub != nil && k.uncompressed {
		return fmt.Errorf("%w: uncompressed public key in %s()", ErrDescriptor, where)
	}
	return nil
}

func parseMulti(s string, kind Kind) (*Descriptor, error) {
	d := &Descriptor{Kind: kind}
	var args string
	if a, ok := inner(s, "sortedmulti"); ok {
		d.Sorted, args = true, a
	} else if a, ok := inner(s, "multi"); ok {
		args = a
	} else {
		return nil, fmt.Errorf("%w: %q is not supported inside wsh (use multi or sortedmulti)", ErrDescriptor, trunc(s))
	}
	parts := strings.Split(args, ",")
	if len(parts) < 2 {
		return nil, fmt.Errorf("%w: multi needs a threshold and keys", ErrDescriptor)
	}
	m, err := strconv.Atoi(parts[0])
	if err != nil || m < 1 {
		return nil, fmt.Errorf("%w: multisig threshold %q", ErrDescriptor, parts[0])
	}
	for _, p := range parts[1:] {
		k, err := parseKey(p, false)
		if err != nil {
			return nil, err
		}
		if kind != KindSHMulti {
			if err := needCompressed(k, "wsh"); err != nil {
				return nil, err
			}
		}
		d.Keys = append(d.Keys, k)
	}
	if m > len(d.Keys) {
		return nil, fmt.Errorf("%w: threshold %d is more than the %d keys", ErrDescriptor, m, len(d.Keys))
	}
	max := 20
	if kind == KindSHMulti {
		max = 15
	}
	if len(d.Keys) > max {
		return nil, fmt.Errorf("%w: %d keys is more than %d", ErrDescriptor, len(d.Keys), max)
	}
	d.Threshold = m
	return d, nil
}

// parseStep parses one path element; hardened with ' or h.
func parseStep(s string) (uint32, error) {
	hard := false
	if strings.HasSuffix(s, "'") || strings.HasSuffix(s, "h") {
		hard, s = true, s[:len(s)-1]
	}
	if s == "" || s[0] == '+' || s[0] == '-' {
		return 0, fmt.Errorf("%w: derivation step %q", ErrDescriptor, s)
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil || v >= hdkeychain.HardenedKeyStart {
		return 0, fmt.Errorf("%w: derivation step %q", ErrDescriptor, s)
	}
	if hard {
		v += hdkeychain.HardenedKeyStart
	}
	return uint32(v), nil
}

func parseKey(s string, xonlyOK bool) (*Key, error) {
	k := &Key{}
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return nil, fmt.Errorf("%w: key origin without ']'", ErrDescriptor)
		}
		origin := strings.Split(s[1:end], "/")
		s = s[end+1:]
		if len(origin[0]) != 8 {
			return nil, fmt.Errorf("%w: origin fingerprint %q is not 8 hex digits", ErrDescriptor, origin[0])
		}
		fp, err := hex.DecodeString(origin[0])
		if err != nil {
			return nil, fmt.Errorf("%w: origin fingerprint %q is not hex", ErrDescriptor, origin[0])
		}
		k.HasOrigin, k.Fingerprint = true, binary.BigEndian.Uint32(fp)
		for _, st := range origin[1:] {
			v, err := parseStep(st)
			if err != nil {
				return nil, err
			}
			k.OriginPath = append(k.OriginPath, v)
		}
	}
	if strings.ContainsAny(s, "[]") {
		return nil, fmt.Errorf("%w: misplaced key origin", ErrDescriptor)
	}
	parts := strings.Split(s, "/")
	if parts[0] == "" {
		return nil, fmt.Errorf("%w: key origin with no key", ErrDescriptor)
	}
	if b, err := hex.DecodeString(parts[0]); err == nil {
		if len(parts) > 1 {
			return nil, fmt.Errorf("%w: a plain public key takes no derivation", ErrDescriptor)
		}
		if len(b) == 32 && xonlyOK {
			pub, err := schnorr.ParsePubKey(b)
			if err != nil {
				return nil, fmt.Errorf("%w: x-only key: %v", ErrDescriptor, err)
			}
			k.Pub, k.XOnly = pub, true
			return k, nil
		}
		if len(b) != 33 && len(b) != 65 {
			return nil, fmt.Errorf("%w: public key of %d bytes", ErrDescriptor, len(b))
		}
		pub, err := btcec.ParsePubKey(b)
		if err != nil {
			return nil, fmt.Errorf("%w: public key: %v", ErrDescriptor, err)
		}
		k.Pub, k.uncompressed = pub, len(b) == 65
		return k, nil
	}
	if wif, err := btcutil.DecodeWIF(parts[0]); err == nil {
		if len(parts) > 1 {
			return nil, fmt.Errorf("%w: a private key takes no derivation", ErrDescriptor)
		}
		k.Pub, k.uncompressed = wif.PrivKey.PubKey(), !wif.CompressPubKey
		return k, nil
	}
	ext, err := hdkeychain.NewKeyFromString(parts[0])
	if err != nil {
		return nil, fmt.Errorf("%w: key %q: %v", ErrDescriptor, trunc(parts[0]), err)
	}
	// Fixed steps (hardened ones only with a private key), then neuter.
	cur := ext
	rest := parts[1:]
	for len(rest) > 0 && rest[0] != "*" && rest[0] != "*'" && rest[0] != "*h" && !strings.HasPrefix(rest[0], "<") {
		v, err := parseStep(rest[0])
		if err != nil {
			return nil, err
		}
		if v >= hdkeychain.HardenedKeyStart && !cur.IsPrivate() {
			return nil, fmt.Errorf("%w: hardened step %s after a public key", ErrDescriptor, rest[0])
		}
		if cur, err = cur.Derive(v); err != nil {
			return nil, fmt.Errorf("%w: derive: %v", ErrDescriptor, err)
		}
		k.Steps = append(k.Steps, v)
		rest = rest[1:]
	}
	if len(rest) > 0 && strings.HasPrefix(rest[0], "<") {
		alts := strings.TrimSuffix(strings.TrimPrefix(rest[0], "<"), ">")
		if !strings.HasSuffix(rest[0], ">") || !strings.Contains(alts, ";") {
			return nil, fmt.Errorf("%w: multipath step %q", ErrDescriptor, rest[0])
		}
		for _, a := range strings.Split(alts, ";") {
			v, err := parseStep(a)
			if err != nil {
				return nil, err
			}
			if v >= hdkeychain.HardenedKeyStart {
				return nil, fmt.Errorf("%w: hardened multipath step", ErrDescriptor)
			}
			k.Multipath = append(k.Multipath, v)
		}
		rest = rest[1:]
	}
	if len(rest) > 0 {
		switch rest[0] {
		case "*":
			k.Wildcard = true
		case "*'", "*h":
			return nil, fmt.Errorf("%w: hardened wildcard: a watch-only wallet cannot derive it", ErrDescriptor)
		default:
			return nil, fmt.Errorf("%w: unexpected %q after the key", ErrDescriptor, rest[0])
		}
		rest = rest[1:]
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("%w: unexpected %q after the wildcard", ErrDescriptor, strings.Join(rest, "/"))
	}
	if k.XPub, err = ext.Neuter(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDescriptor, err)
	}
	if ext.IsPrivate() {
		// The written key was private: keep only the public key after the fixed steps, and
		// move the steps into the origin.
		if k.base, err = cur.Neuter(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrDescriptor, err)
		}
		if !k.HasOrigin {
			k.HasOrigin, k.Fingerprint = true, keyFingerprint(ext)
		}
		k.OriginPath = append(k.OriginPath, k.Steps...)
		k.XPub, k.Steps, k.branch = k.base, nil, new(sync.Map)
		return k, nil
	}
	k.base, k.branch = cur, new(sync.Map)
	return k, nil
}
