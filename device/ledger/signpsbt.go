package ledger

// SIGN_PSBT (E1 04): which wallet policy signs which input, the merkleised PSBT v2, the
// client-command exchange and the yielded signatures. Spec: app-bitcoin-new
// doc/bitcoin.md "SIGN_PSBT"; /work/shared/protocols/ledger.md §5.4.
//
// Policy choice (as HWI's signtx): every input with a key of this device is assigned a
// wallet policy from its derivation paths — m/44'|49'|84'|86'/coin'/account'/change/index
// gives the default policy of that account; a multisig witness or redeem script whose keys
// come with derivations and PSBT_GLOBAL_XPUB entries gives a sortedmulti/multi policy,
// registered on first use unless a registered wallet describes the same multisig (same
// template, same keys: registeredLike); a single-key input whose account has a registered
// single-key policy is signed with it (registeredSingleKey), also outside the default paths. One SIGN_PSBT runs per policy (so one review on the device per
// policy); an input whose keys belong to several accounts is refused.
//
//	yield = varint input_index ‖ u8 len ‖ pubkey_augm[len] ‖ signature
//	  len 33: compressed pubkey, ECDSA DER ‖ sighash   → PSBT_IN_PARTIAL_SIG
//	  len 32: x-only output key, Schnorr [‖ sighash]   → PSBT_IN_TAP_KEY_SIG
//	  len 64: x-only key ‖ leaf hash, Schnorr          → PSBT_IN_TAP_SCRIPT_SIG

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	hwpsbt "github.com/hwbridge/hwbridge/psbt"
)

// psbtGroup is the inputs one wallet policy signs.
type psbtGroup struct {
	policy     device.WalletPolicy
	registered bool // needs an HMAC (not a default policy)
	inputs     []int
}

// psbtPlan is how a PSBT is signed.
type psbtPlan struct {
	groups          []*psbtGroup
	dropWitnessUTXO map[int]bool
}

// SignPSBT signs every input of p that belongs to a default or multisig wallet policy of
// the device and adds the signatures: ECDSA with the sighash byte to PartialSigs, taproot
// key-path signatures to TaprootKeySpendSig. p is left untouched unless every SIGN_PSBT
// succeeds.
func (d *Driver) SignPSBT(ctx context.Context, p *psbt.Packet, net *chaincfg.Params) error {
	net = netOrMain(net)
	if p == nil || p.UnsignedTx == nil {
		return fmt.Errorf("ledger: %s: %w: empty psbt", opSignPSBT, device.ErrInvalidInput)
	}
	var sigs []yieldSig
	err := d.do(ctx, opSignPSBT, bitcoinApp(net), func(s *session) error {
		fp, err := s.fingerprint()
		if err != nil {
			return err
		}
		plan, err := s.planPSBT(p, fp, net)
		if err != nil {
			return err
		}
		raw, err := toV2(p, plan.dropWitnessUTXO)
		if err != nil {
			return err
		}
		mp := merkleize(raw)
		for _, g := range plan.groups {
			var hmac [32]byte
			if g.registered {
				id := PolicyID(g.policy)
				if w, ok := s.d.wallets[id]; ok {
					hmac = w.HMAC
				} else if hmac, err = s.register(g.policy); err != nil {
					return err
				}
			}
			got, err := s.signPSBT(mp, g.policy, hmac, len(p.Inputs))
			if err != nil {
				return err
			}
			sigs = append(sigs, got...)
		}
		return nil
	})
	if err != nil {
		return err
	}
	mergeSigs(p, sigs)
	return nil
}

// signPSBT runs one SIGN_PSBT and returns the yielded signatures.
func (s *session) signPSBT(mp *merkleizedPSBT, pol device.WalletPolicy, hmac [32]byte, nInputs int) ([]yieldSig, error) {
	h := newClientHandler()
	data := mp.register(h)
	registerPolicy(pol, h)
	id := PolicyID(pol)
	data = append(data, id[:]...)
	data = append(data, hmac[:]...)
	if _, err := s.run(btcCommand(insSignPSBT, data), h, psbtScreens(mp.outputsTree.Root(), len(mp.outputs))); err != nil {
		return nil, err
	}
	var out []yieldSig
	for _, y := range h.yielded {
		ys, ok, err := parseSignatureYield(y, nInputs)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, ys)
		}
	}
	return out, nil
}

// psbtScreens says which replies of a SIGN_PSBT may follow the review screens. The app
// (app-bitcoin-new src/handler/sign_psbt.c, handler_sign_psbt) runs: the global map and the
// wallet policy; preprocess_inputs (every input map); preprocess_outputs (every output map,
// in order); compute_tx_hashes (inputs and outputs again); display_transaction (the
// warnings, then the review: the screens; with more external outputs than the simplified
// review takes, one screen per output, fetching outputs beyond its cache between screens);
// sign_transaction, which YIELDs each signature. No screen comes before the device asks for
// the last output's map (index n-1 of the outputs tree) and none after the first YIELD (the
// MuSig2 nonces that are yielded before the review belong to policies this driver does not
// sign). So only the replies in that window may wait for the person; a PSBT without outputs
// keeps every reply in it.
func psbtScreens(outputsRoot [32]byte, nOutputs int) screenRule {
	open, done := nOutputs == 0, false
	return func(req []byte) bool {
		if done || len(req) == 0 {
			return false
		}
		switch req[0] {
		case ccYield:
			done = true
			return false
		case ccGetLeafProof:
			if root, size, index, err := parseGetLeafProof(req[1:]); err == nil && root == outputsRoot &&
				size == uint64(nOutputs) && index == uint64(nOutputs-1) {
				open = true
			}
		}
		return open
	}
}

// ourDerivation is one key of the device in an input.
type ourDerivation struct {
	path    hdpath.Path
	taproot bool
	leaves  int // taproot leaf hashes (0: key path)
}

// planPSBT assigns the inputs with keys of the device to wallet policies.
func (s *session) planPSBT(p *psbt.Packet, fp device.Fingerprint, net *chaincfg.Params) (*psbtPlan, error) {
	plan := &psbtPlan{dropWitnessUTXO: map[int]bool{}}
	byID := map[[32]byte]*psbtGroup{}
	add := func(pol device.WalletPolicy, registered bool, i int) {
		id := PolicyID(pol)
		g, ok := byID[id]
		if !ok {
			g = &psbtGroup{policy: pol, registered: registered}
			byID[id] = g
			plan.groups = append(plan.groups, g)
		}
		g.inputs = append(g.inputs, i)
	}
	for i := range p.Inputs {
		in := &p.Inputs[i]
		var ours []ourDerivation
		for _, d := range in.Bip32Derivation {
			if device.FingerprintFromPSBT(d.MasterKeyFingerprint) == fp {
				ours = append(ours, ourDerivation{path: d.Bip32Path})
			}
		}
		for _, d := range in.TaprootBip32Derivation {
			if device.FingerprintFromPSBT(d.MasterKeyFingerprint) == fp {
				ours = append(ours, ourDerivation{path: d.Bip32Path, taproot: true, leaves: len(d.LeafHashes)})
			}
		}
		if len(ours) == 0 {
			continue // an input of someone else: the device shows it as external
		}
		for _, o := range ours {
			if len(o.path) < 2 || o.path[1] < hdpath.Hardened {
				return nil, fmt.Errorf("%w: input %d: key path %s has no hardened coin type: a ledger signs only standard or registered wallet paths", device.ErrInvalidInput, i, o.path)
			}
			if coin := o.path[1] - hdpath.Hardened; coin != net.HDCoinType {
				return nil, fmt.Errorf("%w: input %d: key path %s is for coin type %d, but the psbt is being signed for %s (coin type %d): pick the psbt's network", device.ErrInvalidInput, i, o.path, coin, net.Name, net.HDCoinType)
			}
		}
		if ms, ok := multisigScript(in); ok {
			pol, legacy, err := s.multisigPolicy(p, i, ms, fp, net)
			if err != nil {
				return nil, err
			}
			if legacy {
				plan.dropWitnessUTXO[i] = true
			}
			add(pol, true, i)
			continue
		}
		if w, ok := s.d.registeredSingleKey(fp, p, i, ours); ok {
			// A registered single-key policy (registerdescriptor of, say, an account
			// above 100 or another purpose): signed with it, no default policy needed.
			if strings.HasPrefix(w.Policy.Template, "pkh(") {
				plan.dropWitnessUTXO[i] = true
			}
			add(w.Policy, true, i)
			continue
		}
		var acct *accountKey
		for _, o := range ours {
			if o.taproot && o.leaves > 0 {
				continue // script-path keys need a registered taproot policy
			}
			a, _, _, ok := standardAccount(o.path)
			if !ok {
				return nil, fmt.Errorf("%w: input %d: key path %s is not a standard BIP-44/49/84/86 path (account ≤ %d): a ledger signs only default or registered wallet policies", device.ErrInvalidInput, i, o.path, maxDefaultAccount)
			}
			if acct != nil && *acct != a {
				return nil, fmt.Errorf("%w: input %d mixes keys of accounts %s and %s: a ledger signs each input with one wallet policy, so give each input the keys of one account", device.ErrInvalidInput, i, acct.path(), a.path())
			}
			acct = &a
		}
		if acct == nil {
			return nil, fmt.Errorf("%w: input %d: taproot script-path spends need a registered taproot wallet policy: %w", device.ErrInvalidInput, i, errors.ErrUnsupported)
		}
		xpub, err := s.xpub(acct.path(), false)
		if err != nil {
			return nil, err
		}
		pol, err := DefaultPolicy(acct.purpose, fp, acct.path(), xpub)
		if err != nil {
			return nil, err
		}
		if acct.purpose == 44 {
			plan.dropWitnessUTXO[i] = true
		}
		add(pol, false, i)
	}
	if len(plan.groups) == 0 {
		return nil, fmt.Errorf("%w: no input of the psbt has a bip32 derivation with this device's fingerprint %s", device.ErrInvalidInput, fp)
	}
	return plan, nil
}

// multisigInput is a multisig script of an input and how it is wrapped.
type multisigInput struct {
	script []byte
	wrap   string // "wsh(%s)", "sh(wsh(%s))" or "sh(%s)"
}

func multisigScript(in *psbt.PInput) (multisigInput, bool) {
	isMulti := func(s []byte) bool {
		return len(s) > 0 && txscript.GetScriptClass(s) == txscript.MultiSigTy
	}
	switch {
	case isMulti(in.WitnessScript) && len(in.RedeemScript) > 0:
		return multisigInput{in.WitnessScript, "sh(wsh(%s))"}, true
	case isMulti(in.WitnessScript):
		return multisigInput{in.WitnessScript, "wsh(%s)"}, true
	case isMulti(in.RedeemScript):
		return multisigInput{in.RedeemScript, "sh(%s)"}, true
	}
	return multisigInput{}, false
}

// multisigPolicy builds the wallet policy of a multisig input from its script, its bip32
// derivations and the PSBT's global xpubs (the device's own account xpubs are asked for
// when the PSBT lacks them). Sorted keys give sortedmulti with the key strings sorted, so
// that every input of the wallet gives the same policy; otherwise multi in script order.
func (s *session) multisigPolicy(p *psbt.Packet, i int, ms multisigInput, fp device.Fingerprint, net *chaincfg.Params) (device.WalletPolicy, bool, error) {
	bad := func(format string, args ...any) (device.WalletPolicy, bool, error) {
		return device.WalletPolicy{}, false, fmt.Errorf("%w: input %d: "+format, append([]any{device.ErrInvalidInput, i}, args...)...)
	}
	_, addrs, k, err := txscript.ExtractPkScriptAddrs(ms.script, net)
	if err != nil || len(addrs) == 0 || len(addrs) > maxPolicyKeys {
		return bad("multisig script with %d keys (a ledger takes 1-%d)", len(addrs), maxPolicyKeys)
	}
	in := &p.Inputs[i]
	var pubs [][]byte
	var infos []string
	var step *[2]uint32
	for _, a := range addrs {
		pk, ok := a.(*btcutil.AddressPubKey)
		if !ok {
			return bad("multisig script key is not a public key")
		}
		pub := pk.PubKey().SerializeCompressed()
		pubs = append(pubs, pub)
		var der *psbt.Bip32Derivation
		for _, d := range in.Bip32Derivation {
			if bytes.Equal(d.PubKey, pub) {
				der = d
			}
		}
		if der == nil {
			return bad("multisig key %x has no bip32 derivation: add the cosigners' derivations to the psbt", pub)
		}
		path := hdpath.Path(der.Bip32Path)
		if len(path) < 2 || path[len(path)-2] > 1 || path[len(path)-1] >= hdpath.Hardened {
			return bad("multisig key path %s does not end in /change/index", path)
		}
		cs := [2]uint32{path[len(path)-2], path[len(path)-1]}
		if step != nil && *step != cs {
			return bad("multisig keys at different change/index steps (%d/%d and %d/%d)", step[0], step[1], cs[0], cs[1])
		}
		step = &cs
		origin := path[:len(path)-2]
		kfp := device.FingerprintFromPSBT(der.MasterKeyFingerprint)
		xpub, ok := globalXPub(p, der.MasterKeyFingerprint, origin)
		if !ok {
			if kfp != fp {
				return bad("the psbt lacks the xpub of cosigner [%s%s]: add PSBT_GLOBAL_XPUB entries", kfp, strings.TrimPrefix(origin.String(), "m"))
			}
			if xpub, err = s.xpub(origin, false); err != nil {
				return device.WalletPolicy{}, false, err
			}
		}
		xs, xk, err := xpubForNet(xpub, net)
		if err != nil {
			return device.WalletPolicy{}, false, err
		}
		for _, st := range cs {
			if xk, err = xk.Derive(st); err != nil {
				return bad("derive cosigner key: %v", err)
			}
		}
		child, err := xk.ECPubKey()
		if err != nil || !bytes.Equal(child.SerializeCompressed(), pub) {
			return bad("cosigner xpub [%s%s] does not give key %x at %d/%d", kfp, strings.TrimPrefix(origin.String(), "m"), pub, cs[0], cs[1])
		}
		infos = append(infos, KeyInfo(kfp, origin, xs))
	}
	fn := "multi"
	if slices.IsSortedFunc(pubs, bytes.Compare) {
		fn = "sortedmulti"
		slices.Sort(infos)
	}
	ph := make([]string, len(infos))
	for j := range infos {
		ph[j] = fmt.Sprintf("@%d/**", j)
	}
	inner := fmt.Sprintf("%s(%d,%s)", fn, k, strings.Join(ph, ","))
	pol := device.WalletPolicy{
		Name:     fmt.Sprintf("%d-of-%d multisig", k, len(infos)),
		Template: fmt.Sprintf(ms.wrap, inner),
		Keys:     infos,
	}
	if w, ok := s.d.registeredLike(pol, fn == "sortedmulti"); ok {
		pol = w.Policy // registered before (registerdescriptor, or given): no new review
	}
	return pol, ms.wrap == "sh(%s)", checkPolicy(pol)
}

// registeredLike finds a registered wallet that describes the same multisig as pol (built
// with @i/** placeholders): the same template once "/<0;1>/*" is written "/**", and the same
// keys — in the same order for multi, as a set for sortedmulti. s.d.mu is held.
func (d *Driver) registeredLike(pol device.WalletPolicy, sorted bool) (device.RegisteredWallet, bool) {
	norm := func(t string) string { return strings.ReplaceAll(t, "/<0;1>/*", "/**") }
	want := slices.Clone(pol.Keys)
	if sorted {
		slices.Sort(want)
	}
	var found []device.RegisteredWallet
	for _, w := range d.wallets {
		if norm(w.Policy.Template) != pol.Template || len(w.Policy.Keys) != len(want) {
			continue
		}
		keys := slices.Clone(w.Policy.Keys)
		if sorted {
			slices.Sort(keys)
		}
		if slices.Equal(keys, want) {
			found = append(found, w)
		}
	}
	if len(found) == 0 {
		return device.RegisteredWallet{}, false
	}
	// Several registrations of one wallet (other names): the same choice every time.
	slices.SortFunc(found, func(a, b device.RegisteredWallet) int { return strings.Compare(a.Policy.Name, b.Policy.Name) })
	return found[0], true
}

// globalXPub finds the PSBT_GLOBAL_XPUB whose origin is fp (as btcd stores it) and path.
func globalXPub(p *psbt.Packet, fp uint32, origin hdpath.Path) (string, bool) {
	x, ok := hwpsbt.FindGlobalXPub(p, fp, origin)
	if !ok {
		return "", false
	}
	return x.Key.String(), true
}

// yieldSig is one signature the device yielded.
type yieldSig struct {
	input  int
	pubkey []byte // 33 compressed, 32 x-only, or 64 x-only ‖ leaf hash
	sig    []byte
}

// Yield musig2 tags (not produced for the policies this driver registers).
const (
	yieldTagMusigNonce   = 0xFFFFFFFF
	yieldTagMusigPartial = 0xFFFFFFFE
)

// parseSignatureYield decodes one SIGN_PSBT yield. ok is false for results that are not
// signatures (musig2 nonces and partial signatures).
func parseSignatureYield(b []byte, nInputs int) (yieldSig, bool, error) {
	bad := func(what string) (yieldSig, bool, error) {
		return yieldSig{}, false, fmt.Errorf("%w: sign psbt yield %x: %s", device.ErrProtocol, b, what)
	}
	r := bytes.NewReader(b)
	idx, err := wire.ReadVarInt(r, 0)
	if err != nil {
		return bad("input index")
	}
	if idx == yieldTagMusigNonce || idx == yieldTagMusigPartial {
		return yieldSig{}, false, nil
	}
	if idx >= uint64(nInputs) {
		return bad(fmt.Sprintf("input %d of %d", idx, nInputs))
	}
	l, err := r.ReadByte()
	if err != nil || (l != 33 && l != 32 && l != 64) || r.Len() < int(l) {
		return bad("public key length")
	}
	pk := make([]byte, l)
	_, _ = r.Read(pk)
	sig := make([]byte, r.Len())
	_, _ = r.Read(sig)
	switch l {
	case 33:
		if pk[0] != 2 && pk[0] != 3 {
			return bad("public key is not compressed")
		}
		if len(sig) < 9 || len(sig) > 74 {
			return bad("ecdsa signature length")
		}
		if _, err := ecdsa.ParseDERSignature(sig[:len(sig)-1]); err != nil {
			return bad("ecdsa signature is not DER")
		}
	default:
		if len(sig) != 64 && len(sig) != 65 {
			return bad("schnorr signature length")
		}
	}
	return yieldSig{input: int(idx), pubkey: pk, sig: sig}, true, nil
}

// encodeSignatureYield is the inverse of parseSignatureYield (tests and fuzzing).
func encodeSignatureYield(y yieldSig) []byte {
	var buf bytes.Buffer
	_ = wire.WriteVarInt(&buf, 0, uint64(y.input))
	buf.WriteByte(byte(len(y.pubkey)))
	buf.Write(y.pubkey)
	buf.Write(y.sig)
	return buf.Bytes()
}

// mergeSigs adds the signatures to p, replacing an earlier signature by the same key.
func mergeSigs(p *psbt.Packet, sigs []yieldSig) {
	for _, y := range sigs {
		in := &p.Inputs[y.input]
		switch len(y.pubkey) {
		case 33:
			ps := &psbt.PartialSig{PubKey: y.pubkey, Signature: y.sig}
			j := slices.IndexFunc(in.PartialSigs, func(o *psbt.PartialSig) bool { return bytes.Equal(o.PubKey, y.pubkey) })
			if j >= 0 {
				in.PartialSigs[j] = ps
			} else {
				in.PartialSigs = append(in.PartialSigs, ps)
			}
		case 32:
			in.TaprootKeySpendSig = y.sig
		case 64:
			ss := &psbt.TaprootScriptSpendSig{XOnlyPubKey: y.pubkey[:32], LeafHash: y.pubkey[32:], Signature: y.sig[:64], SigHash: txscript.SigHashDefault}
			if len(y.sig) == 65 {
				ss.SigHash = txscript.SigHashType(y.sig[64])
			}
			j := slices.IndexFunc(in.TaprootScriptSpendSig, func(o *psbt.TaprootScriptSpendSig) bool {
				return bytes.Equal(o.XOnlyPubKey, ss.XOnlyPubKey) && bytes.Equal(o.LeafHash, ss.LeafHash)
			})
			if j >= 0 {
				in.TaprootScriptSpendSig[j] = ss
			} else {
				in.TaprootScriptSpendSig = append(in.TaprootScriptSpendSig, ss)
			}
		}
	}
}

// singleKeyTemplates are the single-key policy templates a registered wallet may have, by
// the output script kind they pay to.
var singleKeyTemplates = map[string][]string{
	"pkh":      {"pkh(@0/**)", "pkh(@0/<0;1>/*)"},
	"sh(wpkh)": {"sh(wpkh(@0/**))", "sh(wpkh(@0/<0;1>/*))"},
	"wpkh":     {"wpkh(@0/**)", "wpkh(@0/<0;1>/*)"},
	"tr":       {"tr(@0/**)", "tr(@0/<0;1>/*)"},
}

// inputKind names the single-key script an input spends, from its UTXO.
func inputKind(p *psbt.Packet, i int) string {
	in := &p.Inputs[i]
	var script []byte
	switch {
	case in.WitnessUtxo != nil:
		script = in.WitnessUtxo.PkScript
	case in.NonWitnessUtxo != nil:
		op := p.UnsignedTx.TxIn[i].PreviousOutPoint
		if int(op.Index) < len(in.NonWitnessUtxo.TxOut) {
			script = in.NonWitnessUtxo.TxOut[op.Index].PkScript
		}
	}
	switch txscript.GetScriptClass(script) {
	case txscript.PubKeyHashTy:
		return "pkh"
	case txscript.WitnessV0PubKeyHashTy:
		return "wpkh"
	case txscript.WitnessV1TaprootTy:
		return "tr"
	case txscript.ScriptHashTy:
		if txscript.GetScriptClass(in.RedeemScript) == txscript.WitnessV0PubKeyHashTy {
			return "sh(wpkh)"
		}
	}
	return ""
}

// registeredSingleKey finds a registered single-key wallet policy for input i: its one key
// is the device's key at the origin of a derivation of the input (the path without
// change/index), and its template pays to the input's script kind. s.d.mu is held.
func (d *Driver) registeredSingleKey(fp device.Fingerprint, p *psbt.Packet, i int, ours []ourDerivation) (device.RegisteredWallet, bool) {
	templates := singleKeyTemplates[inputKind(p, i)]
	if len(templates) == 0 {
		return device.RegisteredWallet{}, false
	}
	var found []device.RegisteredWallet
	for _, o := range ours {
		if len(o.path) < 3 || o.path[len(o.path)-2] > 1 || o.leaves > 0 {
			continue
		}
		prefix := "[" + fp.String() + strings.TrimPrefix(o.path[:len(o.path)-2].String(), "m") + "]"
		for _, w := range d.wallets {
			if len(w.Policy.Keys) == 1 && strings.HasPrefix(w.Policy.Keys[0], prefix) && slices.Contains(templates, w.Policy.Template) {
				found = append(found, w)
			}
		}
	}
	if len(found) == 0 {
		return device.RegisteredWallet{}, false
	}
	slices.SortFunc(found, func(a, b device.RegisteredWallet) int { return strings.Compare(a.Policy.Name, b.Policy.Name) })
	return found[0], true
}
