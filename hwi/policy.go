package hwi

// BIP-388 wallet policies: registerdescriptor, displayaddress --registration, and the
// policy HWI builds for a Ledger multisig address. Shapes from bitcoin-core/HWI 4ae6006f:
// hwilib/descriptor.py (RegisteredDescriptor, get_bip388_template, get_bip388_key_info),
// hwilib/devices/ledger.py (register_descriptor, display_multisig_address,
// display_bip388_policy_address), hwilib/devices/ledger_bitcoin/wallet.py (MultisigWallet).
//
//	registration = base64("rdesc" ‖ compact_size(1) ‖ str(name) ‖ str(descriptor with checksum)
//	                      ‖ str(device type) ‖ str(device registration: a Ledger's 32-byte HMAC))
//	str(x)       = compact_size(len(x)) ‖ x

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"strings"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/hwbridge/hwbridge/chains/bitcoin"
	"github.com/hwbridge/hwbridge/device"
)

// PolicyDevice signs with registered BIP-388 wallet policies (a Ledger's Bitcoin app:
// REGISTER_WALLET, GET_WALLET_ADDRESS). device/ledger.Driver implements it, and so does
// cmd/hwbridge's daemon client, whose RegisterWallet answers from the registrations
// hwbridged keeps, so that a policy is reviewed on the device once.
type PolicyDevice interface {
	RegisterWallet(ctx context.Context, pol device.WalletPolicy, net *chaincfg.Params) ([32]byte, error)
	WalletAddress(ctx context.Context, pol device.WalletPolicy, hmac [32]byte, change, index uint32, display bool, net *chaincfg.Params) (string, error)
}

// registeredLookup is a PolicyDevice that knows registrations made earlier (the driver,
// for the policies it registered or was given).
type registeredLookup interface {
	Registered(pol device.WalletPolicy) ([32]byte, bool)
}

// register returns the policy's HMAC: a known registration, else a new one (the person
// reviews the policy on the device).
func (s *Signer) register(ctx context.Context, pd PolicyDevice, pol device.WalletPolicy) ([32]byte, error) {
	if r, ok := pd.(registeredLookup); ok {
		if h, ok := r.Registered(pol); ok {
			return h, nil
		}
	}
	return pd.RegisterWallet(device.WithAppSwitch(ctx), pol, s.net)
}

// policyAddress shows the policy's address at change/index; hmac nil means "register (or
// reuse the registration) first".
func (s *Signer) policyAddress(ctx context.Context, pd PolicyDevice, pol device.WalletPolicy, hmac *[32]byte, change, index uint32) (string, error) {
	var h [32]byte
	if hmac != nil {
		h = *hmac
	} else {
		var err error
		if h, err = s.register(ctx, pd, pol); err != nil {
			return "", err
		}
	}
	addr, err := pd.WalletAddress(device.WithAppSwitch(ctx), pol, h, change, index, true, s.net)
	if err != nil {
		return "", err
	}
	// The app prints testnet strings on regtest: re-encode for the chain asked.
	a, err := bitcoin.DecodeAddress(addr, printNet(s.net))
	if err != nil {
		return "", fmt.Errorf("%w: the device's address %q: %w", device.ErrProtocol, addr, err)
	}
	return reencode(a, s.net)
}

// bip388Placeholder is HWI's get_bip388_placeholder: @i, the steps below the key (' for
// hardened), /*; ranged keys only, multipath of two.
func bip388Placeholder(i int, k *bitcoin.Key) (string, error) {
	if !k.Wildcard {
		return "", errorf(CodeBadArgument, "BIP 388 requires all pubkeys to be ranged")
	}
	if len(k.Multipath) > 2 {
		return "", errorf(CodeBadArgument, "BIP 388 requires all multipath specifiers to be exactly 2 elements")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "@%d", i)
	for _, st := range k.Steps {
		b.WriteString("/" + stepString(st, "'"))
	}
	if k.Multipath != nil {
		fmt.Fprintf(&b, "/<%d;%d>", k.Multipath[0], k.Multipath[1])
	}
	b.WriteString("/*")
	return b.String(), nil
}

func stepString(st uint32, hard string) string {
	if st >= 1<<31 {
		return fmt.Sprintf("%d%s", st-1<<31, hard)
	}
	return fmt.Sprint(st)
}

// keyInfo is HWI's get_bip388_key_info: [fingerprint/origin with ']key as written.
func keyInfo(k *bitcoin.Key) string {
	var b strings.Builder
	if k.HasOrigin {
		fmt.Fprintf(&b, "[%08x", k.Fingerprint)
		for _, st := range k.OriginPath {
			b.WriteString("/" + stepString(st, "'"))
		}
		b.WriteString("]")
	}
	if k.XPub != nil {
		b.WriteString(k.XPub.String())
	} else {
		// A raw key: the bitcoin printer's form of the key alone.
		c := *k
		c.HasOrigin = false
		b.WriteString(c.String())
	}
	return b.String()
}

// wrap is the script template around a descriptor's key expressions.
func wrap(kind bitcoin.Kind, inner string) string {
	switch kind {
	case bitcoin.KindPKH:
		return "pkh(" + inner + ")"
	case bitcoin.KindSHWPKH:
		return "sh(wpkh(" + inner + "))"
	case bitcoin.KindWPKH:
		return "wpkh(" + inner + ")"
	case bitcoin.KindTR:
		return "tr(" + inner + ")"
	case bitcoin.KindSHMulti:
		return "sh(" + inner + ")"
	case bitcoin.KindSHWSH:
		return "sh(wsh(" + inner + "))"
	}
	return "wsh(" + inner + ")"
}

func multiFn(pd *bitcoin.Descriptor) string {
	if pd.Sorted {
		return "sortedmulti"
	}
	return "multi"
}

// bip388Policy is HWI's register_descriptor policy: get_bip388_template over the keys in
// order of appearance, get_bip388_key_info for each.
func bip388Policy(name string, pd *bitcoin.Descriptor) (device.WalletPolicy, error) {
	pol := device.WalletPolicy{Name: name}
	var ph []string
	for i, k := range pd.Keys {
		p, err := bip388Placeholder(i, k)
		if err != nil {
			return pol, err
		}
		ph = append(ph, p)
		pol.Keys = append(pol.Keys, keyInfo(k))
	}
	inner := ph[0]
	if _, single := singleKeyScript(pd.Kind); !single {
		inner = fmt.Sprintf("%s(%d,%s)", multiFn(pd), pd.Threshold, strings.Join(ph, ","))
	}
	pol.Template = wrap(pd.Kind, inner)
	return pol, nil
}

// multisigPolicy is the policy HWI's Ledger display_multisig_address registers:
// MultisigWallet("M of N Multisig", …) with /** placeholders and the keys as written.
func multisigPolicy(pd *bitcoin.Descriptor) (device.WalletPolicy, error) {
	pol := device.WalletPolicy{Name: fmt.Sprintf("%d of %d Multisig", pd.Threshold, len(pd.Keys))}
	var ph []string
	for i, k := range pd.Keys {
		if !k.HasOrigin || k.XPub == nil {
			return pol, errorf(CodeBadArgument, "Ledger Bitcoin app requires extended keys with origin info for multisig")
		}
		if len(k.OriginPath) > 4 {
			return pol, errorf(CodeBadArgument, "Ledger Bitcoin app requires extended keys with derivation length at most 4")
		}
		ph = append(ph, fmt.Sprintf("@%d/**", i))
		pol.Keys = append(pol.Keys, keyInfo(k))
	}
	pol.Template = wrap(pd.Kind, fmt.Sprintf("%s(%d,%s)", multiFn(pd), pd.Threshold, strings.Join(ph, ",")))
	return pol, nil
}

// Registration is HWI's RegisteredDescriptor.
type Registration struct {
	Name         string
	Descriptor   string // with its checksum
	DeviceType   string // "ledger"
	Registration []byte // a Ledger's HMAC
}

// registrationMagic starts a serialized registration.
const registrationMagic = "rdesc"

// maxRegistration bounds a serialized registration (a 15-key policy is a few kB).
const maxRegistration = 64 << 10

// Serialize is RegisteredDescriptor.serialize: base64 of the fields.
func (r Registration) Serialize() string {
	var b bytes.Buffer
	b.WriteString(registrationMagic)
	_ = wire.WriteVarInt(&b, 0, 1)
	for _, f := range [][]byte{[]byte(r.Name), []byte(r.Descriptor), []byte(r.DeviceType), r.Registration} {
		_ = wire.WriteVarBytes(&b, 0, f)
	}
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

// ParseRegistration is RegisteredDescriptor.deserialize (errors: HWI's BadArgumentError).
func ParseRegistration(s string) (Registration, error) {
	var r Registration
	s = strings.TrimSpace(s)
	if len(s) > maxRegistration*4/3+4 {
		return r, errorf(CodeBadArgument, "registration of %d characters is too long", len(s))
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return r, errorf(CodeBadArgument, "registration is not base64: %v", err)
	}
	rd := bytes.NewReader(raw)
	magic := make([]byte, len(registrationMagic))
	if _, err := io.ReadFull(rd, magic); err != nil || string(magic) != registrationMagic {
		return r, errorf(CodeBadArgument, "Policy has invalid magic bytes")
	}
	v, err := wire.ReadVarInt(rd, 0)
	if err != nil || v != 1 {
		return r, errorf(CodeBadArgument, "Serialized policy registration has unknown version number")
	}
	var fields [4][]byte
	for i := range fields {
		if fields[i], err = wire.ReadVarBytes(rd, 0, maxRegistration, "registration field"); err != nil {
			return r, errorf(CodeBadArgument, "registration: %v", err)
		}
	}
	if rd.Len() != 0 {
		return r, errorf(CodeBadArgument, "registration: %d bytes after the last field", rd.Len())
	}
	return Registration{Name: string(fields[0]), Descriptor: string(fields[1]), DeviceType: string(fields[2]), Registration: fields[3]}, nil
}

// registerDescriptor is HWI's registerdescriptor: {"registration": …}. A Trezor registers
// nothing (HWI: UnavailableActionError).
func (s *Signer) registerDescriptor(ctx context.Context, d device.Device, name, desc string) (map[string]string, error) {
	pd, err := parseDescriptor(desc)
	if err != nil {
		return nil, err
	}
	dev, ok := device.Inner(d).(PolicyDevice)
	if !ok {
		f, ferr := d.Features(ctx)
		if ferr == nil && f.Family == device.FamilyTrezor {
			return nil, errorf(CodeUnavailableAction, "The Trezor does not support registering descriptors")
		}
		return nil, errorf(CodeUnavailableAction, "this device does not register descriptors")
	}
	pol, err := bip388Policy(name, pd)
	if err != nil {
		return nil, err
	}
	hmac, err := s.register(ctx, dev, pol)
	if err != nil {
		return nil, err
	}
	r := Registration{Name: name, Descriptor: pd.String(), DeviceType: "ledger", Registration: hmac[:]}
	return map[string]string{"registration": r.Serialize()}, nil
}

// displayPolicy is displayaddress --registration R --index N [--multipath-index M]:
// {"address", "index", "multipath_index"} (HWI's displayaddress in policy mode).
func (s *Signer) displayPolicy(ctx context.Context, d device.Device, registration string, index, multipath *int) (map[string]any, error) {
	switch {
	case registration == "":
		return nil, errorf(CodeBadArgument, "Missing --registration")
	case index == nil:
		return nil, errorf(CodeBadArgument, "Missing --index")
	case *index < 0:
		return nil, errorf(CodeBadArgument, "Address index must be non-negative")
	case multipath != nil && *multipath < 0:
		return nil, errorf(CodeBadArgument, "Multipath index must be non-negative")
	}
	mp := 0
	if multipath != nil {
		mp = *multipath
	}
	r, err := ParseRegistration(registration)
	if err != nil {
		return nil, err
	}
	pd, err := parseDescriptor(r.Descriptor)
	if err != nil {
		return nil, err
	}
	dev, ok := device.Inner(d).(PolicyDevice)
	if !ok {
		return nil, errorf(CodeUnavailableAction, "this device does not show BIP-388 policy addresses")
	}
	if len(r.Registration) != 32 {
		return nil, errorf(CodeBadArgument, "registration of %d bytes (a Ledger's is a 32-byte HMAC)", len(r.Registration))
	}
	pol, err := bip388Policy(r.Name, pd)
	if err != nil {
		return nil, err
	}
	if mp >= pd.Branches() {
		return nil, errorf(CodeBadArgument, "multipath index %d out of range (the descriptor has %d branches)", mp, pd.Branches())
	}
	want, err := pd.Address(uint32(mp), uint32(*index), s.net)
	if err != nil {
		return nil, errorf(CodeBadArgument, "%v", err)
	}
	hmac := [32]byte(r.Registration)
	got, err := s.policyAddress(ctx, dev, pol, &hmac, uint32(mp), uint32(*index))
	if err != nil {
		return nil, err
	}
	if got != want.EncodeAddress() {
		return nil, errorf(CodeUnknownError, "the device showed %s but the descriptor gives %s: do not use this address", got, want)
	}
	return map[string]any{"address": got, "index": *index, "multipath_index": mp}, nil
}

// printNet is the network whose strings a Ledger app prints for net: the test app prints
// testnet strings on regtest and signet too.
func printNet(net *chaincfg.Params) *chaincfg.Params {
	if net.HDCoinType != 0 {
		return &chaincfg.TestNet3Params
	}
	return net
}

// reencode prints the address a pays to for net.
func reencode(a btcutil.Address, net *chaincfg.Params) (string, error) {
	script, err := txscript.PayToAddrScript(a)
	if err != nil {
		return "", err
	}
	_, addrs, _, err := txscript.ExtractPkScriptAddrs(script, net)
	if err != nil || len(addrs) != 1 {
		return "", fmt.Errorf("%w: no address for script %x", device.ErrProtocol, script)
	}
	return addrs[0].EncodeAddress(), nil
}
