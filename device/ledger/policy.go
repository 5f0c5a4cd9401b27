package ledger

// Wallet policies (BIP-388 as the Bitcoin app v2 speaks them). Spec: app-bitcoin-new
// doc/wallet.md; /work/shared/protocols/ledger.md §5.5.
//
//	serialized V2 = 0x02 ‖ u8 name_len ‖ name ‖ varint template_len ‖ SHA256(template)
//	                ‖ varint n_keys ‖ MTH(key strings)
//	wallet_id     = SHA256(serialized)
//	key string    = "[" fingerprint (lowercase hex) "/" path with ' "]" xpub   (no /** in V2)

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"strings"

	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/wire"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// policyVersion2 is the serialization version ledger-bitcoin sends.
const policyVersion2 = 0x02

// Wallet policy limits (ledger.md §5.1).
const (
	maxPolicyName     = 64
	maxPolicyKeys     = 15
	maxPolicyTemplate = 512
	// maxDefaultAccount is the highest account a default policy may use.
	maxDefaultAccount = 100
	// maxDefaultIndex is the highest address index GET_WALLET_ADDRESS serves for a
	// default policy.
	maxDefaultIndex = 50_000
)

// SerializePolicy returns a policy's V2 serialization, as the Ledger Bitcoin app hashes
// and registers it (wallet_id is its SHA-256).
func SerializePolicy(w device.WalletPolicy) []byte {
	var buf bytes.Buffer
	buf.WriteByte(policyVersion2)
	buf.WriteByte(byte(len(w.Name)))
	buf.WriteString(w.Name)
	_ = wire.WriteVarInt(&buf, 0, uint64(len(w.Template)))
	th := sha256.Sum256([]byte(w.Template))
	buf.Write(th[:])
	_ = wire.WriteVarInt(&buf, 0, uint64(len(w.Keys)))
	root := newMerkleTree(keyLeaves(w.Keys)).Root()
	buf.Write(root[:])
	return buf.Bytes()
}

// PolicyID is the wallet id, SHA-256 of the V2 serialization.
func PolicyID(w device.WalletPolicy) [32]byte { return sha256.Sum256(SerializePolicy(w)) }

// WalletID is PolicyID as a method of the driver, for callers that reach it through an
// interface.
func (d *Driver) WalletID(w device.WalletPolicy) [32]byte { return PolicyID(w) }

func keyLeaves(keys []string) [][32]byte {
	l := make([][32]byte, len(keys))
	for i, k := range keys {
		l[i] = leafHash([]byte(k))
	}
	return l
}

// check enforces the app's limits before anything is sent.
func checkPolicy(w device.WalletPolicy) error {
	if len(w.Name) > maxPolicyName || !printable(w.Name) || strings.TrimSpace(w.Name) != w.Name {
		return fmt.Errorf("%w: wallet name %q: use 1-%d printable ascii characters without leading or trailing spaces", device.ErrInvalidInput, w.Name, maxPolicyName)
	}
	if len(w.Keys) == 0 || len(w.Keys) > maxPolicyKeys {
		return fmt.Errorf("%w: wallet policy with %d keys (a ledger takes 1-%d)", device.ErrInvalidInput, len(w.Keys), maxPolicyKeys)
	}
	if len(w.Template) == 0 || len(w.Template) > maxPolicyTemplate {
		return fmt.Errorf("%w: descriptor template of %d bytes (max %d)", device.ErrInvalidInput, len(w.Template), maxPolicyTemplate)
	}
	return nil
}

// register makes the policy's preimages known to h: the serialization, the template and
// the key list.
func registerPolicy(w device.WalletPolicy, h *clientHandler) {
	h.addPreimage(SerializePolicy(w))
	h.addPreimage([]byte(w.Template))
	ks := make([][]byte, len(w.Keys))
	for i, k := range w.Keys {
		ks[i] = []byte(k)
	}
	h.addList(ks)
}

// KeyInfo formats a key information string: [fingerprint/path]xpub, lowercase fingerprint,
// ' for hardened steps.
func KeyInfo(fp device.Fingerprint, origin hdpath.Path, xpub string) string {
	return "[" + fp.String() + strings.TrimPrefix(origin.String(), "m") + "]" + xpub
}

// defaultTemplates maps a BIP-44-style purpose to its default policy template.
var defaultTemplates = map[uint32]string{
	44: "pkh(@0/**)",
	49: "sh(wpkh(@0/**))",
	84: "wpkh(@0/**)",
	86: "tr(@0/**)",
}

// DefaultPolicy is the unregistered single-signature policy for an account key.
func DefaultPolicy(purpose uint32, fp device.Fingerprint, account hdpath.Path, xpub string) (device.WalletPolicy, error) {
	t, ok := defaultTemplates[purpose]
	if !ok {
		return device.WalletPolicy{}, fmt.Errorf("%w: no default wallet policy for purpose %d (use 44, 49, 84 or 86)", device.ErrInvalidInput, purpose)
	}
	return device.WalletPolicy{Template: t, Keys: []string{KeyInfo(fp, account, xpub)}}, nil
}

// accountKey names a default policy: m/purpose'/coin'/account'.
type accountKey struct{ purpose, coin, account uint32 }

func (a accountKey) path() hdpath.Path {
	return hdpath.Path{a.purpose + hdpath.Hardened, a.coin + hdpath.Hardened, a.account + hdpath.Hardened}
}

// standardAccount splits m/purpose'/coin'/account'/change/index for purposes 44/49/84/86
// and a hardened account ≤ 100, change 0 or 1, unhardened index.
func standardAccount(p hdpath.Path) (a accountKey, change, index uint32, ok bool) {
	if len(p) != 5 {
		return a, 0, 0, false
	}
	for _, s := range p[:3] {
		if s < hdpath.Hardened {
			return a, 0, 0, false
		}
	}
	a = accountKey{p[0] - hdpath.Hardened, p[1] - hdpath.Hardened, p[2] - hdpath.Hardened}
	if _, known := defaultTemplates[a.purpose]; !known || a.account > maxDefaultAccount {
		return a, 0, 0, false
	}
	if p[3] > 1 || p[4] >= hdpath.Hardened {
		return a, 0, 0, false
	}
	return a, p[3], p[4], true
}

// xpubForNet re-encodes an extended public key with the version bytes of net (xpub or
// tpub), as the apps expect for their network.
func xpubForNet(s string, net *chaincfg.Params) (string, *hdkeychain.ExtendedKey, error) {
	k, err := hdkeychain.NewKeyFromString(s)
	if err != nil {
		return "", nil, fmt.Errorf("%w: extended key %q: %w", device.ErrInvalidInput, s, err)
	}
	if k.IsPrivate() {
		return "", nil, fmt.Errorf("%w: a private extended key was given where an xpub belongs", device.ErrInvalidInput)
	}
	k.SetNet(net)
	return k.String(), k, nil
}

// WalletAddress returns the address at change/index of a registered wallet policy (hmac
// from RegisterWallet; the zero HMAC for a default policy), shown on the device when
// display is set: GET_WALLET_ADDRESS. The caller compares it with the address it computes
// from the policy's keys.
func (d *Driver) WalletAddress(ctx context.Context, pol device.WalletPolicy, hmac [32]byte, change, index uint32, display bool, net *chaincfg.Params) (string, error) {
	if err := checkPolicy(pol); err != nil {
		return "", err
	}
	if change > 1 || index >= hdpath.Hardened {
		return "", fmt.Errorf("%w: wallet address %d/%d (change 0 or 1, unhardened index)", device.ErrInvalidInput, change, index)
	}
	var addr string
	err := d.do(ctx, opAddress, bitcoinApp(netOrMain(net)), func(s *session) error {
		var err error
		addr, err = s.walletAddress(pol, hmac, change, index, display)
		if err == nil && display {
			device.NoteShown(ctx, addr)
		}
		return err
	})
	return addr, err
}

// Registered returns the HMAC of a policy this driver registered or was given, if any.
func (d *Driver) Registered(pol device.WalletPolicy) ([32]byte, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	w, ok := d.wallets[PolicyID(pol)]
	return w.HMAC, ok
}

// AddWallet makes a registration known to the driver (an HMAC kept from an earlier
// RegisterWallet), so that signing with the policy needs no new registration.
func (d *Driver) AddWallet(w device.RegisteredWallet) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.wallets[PolicyID(w.Policy)] = w
}
