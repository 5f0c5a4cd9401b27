package bitcoin

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/base58"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
)

// keyFingerprint is the BIP-32 fingerprint of an extended key: HASH160(pubkey)[:4], read
// big-endian.
func keyFingerprint(k *hdkeychain.ExtendedKey) uint32 {
	pub, err := k.ECPubKey()
	if err != nil {
		return 0
	}
	return binary.BigEndian.Uint32(btcutil.Hash160(pub.SerializeCompressed())[:4])
}

// origin returns the fingerprint and path prefix a derived key's PSBT derivation starts
// with.
func (k *Key) origin() (uint32, []uint32) {
	prefix := append(append([]uint32{}, k.OriginPath...), k.Steps...)
	switch {
	case k.HasOrigin:
		return k.Fingerprint, prefix
	case k.XPub != nil:
		return keyFingerprint(k.XPub), k.Steps
	}
	return binary.BigEndian.Uint32(btcutil.Hash160(k.Pub.SerializeCompressed())[:4]), nil
}

// DerivedKey is one key of a derived script, with its full origin.
type DerivedKey struct {
	Pub         *btcec.PublicKey
	Fingerprint uint32 // big-endian, as printed
	Path        []uint32
}

// psbtFingerprint converts a printed (big-endian) fingerprint to btcd psbt's form.
func psbtFingerprint(fp uint32) uint32 {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], fp)
	return binary.LittleEndian.Uint32(b[:])
}

// derive returns the key for a branch and index.
func (k *Key) derive(branch, index uint32) (DerivedKey, error) {
	fp, path := k.origin()
	if k.XPub == nil {
		return DerivedKey{Pub: k.Pub, Fingerprint: fp, Path: path}, nil
	}
	cur := k.base
	var err error
	if k.Multipath != nil {
		if int(branch) >= len(k.Multipath) {
			return DerivedKey{}, fmt.Errorf("%w: branch %d of a %d-way multipath key", ErrDescriptor, branch, len(k.Multipath))
		}
		step := k.Multipath[branch]
		if c, ok := k.cachedBranch(step); ok {
			cur = c
		} else {
			if cur, err = cur.Derive(step); err != nil {
				return DerivedKey{}, fmt.Errorf("%w: %v", ErrDescriptor, err)
			}
			if k.branch != nil {
				k.branch.Store(step, cur)
			}
		}
		path = append(path, step)
	} else if branch != 0 {
		return DerivedKey{}, fmt.Errorf("%w: branch %d of a key without a multipath step", ErrDescriptor, branch)
	}
	if k.Wildcard {
		if index >= hdkeychain.HardenedKeyStart {
			return DerivedKey{}, fmt.Errorf("%w: index %d out of range", ErrDescriptor, index)
		}
		if cur, err = cur.Derive(index); err != nil {
			return DerivedKey{}, fmt.Errorf("%w: %v", ErrDescriptor, err)
		}
		path = append(path, index)
	}
	pub, err := cur.ECPubKey()
	if err != nil {
		return DerivedKey{}, fmt.Errorf("%w: %v", ErrDescriptor, err)
	}
	return DerivedKey{Pub: pub, Fingerprint: fp, Path: path}, nil
}

// Scripts is what a descriptor gives at one position: the output script, the scripts a
// spender reveals, and the keys with their origins.
type Scripts struct {
	PkScript      []byte
	RedeemScript  []byte // p2sh
	WitnessScript []byte // p2wsh
	Keys          []DerivedKey
	// InternalKey is the BIP-86 internal key (tr): Keys[0] as x-only.
	InternalKey []byte
}

// Derive gives the scripts at branch (0 receive, 1 change, for a "/<0;1>/*" descriptor)
// and index.
func (d *Descriptor) Derive(branch, index uint32) (*Scripts, error) {
	s := &Scripts{}
	for _, k := range d.Keys {
		dk, err := k.derive(branch, index)
		if err != nil {
			return nil, err
		}
		s.Keys = append(s.Keys, dk)
	}
	b := txscript.NewScriptBuilder
	var err error
	switch d.Kind {
	case KindPKH:
		pub := s.Keys[0].Pub.SerializeCompressed()
		if d.Keys[0].uncompressed {
			pub = s.Keys[0].Pub.SerializeUncompressed()
		}
		s.PkScript, err = b().AddOp(txscript.OP_DUP).AddOp(txscript.OP_HASH160).AddData(btcutil.Hash160(pub)).
			AddOp(txscript.OP_EQUALVERIFY).AddOp(txscript.OP_CHECKSIG).Script()
	case KindWPKH:
		s.PkScript, err = b().AddOp(txscript.OP_0).AddData(btcutil.Hash160(s.Keys[0].Pub.SerializeCompressed())).Script()
	case KindSHWPKH:
		s.RedeemScript, err = b().AddOp(txscript.OP_0).AddData(btcutil.Hash160(s.Keys[0].Pub.SerializeCompressed())).Script()
		if err == nil {
			s.PkScript, err = p2sh(s.RedeemScript)
		}
	case KindTR:
		s.InternalKey = schnorr.SerializePubKey(s.Keys[0].Pub)
		out := txscript.ComputeTaprootKeyNoScript(s.Keys[0].Pub)
		s.PkScript, err = b().AddOp(txscript.OP_1).AddData(schnorr.SerializePubKey(out)).Script()
	case KindWSHMulti, KindSHWSH, KindSHMulti:
		keys := make([][]byte, len(s.Keys))
		for i, k := range s.Keys {
			keys[i] = k.Pub.SerializeCompressed()
			if d.Keys[i].uncompressed {
				keys[i] = k.Pub.SerializeUncompressed()
			}
		}
		if d.Sorted {
			sort.Slice(keys, func(i, j int) bool { return bytes.Compare(keys[i], keys[j]) < 0 })
		}
		mb := b().AddInt64(int64(d.Threshold))
		for _, k := range keys {
			mb.AddData(k)
		}
		ms, merr := mb.AddInt64(int64(len(keys))).AddOp(txscript.OP_CHECKMULTISIG).Script()
		if merr != nil {
			return nil, fmt.Errorf("%w: %v", ErrDescriptor, merr)
		}
		switch d.Kind {
		case KindSHMulti:
			s.RedeemScript = ms
			s.PkScript, err = p2sh(ms)
		default:
			s.WitnessScript = ms
			h := chainhash.HashB(ms)
			s.PkScript, err = b().AddOp(txscript.OP_0).AddData(h).Script()
			if err == nil && d.Kind == KindSHWSH {
				s.RedeemScript = s.PkScript
				s.PkScript, err = p2sh(s.RedeemScript)
			}
		}
	default:
		return nil, fmt.Errorf("%w: kind %q", ErrDescriptor, d.Kind)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDescriptor, err)
	}
	return s, nil
}

func p2sh(redeem []byte) ([]byte, error) {
	return txscript.NewScriptBuilder().AddOp(txscript.OP_HASH160).AddData(btcutil.Hash160(redeem)).AddOp(txscript.OP_EQUAL).Script()
}

// Address is the address at branch and index on net.
func (d *Descriptor) Address(branch, index uint32, net *chaincfg.Params) (btcutil.Address, error) {
	s, err := d.Derive(branch, index)
	if err != nil {
		return nil, err
	}
	_, addrs, _, err := txscript.ExtractPkScriptAddrs(s.PkScript, net)
	if err != nil || len(addrs) != 1 {
		return nil, fmt.Errorf("%w: no address for script %x", ErrDescriptor, s.PkScript)
	}
	return addrs[0], nil
}

// PSBTDerivations are the PSBT fields a device needs to recognise the keys of a script:
// bip32 derivations (ecdsa scripts) or the taproot internal key and tap bip32 derivation.
func (s *Scripts) PSBTDerivations(kind Kind) (bip32 []*psbt.Bip32Derivation, tap []*psbt.TaprootBip32Derivation) {
	for _, k := range s.Keys {
		if kind == KindTR {
			tap = append(tap, &psbt.TaprootBip32Derivation{
				XOnlyPubKey: schnorr.SerializePubKey(k.Pub), MasterKeyFingerprint: psbtFingerprint(k.Fingerprint),
				Bip32Path: append([]uint32{}, k.Path...),
			})
			continue
		}
		bip32 = append(bip32, &psbt.Bip32Derivation{
			PubKey: k.Pub.SerializeCompressed(), MasterKeyFingerprint: psbtFingerprint(k.Fingerprint),
			Bip32Path: append([]uint32{}, k.Path...),
		})
	}
	return bip32, tap
}

// locate finds the branch and index a derivation (fingerprint, path) names for key k, or
// ok=false when the derivation is not under k.
func (k *Key) locate(fp uint32, path []uint32) (branch, index uint32, ok bool) {
	kfp, prefix := k.origin()
	if fp != kfp || len(path) < len(prefix) {
		return 0, 0, false
	}
	for i := range prefix {
		if path[i] != prefix[i] {
			return 0, 0, false
		}
	}
	rest := path[len(prefix):]
	if k.Multipath != nil {
		if len(rest) == 0 {
			return 0, 0, false
		}
		found := false
		for i, m := range k.Multipath {
			if rest[0] == m {
				branch, found = uint32(i), true
				break
			}
		}
		if !found {
			return 0, 0, false
		}
		rest = rest[1:]
	}
	if k.Wildcard {
		if len(rest) != 1 {
			return 0, 0, false
		}
		index, rest = rest[0], rest[1:]
	}
	return branch, index, len(rest) == 0
}

// OwnsScript implements psbt.Owner: among the derivations given, those under one of the
// descriptor's keys name a branch and index; the descriptor's script there must be script,
// and every such derivation's key must be the one the descriptor derives.
func (d *Descriptor) OwnsScript(script []byte, bip32 []*psbt.Bip32Derivation, tap []*psbt.TaprootBip32Derivation) error {
	type claim struct {
		pub  []byte
		fp   uint32
		path []uint32
	}
	var claims []claim
	for _, b := range bip32 {
		claims = append(claims, claim{b.PubKey, psbtFingerprint(b.MasterKeyFingerprint), b.Bip32Path})
	}
	for _, t := range tap {
		claims = append(claims, claim{t.XOnlyPubKey, psbtFingerprint(t.MasterKeyFingerprint), t.Bip32Path})
	}
	matched := false
	for _, c := range claims {
		for _, k := range d.Keys {
			branch, index, ok := k.locate(c.fp, c.path)
			if !ok {
				continue
			}
			s, err := d.Derive(branch, index)
			if err != nil {
				return err
			}
			if !bytes.Equal(s.PkScript, script) {
				return fmt.Errorf("the wallet's script at %s is %x, not %x", pathString(c.path), s.PkScript, script)
			}
			dk, err := k.derive(branch, index)
			if err != nil {
				return err
			}
			want := dk.Pub.SerializeCompressed()
			if len(c.pub) == 32 {
				want = schnorr.SerializePubKey(dk.Pub)
			}
			if !bytes.Equal(want, c.pub) {
				return fmt.Errorf("the key at [%08x]%s is %x, not %x as the psbt says", c.fp, strings.TrimPrefix(pathString(c.path), "m"), want, c.pub)
			}
			matched = true
		}
	}
	if !matched {
		return fmt.Errorf("no derivation in the psbt is one of this wallet's keys")
	}
	return nil
}

func pathString(path []uint32) string {
	var b strings.Builder
	b.WriteString("m")
	for _, s := range path {
		if s >= hdkeychain.HardenedKeyStart {
			fmt.Fprintf(&b, "/%dh", s-hdkeychain.HardenedKeyStart)
		} else {
			fmt.Fprintf(&b, "/%d", s)
		}
	}
	return b.String()
}

func (k *Key) String() string {
	var b strings.Builder
	if k.HasOrigin {
		fmt.Fprintf(&b, "[%08x%s]", k.Fingerprint, strings.TrimPrefix(pathString(k.OriginPath), "m"))
	}
	switch {
	case k.XPub != nil:
		b.WriteString(k.XPub.String())
		b.WriteString(strings.TrimPrefix(pathString(k.Steps), "m"))
		if k.Multipath != nil {
			parts := make([]string, len(k.Multipath))
			for i, m := range k.Multipath {
				parts[i] = fmt.Sprint(m)
			}
			fmt.Fprintf(&b, "/<%s>", strings.Join(parts, ";"))
		}
		if k.Wildcard {
			b.WriteString("/*")
		}
	case k.XOnly:
		b.WriteString(hex.EncodeToString(schnorr.SerializePubKey(k.Pub)))
	case k.uncompressed:
		b.WriteString(hex.EncodeToString(k.Pub.SerializeUncompressed()))
	default:
		b.WriteString(hex.EncodeToString(k.Pub.SerializeCompressed()))
	}
	return b.String()
}

// String prints the descriptor (public keys only) with its checksum.
func (d *Descriptor) String() string {
	var body string
	keys := make([]string, len(d.Keys))
	for i, k := range d.Keys {
		keys[i] = k.String()
	}
	multi := func() string {
		fn := "multi"
		if d.Sorted {
			fn = "sortedmulti"
		}
		return fmt.Sprintf("%s(%d,%s)", fn, d.Threshold, strings.Join(keys, ","))
	}
	switch d.Kind {
	case KindPKH:
		body = "pkh(" + keys[0] + ")"
	case KindWPKH:
		body = "wpkh(" + keys[0] + ")"
	case KindSHWPKH:
		body = "sh(wpkh(" + keys[0] + "))"
	case KindTR:
		body = "tr(" + keys[0] + ")"
	case KindWSHMulti:
		body = "wsh(" + multi() + ")"
	case KindSHWSH:
		body = "sh(wsh(" + multi() + "))"
	case KindSHMulti:
		body = "sh(" + multi() + ")"
	}
	sum, _ := DescriptorChecksum(body)
	return body + "#" + sum
}

// SingleBranch returns the descriptor for one branch of a multipath descriptor (for
// printing the receive and change descriptors separately, as Bitcoin Core imports them).
func (d *Descriptor) SingleBranch(branch uint32) (*Descriptor, error) {
	out := &Descriptor{Kind: d.Kind, Threshold: d.Threshold, Sorted: d.Sorted}
	for _, k := range d.Keys {
		c := *k
		if k.Multipath != nil {
			if int(branch) >= len(k.Multipath) {
				return nil, fmt.Errorf("%w: branch %d of a %d-way multipath key", ErrDescriptor, branch, len(k.Multipath))
			}
			c.Steps = append(append([]uint32{}, k.Steps...), k.Multipath[branch])
			c.Multipath, c.branch = nil, new(sync.Map)
			var err error
			if c.base, err = k.base.Derive(k.Multipath[branch]); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrDescriptor, err)
			}
		}
		out.Keys = append(out.Keys, &c)
	}
	return out, nil
}

// serializeXPub returns the 78-byte BIP-32 serialization of an extended public key.
func serializeXPub(k *hdkeychain.ExtendedKey) ([]byte, error) {
	raw, ver, err := base58CheckDecode(k.String())
	if err != nil {
		return nil, err
	}
	return append(ver, raw...), nil
}

func base58CheckDecode(s string) (payload, version []byte, err error) {
	b := base58.Decode(s)
	if len(b) != 82 {
		return nil, nil, fmt.Errorf("%w: extended key of %d bytes", ErrDescriptor, len(b))
	}
	sum := chainhash.DoubleHashB(b[:78])
	if !bytes.Equal(sum[:4], b[78:]) {
		return nil, nil, fmt.Errorf("%w: extended key checksum", ErrDescriptor)
	}
	return b[4:78], b[:4], nil
}

func (k *Key) cachedBranch(step uint32) (*hdkeychain.ExtendedKey, bool) {
	if k.branch == nil {
		return nil, false
	}
	v, ok := k.branch.Load(step)
	if !ok {
		return nil, false
	}
	return v.(*hdkeychain.ExtendedKey), true
}
