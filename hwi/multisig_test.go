package hwi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/tyler-smith/go-bip39"

	"github.com/hwbridge/hwbridge/chains/bitcoin"
	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/ledger"
	"github.com/hwbridge/hwbridge/device/trezor"
	"github.com/hwbridge/hwbridge/emulator"
	ledgeremu "github.com/hwbridge/hwbridge/emulator/ledger"
	trezoremu "github.com/hwbridge/hwbridge/emulator/trezor"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/transport"
)

const (
	abandon     = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
	legalWinner = "legal winner thank year wave sausage worth useful legal winner thank yellow"
	zoo         = "zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo wrong"
)

// emulated is one in-process emulator behind its driver (wrapped by device.Verify, as the
// CLI opens it), at HWI's emulator address.
type emulated struct {
	path     string
	dev      device.Device
	approver *emulator.Approver
}

func newEmulated(t *testing.T, family string) emulated {
	t.Helper()
	approver := emulator.NewApprover(emulator.PolicyAuto)
	switch family {
	case "trezor":
		tz, err := trezoremu.New(trezoremu.Options{Model: trezoremu.ModelT, Mnemonic: abandon, Approver: approver})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tz.Close() })
		drv := device.Verify(trezor.New(tz.Pipe(), trezor.Options{Emulator: true}))
		t.Cleanup(func() { drv.Close() })
		return emulated{TrezorEmulatorPath, drv, approver}
	case "ledger":
		lg, err := ledgeremu.New(ledgeremu.Config{Mnemonic: abandon, App: ledgeremu.AppBitcoinTest, Approver: approver})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { lg.Close() })
		drv := device.Verify(ledger.New(transport.NewSpeculosExchanger(lg.Pipe()), ledger.Options{Emulator: true}))
		t.Cleanup(func() { drv.Close() })
		return emulated{LedgerEmulatorPath, drv, approver}
	}
	t.Fatalf("family %q", family)
	return emulated{}
}

// runHWI runs one command line against dev at path and decodes the JSON line.
func runHWI(t *testing.T, path string, dev device.Device, args ...string) map[string]any {
	t.Helper()
	var out, warn bytes.Buffer
	s := &Signer{
		Out: &out, Warn: &warn,
		Candidates: func(context.Context) ([]Candidate, error) { return []Candidate{{Path: path}}, nil },
		Open: func(_ context.Context, p string) (device.Device, error) {
			if p != path {
				return nil, fmt.Errorf("nothing at %s: %w", p, device.ErrNoDevice)
			}
			return dev, nil
		},
	}
	if err := s.Run(t.Context(), append([]string{"-d", path}, args...), nil); err != nil {
		t.Fatalf("%v: %v (stderr %q)", args, err, warn.String())
	}
	var v map[string]any
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatalf("%v: stdout %q: %v", args, out.String(), err)
	}
	return v
}

// accountKey is a seed's extended public key at path, from the seed alone (not the device).
func accountKey(t *testing.T, mnemonic string, path hdpath.Path, net *chaincfg.Params) (fp string, xpub *hdkeychain.ExtendedKey) {
	t.Helper()
	master, err := hdkeychain.NewMaster(bip39.NewSeed(mnemonic, ""), net)
	if err != nil {
		t.Fatal(err)
	}
	mpub, _ := master.ECPubKey()
	k := master
	for _, s := range path {
		if k, err = k.Derive(s); err != nil {
			t.Fatal(err)
		}
	}
	if xpub, err = k.Neuter(); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", btcutil.Hash160(mpub.SerializeCompressed())[:4]), xpub
}

// independentMultisigAddress builds the address with btcd's txscript alone: each key's
// child at steps, sorted when asked, OP_m keys OP_n OP_CHECKMULTISIG, wrapped.
func independentMultisigAddress(t *testing.T, wrap string, m int, sorted bool, keys []*hdkeychain.ExtendedKey, steps []uint32, net *chaincfg.Params) string {
	t.Helper()
	var pubs []*btcutil.AddressPubKey
	for _, k := range keys {
		c := k
		for _, s := range steps {
			var err error
			if c, err = c.Derive(s); err != nil {
				t.Fatal(err)
			}
		}
		pub, _ := c.ECPubKey()
		a, err := btcutil.NewAddressPubKey(pub.SerializeCompressed(), net)
		if err != nil {
			t.Fatal(err)
		}
		pubs = append(pubs, a)
	}
	if sorted {
		slices.SortFunc(pubs, func(a, b *btcutil.AddressPubKey) int { return bytes.Compare(a.ScriptAddress(), b.ScriptAddress()) })
	}
	ms, err := txscript.MultiSigScript(pubs, m)
	if err != nil {
		t.Fatal(err)
	}
	var a btcutil.Address
	switch wrap {
	case "sh":
		a, err = btcutil.NewAddressScriptHash(ms, net)
	case "wsh":
		h := sha256.Sum256(ms)
		a, err = btcutil.NewAddressWitnessScriptHash(h[:], net)
	case "sh-wsh":
		h := sha256.Sum256(ms)
		var redeem []byte
		redeem, err = txscript.NewScriptBuilder().AddOp(txscript.OP_0).AddData(h[:]).Script()
		if err == nil {
			a, err = btcutil.NewAddressScriptHash(redeem, net)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return a.EncodeAddress()
}

// TestDisplayMultisig: displayaddress --desc of sh(multi|sortedmulti), sh(wsh(…)) and
// wsh(…) with the device's key and two cosigners shows, on both emulated families, the
// address btcd's txscript computes from the same keys (HWI's test_display_address_multisig).
func TestDisplayMultisig(t *testing.T) {
	net := &chaincfg.RegressionNetParams
	cases := []struct {
		name, wrap, fn string
		script         uint32 // BIP-48 script type
		sorted         bool
		tail           string // derivation below each xpub
		steps          []uint32
	}{
		{"wsh sortedmulti", "wsh", "sortedmulti", 2, true, "/0/*", []uint32{0, 0}},
		{"wsh multi change 5", "wsh", "multi", 2, false, "/1/5", []uint32{1, 5}},
		{"sh-wsh sortedmulti", "sh-wsh", "sortedmulti", 1, true, "/<0;1>/*", []uint32{0, 0}},
		{"sh multi", "sh", "multi", 0, false, "/0/*", []uint32{0, 0}},
		{"sh sortedmulti", "sh", "sortedmulti", 0, true, "/0/3", []uint32{0, 3}},
	}
	for _, fam := range []string{"trezor", "ledger"} {
		t.Run(fam, func(t *testing.T) {
			em := newEmulated(t, fam)
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					path := hdpath.Path{48 + hdpath.Hardened, 1 + hdpath.Hardened, hdpath.Hardened, tc.script + hdpath.Hardened}
					var exprs []string
					var keys []*hdkeychain.ExtendedKey
					for _, m := range []string{legalWinner, abandon, zoo} {
						fp, x := accountKey(t, m, path, net)
						keys = append(keys, x)
						exprs = append(exprs, fmt.Sprintf("[%s%s]%s%s", fp, strings.TrimPrefix(path.StringH(), "m"), x, tc.tail))
					}
					inner := fmt.Sprintf("%s(2,%s)", tc.fn, strings.Join(exprs, ","))
					desc := map[string]string{"sh": "sh(%s)", "wsh": "wsh(%s)", "sh-wsh": "sh(wsh(%s))"}[tc.wrap]
					desc = fmt.Sprintf(desc, inner)
					want := independentMultisigAddress(t, tc.wrap, 2, tc.sorted, keys, tc.steps, net)
					got := runHWI(t, em.path, em.dev, "--chain", "regtest", "displayaddress", "--desc", desc)
					if got["address"] != want {
						t.Fatalf("displayaddress %s\n got %v\nwant %s", desc, got, want)
					}
					shown := em.approver.Transcript()
					if last := shown[len(shown)-1]; !screenShows(last, want, net) {
						t.Fatalf("the device's last screen %q %q does not show %s", last.Title, last.Lines, want)
					}
				})
			}
		})
	}
}

// screenShows says whether a screen shows the address (a Ledger's test app prints regtest
// addresses with testnet's tb prefix).
func screenShows(sc emulator.Entry, addr string, net *chaincfg.Params) bool {
	want, err := btcutil.DecodeAddress(addr, net)
	if err != nil {
		return false
	}
	for _, l := range sc.Lines {
		for _, w := range strings.Fields(l) {
			for _, n := range []*chaincfg.Params{net, &chaincfg.TestNet3Params} {
				if a, err := btcutil.DecodeAddress(w, n); err == nil && a.IsForNet(n) && bytes.Equal(a.ScriptAddress(), want.ScriptAddress()) {
					return true
				}
			}
		}
	}
	return false
}

// hwiTestDescriptor is test/test_device.py TestRegisterDescriptor's descriptor with the
// abandon seed's m/48h/1h/0h/2h key.
const hwiTestDescriptor = "wsh(sortedmulti(1,[73c5da0a/48h/1h/0h/2h]tpubDFH9dgzveyD8zTbPUFuLrGmCydNvxehyNdUXKJAQN8x4aZ4j6UZqGfnqFrD4NqyaTVGKbvEW54tsvPTK2UoSbCC1PJY8iCNiwTL3RWZEheQ/<0;1>/*,[1a0f5425/48h/1h/0h/2h]tpubDF23ETNjCC283QmYZtJp26GqHkSa6Yw6vPqp3UkMsPCvBzRC4dMQzE1U3WwKsFsx3apUkQA4JHQDSmcC3N1yhE2gF1aKJA1CiVtNyA9Rv4H/<0;1>/*))"

// TestRegisterDescriptor is HWI's TestRegisterDescriptor on the Ledger emulator: the
// registration names the policy, carries the descriptor as given and a non-empty device
// registration; displayaddress --registration --index 7 --multipath-index 1 answers
// {"address", "index": 7, "multipath_index": 1} with the address the descriptor gives.
func TestRegisterDescriptor(t *testing.T) {
	em := newEmulated(t, "ledger")
	v := runHWI(t, em.path, em.dev, "--chain", "regtest", "registerdescriptor", "HWI_testing", hwiTestDescriptor)
	reg, ok := v["registration"].(string)
	if !ok || len(v) != 1 {
		t.Fatalf("registerdescriptor: %v", v)
	}
	r, err := ParseRegistration(reg)
	if err != nil {
		t.Fatal(err)
	}
	body, _, _ := strings.Cut(r.Descriptor, "#")
	if r.Name != "HWI_testing" || body != hwiTestDescriptor || r.DeviceType != "ledger" || len(r.Registration) != 32 {
		t.Fatalf("registration %+v", r)
	}
	if again := (Registration{r.Name, r.Descriptor, r.DeviceType, r.Registration}).Serialize(); again != reg {
		t.Fatalf("registration does not serialize back: %s vs %s", again, reg)
	}
	registers := func() int {
		n := 0
		for _, e := range em.approver.Transcript() {
			if e.Title == "Register wallet" {
				n++
			}
		}
		return n
	}
	if registers() != 1 {
		t.Fatalf("%d registration reviews, want 1", registers())
	}
	got := runHWI(t, em.path, em.dev, "--chain", "regtest", "displayaddress", "--index", "7", "--multipath-index", "1", "--registration", reg)
	_, k0 := accountKey(t, abandon, hdpath.MustParse("m/48'/1'/0'/2'"), &chaincfg.RegressionNetParams)
	k1, err := hdkeychain.NewKeyFromString("tpubDF23ETNjCC283QmYZtJp26GqHkSa6Yw6vPqp3UkMsPCvBzRC4dMQzE1U3WwKsFsx3apUkQA4JHQDSmcC3N1yhE2gF1aKJA1CiVtNyA9Rv4H")
	if err != nil {
		t.Fatal(err)
	}
	want := independentMultisigAddress(t, "wsh", 1, true, []*hdkeychain.ExtendedKey{k0, k1}, []uint32{1, 7}, &chaincfg.RegressionNetParams)
	if got["address"] != want || got["index"] != float64(7) || got["multipath_index"] != float64(1) || len(got) != 3 {
		t.Fatalf("displayaddress --registration: %v, want address %s", got, want)
	}
	// --change is --multipath-index 1; the registration is not reviewed again.
	if again := runHWI(t, em.path, em.dev, "--chain", "regtest", "displayaddress", "--index", "7", "--change", "--registration", reg); again["address"] != want {
		t.Fatalf("--change: %v", again)
	}
	if registers() != 1 {
		t.Fatalf("%d registration reviews after displayaddress, want 1", registers())
	}
	// A registration whose HMAC is not the device's is refused by the device.
	bad := r
	bad.Registration = bytes.Repeat([]byte{7}, 32)
	if v := runHWI(t, em.path, em.dev, "--chain", "regtest", "displayaddress", "--index", "0", "--registration", bad.Serialize()); v["code"] == nil {
		t.Fatalf("forged registration: %v", v)
	}
}

// FuzzParseRegistration: whatever parses serializes back to the same registration.
func FuzzParseRegistration(f *testing.F) {
	f.Add(Registration{"HWI_testing", hwiTestDescriptor, "ledger", bytes.Repeat([]byte{1}, 32)}.Serialize())
	for _, s := range []string{"", "cmRlc2MB", "eGRlc2MB", "cmRlc2MBAAAAAA==", "cmRlc2MB/////w=="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRegistration(s)
		if err != nil {
			if Code(err) != CodeBadArgument {
				t.Fatalf("%q: error %v with code %d", s, err, Code(err))
			}
			return
		}
		again, err := ParseRegistration(r.Serialize())
		if err != nil || again.Name != r.Name || again.Descriptor != r.Descriptor || again.DeviceType != r.DeviceType || !bytes.Equal(again.Registration, r.Registration) {
			t.Fatalf("%q: %+v round-trips to %+v (%v)", s, r, again, err)
		}
	})
}

// TestSignTxMultisig: signtx of a 2-of-3 input whose script is wsh(sortedmulti), sh(wsh(…))
// or sh(multi) (HWI's multisig signing; the PSBT as Bitcoin Core's signer wallet gives it,
// with the cosigners' xpubs) adds the device's signature on both emulated families; the
// drivers run behind device.Verify, which checks it against the input's sighash.
func TestSignTxMultisig(t *testing.T) {
	net := &chaincfg.RegressionNetParams
	cases := []struct {
		wrap   string
		script uint32
	}{{"wsh(sortedmulti(2,%s))", 2}, {"sh(wsh(sortedmulti(2,%s)))", 1}, {"sh(multi(2,%s))", 0}}
	for _, fam := range []string{"trezor", "ledger"} {
		t.Run(fam, func(t *testing.T) {
			em := newEmulated(t, fam)
			for _, tc := range cases {
				t.Run(strings.SplitN(tc.wrap, "(", 2)[0]+fmt.Sprint(tc.script), func(t *testing.T) {
					path := hdpath.Path{48 + hdpath.Hardened, 1 + hdpath.Hardened, hdpath.Hardened, tc.script + hdpath.Hardened}
					var exprs []string
					for _, m := range []string{legalWinner, abandon, zoo} {
						fp, x := accountKey(t, m, path, net)
						exprs = append(exprs, fmt.Sprintf("[%s%s]%s/<0;1>/*", fp, strings.TrimPrefix(path.StringH(), "m"), x))
					}
					desc, err := bitcoin.ParseDescriptor(fmt.Sprintf(tc.wrap, strings.Join(exprs, ",")))
					if err != nil {
						t.Fatal(err)
					}
					b64 := multisigPSBT(t, desc, 2, net)
					v := runHWI(t, em.path, em.dev, "--chain", "regtest", "signtx", b64)
					if v["signed"] != true {
						t.Fatalf("signtx: %v", v)
					}
					p, err := psbt.NewFromRawBytes(strings.NewReader(v["psbt"].(string)), true)
					if err != nil {
						t.Fatal(err)
					}
					sc, _ := desc.Derive(0, 2)
					own := sc.Keys[1].Pub.SerializeCompressed() // abandon's key
					if len(p.Inputs[0].PartialSigs) != 1 || !bytes.Equal(p.Inputs[0].PartialSigs[0].PubKey, own) {
						t.Fatalf("partial signatures %v, want one by %x", p.Inputs[0].PartialSigs, own)
					}
				})
			}
		})
	}
}

// multisigPSBT spends the output of desc at receive index: scripts, every key's derivation,
// the previous transaction, and the xpubs.
func multisigPSBT(t *testing.T, desc *bitcoin.Descriptor, index uint32, net *chaincfg.Params) string {
	t.Helper()
	sc, err := desc.Derive(0, index)
	if err != nil {
		t.Fatal(err)
	}
	prev := wire.NewMsgTx(2)
	prev.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Index: index}, Sequence: 0xffffffff})
	prev.AddTxOut(wire.NewTxOut(250_000, sc.PkScript))
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Hash: prev.TxHash(), Index: 0}, Sequence: 0xfffffffd})
	to, _ := btcutil.DecodeAddress("bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", net)
	toScript, _ := txscript.PayToAddrScript(to)
	tx.AddTxOut(wire.NewTxOut(240_000, toScript))
	p, err := psbt.NewFromUnsignedTx(tx)
	if err != nil {
		t.Fatal(err)
	}
	bip32, _ := sc.PSBTDerivations(desc.Kind)
	in := psbt.PInput{NonWitnessUtxo: prev, RedeemScript: sc.RedeemScript, WitnessScript: sc.WitnessScript, Bip32Derivation: bip32, SighashType: txscript.SigHashAll}
	if desc.Kind != bitcoin.KindPKH && desc.Kind != bitcoin.KindSHMulti {
		in.WitnessUtxo = prev.TxOut[0] // segwit
	}
	p.Inputs[0] = in
	xpubs, err := desc.GlobalXPubs()
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range xpubs {
		p.Unknowns = append(p.Unknowns, &psbt.Unknown{Key: x[0], Value: x[1]})
	}
	b64, err := p.B64Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b64
}

// TestSignTxRegisteredPolicy: a Ledger signs an input of a single-key account it has no
// default policy for (account 101) only once the wallet is registered as a BIP-388 policy
// (registerdescriptor); signtx then uses that registration, with no second review.
func TestSignTxRegisteredPolicy(t *testing.T) {
	net := &chaincfg.RegressionNetParams
	em := newEmulated(t, "ledger")
	path := hdpath.MustParse("m/84'/1'/101'")
	fp, x := accountKey(t, abandon, path, net)
	descStr := fmt.Sprintf("wpkh([%s/84h/1h/101h]%s/<0;1>/*)", fp, x)
	desc, err := bitcoin.ParseDescriptor(descStr)
	if err != nil {
		t.Fatal(err)
	}
	b64 := multisigPSBT(t, desc, 4, net) // one key: a P2WPKH spend of the account
	if v := runHWI(t, em.path, em.dev, "--chain", "regtest", "signtx", b64); v["code"] != float64(CodeBadArgument) {
		t.Fatalf("signtx before registration: %v", v)
	}
	if v := runHWI(t, em.path, em.dev, "--chain", "regtest", "registerdescriptor", "Account 101", descStr); v["registration"] == nil {
		t.Fatalf("registerdescriptor: %v", v)
	}
	v := runHWI(t, em.path, em.dev, "--chain", "regtest", "signtx", b64)
	if v["signed"] != true {
		t.Fatalf("signtx with the registered policy: %v", v)
	}
	n := 0
	for _, e := range em.approver.Transcript() {
		if e.Title == "Register wallet" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d registration reviews, want 1", n)
	}
}

// TestLedgerAppSwitchSaid: a command that acts at the device may open the Bitcoin app of
// its chain on a Ledger; hwbridge says so on stderr (HWI leaves the other app closed
// without a word); a read-only command never switches.
func TestLedgerAppSwitchSaid(t *testing.T) {
	lg, err := ledgeremu.New(ledgeremu.Config{Mnemonic: abandon, App: ledgeremu.AppBitcoin, Approver: emulator.NewApprover(emulator.PolicyAuto)})
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	drv := device.Verify(ledger.New(transport.NewSpeculosExchanger(lg.Pipe()), ledger.Options{Emulator: true, OpenApp: true}))
	defer drv.Close()
	run := func(args ...string) (map[string]any, string) {
		var out, warn bytes.Buffer
		s := &Signer{Out: &out, Warn: &warn,
			Candidates: func(context.Context) ([]Candidate, error) { return nil, nil },
			Open:       func(context.Context, string) (device.Device, error) { return drv, nil }}
		if err := s.Run(t.Context(), append([]string{"-d", LedgerEmulatorPath}, args...), nil); err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := json.Unmarshal(out.Bytes(), &v); err != nil {
			t.Fatal(err)
		}
		return v, warn.String()
	}
	if v, _ := run("--chain", "test", "getmasterxpub"); v["code"] != float64(CodeDeviceNotReady) || lg.App() != ledgeremu.AppBitcoin {
		t.Fatalf("read-only getmasterxpub on the mainnet app: %v, app %q", v, lg.App())
	}
	v, warn := run("--chain", "test", "displayaddress", "--path", "m/84h/1h/0h/0/0")
	if v["address"] == nil || lg.App() != ledgeremu.AppBitcoinTest || !strings.Contains(warn, "now has the Bitcoin Test app open (it had Bitcoin)") {
		t.Fatalf("displayaddress on another chain: %v, app %q, stderr %q", v, lg.App(), warn)
	}
	if _, warn := run("--chain", "test", "displayaddress", "--path", "m/84h/1h/0h/0/1"); warn != "" {
		t.Fatalf("no switch, yet stderr %q", warn)
	}
}
