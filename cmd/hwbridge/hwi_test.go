package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/base58"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/tyler-smith/go-bip39"

	"github.com/hwbridge/hwbridge/chains/bitcoin"
	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/ledger"
	"github.com/hwbridge/hwbridge/device/trezor"
	"github.com/hwbridge/hwbridge/emulator"
	ledgeremu "github.com/hwbridge/hwbridge/emulator/ledger"
	trezoremu "github.com/hwbridge/hwbridge/emulator/trezor"
	"github.com/hwbridge/hwbridge/hwi"
	"github.com/hwbridge/hwbridge/internal/devchain/btcregtest"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/transport"
)

const testMnemonic = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"

// keyDevice answers the read-only half of device.Device from a BIP-32 seed, to test the HWI
// plumbing (descriptors, matching, JSON) apart from any driver. Signing goes through the
// emulator in the emulator tests.
type keyDevice struct {
	master *hdkeychain.ExtendedKey
	model  string
	shown  []string // addresses "displayed"
	// addrOverride, when set, is what Address answers (a lying device).
	addrOverride string
}

func newKeyDevice(t *testing.T) *keyDevice {
	t.Helper()
	seed := bip39.NewSeed(testMnemonic, "")
	m, err := hdkeychain.NewMaster(seed, &chaincfg.MainNetParams)
	if err != nil {
		t.Fatal(err)
	}
	return &keyDevice{master: m, model: "Test"}
}

func (k *keyDevice) derive(p hdpath.Path) (*hdkeychain.ExtendedKey, error) {
	key := k.master
	for _, c := range p {
		var err error
		if key, err = key.Derive(c); err != nil {
			return nil, err
		}
	}
	return key.Neuter()
}

func (k *keyDevice) Features(context.Context) (device.Features, error) {
	return device.Features{Family: device.FamilyTrezor, Model: k.model, Initialized: true, Unlocked: true, Emulator: true,
		Capabilities: device.Capabilities{Taproot: true}}, nil
}

func (k *keyDevice) Fingerprint(context.Context) (device.Fingerprint, error) {
	pub, _ := k.master.ECPubKey()
	h := btcutil.Hash160(pub.SerializeCompressed())
	return device.Fingerprint(uint32(h[0])<<24 | uint32(h[1])<<16 | uint32(h[2])<<8 | uint32(h[3])), nil
}

func (k *keyDevice) XPub(_ context.Context, req device.XPubRequest) (string, error) {
	key, err := k.derive(req.Path)
	if err != nil {
		return "", err
	}
	net := req.Network
	if net == nil {
		net = &chaincfg.MainNetParams
	}
	key.SetNet(net)
	return key.String(), nil
}

func (k *keyDevice) Address(ctx context.Context, req device.AddressRequest) (string, error) {
	key, err := k.derive(req.Path)
	if err != nil {
		return "", err
	}
	pub, err := key.ECPubKey()
	if err != nil {
		return "", err
	}
	kind, err := bitcoin.KindOf(req.Script)
	if err != nil {
		return "", err
	}
	a, err := (&bitcoin.Descriptor{Kind: kind, Keys: []*bitcoin.Key{{Pub: pub}}}).Address(0, 0, req.Network)
	if err != nil {
		return "", err
	}
	addr := a.EncodeAddress()
	if k.addrOverride != "" {
		addr = k.addrOverride
	}
	if req.Display {
		k.shown = append(k.shown, addr)
	}
	return addr, err
}

// SignPSBT signs P2WPKH and P2TR key-path inputs whose derivations carry this seed's
// fingerprint, as a wallet does.
func (k *keyDevice) SignPSBT(ctx context.Context, p *psbt.Packet, _ *chaincfg.Params) error {
	fp, _ := k.Fingerprint(ctx)
	prev := txscript.NewMultiPrevOutFetcher(nil)
	for i, in := range p.Inputs {
		if in.WitnessUtxo == nil {
			return fmt.Errorf("input %d has no witness utxo: %w", i, device.ErrInvalidInput)
		}
		prev.AddPrevOut(p.UnsignedTx.TxIn[i].PreviousOutPoint, in.WitnessUtxo)
	}
	hashes := txscript.NewTxSigHashes(p.UnsignedTx, prev)
	priv := func(path []uint32) (*btcec.PrivateKey, error) {
		key := k.master
		for _, c := range path {
			var err error
			if key, err = key.Derive(c); err != nil {
				return nil, err
			}
		}
		return key.ECPrivKey()
	}
	for i := range p.Inputs {
		in := &p.Inputs[i]
		utxo := in.WitnessUtxo
		for _, d := range in.Bip32Derivation {
			if device.FingerprintFromPSBT(d.MasterKeyFingerprint) != fp {
				continue
			}
			key, err := priv(d.Bip32Path)
			if err != nil {
				return err
			}
			sig, err := txscript.RawTxInWitnessSignature(p.UnsignedTx, hashes, i, utxo.Value, utxo.PkScript, txscript.SigHashAll, key)
			if err != nil {
				return err
			}
			in.PartialSigs = append(in.PartialSigs, &psbt.PartialSig{PubKey: d.PubKey, Signature: sig})
		}
		for _, d := range in.TaprootBip32Derivation {
			if device.FingerprintFromPSBT(d.MasterKeyFingerprint) != fp {
				continue
			}
			key, err := priv(d.Bip32Path)
			if err != nil {
				return err
			}
			sig, err := txscript.RawTxInTaprootSignature(p.UnsignedTx, hashes, i, utxo.Value, utxo.PkScript, nil, txscript.SigHashDefault, key)
			if err != nil {
				return err
			}
			in.TaprootKeySpendSig = sig
		}
	}
	return nil
}

func (k *keyDevice) SignEthTx(context.Context, hdpath.Path, *types.Transaction, *big.Int) (*types.Transaction, error) {
	return nil, fmt.Errorf("key device: %w", errors.ErrUnsupported)
}

func (k *keyDevice) SignMessage(context.Context, device.MessageRequest) (device.MessageSignature, error) {
	return device.MessageSignature{}, fmt.Errorf("key device: %w", errors.ErrUnsupported)
}

func (k *keyDevice) SignTypedHash(context.Context, hdpath.Path, [32]byte, []byte) ([]byte, error) {
	return nil, fmt.Errorf("key device: %w", errors.ErrUnsupported)
}

func (k *keyDevice) Close() error { return nil }

// hwiRun runs one HWI command line against devices by path and returns stdout's JSON
// line, decoded, and run's error.
func hwiRun(t *testing.T, devs map[string]device.Device, stdin string, args ...string) (any, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	s := &hwi.Signer{
		Out:  &out,
		Warn: &errOut,
		Candidates: func(context.Context) ([]hwi.Candidate, error) {
			var cands []hwi.Candidate
			for p := range devs {
				cands = append(cands, hwi.Candidate{Path: p})
			}
			slices.SortFunc(cands, func(a, b hwi.Candidate) int { return strings.Compare(a.Path, b.Path) })
			return cands, nil
		},
		Open: func(_ context.Context, path string) (device.Device, error) {
			d, ok := devs[path]
			if !ok {
				return nil, fmt.Errorf("nothing at %s: %w", path, device.ErrNoDevice)
			}
			return d, nil
		},
	}
	err := hwiUsage(s.Run(t.Context(), args, strings.NewReader(stdin)))
	line, rest, _ := strings.Cut(out.String(), "\n")
	if rest != "" {
		t.Fatalf("more than one line on stdout: %q", out.String())
	}
	var v any
	if err := json.Unmarshal([]byte(line), &v); err != nil {
		t.Fatalf("stdout %q is not JSON: %v", out.String(), err)
	}
	return v, err
}

func TestHWIUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code float64
		exit bool // usage error (exit 2)
	}{
		{"no command", []string{"--chain", "regtest"}, hwi.CodeMissingArguments, true},
		{"bad chain", []string{"--chain", "mainnet", "enumerate"}, hwi.CodeMissingArguments, true},
		{"unknown command", []string{"frobnicate"}, hwi.CodeMissingArguments, true},
		{"signtx without psbt", []string{"--fingerprint", "73c5da0a", "signtx"}, hwi.CodeMissingArguments, true},
		{"displayaddress without desc", []string{"--fingerprint", "73c5da0a", "displayaddress"}, hwi.CodeMissingArguments, true},
		{"help", []string{"--help"}, hwi.CodeHelpText, false},
		{"no device named", []string{"getdescriptors"}, hwi.CodeNoDeviceType, false},
		{"unknown fingerprint", []string{"--fingerprint", "00000000", "getdescriptors"}, hwi.CodeDeviceConnError, false},
		{"bad psbt", []string{"--fingerprint", "73c5da0a", "signtx", "bm90IGEgcHNidA=="}, hwi.CodeInvalidTx, false},
	}
	devs := map[string]device.Device{"udp:127.0.0.1:1": newKeyDevice(t)}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := hwiRun(t, devs, "", tc.args...)
			m, _ := v.(map[string]any)
			if m["code"] != tc.code || m["error"] == "" {
				t.Fatalf("reply %v, want code %v", v, tc.code)
			}
			var ue *usageError
			if errors.As(err, &ue) != tc.exit {
				t.Fatalf("run error %v, usage error wanted: %v", err, tc.exit)
			}
		})
	}
}

func TestHWIEnumerate(t *testing.T) {
	devs := map[string]device.Device{"udp:127.0.0.1:21324": newKeyDevice(t)}
	v, err := hwiRun(t, devs, "", "--chain", "regtest", "enumerate")
	if err != nil {
		t.Fatal(err)
	}
	list, ok := v.([]any)
	if !ok || len(list) != 1 {
		t.Fatalf("enumerate: %v", v)
	}
	e := list[0].(map[string]any)
	want := map[string]any{
		"type": "trezor", "model": "trezor_test_simulator", "label": nil, "path": "udp:127.0.0.1:21324",
		"fingerprint": "73c5da0a", "needs_pin_sent": false, "needs_passphrase_sent": false,
	}
	if fmt.Sprint(e) != fmt.Sprint(want) {
		t.Fatalf("enumerate entry\n got %v\nwant %v", e, want)
	}
}

func TestHWIGetDescriptors(t *testing.T) {
	kd := newKeyDevice(t)
	devs := map[string]device.Device{"udp:127.0.0.1:21324": kd}
	for _, chain := range []string{"main", "test", "regtest"} {
		t.Run(chain, func(t *testing.T) {
			v, err := hwiRun(t, devs, "", "--fingerprint", "73c5da0a", "--chain", chain, "getdescriptors", "--account", "0")
			if err != nil {
				t.Fatal(err)
			}
			m := v.(map[string]any)
			coin := "1h"
			prefix := "tpub"
			if chain == "main" {
				coin, prefix = "0h", "xpub"
			}
			for branch, idx := range map[string]string{"receive": "0", "internal": "1"} {
				list := m[branch].([]any)
				if len(list) != 4 {
					t.Fatalf("%s: %d descriptors, want 4", branch, len(list))
				}
				for i, w := range []string{"pkh(", "wpkh(", "sh(wpkh(", "tr("} { // HWI's order, list(AddressType)
					desc := list[i].(string)
					purpose := map[string]string{"pkh(": "44h", "sh(wpkh(": "49h", "wpkh(": "84h", "tr(": "86h"}[w]
					if !strings.HasPrefix(desc, w+"[73c5da0a/"+purpose+"/"+coin+"/0h]"+prefix) || !strings.Contains(desc, "/"+idx+"/*)") {
						t.Errorf("%s[%d] = %s", branch, i, desc)
					}
					body, sum, _ := strings.Cut(desc, "#")
					if want, _ := bitcoin.DescriptorChecksum(body); want != sum {
						t.Errorf("%s: checksum %s, want %s", desc, sum, want)
					}
					if _, err := bitcoin.ParseDescriptor(desc); err != nil {
						t.Errorf("%s does not parse back: %v", desc, err)
					}
				}
			}
		})
	}
	// BIP-84's test vector: the account key m/84'/0'/0' of the test mnemonic, published as a
	// zpub; the descriptor carries the same key with xpub version bytes.
	const bip84zpub = "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs"
	raw, ver, err := base58.CheckDecode(bip84zpub)
	if err != nil {
		t.Fatal(err)
	}
	full := append([]byte{ver}, raw...)
	copy(full[:4], chaincfg.MainNetParams.HDPublicKeyID[:])
	wantXPub := base58.CheckEncode(full[1:], full[0])
	v, _ := hwiRun(t, devs, "", "--fingerprint", "73c5da0a", "getdescriptors")
	wpkh := v.(map[string]any)["receive"].([]any)[1].(string)
	if !strings.Contains(wpkh, "]"+wantXPub+"/0/*") {
		t.Errorf("wpkh receive %s is not BIP-84's account key %s", wpkh, wantXPub)
	}
}

func TestHWIDisplayAddress(t *testing.T) {
	kd := newKeyDevice(t)
	devs := map[string]device.Device{"udp:127.0.0.1:21324": kd}
	v, _ := hwiRun(t, devs, "", "--fingerprint", "73c5da0a", "--chain", "regtest", "getdescriptors")
	receive := v.(map[string]any)["receive"].([]any)
	wpkhDesc := receive[1].(string)
	xpub := wpkhDesc[strings.Index(wpkhDesc, "]")+1 : strings.Index(wpkhDesc, "/0/*")]
	// Core's form: the address's own key, hex, with the full origin.
	k, _ := kd.derive(hdpath.Path{84 + hdpath.Hardened, 1 + hdpath.Hardened, hdpath.Hardened, 0, 0})
	pub, _ := k.ECPubKey()
	hexDesc, _ := addChecksum(fmt.Sprintf("wpkh([73c5da0a/84h/1h/0h/0/0]%x)", pub.SerializeCompressed()))
	trDesc, _ := addChecksum(fmt.Sprintf("tr([73c5da0a/86h/1h/0h/0/0]%x)", mustTRKey(t, kd)))
	otherFP, _ := addChecksum(strings.Replace(strings.Split(wpkhDesc, "#")[0], "73c5da0a", "12345678", 1))
	otherKey, _ := addChecksum(fmt.Sprintf("wpkh([73c5da0a/84h/1h/0h/0/0]%x)", mustPub(t, kd, hdpath.Path{84 + hdpath.Hardened, 1 + hdpath.Hardened, hdpath.Hardened, 0, 1})))
	badSum := strings.Split(wpkhDesc, "#")[0] + "#qqqqqqqq"
	tests := []struct {
		name, desc string
		addr       string // wanted address, or "" for an error
		code       float64
	}{
		{"xpub range", wpkhDesc, "", 0},
		{"core hex key", hexDesc, "", 0},
		{"taproot", trDesc, "", 0},
		{"other fingerprint", otherFP, "", hwi.CodeBadArgument},
		{"other key", otherKey, "", hwi.CodeBadArgument},
		{"bad checksum", badSum, "", hwi.CodeUnknownError}, // HWI: parse_descriptor's ValueError
		{"xpub only", "wpkh(" + xpub + "/0/*)", "", hwi.CodeBadArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := hwiRun(t, devs, "", "--fingerprint", "73c5da0a", "--chain", "regtest", "displayaddress", "--desc", tc.desc)
			if err != nil {
				t.Fatal(err)
			}
			m := v.(map[string]any)
			if tc.code != 0 {
				if m["code"] != tc.code {
					t.Fatalf("reply %v, want code %v", m, tc.code)
				}
				return
			}
			addr, _ := m["address"].(string)
			if addr == "" || (tc.addr != "" && addr != tc.addr) {
				t.Fatalf("reply %v, want address %s", m, tc.addr)
			}
			if kd.shown[len(kd.shown)-1] != addr {
				t.Fatalf("device showed %v", kd.shown)
			}
		})
	}
	// The xpub form (index 0 for *) and Core's raw-key form name the same address.
	if len(kd.shown) < 2 || kd.shown[0] != kd.shown[1] || !strings.HasPrefix(kd.shown[0], "bcrt1q") {
		t.Fatalf("shown %v", kd.shown)
	}
	// A device that shows another address than the descriptor's is caught.
	kd.addrOverride = "bcrt1qxyz"
	defer func() { kd.addrOverride = "" }()
	v, _ = hwiRun(t, devs, "", "--fingerprint", "73c5da0a", "--chain", "regtest", "displayaddress", "--desc", hexDesc)
	if v.(map[string]any)["code"] != float64(hwi.CodeUnknownError) {
		t.Fatalf("lying device: %v", v)
	}
}

func mustPub(t *testing.T, kd *keyDevice, p hdpath.Path) []byte {
	t.Helper()
	k, err := kd.derive(p)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := k.ECPubKey()
	if err != nil {
		t.Fatal(err)
	}
	return pub.SerializeCompressed()
}

func mustTRKey(t *testing.T, kd *keyDevice) []byte {
	return mustPub(t, kd, hdpath.Path{86 + hdpath.Hardened, 1 + hdpath.Hardened, hdpath.Hardened, 0, 0})[1:]
}

func TestHWIStdin(t *testing.T) {
	devs := map[string]device.Device{"udp:127.0.0.1:21324": newKeyDevice(t)}
	// Core: `hwbridge hwi --stdin --fingerprint FP --chain regtest` with "signtx <psbt>" on stdin.
	v, err := hwiRun(t, devs, "getdescriptors --account 1\n\nignored\n", "--stdin", "--fingerprint", "73c5da0a", "--chain", "regtest")
	if err != nil {
		t.Fatal(err)
	}
	if d := v.(map[string]any)["receive"].([]any)[0].(string); !strings.Contains(d, "/44h/1h/1h]") {
		t.Fatalf("account 1 over stdin: %s", d)
	}
}

// TestHWIThroughCLI runs the subcommand as Bitcoin Core does, through the CLI's run: with
// no wallet attached and none named, enumerate answers an empty list and exits 0, and a
// command for a fingerprint nobody has answers HWI's error, still exiting 0.
func TestHWIThroughCLI(t *testing.T) {
	t.Setenv("HWBRIDGE_DEVICE", "")
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	tests := []struct {
		args []string
		want string
		exit int
	}{
		{[]string{"hwi", "--chain", "regtest", "enumerate"}, "[]\n", exitOK},
		{[]string{"hwi", "--fingerprint", "73c5da0a", "--chain", "regtest", "getdescriptors", "--account", "0"}, `"code":-3`, exitOK},
		{[]string{"hwi", "--chain", "nonet", "enumerate"}, `"code":-2`, exitUsage},
	}
	for _, tc := range tests {
		var out, errOut bytes.Buffer
		code := run(t.Context(), tc.args, &out, &errOut)
		if code != tc.exit || !strings.Contains(out.String(), tc.want) || strings.Count(out.String(), "\n") != 1 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d and %q", tc.args, code, out.String(), errOut.String(), tc.exit, tc.want)
		}
	}
}

// TestHWISignTxFinalizes plays Bitcoin Core's signtx exchange (--stdin, "signtx <psbt>")
// against a wallet holding the test seed, behind device.Verify: the PSBT it answers must
// finalize and be accepted and mined by the embedded regtest chain (full script checks).
func TestHWISignTxFinalizes(t *testing.T) {
	hwiSignTxScenario(t, device.Verify(newKeyDevice(t)))
}

// TestHWIEmulator runs the HWI contract against the Trezor-class emulator through the
// Trezor driver (both in process): enumerate, getdescriptors, displayaddress and a signtx
// whose PSBT finalizes and is mined.
func TestHWIEmulator(t *testing.T) {
	tz, err := trezoremu.New(trezoremu.Options{Label: "hwi test"})
	if err != nil {
		t.Fatal(err)
	}
	defer tz.Close()
	drv := device.Verify(trezor.New(tz.Pipe(), trezor.Options{Emulator: true}))
	defer drv.Close()
	devs := map[string]device.Device{"udp:127.0.0.1:21324": drv}
	v, err := hwiRun(t, devs, "", "--chain", "regtest", "enumerate")
	if err != nil {
		t.Fatal(err)
	}
	e := v.([]any)[0].(map[string]any)
	if e["type"] != "trezor" || e["fingerprint"] != "73c5da0a" || e["label"] != "hwi test" || !strings.HasSuffix(e["model"].(string), "_simulator") {
		t.Fatalf("enumerate: %v", v)
	}
	v, err = hwiRun(t, devs, "", "--fingerprint", "73c5da0a", "--chain", "regtest", "getdescriptors", "--account", "0")
	if err != nil {
		t.Fatal(err)
	}
	kdv, _ := hwiRun(t, map[string]device.Device{"x:1": newKeyDevice(t)}, "", "--fingerprint", "73c5da0a", "--chain", "regtest", "getdescriptors", "--account", "0")
	if fmt.Sprint(v) != fmt.Sprint(kdv) {
		t.Fatalf("emulator descriptors\n%v\ndiffer from the seed's\n%v", v, kdv)
	}
	desc := v.(map[string]any)["receive"].([]any)[3].(string) // tr(...)
	shown := len(tz.Approver().Transcript())
	v, err = hwiRun(t, devs, "", "--fingerprint", "73c5da0a", "--chain", "regtest", "displayaddress", "--desc", desc)
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := v.(map[string]any)["address"].(string)
	tr := tz.Approver().Transcript()
	if !strings.HasPrefix(addr, "bcrt1p") || len(tr) != shown+1 || !strings.Contains(strings.Join(tr[shown].Lines, " "), addr) {
		t.Fatalf("displayaddress %v; screens %v", v, tr[shown:])
	}
	hwiSignTxScenario(t, drv)
}

// TestHWILedgerEmulator: the same signtx exchange with the Ledger-class emulator (Bitcoin
// Test app, wallet policies, SIGN_PSBT) through the Ledger driver.
func TestHWILedgerEmulator(t *testing.T) {
	lg, err := ledgeremu.New(ledgeremu.Config{App: ledgeremu.AppBitcoinTest})
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	drv := device.Verify(ledger.New(transport.NewSpeculosExchanger(lg.Pipe()), ledger.Options{Emulator: true}))
	defer drv.Close()
	devs := map[string]device.Device{"tcp:127.0.0.1:9999": drv}
	v, err := hwiRun(t, devs, "", "--chain", "regtest", "enumerate")
	if err != nil {
		t.Fatal(err)
	}
	if e := v.([]any)[0].(map[string]any); e["type"] != "ledger" || e["fingerprint"] != "73c5da0a" {
		t.Fatalf("enumerate: %v", v)
	}
	hwiSignTxScenario(t, drv)
}

// hwiSignTxScenario: coinbases pay the test seed's first P2WPKH and P2TR addresses on an
// embedded regtest chain; a PSBT spending both goes through "signtx" as Core sends it, and
// the answer must finalize and be mined.
func hwiSignTxScenario(t *testing.T, dev device.Device) {
	ctx := t.Context()
	kd := newKeyDevice(t)
	devs := map[string]device.Device{"udp:127.0.0.1:21324": dev}
	chain, err := btcregtest.New(btcregtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer chain.Close()
	net := &chaincfg.RegressionNetParams

	type owned struct {
		path   hdpath.Path
		pub    []byte
		script []byte
		tr     bool
	}
	var keys []owned
	for _, tc := range []struct {
		purpose uint32
		tr      bool
	}{{84, false}, {86, true}} {
		path := hdpath.Path{tc.purpose + hdpath.Hardened, 1 + hdpath.Hardened, hdpath.Hardened, 0, 0}
		pub := mustPub(t, kd, path)
		kind := "wpkh"
		if tc.tr {
			kind = "tr"
		}
		d, err := bitcoin.ParseDescriptor(fmt.Sprintf("%s(%x)", kind, pub))
		if err != nil {
			t.Fatal(err)
		}
		sc, err := d.Derive(0, 0)
		if err != nil {
			t.Fatal(err)
		}
		script := sc.PkScript
		keys = append(keys, owned{path, pub, script, tc.tr})
	}
	// Coinbases at heights 1 and 2 pay the wallet; mine until segwit/taproot are active.
	for _, k := range keys {
		a, _ := txscript.ParsePkScript(k.script)
		addr, _ := a.Address(net)
		if _, err := chain.Mine(ctx, 1, addr); err != nil {
			t.Fatal(err)
		}
	}
	faucet, _ := faucetAddress(net)
	if err := chain.MineTo(ctx, btcregtest.SegwitHeight, faucet); err != nil {
		t.Fatal(err)
	}
	node, err := chain.Serve(btcregtest.ServerOptions{MiningAddr: faucet})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close(ctx)
	c, err := btcClient(node.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()

	tx := wire.NewMsgTx(2)
	p := &psbt.Packet{UnsignedTx: tx}
	for h, k := range keys {
		hash, err := c.GetBlockHash(int64(h + 1))
		if err != nil {
			t.Fatal(err)
		}
		blk, err := c.GetBlock(hash)
		if err != nil {
			t.Fatal(err)
		}
		cb := blk.Transactions[0]
		tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: cb.TxHash(), Index: 0}, nil, nil))
		// Core adds the whole previous transaction too; a Trezor needs it for every input
		// of a transaction that is not all-taproot.
		in := psbt.PInput{WitnessUtxo: cb.TxOut[0], NonWitnessUtxo: cb}
		fp, _ := kd.Fingerprint(ctx)
		if k.tr {
			in.TaprootBip32Derivation = []*psbt.TaprootBip32Derivation{{XOnlyPubKey: k.pub[1:], MasterKeyFingerprint: fp.PSBT(), Bip32Path: k.path}}
			in.TaprootInternalKey = k.pub[1:]
		} else {
			in.Bip32Derivation = []*psbt.Bip32Derivation{{PubKey: k.pub, MasterKeyFingerprint: fp.PSBT(), Bip32Path: k.path}}
			in.SighashType = txscript.SigHashAll
		}
		p.Inputs = append(p.Inputs, in)
	}
	to, _ := demoRecipient(net)
	toScript, _ := txscript.PayToAddrScript(to)
	tx.AddTxOut(wire.NewTxOut(50e8+50e8-10_000, toScript))
	p.Outputs = make([]psbt.POutput, 1)
	b64, err := p.B64Encode()
	if err != nil {
		t.Fatal(err)
	}

	v, err := hwiRun(t, devs, "signtx "+b64+"\n", "--stdin", "--fingerprint", "73c5da0a", "--chain", "regtest")
	if err != nil {
		t.Fatal(err)
	}
	m := v.(map[string]any)
	if m["signed"] != true {
		t.Fatalf("signtx: %v", m)
	}
	signed, err := psbt.NewFromRawBytes(strings.NewReader(m["psbt"].(string)), true)
	if err != nil {
		t.Fatal(err)
	}
	if err := psbt.MaybeFinalizeAll(signed); err != nil {
		t.Fatalf("finalize: %v", err)
	}
	final, err := psbt.Extract(signed)
	if err != nil {
		t.Fatal(err)
	}
	txid, err := c.SendRawTransaction(final, false)
	if err != nil {
		t.Fatalf("the regtest mempool refused the signed transaction: %v", err)
	}
	if _, err := chain.Mine(ctx, 1, faucet); err != nil {
		t.Fatal(err)
	}
	res, err := c.GetRawTransactionVerbose(txid)
	if err != nil || res.Confirmations != 1 {
		t.Fatalf("confirmations %v %v", res, err)
	}

	// A PSBT with nothing for this wallet comes back unchanged with "signed": false, or is
	// refused as a bad argument (a Trezor signs only transactions that are all its own).
	for i := range p.Inputs {
		for _, d := range p.Inputs[i].Bip32Derivation {
			d.MasterKeyFingerprint = 0x01020304
		}
		for _, d := range p.Inputs[i].TaprootBip32Derivation {
			d.MasterKeyFingerprint = 0x01020304
		}
	}
	other, _ := p.B64Encode()
	v, err = hwiRun(t, devs, "signtx "+other+"\n", "--stdin", "--fingerprint", "73c5da0a", "--chain", "regtest")
	m = v.(map[string]any)
	unsigned := m["signed"] == false && m["psbt"] == other
	refused := m["code"] == float64(hwi.CodeBadArgument)
	if err != nil || !(unsigned || refused) {
		t.Fatalf("foreign psbt: %v %v", v, err)
	}
}

// TestHWIThroughDaemon: with hwbridged running, `hwbridge hwi` uses the daemon's devices (it
// holds them; Bitcoin Core's -signer must not need --direct): enumerate lists the daemon's
// emulator with its fingerprint, getdescriptors equals the direct answer, and signtx goes
// through the socket and finalizes.
func TestHWIThroughDaemon(t *testing.T) {
	c := startInProcessDaemon(t, emulator.PolicyAuto)
	env := map[string]string{"HWBRIDGE_DATA_DIR": filepath.Join(filepath.Dir(c.Socket), "data")}
	hwi := func(args ...string) any {
		t.Helper()
		r := cli(t, "", env, append([]string{"--socket", c.Socket, "hwi", "--chain", "regtest"}, args...)...)
		var v any
		if err := json.Unmarshal([]byte(r.stdout), &v); r.code != exitOK || err != nil {
			t.Fatalf("hwi %v: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
		}
		return v
	}
	v := hwi("enumerate")
	devs, _ := v.([]any)
	if len(devs) != 1 || devs[0].(map[string]any)["fingerprint"] != "73c5da0a" || devs[0].(map[string]any)["path"] != "udp:127.0.0.1:21324" {
		t.Fatalf("enumerate through the daemon: %v", v)
	}
	got := hwi("--fingerprint", "73c5da0a", "getdescriptors", "--account", "0")
	want, err := hwiRun(t, map[string]device.Device{"x:1": newKeyDevice(t)}, "", "--fingerprint", "73c5da0a", "--chain", "regtest", "getdescriptors", "--account", "0")
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("descriptors through the daemon\n%v\nwant\n%v (%v)", got, want, err)
	}
	// The other read-only commands answer through the daemon as they do directly.
	for _, args := range [][]string{
		{"getmasterxpub", "--addr-type", "tap"},
		{"getxpub", "m/84h/1h/0h/0/5"},
		{"getkeypool", "--all", "0", "20"},
	} {
		full := append([]string{"--fingerprint", "73c5da0a"}, args...)
		got := hwi(full...)
		want, err := hwiRun(t, map[string]device.Device{"x:1": newKeyDevice(t)}, "", append([]string{"--chain", "regtest"}, full...)...)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%v through the daemon\n%v\nwant\n%v (%v)", args, got, want, err)
		}
	}
	sig := hwi("--fingerprint", "73c5da0a", "signmessage", "through the daemon", "m/44h/1h/0h/0/0")
	if b64, _ := sig.(map[string]any)["signature"].(string); len(b64) != 88 {
		t.Fatalf("signmessage through the daemon: %v", sig)
	}
	// A daemon that is gone is an HWI error, not a silent switch to direct mode.
	r := cli(t, "", env, "--socket", filepath.Join(t.TempDir(), "none.sock"), "hwi", "enumerate")
	if !strings.Contains(r.stdout+r.stderr, "no hwbridged socket") {
		t.Fatalf("missing daemon: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	hwiSignTxScenario(t, &remoteDevice{c: c})
}

// addChecksum appends a descriptor's BIP-380 checksum (chains/bitcoin).
func addChecksum(desc string) (string, error) {
	sum, err := bitcoin.DescriptorChecksum(desc)
	if err != nil {
		return "", err
	}
	return desc + "#" + sum, nil
}
