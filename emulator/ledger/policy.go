package ledgeremu

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/txscript"
)

// Wallet policies (BIP-388 as the Bitcoin app implements it, ledger.md §5.5).
//
// Serialized policy, V2 (V1 in parentheses):
//
//	0x02 (0x01) ‖ u8 name_len ‖ name ‖ varint template_len ‖ SHA256(template) (the template)
//	‖ varint n_keys ‖ MTH(key information strings)
//
// The wallet id is SHA-256 of the serialization. This emulator understands the templates
// the app registers most: pkh, wpkh, sh(wpkh), tr(KEY), and multi/sortedmulti under sh,
// wsh or sh(wsh); other templates (miniscript, taproot trees, musig) are refused with
// 0x6A82.

// Caps from the app.
const (
	maxWalletName       = 64
	maxTemplateLen      = 512
	maxTemplateLenV1    = 40
	maxPolicyKeys       = 15
	maxKeyInfoLen       = 200
	maxSerializedPolicy = 1 + 1 + maxWalletName + 3 + 32 + 1 + 32
)

// walletPolicy is a parsed serialized wallet policy with its template and keys.
type walletPolicy struct {
	version  byte
	name     string
	tmplLen  int
	tmplHash [32]byte // V2
	template string
	nKeys    int
	keysRoot [32]byte
	id       [32]byte
	tree     *descNode
	keys     []keyInfo
}

// keyExpr is a key placeholder @idx/<m;n>/*.
type keyExpr struct {
	idx  int
	m, n uint32
}

// descNode is one fragment of a descriptor template.
type descNode struct {
	kind  string // pkh, wpkh, tr, sh, wsh, multi, sortedmulti
	key   keyExpr
	k     int
	keys  []keyExpr
	inner *descNode
}

// keyInfo is one key information string: [fpr/origin]xpub.
type keyInfo struct {
	raw       string
	hasOrigin bool
	fpr       uint32
	origin    []uint32
	xpub      *hdkeychain.ExtendedKey
	pubkey    []byte // compressed key of xpub
}

// parseSerializedPolicy reads a serialized wallet policy (header only).
func parseSerializedPolicy(b []byte) (*walletPolicy, error) {
	r := &reader{b: b}
	p := &walletPolicy{version: r.u8()}
	if p.version != 1 && p.version != 2 {
		return nil, fail(swIncorrectData, "wallet policy version %d", p.version)
	}
	nameLen := int(r.u8())
	if nameLen > maxWalletName {
		return nil, fail(swIncorrectData, "wallet name of %d bytes", nameLen)
	}
	p.name = string(r.bytes(nameLen))
	tlen := r.varint()
	p.tmplLen = int(min(tlen, maxTemplateLen+1))
	if p.version == 1 {
		if tlen > maxTemplateLenV1 {
			return nil, fail(swIncorrectData, "v1 template of %d bytes", tlen)
		}
		p.template = string(r.bytes(int(tlen)))
	} else {
		if tlen > maxTemplateLen {
			return nil, fail(swIncorrectData, "template of %d bytes", tlen)
		}
		copy(p.tmplHash[:], r.bytes(32)) // resolved by the caller
	}
	nk := r.varint()
	root := r.bytes(32)
	if r.bad || r.left() != 0 {
		return nil, fail(swIncorrectData, "malformed serialized wallet policy")
	}
	if nk == 0 || nk > maxPolicyKeys {
		return nil, fail(swNotSupported, "wallet policy with %d keys", nk)
	}
	p.nKeys = int(nk)
	copy(p.keysRoot[:], root)
	p.id = sha256.Sum256(b)
	return p, nil
}

// fetchPolicy gets the serialized policy for wallet id from the host (GET_PREIMAGE), then
// its template and every key.
func (h btcHost) fetchPolicy(id [32]byte, app *btcApp) (*walletPolicy, error) {
	ser, err := h.preimage(id, maxSerializedPolicy)
	if err != nil {
		return nil, err
	}
	return h.loadPolicy(ser, app)
}

// loadPolicy parses a serialized policy and fetches its template (V2) and keys.
func (h btcHost) loadPolicy(ser []byte, app *btcApp) (*walletPolicy, error) {
	p, err := parseSerializedPolicy(ser)
	if err != nil {
		return nil, err
	}
	if p.version == 2 {
		t, err := h.preimage(p.tmplHash, maxTemplateLen)
		if err != nil {
			return nil, err
		}
		if len(t) != p.tmplLen {
			return nil, fail(swIncorrectData, "template length differs from the policy header")
		}
		p.template = string(t)
	}
	p.tree, err = parseTemplate(p.template, p.version)
	if err != nil {
		return nil, err
	}
	if got := p.tree.keyCount(); got != p.nKeys {
		return nil, fail(swIncorrectData, "template uses %d keys, the policy lists %d", got, p.nKeys)
	}
	for i := range p.nKeys {
		raw, err := h.element(p.keysRoot, p.nKeys, i, maxKeyInfoLen)
		if err != nil {
			return nil, err
		}
		ki, err := parseKeyInfo(string(raw), p.version, app)
		if err != nil {
			return nil, err
		}
		p.keys = append(p.keys, ki)
	}
	return p, nil
}

// refetchKeys asks the host again for the key of every key expression of p's template, in
// template order, checking that each is still the key p holds: the real app reads keys from
// the host while it derives scripts, so the host sees these requests.
func (h btcHost) refetchKeys(p *walletPolicy) error {
	for _, ke := range p.tree.keyExprs() {
		raw, err := h.element(p.keysRoot, p.nKeys, ke.idx, maxKeyInfoLen)
		if err != nil {
			return err
		}
		if ke.idx >= len(p.keys) || string(raw) != p.keys[ke.idx].raw {
			return fail(swIncorrectData, "key %d changed between two reads", ke.idx)
		}
	}
	return nil
}

// parseKeyInfo reads "[fpr/84'/0'/0']xpub…" (V2) or the same ending in "/**" (V1).
func parseKeyInfo(s string, version byte, app *btcApp) (keyInfo, error) {
	ki := keyInfo{raw: s}
	bad := func(why string) (keyInfo, error) {
		return keyInfo{}, fail(swIncorrectData, "key information %q: %s", s, why)
	}
	rest := s
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return bad("no closing bracket")
		}
		parts := strings.Split(rest[1:end], "/")
		if len(parts[0]) != 8 || strings.ToLower(parts[0]) != parts[0] {
			return bad("fingerprint must be 8 lowercase hex digits")
		}
		fb, err := hex.DecodeString(parts[0])
		if err != nil {
			return bad("fingerprint is not hex")
		}
		ki.hasOrigin = true
		ki.fpr = uint32(fb[0])<<24 | uint32(fb[1])<<16 | uint32(fb[2])<<8 | uint32(fb[3])
		if len(parts)-1 > 8 {
			return bad("origin path too long")
		}
		for _, step := range parts[1:] {
			hard := strings.HasSuffix(step, "'")
			step = strings.TrimSuffix(step, "'")
			v, err := strconv.ParseUint(step, 10, 31)
			if err != nil || step == "" || step[0] == '+' {
				return bad("bad origin step")
			}
			if hard {
				v |= 0x80000000
			}
			ki.origin = append(ki.origin, uint32(v))
		}
		rest = rest[end+1:]
	}
	if version == 1 {
		if !strings.HasSuffix(rest, "/**") {
			return bad("v1 keys end in /**")
		}
		rest = strings.TrimSuffix(rest, "/**")
	}
	if len(rest) < 111 || len(rest) > 112 {
		return bad("not an extended public key")
	}
	k, err := hdkeychain.NewKeyFromString(rest)
	if err != nil || k.IsPrivate() {
		return bad("not an extended public key")
	}
	if !bytes.Equal(k.Version(), app.net.HDPublicKeyID[:]) {
		return bad("extended key for another network")
	}
	pub, err := k.ECPubKey()
	if err != nil {
		return bad("invalid public key")
	}
	ki.xpub, ki.pubkey = k, pub.SerializeCompressed()
	return ki, nil
}

// parseTemplate parses the supported descriptor templates. In V1 policies a placeholder is
// a bare @i (the /** lives in the key information).
func parseTemplate(t string, version byte) (*descNode, error) {
	p := &tparser{s: t, v1: version == 1}
	n, err := p.top()
	if err != nil {
		return nil, err
	}
	if p.s != "" {
		return nil, fail(swIncorrectData, "trailing text in template")
	}
	return n, nil
}

type tparser struct {
	s  string
	v1 bool
}

func (p *tparser) eat(tok string) bool {
	if strings.HasPrefix(p.s, tok) {
		p.s = p.s[len(tok):]
		return true
	}
	return false
}

func unsupported(t string) error {
	return fail(swNotSupported, "template fragment %q is not supported by this emulator", t)
}

func (p *tparser) top() (*descNode, error) {
	switch {
	case p.eat("pkh("):
		return p.singleKeyKind("pkh")
	case p.eat("wpkh("):
		return p.singleKeyKind("wpkh")
	case p.eat("tr("):
		return p.singleKeyKind("tr")
	case p.eat("sh("):
		var inner *descNode
		var err error
		switch {
		case p.eat("wpkh("):
			inner, err = p.singleKeyKind("wpkh")
		case p.eat("wsh("):
			var ms *descNode
			if ms, err = p.multi(); err == nil {
				if !p.eat(")") {
					return nil, fail(swIncorrectData, "expected )")
				}
				inner = &descNode{kind: "wsh", inner: ms}
			}
		default:
			inner, err = p.multi()
		}
		if err != nil {
			return nil, err
		}
		if !p.eat(")") {
			return nil, fail(swIncorrectData, "expected )")
		}
		return &descNode{kind: "sh", inner: inner}, nil
	case p.eat("wsh("):
		ms, err := p.multi()
		if err != nil {
			return nil, err
		}
		if !p.eat(")") {
			return nil, fail(swIncorrectData, "expected )")
		}
		return &descNode{kind: "wsh", inner: ms}, nil
	}
	return nil, unsupported(p.s)
}

func (p *tparser) singleKeyKind(kind string) (*descNode, error) {
	k, err := p.keyExpr()
	if err != nil {
		return nil, err
	}
	if !p.eat(")") {
		if kind == "tr" && strings.HasPrefix(p.s, ",") {
			return nil, unsupported("tr(KEY,TREE)")
		}
		return nil, fail(swIncorrectData, "expected ) after key")
	}
	return &descNode{kind: kind, key: k}, nil
}

func (p *tparser) multi() (*descNode, error) {
	kind := ""
	switch {
	case p.eat("sortedmulti("):
		kind = "sortedmulti"
	case p.eat("multi("):
		kind = "multi"
	default:
		return nil, unsupported(p.s)
	}
	end := strings.IndexByte(p.s, ',')
	if end < 0 {
		return nil, fail(swIncorrectData, "multi without keys")
	}
	k, err := strconv.Atoi(p.s[:end])
	if err != nil || k < 1 {
		return nil, fail(swIncorrectData, "bad multisig threshold")
	}
	p.s = p.s[end:]
	n := &descNode{kind: kind, k: k}
	for p.eat(",") {
		ke, err := p.keyExpr()
		if err != nil {
			return nil, err
		}
		n.keys = append(n.keys, ke)
	}
	if !p.eat(")") {
		return nil, fail(swIncorrectData, "expected ) after multisig keys")
	}
	if k > len(n.keys) || len(n.keys) > maxPolicyKeys {
		return nil, fail(swIncorrectData, "multisig %d of %d", k, len(n.keys))
	}
	return n, nil
}

// keyExpr reads @i/** or @i/<m;n>/*.
func (p *tparser) keyExpr() (keyExpr, error) {
	if !p.eat("@") {
		return keyExpr{}, fail(swIncorrectData, "expected a key placeholder")
	}
	i := 0
	for i < len(p.s) && p.s[i] >= '0' && p.s[i] <= '9' {
		i++
	}
	idx, err := strconv.Atoi(p.s[:i])
	if err != nil || i > 2 {
		return keyExpr{}, fail(swIncorrectData, "bad key index")
	}
	p.s = p.s[i:]
	if p.v1 {
		return keyExpr{idx: idx, m: 0, n: 1}, nil
	}
	if p.eat("/**") {
		return keyExpr{idx: idx, m: 0, n: 1}, nil
	}
	if !p.eat("/<") {
		return keyExpr{}, fail(swIncorrectData, "key placeholders end in /** or /<M;N>/*")
	}
	end := strings.Index(p.s, ">/*")
	if end < 0 {
		return keyExpr{}, fail(swIncorrectData, "bad key derivation")
	}
	mn := strings.Split(p.s[:end], ";")
	p.s = p.s[end+3:]
	if len(mn) != 2 {
		return keyExpr{}, fail(swIncorrectData, "bad key derivation")
	}
	m, err1 := strconv.ParseUint(mn[0], 10, 31)
	n, err2 := strconv.ParseUint(mn[1], 10, 31)
	if err1 != nil || err2 != nil || m == n {
		return keyExpr{}, fail(swIncorrectData, "bad key derivation")
	}
	return keyExpr{idx: idx, m: uint32(m), n: uint32(n)}, nil
}

// keyExprs lists every key placeholder in template order.
func (n *descNode) keyExprs() []keyExpr {
	switch n.kind {
	case "pkh", "wpkh", "tr":
		return []keyExpr{n.key}
	case "sh", "wsh":
		return n.inner.keyExprs()
	}
	return n.keys
}

// keyCount is the number of distinct keys the template uses; placeholders must be
// @0…@(n-1).
func (n *descNode) keyCount() int {
	seen := map[int]bool{}
	for _, k := range n.keyExprs() {
		seen[k.idx] = true
	}
	for i := range len(seen) {
		if !seen[i] {
			return -1
		}
	}
	return len(seen)
}

// isSegwit reports whether inputs of this policy are segwit (v0 or taproot).
func (n *descNode) isSegwit() bool {
	switch n.kind {
	case "wpkh", "wsh", "tr":
		return true
	case "sh":
		return n.inner.kind == "wpkh" || n.inner.kind == "wsh"
	}
	return false
}

// childPub derives the public key of placeholder ke at change/index.
func (p *walletPolicy) childPub(ke keyExpr, change bool, index uint32) (*btcec.PublicKey, error) {
	if ke.idx >= len(p.keys) {
		return nil, fail(swIncorrectData, "key @%d missing", ke.idx)
	}
	step := ke.m
	if change {
		step = ke.n
	}
	c, err := p.keys[ke.idx].xpub.Derive(step)
	if err == nil {
		c, err = c.Derive(index)
	}
	if err != nil {
		return nil, fail(swIncorrectData, "derive key @%d: %v", ke.idx, err)
	}
	return c.ECPubKey()
}

// scripts of one policy at change/index: the scriptPubKey, and for script types the
// witness script and redeem script.
type policyScripts struct {
	spk           []byte
	witnessScript []byte
	redeemScript  []byte
}

func (p *walletPolicy) scripts(change bool, index uint32) (policyScripts, error) {
	return p.scriptsOf(p.tree, change, index)
}

func (p *walletPolicy) scriptsOf(n *descNode, change bool, index uint32) (policyScripts, error) {
	switch n.kind {
	case "pkh":
		pub, err := p.childPub(n.key, change, index)
		if err != nil {
			return policyScripts{}, err
		}
		s, err := txscript.NewScriptBuilder().AddOp(txscript.OP_DUP).AddOp(txscript.OP_HASH160).
			AddData(btcutil.Hash160(pub.SerializeCompressed())).AddOp(txscript.OP_EQUALVERIFY).AddOp(txscript.OP_CHECKSIG).Script()
		return policyScripts{spk: s}, err
	case "wpkh":
		pub, err := p.childPub(n.key, change, index)
		if err != nil {
			return policyScripts{}, err
		}
		s, err := txscript.NewScriptBuilder().AddOp(txscript.OP_0).AddData(btcutil.Hash160(pub.SerializeCompressed())).Script()
		return policyScripts{spk: s}, err
	case "tr":
		pub, err := p.childPub(n.key, change, index)
		if err != nil {
			return policyScripts{}, err
		}
		out := txscript.ComputeTaprootKeyNoScript(pub)
		s, err := txscript.PayToTaprootScript(out)
		return policyScripts{spk: s}, err
	case "multi", "sortedmulti":
		pubs := make([][]byte, len(n.keys))
		for i, ke := range n.keys {
			pub, err := p.childPub(ke, change, index)
			if err != nil {
				return policyScripts{}, err
			}
			pubs[i] = pub.SerializeCompressed()
		}
		if n.kind == "sortedmulti" {
			slices.SortFunc(pubs, bytes.Compare)
		}
		b := txscript.NewScriptBuilder().AddInt64(int64(n.k))
		for _, pk := range pubs {
			b.AddData(pk)
		}
		s, err := b.AddInt64(int64(len(pubs))).AddOp(txscript.OP_CHECKMULTISIG).Script()
		return policyScripts{spk: s}, err // the bare script; wrapped below
	case "wsh":
		in, err := p.scriptsOf(n.inner, change, index)
		if err != nil {
			return policyScripts{}, err
		}
		h := sha256.Sum256(in.spk)
		s, err := txscript.NewScriptBuilder().AddOp(txscript.OP_0).AddData(h[:]).Script()
		return policyScripts{spk: s, witnessScript: in.spk}, err
	case "sh":
		in, err := p.scriptsOf(n.inner, change, index)
		if err != nil {
			return policyScripts{}, err
		}
		s, err := txscript.NewScriptBuilder().AddOp(txscript.OP_HASH160).AddData(btcutil.Hash160(in.spk)).AddOp(txscript.OP_EQUAL).Script()
		return policyScripts{spk: s, redeemScript: in.spk, witnessScript: in.witnessScript}, err
	}
	return policyScripts{}, fail(swBadState, "unknown template node %q", n.kind)
}

// isDefault reports whether p is a default (unregistered) single-signature policy of this
// device: the standard template for the purpose of its one key, which is ours at
// m/purpose'/coin'/account' (account ≤ 100) with the whole /** derivation.
func (p *walletPolicy) isDefault(app *btcApp) bool {
	if p.nKeys != 1 || len(p.keys) != 1 {
		return false
	}
	var purpose uint32
	switch {
	case p.tree.kind == "pkh":
		purpose = 44
	case p.tree.kind == "wpkh":
		purpose = 84
	case p.tree.kind == "tr":
		purpose = 86
	case p.tree.kind == "sh" && p.tree.inner.kind == "wpkh":
		purpose = 49
	default:
		return false
	}
	ke := p.tree.keyExprs()[0]
	if ke.m != 0 || ke.n != 1 {
		return false
	}
	k := p.keys[0]
	const h = 0x80000000
	if !k.hasOrigin || k.fpr != app.wallet.Fingerprint() || len(k.origin) != 3 ||
		k.origin[0] != purpose|h || k.origin[1] != app.coinType|h || k.origin[2] < h || k.origin[2]-h > 100 {
		return false
	}
	own, err := app.xpub(k.origin)
	return err == nil && own == strings.TrimSuffix(k.raw[strings.IndexByte(k.raw, ']')+1:], "/**")
}

// isInternal reports whether key i is one of ours: our fingerprint and our xpub at its
// origin path.
func (p *walletPolicy) isInternal(i int, app *btcApp) bool {
	k := p.keys[i]
	if !k.hasOrigin || k.fpr != app.wallet.Fingerprint() {
		return false
	}
	own, err := app.xpub(k.origin)
	return err == nil && own == k.xpub.String()
}

// xonly is the 32-byte x coordinate of a public key.
func xonly(pub *btcec.PublicKey) []byte { return schnorr.SerializePubKey(pub) }

func (p *walletPolicy) String() string {
	return fmt.Sprintf("policy %q %s (%d keys)", p.name, p.template, p.nKeys)
}

// String prints the template fragment in the app's syntax (bare @i placeholders in V1).
func (n *descNode) format(v1 bool) string {
	switch n.kind {
	case "pkh", "wpkh", "tr":
		return n.kind + "(" + n.key.format(v1) + ")"
	case "sh", "wsh":
		return n.kind + "(" + n.inner.format(v1) + ")"
	}
	parts := []string{strconv.Itoa(n.k)}
	for _, k := range n.keys {
		parts = append(parts, k.format(v1))
	}
	return n.kind + "(" + strings.Join(parts, ",") + ")"
}

func (k keyExpr) format(v1 bool) string {
	switch {
	case v1:
		return "@" + strconv.Itoa(k.idx)
	case k.m == 0 && k.n == 1:
		return "@" + strconv.Itoa(k.idx) + "/**"
	}
	return fmt.Sprintf("@%d/<%d;%d>/*", k.idx, k.m, k.n)
}
