package hwi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// accountPath is HWI's get_master_xpub path, m/purpose'/coin'/account'.
func (s *Signer) accountPath(st device.ScriptType, account uint32) hdpath.Path {
	purpose, _ := st.Purpose()
	return hdpath.Path{purpose + hdpath.Hardened, s.net.HDCoinType + hdpath.Hardened, account + hdpath.Hardened}
}

func (s *Signer) getMasterXPub(ctx context.Context, d device.Device, addrType string, account uint32) (map[string]string, error) {
	xpub, err := d.XPub(ctx, device.XPubRequest{Path: s.accountPath(addrTypeScript(addrType), account), Network: s.net})
	if err != nil {
		return nil, err
	}
	return map[string]string{"xpub": xpub}, nil
}

// getXPub is HWI's getxpub; with --expert the key's fields are added as HWI's
// ExtendedKey.get_printable_dict gives them.
func (s *Signer) getXPub(ctx context.Context, d device.Device, path string, expert bool) (map[string]any, error) {
	p, err := parsePath(path)
	if err != nil {
		return nil, err
	}
	xpub, err := s.xpubAt(ctx, d, p)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"xpub": xpub}
	if !expert {
		return out, nil
	}
	k, err := hdkeychain.NewKeyFromString(xpub)
	if err != nil {
		return nil, fmt.Errorf("the device's xpub %q: %w", xpub, err)
	}
	pub, err := k.ECPubKey()
	if err != nil {
		return nil, fmt.Errorf("the device's xpub %q: %w", xpub, err)
	}
	version := k.Version()
	out["testnet"] = !bytes.Equal(version, chaincfg.MainNetParams.HDPublicKeyID[:]) && !bytes.Equal(version, chaincfg.MainNetParams.HDPrivateKeyID[:])
	out["private"] = k.IsPrivate()
	out["depth"] = k.Depth()
	out["parent_fingerprint"] = fmt.Sprintf("%08x", k.ParentFingerprint())
	out["child_num"] = k.ChildIndex()
	out["chaincode"] = hex.EncodeToString(k.ChainCode())
	out["pubkey"] = hex.EncodeToString(pub.SerializeCompressed())
	return out, nil
}

// xpubAt is HWI's get_pubkey_at_path: a Ledger app serves a non-standard path only when the
// key is shown for the person to confirm, so that is asked when the silent request is refused.
func (s *Signer) xpubAt(ctx context.Context, d device.Device, p hdpath.Path) (string, error) {
	xpub, err := d.XPub(ctx, device.XPubRequest{Path: p, Network: s.net})
	if err == nil || !errors.Is(err, device.ErrInvalidInput) {
		return xpub, err
	}
	if f, ferr := d.Features(ctx); ferr != nil || f.Family != device.FamilyLedger {
		return "", err
	}
	return d.XPub(ctx, device.XPubRequest{Path: p, Network: s.net, Display: true})
}

// signMessage signs with Bitcoin Core's signed-message format (BIP-137 header of a
// compressed P2PKH key, as HWI's Trezor and Ledger clients do), base64.
func (s *Signer) signMessage(ctx context.Context, d device.Device, msg, path string) (map[string]string, error) {
	if !strings.HasPrefix(path, "m/") {
		return nil, errorf(CodeBadArgument, "Invalid keypath %q: it starts with m/", path)
	}
	p, err := parsePath(path)
	if err != nil {
		return nil, err
	}
	sig, err := d.SignMessage(device.WithAppSwitch(ctx), device.MessageRequest{Chain: device.ChainBTC, Path: p, Message: []byte(msg), Script: device.ScriptPKH, Network: s.net})
	if err != nil {
		return nil, err
	}
	return map[string]string{"signature": base64.StdEncoding.EncodeToString(sig.Signature)}, nil
}

// keypoolRequest is getkeypool's arguments.
type keypoolRequest struct {
	path              string
	start, end        int
	internal, keypool bool
	account           uint32
	addrType          string
	all               bool
}

// hwiKeypoolEntry is one element of getkeypool's answer, ready for importdescriptors.
type hwiKeypoolEntry struct {
	Desc      string `json:"desc"`
	Range     [2]int `json:"range"`
	Timestamp string `json:"timestamp"`
	Internal  bool   `json:"internal"`
	Keypool   bool   `json:"keypool"`
	Active    bool   `json:"active"`
	Watchonly bool   `json:"watchonly"`
}

// getKeypool is HWI's getkeypool: without --path and --internal, a receive and a change
// descriptor for each address type asked for (--all: legacy, wit, sh_wit, tap, the last
// only on a device that signs taproot); otherwise the one descriptor asked for.
func (s *Signer) getKeypool(ctx context.Context, d device.Device, req keypoolRequest) ([]hwiKeypoolEntry, error) {
	f, err := d.Features(ctx)
	if err != nil {
		return nil, err
	}
	types := []string{req.addrType}
	if req.all {
		types = slices.Clone(hwiAddrTypes)
	} else if req.addrType == "tap" && !f.Capabilities.Taproot {
		return nil, errorf(CodeUnavailableAction, "Device does not support Taproot")
	}
	if !f.Capabilities.Taproot {
		types = slices.DeleteFunc(types, func(t string) bool { return t == "tap" })
	}
	fp, err := d.Fingerprint(ctx)
	if err != nil {
		return nil, err
	}
	out := []hwiKeypoolEntry{}
	if req.path == "" && !req.internal {
		for _, t := range types {
			for _, internal := range []bool{false, true} {
				e, err := s.keypoolEntry(ctx, d, fp, req, t, internal)
				if err != nil {
					return nil, err
				}
				out = append(out, e)
			}
		}
		return out, nil
	}
	if len(types) != 1 {
		return nil, errorf(CodeBadArgument, "--all gives every address type's receive and change descriptors: leave out --path and --internal")
	}
	e, err := s.keypoolEntry(ctx, d, fp, req, types[0], req.internal)
	if err != nil {
		return nil, err
	}
	return append(out, e), nil
}

// keypoolEntry is HWI's getdescriptor: the key at the path's last hardened step, the steps
// after it, and /*.
func (s *Signer) keypoolEntry(ctx context.Context, d device.Device, fp device.Fingerprint, req keypoolRequest, addrType string, internal bool) (hwiKeypoolEntry, error) {
	st := addrTypeScript(addrType)
	var full hdpath.Path
	if req.path == "" {
		full = append(s.accountPath(st, req.account), 0)
		if internal {
			full[3] = 1
		}
	} else {
		if !strings.HasPrefix(req.path, "m") {
			return hwiKeypoolEntry{}, errorf(CodeBadArgument, "Path must start with m/")
		}
		if !strings.HasSuffix(req.path, "*") {
			return hwiKeypoolEntry{}, errorf(CodeBadArgument, "Path must end with /*")
		}
		var err error
		if full, err = parsePath(strings.TrimSuffix(req.path, "/*")); err != nil {
			return hwiKeypoolEntry{}, err
		}
		if len(full) == 0 {
			return hwiKeypoolEntry{}, errorf(CodeBadArgument, "Path %q has no step before /*", req.path)
		}
	}
	// HWI's loop: the origin ends after the last hardened step, or after the first step
	// when none is hardened.
	cut := 1
	for i := len(full) - 1; i >= 0; i-- {
		if full[i] >= hdpath.Hardened {
			cut = i + 1
			break
		}
	}
	origin := full[:cut]
	xpub, err := s.xpubAt(ctx, d, origin)
	if err != nil {
		return hwiKeypoolEntry{}, fmt.Errorf("xpub at %s: %w", origin, err)
	}
	desc, err := rangedDescriptor(st, fp, origin, xpub, full[cut:])
	if err != nil {
		return hwiKeypoolEntry{}, err
	}
	return hwiKeypoolEntry{Desc: desc, Range: [2]int{req.start, req.end}, Timestamp: "now", Internal: internal,
		Keypool: req.keypool, Active: req.keypool, Watchonly: true}, nil
}

// pinCommand answers promptpin, sendpin and togglepassphrase as HWI's device clients do
// for a device that needs no PIN or passphrase from the host.
func (s *Signer) pinCommand(ctx context.Context, d device.Device, cmd, pin string) (map[string]bool, error) {
	if pd, ok := device.Inner(d).(PINDevice); ok && cmd == "sendpin" {
		// Features would wait behind the prompted request that holds the device.
		return s.sendPIN(ctx, d, pd, pin)
	}
	f, err := d.Features(ctx)
	if err != nil {
		return nil, err
	}
	if f.Family == device.FamilyLedger {
		if cmd == "togglepassphrase" {
			return nil, errorf(CodeUnavailableAction, "The Ledger Nano S and X do not support toggling passphrase from the host")
		}
		return nil, errorf(CodeUnavailableAction, "The Ledger Nano S and X do not need a PIN sent from the host")
	}
	if pd, ok := device.Inner(d).(PINDevice); ok && cmd != "togglepassphrase" {
		return s.pinThrough(ctx, pd, f, cmd, pin)
	}
	switch {
	case cmd == "togglepassphrase":
		return nil, errorf(CodeUnavailableAction, "hwbridge does not change device settings: turn passphrase protection on or off with the vendor's tool (trezorctl set passphrase enabled|disabled)")
	case cmd == "sendpin" && !isDigits(pin):
		return nil, errorf(CodeBadArgument, "Non-numeric PIN provided")
	case !f.PINProtected:
		return nil, errorf(CodeDeviceAlreadyUnlock, "This device does not need a PIN")
	case f.Unlocked:
		return nil, errorf(CodeDeviceAlreadyUnlock, "The PIN has already been sent to this device")
	}
	return nil, errorf(CodeUnavailableAction, "hwbridge does not take the PIN matrix from the host: enter the PIN on the device when it asks, then run the command again")
}

// PINDevice takes the PIN from the host across calls (hwbridged: promptpin leaves a request
// waiting on the device's PIN matrix, sendpin answers it). cmd/hwbridge's daemon client
// implements it; a driver alone cannot, as each HWI call is a new process.
type PINDevice interface {
	PromptPIN(ctx context.Context) (prompted bool, err error)
	SendPIN(ctx context.Context, positions string) (unlocked bool, err error)
}

// pinThrough is promptpin as HWI's Trezor client answers it (prompt_pin):
// {"success": true} once the device shows its PIN matrix.
func (s *Signer) pinThrough(ctx context.Context, pd PINDevice, f device.Features, cmd, pin string) (map[string]bool, error) {
	if cmd == "sendpin" {
		return nil, errorf(CodeUnknownError, "sendpin without a PIN device") // pinCommand sends it
	}
	switch {
	case !f.PINProtected:
		return nil, errorf(CodeDeviceAlreadyUnlock, "This device does not need a PIN")
	case f.Unlocked:
		return nil, errorf(CodeDeviceAlreadyUnlock, "The PIN has already been sent to this device")
	}
	prompted, err := pd.PromptPIN(ctx)
	if err != nil {
		return nil, err
	}
	if !prompted {
		return nil, errorf(CodeDeviceAlreadyUnlock, "The PIN has already been sent to this device")
	}
	fmt.Fprintln(s.warnOut(), "Use 'sendpin' to provide the number positions for the PIN as displayed on your device's screen")
	return map[string]bool{"success": true}, nil
}

// sendPIN is sendpin as HWI's send_pin: {"success": true}, or false for a PIN the device
// refused; when nothing waits for a PIN, the device's state says why (-11).
func (s *Signer) sendPIN(ctx context.Context, d device.Device, pd PINDevice, pin string) (map[string]bool, error) {
	if !isDigits(pin) {
		return nil, errorf(CodeBadArgument, "Non-numeric PIN provided")
	}
	ok, err := pd.SendPIN(ctx, pin)
	if err == nil {
		return map[string]bool{"success": ok}, nil
	}
	if f, ferr := d.Features(ctx); ferr == nil {
		if !f.PINProtected {
			return nil, errorf(CodeDeviceAlreadyUnlock, "This device does not need a PIN")
		}
		if f.Unlocked {
			return nil, errorf(CodeDeviceAlreadyUnlock, "The PIN has already been sent to this device")
		}
	}
	return nil, err
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// ledgerRefusal gives a refusal on a Ledger HWI's code for it: HWI's Ledger client lets the
// app's deny error through as an unknown error (-13), where a Trezor refusal is -14.
func (s *Signer) ledgerRefusal(ctx context.Context, d device.Device, err error) error {
	if err == nil || !errors.Is(err, device.ErrUserRejected) {
		return err
	}
	if f, ferr := d.Features(ctx); ferr == nil && f.Family == device.FamilyLedger {
		return &codedError{code: CodeUnknownError, msg: err.Error()}
	}
	return err
}

// hwiScripts are the single-key script types getdescriptors reports, in HWI's order
// (list(AddressType): legacy, wit, sh_wit, tap).
var hwiScripts = []device.ScriptType{device.ScriptPKH, device.ScriptWPKH, device.ScriptSHWPKH, device.ScriptTR}

// hwiDescriptors is getdescriptors' answer, receive first as HWI prints it.
type hwiDescriptors struct {
	Receive  []string `json:"receive"`
	Internal []string `json:"internal"`
}

func (s *Signer) getDescriptors(ctx context.Context, d device.Device, account uint32) (*hwiDescriptors, error) {
	fp, err := d.Fingerprint(ctx)
	if err != nil {
		return nil, err
	}
	f, err := d.Features(ctx)
	if err != nil {
		return nil, err
	}
	out := &hwiDescriptors{Receive: []string{}, Internal: []string{}}
	for _, st := range hwiScripts {
		if st == device.ScriptTR && !f.Capabilities.Taproot {
			continue // as HWI: a device without taproot gets no tr() descriptors
		}
		purpose, _ := st.Purpose()
		origin := hdpath.Path{purpose + hdpath.Hardened, s.net.HDCoinType + hdpath.Hardened, account + hdpath.Hardened}
		xpub, err := d.XPub(ctx, device.XPubRequest{Path: origin, Network: s.net})
		if err != nil {
			return nil, fmt.Errorf("xpub at %s: %w", origin, err)
		}
		for i, branch := range []*[]string{&out.Receive, &out.Internal} {
			desc, err := rangedDescriptor(st, fp, origin, xpub, hdpath.Path{uint32(i)})
			if err != nil {
				return nil, err
			}
			*branch = append(*branch, desc)
		}
	}
	return out, nil
}
