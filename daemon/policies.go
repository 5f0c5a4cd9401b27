package daemon

// What HWI cannot keep between calls, kept by hwbridged:
//
//   - Ledger wallet policy registrations: REGISTER_WALLET makes the person review a policy
//     on the device and answers an HMAC that signing with the policy needs every time; the
//     device keeps no list. hwbridged stores {device fingerprint, policy, HMAC} in
//     DataDir/policies.json (mode 0600; an HMAC is not a secret that moves funds, but it
//     says which wallets the device is in) and hands them to the driver before every
//     Bitcoin call, so a policy is reviewed once per device. `hwbridge policies forget`
//     (v1PoliciesForget) drops them.
//   - A Trezor's passphrase session and PIN entry: see session.go.

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"

	"github.com/hwbridge/hwbridge/daemon/audit"
	"github.com/hwbridge/hwbridge/daemon/keys"
	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// PoliciesFile holds the Ledger wallet policy registrations (in the data directory).
const PoliciesFile = "policies.json"

// maxStoredPolicies bounds the store (each entry is a few kB at most).
const maxStoredPolicies = 4096

// StoredPolicy is one registration kept by hwbridged.
type StoredPolicy struct {
	Fingerprint string    `json:"fingerprint"` // the device's master fingerprint
	Name        string    `json:"name"`
	Template    string    `json:"template"`
	Keys        []string  `json:"keys"`
	HMAC        string    `json:"hmac"` // hex, 32 bytes
	ID          string    `json:"id"`   // wallet id (hex), for display
	Registered  time.Time `json:"registered"`
}

func (p StoredPolicy) policy() device.WalletPolicy {
	return device.WalletPolicy{Name: p.Name, Template: p.Template, Keys: slices.Clone(p.Keys)}
}

// policyStore is DataDir/policies.json.
type policyStore struct {
	mu   sync.Mutex
	path string
	list []StoredPolicy
}

func openPolicies(path string) (*policyStore, error) {
	s := &policyStore{path: path}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("policy registrations: %w", err)
	}
	if err := json.Unmarshal(b, &s.list); err != nil {
		return nil, fmt.Errorf("policy registrations %s: %w (move the file away to start over; the wallets will be registered again)", path, err)
	}
	return s, nil
}

func (s *policyStore) saveLocked() error {
	b, err := json.MarshalIndent(s.list, "", "  ")
	if err != nil {
		return err
	}
	return audit.WriteFileAtomic(s.path, append(b, '\n'), 0o600)
}

// wallets are the registrations of the device with fingerprint fp.
func (s *policyStore) wallets(fp device.Fingerprint) []device.RegisteredWallet {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []device.RegisteredWallet
	for _, p := range s.list {
		h, err := hex.DecodeString(p.HMAC)
		if p.Fingerprint != fp.String() || err != nil || len(h) != 32 {
			continue
		}
		out = append(out, device.RegisteredWallet{Policy: p.policy(), HMAC: [32]byte(h)})
	}
	return out
}

func (s *policyStore) lookup(fp device.Fingerprint, pol device.WalletPolicy) ([32]byte, bool) {
	for _, w := range s.wallets(fp) {
		if w.Policy.Equal(pol) {
			return w.HMAC, true
		}
	}
	return [32]byte{}, false
}

// add keeps the registrations not stored yet; it reports how many were new.
func (s *policyStore) add(fp device.Fingerprint, ws []device.RegisteredWallet, walletID func(device.WalletPolicy) [32]byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, w := range ws {
		if slices.ContainsFunc(s.list, func(p StoredPolicy) bool { return p.Fingerprint == fp.String() && p.policy().Equal(w.Policy) }) {
			continue
		}
		id := walletID(w.Policy)
		if len(s.list) >= maxStoredPolicies {
			return n, fmt.Errorf("%d wallet policy registrations are stored: forget some (hwbridge policies forget)", len(s.list))
		}
		s.list = append(s.list, StoredPolicy{Fingerprint: fp.String(), Name: w.Policy.Name, Template: w.Policy.Template,
			Keys: slices.Clone(w.Policy.Keys), HMAC: hex.EncodeToString(w.HMAC[:]), ID: hex.EncodeToString(id[:]), Registered: time.Now().UTC()})
		n++
	}
	if n == 0 {
		return 0, nil
	}
	return n, s.saveLocked()
}

// forget drops the registrations of fingerprint fp ("" for all) and reports how many.
func (s *policyStore) forget(fp string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	before := len(s.list)
	s.list = slices.DeleteFunc(s.list, func(p StoredPolicy) bool { return fp == "" || p.Fingerprint == fp })
	if len(s.list) == before {
		return 0, nil
	}
	return before - len(s.list), s.saveLocked()
}

func (s *policyStore) all() []StoredPolicy {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.list)
}

// walletKeeper is a driver that signs with registered wallet policies (device/ledger).
type walletKeeper interface {
	Wallets() []device.RegisteredWallet
	AddWallet(device.RegisteredWallet)
	RegisterWallet(ctx context.Context, pol device.WalletPolicy, net *chaincfg.Params) ([32]byte, error)
	WalletAddress(ctx context.Context, pol device.WalletPolicy, hmac [32]byte, change, index uint32, display bool, net *chaincfg.Params) (string, error)
	// WalletID is the device's own id of a policy (a Ledger's wallet id), for display.
	WalletID(pol device.WalletPolicy) [32]byte
}

// withPolicies runs fn with the stored registrations of d handed to its driver, and keeps
// the ones the call made (a SignPSBT registers a multisig policy on first use). Devices
// without wallet policies run fn as they are.
func (d *Daemon) withPolicies(ctx context.Context, dev device.Device, fn func(k walletKeeper, fp device.Fingerprint) error) error {
	k, ok := device.Inner(dev).(walletKeeper)
	if !ok {
		return fn(nil, 0)
	}
	fp, err := dev.Fingerprint(ctx)
	if err != nil {
		return err
	}
	for _, w := range d.policies.wallets(fp) {
		k.AddWallet(w)
	}
	err = fn(k, fp)
	if n, serr := d.policies.add(fp, k.Wallets(), k.WalletID); serr != nil {
		d.log.Error("wallet policy registrations not kept", "err", serr)
	} else if n > 0 {
		d.log.Info("kept wallet policy registrations", "fingerprint", fp.String(), "new", n)
	}
	return err
}

// signPSBT is SignPSBT with the stored registrations.
func (d *Daemon) signPSBT(ctx context.Context, dev device.Device, p *psbt.Packet, net *chaincfg.Params) error {
	return d.withPolicies(ctx, dev, func(walletKeeper, device.Fingerprint) error { return dev.SignPSBT(ctx, p, net) })
}

// PolicyParams names a BIP-388 wallet policy on a device.
type PolicyParams struct {
	Device   string   `json:"device,omitempty"`
	Network  string   `json:"network,omitempty"`
	Name     string   `json:"name"`
	Template string   `json:"template"`
	Keys     []string `json:"keys"`
}

func (p PolicyParams) policy() (device.WalletPolicy, error) {
	if len(p.Name) > 64 || len(p.Template) > 4096 || len(p.Keys) > 32 {
		return device.WalletPolicy{}, fmt.Errorf("%w: wallet policy too large", device.ErrInvalidInput)
	}
	for _, k := range p.Keys {
		if len(k) > 256 {
			return device.WalletPolicy{}, fmt.Errorf("%w: wallet policy key of %d characters", device.ErrInvalidInput, len(k))
		}
	}
	return device.WalletPolicy{Name: p.Name, Template: p.Template, Keys: p.Keys}, nil
}

// RegisterPolicyResult is a registration.
type RegisterPolicyResult struct {
	HMAC   string `json:"hmac"` // hex
	ID     string `json:"id"`   // wallet id, hex
	Stored bool   `json:"stored"`
}

// V1BtcRegisterPolicy registers a wallet policy on a Ledger (the person reviews it) and
// keeps the HMAC; a policy registered before on the device answers from the store
// without a review.
func (a *API) V1BtcRegisterPolicy(ctx context.Context, auth keys.Auth, raw json.RawMessage) (*RegisterPolicyResult, error) {
	ctx, done := a.d.conns.bind(ctx)
	defer done()
	var p PolicyParams
	c, err := a.d.begin(ctx, "v1BtcRegisterPolicy", auth, raw, &p)
	if err != nil {
		return nil, toRPC(err)
	}
	var res RegisterPolicyResult
	err = func() error {
		pol, err := p.policy()
		if err != nil {
			return err
		}
		net, err := parseNetwork(p.Network)
		if err != nil {
			return err
		}
		return c.onDevice(ctx, p.Device, device.ChainBTC, func(ctx context.Context, dev device.Device) error {
			ctx = device.WithAppSwitch(ctx)
			return a.d.withPolicies(ctx, dev, func(k walletKeeper, fp device.Fingerprint) error {
				if k == nil {
					return fmt.Errorf("this device does not register wallet policies: %w", errors.ErrUnsupported)
				}
				hmac, ok := a.d.policies.lookup(fp, pol)
				if !ok {
					if hmac, err = k.RegisterWallet(ctx, pol, net); err != nil {
						return err
					}
				}
				id := k.WalletID(pol)
				res = RegisterPolicyResult{HMAC: hex.EncodeToString(hmac[:]), ID: hex.EncodeToString(id[:]), Stored: ok}
				return nil
			})
		})
	}()
	if err := c.finish("register wallet policy "+clip(p.Name, 64)+" "+clip(p.Template, 200), err); err != nil {
		return nil, err
	}
	return &res, nil
}

// PolicyAddressParams asks for an address of a registered wallet policy.
type PolicyAddressParams struct {
	PolicyParams
	HMAC    string `json:"hmac,omitempty"` // hex; empty: the stored registration
	Change  uint32 `json:"change"`
	Index   uint32 `json:"index"`
	Display bool   `json:"display,omitempty"`
}

// V1BtcPolicyAddress returns (and with display shows) a wallet policy's address.
func (a *API) V1BtcPolicyAddress(ctx context.Context, auth keys.Auth, raw json.RawMessage) (*AddressResult, error) {
	ctx, done := a.d.conns.bind(ctx)
	defer done()
	var p PolicyAddressParams
	c, err := a.d.begin(ctx, "v1BtcPolicyAddress", auth, raw, &p)
	if err != nil {
		return nil, toRPC(err)
	}
	var addr string
	err = func() error {
		pol, err := p.policy()
		if err != nil {
			return err
		}
		net, err := parseNetwork(p.Network)
		if err != nil {
			return err
		}
		var given *[32]byte
		if p.HMAC != "" {
			h, err := hex.DecodeString(p.HMAC)
			if err != nil || len(h) != 32 {
				return fmt.Errorf("%w: hmac is 32 bytes in hex", device.ErrInvalidInput)
			}
			given = (*[32]byte)(h)
		}
		return c.onDevice(ctx, p.Device, device.ChainBTC, func(ctx context.Context, dev device.Device) error {
			ctx = appSwitchIf(ctx, p.Display)
			return a.d.withPolicies(ctx, dev, func(k walletKeeper, fp device.Fingerprint) error {
				if k == nil {
					return fmt.Errorf("this device has no wallet policies: %w", errors.ErrUnsupported)
				}
				hmac, ok := [32]byte{}, true
				if given != nil {
					hmac = *given
				} else if hmac, ok = a.d.policies.lookup(fp, pol); !ok {
					return fmt.Errorf("%w: wallet policy %q is not registered on device %s: register it first", device.ErrInvalidInput, pol.Name, fp)
				}
				addr, err = k.WalletAddress(ctx, pol, hmac, p.Change, p.Index, p.Display, net)
				return err
			})
		})
	}()
	if err := c.finish(fmt.Sprintf("wallet policy %s address %d/%d%s", clip(p.Name, 64), p.Change, p.Index, displayNote(p.Display)), err); err != nil {
		return nil, err
	}
	return &AddressResult{Address: addr}, nil
}

// MultisigKeyParams is one cosigner of a multisig address.
type MultisigKeyParams struct {
	XPub  string `json:"xpub,omitempty"`
	Steps string `json:"steps,omitempty"` // "0/5" below the xpub
	Pub   string `json:"pub,omitempty"`   // or a plain public key, hex
}

// MultisigAddressParams asks a Trezor for a multisig address.
type MultisigAddressParams struct {
	Device    string              `json:"device,omitempty"`
	Network   string              `json:"network,omitempty"`
	Script    string              `json:"script"` // sh, sh-wsh or wsh
	Threshold int                 `json:"threshold"`
	Keys      []MultisigKeyParams `json:"keys"`
	Path      string              `json:"path"` // the device's own key
	Display   bool                `json:"display,omitempty"`
}

// multisigDevice is a driver that shows multisig addresses from the cosigners' keys.
type multisigDevice interface {
	MultisigAddress(ctx context.Context, req device.MultisigAddressRequest) (string, error)
}

// V1BtcMultisigAddress returns (and with display shows) a multisig address on a Trezor.
func (a *API) V1BtcMultisigAddress(ctx context.Context, auth keys.Auth, raw json.RawMessage) (*AddressResult, error) {
	ctx, done := a.d.conns.bind(ctx)
	defer done()
	var p MultisigAddressParams
	c, err := a.d.begin(ctx, "v1BtcMultisigAddress", auth, raw, &p)
	if err != nil {
		return nil, toRPC(err)
	}
	var addr string
	err = func() error {
		path, net, err := parsePathNet(p.Path, p.Network)
		if err != nil {
			return err
		}
		if len(p.Keys) > 20 {
			return fmt.Errorf("%w: %d multisig keys", device.ErrInvalidInput, len(p.Keys))
		}
		req := device.MultisigAddressRequest{Script: device.MultisigScript(p.Script), Threshold: p.Threshold, Path: path, Network: net, Display: p.Display}
		for _, k := range p.Keys {
			mk := device.MultisigKey{XPub: k.XPub}
			if k.Steps != "" {
				if mk.Steps, err = hdpath.Parse("m/" + strings.TrimPrefix(k.Steps, "/")); err != nil {
					return fmt.Errorf("%w: multisig key steps %q", device.ErrInvalidInput, k.Steps)
				}
			}
			if k.Pub != "" {
				if mk.Pub, err = hex.DecodeString(k.Pub); err != nil {
					return fmt.Errorf("%w: multisig key %q is not hex", device.ErrInvalidInput, k.Pub)
				}
			}
			req.Keys = append(req.Keys, mk)
		}
		return c.onDevice(ctx, p.Device, device.ChainBTC, func(ctx context.Context, dev device.Device) error {
			md, ok := device.Inner(dev).(multisigDevice)
			if !ok {
				return fmt.Errorf("this device does not show multisig addresses from cosigner keys: %w", errors.ErrUnsupported)
			}
			addr, err = md.MultisigAddress(appSwitchIf(ctx, p.Display), req)
			return err
		})
	}()
	if err := c.finish(fmt.Sprintf("multisig %s %d-of-%d address %s%s", clip(p.Script, 8), p.Threshold, len(p.Keys), clip(p.Path, 64), displayNote(p.Display)), err); err != nil {
		return nil, err
	}
	return &AddressResult{Address: addr}, nil
}

// V1PoliciesList lists the stored wallet policy registrations.
func (a *API) V1PoliciesList(ctx context.Context, auth keys.Auth, raw json.RawMessage) ([]StoredPolicy, error) {
	c, err := a.d.begin(ctx, "v1PoliciesList", auth, raw, nil)
	if err != nil {
		return nil, toRPC(err)
	}
	_ = c
	return a.d.policies.all(), nil
}

// ForgetParams names what to forget: one device's fingerprint, or "" for every device.
type ForgetParams struct {
	Fingerprint string `json:"fingerprint,omitempty"`
}

// ForgetResult says what was forgotten.
type ForgetResult struct {
	Policies int `json:"policies"`
	Sessions int `json:"sessions"`
}

// V1Forget drops the state hwbridged keeps for devices: the stored wallet policy
// registrations and the open passphrase sessions (of one fingerprint, or all).
func (a *API) V1Forget(ctx context.Context, auth keys.Auth, raw json.RawMessage) (*ForgetResult, error) {
	var p ForgetParams
	c, err := a.d.begin(ctx, "v1Forget", auth, raw, &p)
	if err != nil {
		return nil, toRPC(err)
	}
	var res ForgetResult
	err = func() error {
		fp := strings.ToLower(p.Fingerprint)
		if fp != "" && (len(fp) != 8 || strings.Trim(fp, "0123456789abcdef") != "") {
			return fmt.Errorf("%w: fingerprint %q is not 8 hex digits", device.ErrInvalidInput, p.Fingerprint)
		}
		var err error
		res.Policies, err = a.d.policies.forget(fp)
		res.Sessions = a.d.forgetSessions(ctx, fp)
		return err
	}()
	if err := c.finish(fmt.Sprintf("forget %q: %d policies, %d sessions", p.Fingerprint, res.Policies, res.Sessions), err); err != nil {
		return nil, err
	}
	return &res, nil
}

// ForgetPolicies drops the registrations kept in dataDir for fingerprint fp ("" for all)
// while hwbridged is stopped (hwbridge forget --direct); it refuses while a daemon holds
// the directory (ask it: v1Forget).
func ForgetPolicies(dataDir, fp string) (int, error) {
	if LockedByDaemon(dataDir) {
		return 0, fmt.Errorf("hwbridged runs on %s: forget through it (leave out --direct): %w", dataDir, ErrInUse)
	}
	s, err := openPolicies(filepath.Join(dataDir, PoliciesFile))
	if err != nil {
		return 0, err
	}
	return s.forget(fp)
}
