package ledgeremu

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"

	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// The Bitcoin app v2 (app-bitcoin-new ≥ 2.1, ledger.md §5): CLA 0xE1, P1 0, P2 = protocol
// version (0 or 1), client commands through SW 0xE000 and CLA 0xF8.
const (
	insGetExtendedPubkey = 0x00
	insRegisterWallet    = 0x02
	insGetWalletAddress  = 0x03
	insSignPSBT          = 0x04
	insGetMasterFpr      = 0x05
	insSignMessage       = 0x10
)

const (
	hardened        = hdpath.Hardened
	maxBIP32Steps   = 10
	maxAccount      = 100
	maxAddressIndex = 50000
)

// btcApp is the state of one Bitcoin app command: the network the app build serves.
type btcApp struct {
	wallet    *emulator.Wallet
	policyKey [32]byte
	net       *chaincfg.Params
	coinType  uint32
	ticker    string
	protocol  byte // P2 of the command
}

func (cn *conn) btcApp(p2 byte) *btcApp {
	a := &btcApp{wallet: cn.d.wallet, policyKey: cn.d.policyKey, net: &chaincfg.MainNetParams, ticker: "BTC", protocol: p2}
	if cn.d.app == AppBitcoinTest {
		a.net, a.coinType, a.ticker = &chaincfg.TestNet3Params, 1, "TEST"
	}
	return a
}

// xpub is the base58 extended public key at path with the app's version bytes (xpub or
// tpub, never ypub/zpub).
func (a *btcApp) xpub(path []uint32) (string, error) {
	k, err := a.wallet.Public(hdpath.Path(path), a.net.HDPublicKeyID[:])
	if err != nil {
		return "", err
	}
	return k.String(), nil
}

// pathAllowed is the OS derivation lock of the app build: BIP-44/48/49/84/86 under the
// app's coin type, BIP-45 and Electrum's 4541509', and the master key.
func (a *btcApp) pathAllowed(p []uint32) bool {
	if len(p) == 0 {
		return true
	}
	switch p[0] {
	case 45 | hardened, 4541509 | hardened:
		return true
	case 44 | hardened, 48 | hardened, 49 | hardened, 84 | hardened, 86 | hardened:
		return len(p) >= 2 && p[1] == a.coinType|hardened
	}
	return false
}

// pathSafe is the app's rule for exporting a pubkey without display.
func (a *btcApp) pathSafe(p []uint32) bool {
	if len(p) == 2 && p[0] == 4541509|hardened && p[1] == 1112098098|hardened {
		return true
	}
	if len(p) < 3 {
		return false
	}
	hlen := 3
	switch p[0] &^ hardened {
	case 44, 45, 49, 84, 86:
	case 48:
		hlen = 4
	default:
		return false
	}
	if len(p) < hlen {
		return false
	}
	for i, v := range p {
		if (i < hlen) != (v >= hardened) {
			return false
		}
	}
	if p[1]&^hardened != a.coinType || p[2]&^hardened > maxAccount {
		return false
	}
	if hlen == 4 && p[3]&^hardened != 1 && p[3]&^hardened != 2 {
		return false
	}
	return true
}

// bitcoin dispatches one APDU to the Bitcoin app.
func (cn *conn) bitcoin(a APDU) ([]byte, error) {
	if a.P2 > 1 {
		return nil, fail(swWrongP1P2BTC, "protocol version %d", a.P2)
	}
	if a.CLA == claFramework && a.INS == insContinue {
		return nil, fail(swBadState, "continue with no interrupted command")
	}
	if a.CLA != claBTC {
		return nil, fail(swCLANotSupported, "cla %02x", a.CLA)
	}
	app := cn.btcApp(a.P2)
	h := btcHost{cn: cn}
	r := &reader{b: a.Data}
	switch a.INS {
	case insGetExtendedPubkey:
		return cn.btcGetXpub(app, r)
	case insGetMasterFpr:
		return binary.BigEndian.AppendUint32(nil, app.wallet.Fingerprint()), nil
	case insRegisterWallet:
		return cn.btcRegister(app, h, r)
	case insGetWalletAddress:
		return cn.btcAddress(app, h, r)
	case insSignPSBT:
		return cn.btcSignPSBT(app, h, r)
	case insSignMessage:
		return cn.btcSignMessage(app, h, r)
	}
	return nil, fail(swINSNotSupported, "ins %02x", a.INS)
}

func (cn *conn) btcGetXpub(app *btcApp, r *reader) ([]byte, error) {
	display := r.u8()
	n := int(r.u8())
	if r.bad {
		return nil, fail(swWrongDataLength, "short get extended pubkey")
	}
	if display > 1 || n > maxBIP32Steps {
		return nil, fail(swIncorrectData, "display %d, %d steps", display, n)
	}
	path := make([]uint32, n)
	for i := range path {
		path[i] = r.u32()
	}
	if r.bad {
		return nil, fail(swWrongDataLength, "short path")
	}
	if !app.pathSafe(path) && display == 0 {
		return nil, fail(swNotSupported, "path %s needs display", hdpath.Path(path))
	}
	if !app.pathAllowed(path) {
		return nil, fail(swNotSupported, "path %s is outside the app's derivation lock", hdpath.Path(path))
	}
	x, err := app.xpub(path)
	if err != nil {
		return nil, fail(swBadState, "derive: %v", err)
	}
	if display == 1 {
		name := "(Master key)"
		if len(path) > 0 {
			name = strings.TrimPrefix(hdpath.Path(path).String(), "m/")
		}
		ok, err := cn.ask("Public key", "path: "+name, x)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fail(swDeny, "rejected")
		}
	}
	return []byte(x), nil
}

// policyHMAC is the registration proof of a wallet policy.
func (a *btcApp) policyHMAC(id [32]byte) [32]byte {
	m := hmac.New(sha256.New, a.policyKey[:])
	m.Write(id[:])
	var out [32]byte
	m.Sum(out[:0])
	return out
}

func nameAcceptable(n string) bool {
	if len(n) == 0 || len(n) > maxWalletName || n[0] == ' ' || n[len(n)-1] == ' ' {
		return false
	}
	for i := 0; i < len(n); i++ {
		if n[i] < 0x20 || n[i] > 0x7E {
			return false
		}
	}
	return true
}

func (cn *conn) btcRegister(app *btcApp, h btcHost, r *reader) ([]byte, error) {
	n := r.varint()
	if r.bad {
		return nil, fail(swWrongDataLength, "short register wallet")
	}
	ser := r.bytes(int(min(n, maxSerializedPolicy+1)))
	if r.bad || n > maxSerializedPolicy || r.left() != 0 {
		return nil, fail(swIncorrectData, "serialized policy length")
	}
	p, err := h.loadPolicy(ser, app)
	if err != nil {
		return nil, err
	}
	if !nameAcceptable(p.name) {
		return nil, failEC(swIncorrectData, 0x0000, "unacceptable wallet name")
	}
	internal := 0
	lines := []string{"name: " + p.name, "policy: " + p.template}
	for i, k := range p.keys {
		mark := ""
		if p.isInternal(i, app) {
			internal++
			mark = " (ours)"
		}
		lines = append(lines, fmt.Sprintf("key @%d%s: %s", i, mark, k.raw))
	}
	if internal == 0 {
		return nil, failEC(swIncorrectData, 0x0002, "no internal key")
	}
	if p.version == 1 && internal != 1 {
		return nil, fail(swIncorrectData, "v1 policies have exactly one internal key")
	}
	ok, err := cn.ask("Register wallet", lines...)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fail(swDeny, "rejected")
	}
	mac := app.policyHMAC(p.id)
	return append(p.id[:], mac[:]...), nil
}

// checkPolicyAuth checks a wallet policy against its hmac (or the default-policy rules
// for an all-zero hmac) and returns whether it is a default one.
func (app *btcApp) checkPolicyAuth(p *walletPolicy, mac []byte, badDefault error) (bool, error) {
	if isZero(mac) {
		if !p.isDefault(app) {
			return false, badDefault
		}
		return true, nil
	}
	want := app.policyHMAC(p.id)
	if !hmac.Equal(want[:], mac) {
		return false, fail(swSignatureFail, "wrong wallet policy hmac")
	}
	return false, nil
}

func isZero(b []byte) bool {
	for _, v := range b {
		if v != 0 {
			return false
		}
	}
	return true
}

func (cn *conn) btcAddress(app *btcApp, h btcHost, r *reader) ([]byte, error) {
	display := r.u8()
	var id [32]byte
	copy(id[:], r.bytes(32))
	mac := r.bytes(32)
	change := r.u8()
	index := r.u32()
	if r.bad {
		return nil, fail(swWrongDataLength, "short get wallet address")
	}
	if change > 1 || index >= hardened {
		return nil, fail(swIncorrectData, "change %d index %d", change, index)
	}
	p, err := h.fetchPolicy(id, app)
	if err != nil {
		return nil, err
	}
	isDefault, err := app.checkPolicyAuth(p, mac, fail(swIncorrectData, "not a default wallet policy"))
	if err != nil {
		return nil, err
	}
	if isDefault && (p.name != "" || index > maxAddressIndex) {
		return nil, fail(swIncorrectData, "default policy with a name or index above %d", maxAddressIndex)
	}
	// The app fetches each key expression's key again while it derives the script
	// (app-bitcoin-new 2.4.6, as its Speculos transcripts show): ask for them as it does.
	if err := h.refetchKeys(p); err != nil {
		return nil, err
	}
	s, err := p.scripts(change == 1, index)
	if err != nil {
		return nil, err
	}
	addr, err := app.address(s.spk)
	if err != nil {
		return nil, err
	}
	if display != 0 {
		lines := []string{addr}
		if !isDefault {
			lines = []string{"wallet: " + p.name, addr}
		}
		ok, err := cn.ask("Verify address", lines...)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fail(swDeny, "rejected")
		}
	}
	return []byte(addr), nil
}

// address renders a scriptPubKey for the app's network.
func (a *btcApp) address(spk []byte) (string, error) {
	_, addrs, _, err := txscript.ExtractPkScriptAddrs(spk, a.net)
	if err != nil || len(addrs) != 1 {
		return "", fail(swBadState, "no address for script %x", spk)
	}
	return addrs[0].EncodeAddress(), nil
}

// scriptDisplay is what the device shows for an output script: its address, or the
// script in hex (OP_RETURN and unknown scripts).
func (a *btcApp) scriptDisplay(spk []byte) string {
	if len(spk) > 0 && spk[0] == txscript.OP_RETURN {
		return "OP_RETURN " + hex.EncodeToString(spk[1:])
	}
	if s, err := a.address(spk); err == nil {
		return s
	}
	return "script " + hex.EncodeToString(spk)
}

// maxMessage caps SIGN_MESSAGE input.
const maxMessage = 1 << 20

func (cn *conn) btcSignMessage(app *btcApp, h btcHost, r *reader) ([]byte, error) {
	path, ok := r.path(maxBIP32Steps)
	msgLen := r.varint()
	var root [32]byte
	copy(root[:], r.bytes(32))
	if !ok || r.bad {
		return nil, fail(swWrongDataLength, "short sign message")
	}
	if msgLen > maxMessage {
		return nil, fail(swIncorrectData, "message of %d bytes", msgLen)
	}
	if !app.pathAllowed(path) {
		return nil, fail(swNotSupported, "path %s is outside the app's derivation lock", hdpath.Path(path))
	}
	n := int((msgLen + 63) / 64)
	msg := make([]byte, 0, msgLen)
	for i := range n {
		chunk, err := h.element(root, n, i, 64)
		if err != nil {
			return nil, err
		}
		want := 64
		if i == n-1 {
			want = int(msgLen) - 64*(n-1)
		}
		if len(chunk) != want {
			return nil, fail(swIncorrectData, "message chunk %d has %d bytes", i, len(chunk))
		}
		msg = append(msg, chunk...)
	}
	var buf []byte
	buf = append(buf, "\x18Bitcoin Signed Message:\n"...)
	buf = appendVarint(buf, msgLen)
	buf = append(buf, msg...)
	digest := chainhash.DoubleHashB(buf)

	shown := "sha-256: " + hex.EncodeToString(sha256Sum(msg))
	if len(msg) <= 640 && printable(msg) {
		shown = string(msg)
	}
	ok, err := cn.ask("Sign message", "path: "+hdpath.Path(path).String(), "message: "+shown)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fail(swDeny, "rejected")
	}
	priv, err := app.wallet.PrivKey(hdpath.Path(path))
	if err != nil {
		return nil, fail(swBadState, "derive: %v", err)
	}
	return ecdsa.SignCompact(priv, digest, true), nil
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

func printable(b []byte) bool {
	for _, c := range b {
		if (c < 0x20 || c > 0x7E) && c != '\n' {
			return false
		}
	}
	return true
}
