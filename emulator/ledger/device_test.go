package ledgeremu

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// Published vectors for "abandon"×11 "about" (BIP-32/44/49/84/86, ledger.md §8.1).
const (
	vecFingerprint = "73c5da0a"
	vecXpub84      = "xpub6CatWdiZiodmUeTDp8LT5or8nmbKNcuyvz7WyksVFkKB4RHwCD3XyuvPEbvqAQY3rAPshWcMLoP2fMFMKHPJ4ZeZXYVUhLv1VMrjPC7PW6V"
	vecTpub84      = "tpubDC8msFGeGuwnKG9Upg7DM2b4DaRqg3CUZa5g8v2SRQ6K4NSkxUgd7HsL2XVWbVm39yBA4LAxysQAm397zwQSQoQgewGiYZqrA9DsP4zbQ1M"
	vecWpkh        = "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"
	vecTr          = "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr"
	vecPkh         = "1LqBGSKuX5yYUonjxT5qGfpUsXKYYWeabA"
	vecShWpkh      = "37VucYSaXLCAsxYyAPfbSi9eh4iEcbShgf"
	vecTestWpkh    = "tb1q6rz28mcfaxtmd6v789l9rrlrusdprr9pqcpvkl"
	vecEthAddr     = "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"
)

func newDevice(t testing.TB, cfg Config) *Device {
	t.Helper()
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestDashboardAndApps(t *testing.T) {
	d := newDevice(t, Config{App: "dashboard"})
	c := newTestClient(t, d)

	got := c.mustOK(claOS, insAppAndVer, 0, 0, nil)
	if want := "0105424f4c4f5305322e322e33"; !strings.HasPrefix(hex.EncodeToString(got), want) {
		t.Fatalf("dashboard B0 01 = %x, want prefix %s", got, want)
	}
	if _, sw := c.send(claBTC, insGetMasterFpr, 0, 1, nil); sw != swAppNotOpen {
		t.Fatalf("app cla on dashboard: %04x, want 6e01", sw)
	}
	if _, sw := c.send(claDashboard, insOpenApp, 0, 0, []byte("Monero")); sw != swAppNotInstalled {
		t.Fatalf("open unknown app: %04x, want 6807", sw)
	}
	for _, app := range []string{AppBitcoin, AppBitcoinTest, AppEthereum} {
		c.mustOK(claDashboard, insOpenApp, 0, 0, []byte(app))
		got := c.mustOK(claOS, insAppAndVer, 0, 0, nil)
		if int(got[1]) != len(app) || string(got[2:2+len(app)]) != app {
			t.Fatalf("B0 01 after opening %s: %x", app, got)
		}
		if _, sw := c.send(claDashboard, insOpenApp, 0, 0, []byte(AppBitcoin)); sw == swOK {
			t.Fatalf("open-app accepted inside %s", app)
		}
		c.mustOK(claOS, insQuitApp, 0, 0, nil)
		if d.App() != "BOLOS" {
			t.Fatalf("after quit: app %q", d.App())
		}
	}
	d.SetLocked(true)
	if _, sw := c.send(claOS, insAppAndVer, 0, 0, nil); sw != swLocked {
		t.Fatalf("locked: %04x, want 5515", sw)
	}
	d.SetLocked(false)
	c.mustOK(claOS, insAppAndVer, 0, 0, nil)
}

func TestBitcoinStatusWords(t *testing.T) {
	d := newDevice(t, Config{})
	c := newTestClient(t, d)
	tests := []struct {
		name         string
		cla, ins, p2 byte
		data         []byte
		want         uint16
	}{
		{"fingerprint", claBTC, insGetMasterFpr, 1, nil, swOK},
		{"protocol 0", claBTC, insGetMasterFpr, 0, nil, swOK},
		{"protocol 2", claBTC, insGetMasterFpr, 2, nil, swWrongP1P2BTC},
		{"unknown ins", claBTC, 0x7F, 1, nil, swINSNotSupported},
		{"unknown cla", 0xE0, 0x02, 0, nil, swCLANotSupported},
		{"stray continue", claFramework, insContinue, 0, nil, swBadState},
		{"short xpub", claBTC, insGetExtendedPubkey, 1, []byte{0}, swWrongDataLength},
		{"testnet coin on mainnet", claBTC, insGetExtendedPubkey, 1, append([]byte{0}, pathBytes(t, "m/84'/1'/0'")...), swNotSupported},
		{"testnet coin with display", claBTC, insGetExtendedPubkey, 1, append([]byte{1}, pathBytes(t, "m/84'/1'/0'")...), swNotSupported},
		{"account 101", claBTC, insGetExtendedPubkey, 1, append([]byte{0}, pathBytes(t, "m/84'/0'/101'")...), swNotSupported},
		{"hardened tail", claBTC, insGetExtendedPubkey, 1, append([]byte{0}, pathBytes(t, "m/84'/0'/0'/0'")...), swNotSupported},
		{"electrum", claBTC, insGetExtendedPubkey, 1, append([]byte{0}, pathBytes(t, "m/4541509'/1112098098'")...), swOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, sw := c.send(tc.cla, tc.ins, 0, tc.p2, tc.data); sw != tc.want {
				t.Fatalf("status %04x, want %04x", sw, tc.want)
			}
		})
	}
}

func TestBitcoinKeys(t *testing.T) {
	for _, tc := range []struct {
		app, path, want string
	}{
		{AppBitcoin, "m/84'/0'/0'", vecXpub84},
		{AppBitcoinTest, "m/84'/1'/0'", vecTpub84},
	} {
		t.Run(tc.app, func(t *testing.T) {
			d := newDevice(t, Config{App: tc.app})
			c := newTestClient(t, d)
			if got := hex.EncodeToString(c.mustOK(claBTC, insGetMasterFpr, 0, 1, nil)); got != vecFingerprint {
				t.Fatalf("fingerprint %s, want %s", got, vecFingerprint)
			}
			if got := string(c.mustOK(claBTC, insGetExtendedPubkey, 0, 1, append([]byte{0}, pathBytes(t, tc.path)...))); got != tc.want {
				t.Fatalf("xpub %s\nwant %s", got, tc.want)
			}
			// With display, a screen shows the path and the key.
			c.mustOK(claBTC, insGetExtendedPubkey, 0, 1, append([]byte{1}, pathBytes(t, tc.path)...))
			tr := d.Approver().Transcript()
			if last := tr[len(tr)-1]; last.Title != "Public key" || last.Lines[1] != tc.want {
				t.Fatalf("screen %+v", last)
			}
			d.Approver().SetPolicy(emulator.PolicyReject)
			if _, sw := c.send(claBTC, insGetExtendedPubkey, 0, 1, append([]byte{1}, pathBytes(t, tc.path)...)); sw != swDeny {
				t.Fatalf("rejected display: %04x, want 6985", sw)
			}
		})
	}
}

// defaultPolicy builds the default single-key policy for the app's own account key.
func defaultPolicy(t testing.TB, c *testClient, template, path string) testPolicy {
	t.Helper()
	xpub := string(c.mustOK(claBTC, insGetExtendedPubkey, 0, 1, append([]byte{0}, pathBytes(t, path)...)))
	return testPolicy{template: template, keys: []string{"[" + vecFingerprint + strings.TrimPrefix(path, "m") + "]" + xpub}}
}

func getAddress(t testing.TB, c *testClient, p testPolicy, mac []byte, change byte, index uint32, display byte) (string, uint16) {
	t.Helper()
	it := newInterp()
	p.addTo(it)
	id := p.id()
	data := append([]byte{display}, id[:]...)
	if mac == nil {
		mac = make([]byte, 32)
	}
	data = append(data, mac...)
	data = append(data, change)
	data = binary.BigEndian.AppendUint32(data, index)
	out, sw := c.btc(insGetWalletAddress, data, it)
	return string(out), sw
}

func TestDefaultPolicyAddresses(t *testing.T) {
	d := newDevice(t, Config{})
	c := newTestClient(t, d)
	for _, tc := range []struct {
		template, path, want string
	}{
		{"wpkh(@0/**)", "m/84'/0'/0'", vecWpkh},
		{"tr(@0/**)", "m/86'/0'/0'", vecTr},
		{"pkh(@0/**)", "m/44'/0'/0'", vecPkh},
		{"sh(wpkh(@0/**))", "m/49'/0'/0'", vecShWpkh},
	} {
		t.Run(tc.template, func(t *testing.T) {
			p := defaultPolicy(t, c, tc.template, tc.path)
			got, sw := getAddress(t, c, p, nil, 0, 0, 0)
			if sw != swOK || got != tc.want {
				t.Fatalf("address %q (%04x), want %s", got, sw, tc.want)
			}
		})
	}

	p := defaultPolicy(t, c, "wpkh(@0/**)", "m/84'/0'/0'")
	// ledger.md §8.1: serialization and id of the default wpkh policy.
	if got, want := hex.EncodeToString(p.serialize()), "02000bc8974a0d8bdd29024b2ddb7a7fe8df1d9801b270f4e6c1e7e1011ae39e7c9b0001fac4ff3981317caa5a3a3d56d7401a7c97e9cdf03f8a77038b7a10a9dde46244"; got != want {
		t.Fatalf("serialized policy %s", got)
	}
	if id := p.id(); hex.EncodeToString(id[:]) != "ad9de30bf97a12adf70b45ece3890a8f1861c317f478ab3a80acdb59902252d4" {
		t.Fatalf("wallet id %x", id)
	}
	for _, tc := range []struct {
		name   string
		p      testPolicy
		index  uint32
		change byte
		want   uint16
	}{
		{"index 50000", p, 50000, 0, swOK},
		{"index 50001", p, 50001, 0, swIncorrectData},
		{"change 2", p, 0, 2, swIncorrectData},
		{"named default", testPolicy{name: "x", template: p.template, keys: p.keys}, 0, 0, swIncorrectData},
		{"wrong purpose", testPolicy{template: "tr(@0/**)", keys: p.keys}, 0, 0, swIncorrectData},
		{"non-standard derivation", testPolicy{template: "wpkh(@0/<2;3>/*)", keys: p.keys}, 0, 0, swIncorrectData},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, sw := getAddress(t, c, tc.p, nil, tc.change, tc.index, 0); sw != tc.want {
				t.Fatalf("status %04x, want %04x", sw, tc.want)
			}
		})
	}
	// Display shows the address; rejection is 0x6985.
	d.Approver().SetPolicy(emulator.PolicyReject)
	if _, sw := getAddress(t, c, p, nil, 0, 0, 1); sw != swDeny {
		t.Fatalf("rejected display: %04x", sw)
	}
	tr := d.Approver().Transcript()
	if last := tr[len(tr)-1]; last.Title != "Verify address" || last.Lines[0] != vecWpkh || last.Outcome != emulator.OutcomeRejected {
		t.Fatalf("screen %+v", last)
	}
}

func TestTestnetApp(t *testing.T) {
	d := newDevice(t, Config{App: AppBitcoinTest})
	c := newTestClient(t, d)
	p := defaultPolicy(t, c, "wpkh(@0/**)", "m/84'/1'/0'")
	if got, sw := getAddress(t, c, p, nil, 0, 0, 0); sw != swOK || got != vecTestWpkh {
		t.Fatalf("address %q (%04x), want %s", got, sw, vecTestWpkh)
	}
	// The test app refuses mainnet keys.
	if _, sw := c.send(claBTC, insGetExtendedPubkey, 0, 1, append([]byte{0}, pathBytes(t, "m/84'/0'/0'")...)); sw != swNotSupported {
		t.Fatalf("mainnet path on the test app: %04x", sw)
	}
}

// legalWinner is the second cosigner of the multisig vectors.
const legalWinner = "legal winner thank year wave sausage worth useful legal winner thank yellow"

func cosignerKey(t testing.TB, mnemonic, path string) string {
	t.Helper()
	w, err := emulator.NewWallet(mnemonic, "")
	if err != nil {
		t.Fatal(err)
	}
	k, err := w.Public(hdpath.MustParse(path), []byte{0x04, 0x88, 0xb2, 0x1e})
	if err != nil {
		t.Fatal(err)
	}
	return "[" + hex.EncodeToString(binary.BigEndian.AppendUint32(nil, w.Fingerprint())) + strings.TrimPrefix(path, "m") + "]" + k.String()
}

func register(t testing.TB, c *testClient, p testPolicy) ([]byte, uint16) {
	t.Helper()
	it := newInterp()
	p.addTo(it)
	ser := p.serialize()
	return c.btc(insRegisterWallet, append(appendVarint(nil, uint64(len(ser))), ser...), it)
}

func TestRegisterMultisig(t *testing.T) {
	d := newDevice(t, Config{})
	c := newTestClient(t, d)
	ours := cosignerKey(t, emulator.DefaultMnemonic, "m/48'/0'/0'/2'")
	// ledger.md §8.1 conformance vector: 2-of-2 named "conformance".
	conf := testPolicy{name: "conformance", template: "wsh(sortedmulti(2,@0/**,@1/**))", keys: []string{ours, cosignerKey(t, legalWinner, "m/48'/0'/0'/2'")}}
	out, sw := register(t, c, conf)
	if sw != swOK || len(out) != 64 {
		t.Fatalf("register: %x %04x", out, sw)
	}
	if got := hex.EncodeToString(out); got != "76409e7868306b49a0bf566664c54962de0fcf3151792dc78a865626a68d86b0"+"7e6330b62ae3801085a75b3f0893d6aaa6dca30a0d2937dffb23ad2ef8f47a97" {
		t.Fatalf("conformance id‖hmac = %s, want the ledger.md §8.1 vector", got)
	}
	id := conf.id()
	if hex.EncodeToString(out[:32]) != hex.EncodeToString(id[:]) {
		t.Fatalf("wallet id %x, want %x", out[:32], id)
	}
	addr, sw := getAddress(t, c, conf, out[32:], 0, 0, 1)
	if sw != swOK || !strings.HasPrefix(addr, "bc1q") || len(addr) != 62 {
		t.Fatalf("multisig address %q %04x", addr, sw)
	}
	bad := append([]byte(nil), out[32:]...)
	bad[0] ^= 1
	if _, sw := getAddress(t, c, conf, bad, 0, 0, 0); sw != swSignatureFail {
		t.Fatalf("wrong hmac: %04x, want b008", sw)
	}
	// 2-of-3 and the refusals.
	third := cosignerKey(t, "zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo wrong", "m/48'/0'/0'/2'")
	two3 := testPolicy{name: "Cold 2of3", template: "wsh(sortedmulti(2,@0/**,@1/**,@2/**))", keys: []string{ours, cosignerKey(t, legalWinner, "m/48'/0'/0'/2'"), third}}
	if _, sw := register(t, c, two3); sw != swOK {
		t.Fatalf("register 2-of-3: %04x", sw)
	}
	for _, tc := range []struct {
		name string
		p    testPolicy
		want uint16
		ec   string
	}{
		{"no internal key", testPolicy{name: "theirs", template: "wsh(sortedmulti(1,@0/**,@1/**))", keys: []string{cosignerKey(t, legalWinner, "m/48'/0'/0'/2'"), third}}, swIncorrectData, "0002"},
		{"empty name", testPolicy{template: two3.template, keys: two3.keys}, swIncorrectData, "0000"},
		{"leading space", testPolicy{name: " x", template: two3.template, keys: two3.keys}, swIncorrectData, "0000"},
		{"miniscript", testPolicy{name: "m", template: "wsh(and_v(v:pk(@0/**),older(10)))", keys: []string{ours}}, swNotSupported, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, sw := register(t, c, tc.p)
			if sw != tc.want || hex.EncodeToString(out) != tc.ec {
				t.Fatalf("status %04x data %x, want %04x %s", sw, out, tc.want, tc.ec)
			}
		})
	}
	d.Approver().SetPolicy(emulator.PolicyReject)
	if _, sw := register(t, c, two3); sw != swDeny {
		t.Fatalf("rejected registration: %04x", sw)
	}
}

func TestSignMessage(t *testing.T) {
	d := newDevice(t, Config{})
	c := newTestClient(t, d)
	for _, msg := range []string{"hello", strings.Repeat("a long message ", 20)} {
		it := newInterp()
		var chunks [][]byte
		for i := 0; i < len(msg); i += 64 {
			chunks = append(chunks, []byte(msg[i:min(i+64, len(msg))]))
		}
		root := it.addList(chunks)
		data := pathBytes(t, "m/84'/0'/0'/0/0")
		data = appendVarint(data, uint64(len(msg)))
		data = append(data, root[:]...)
		out, sw := c.btc(insSignMessage, data, it)
		if sw != swOK || len(out) != 65 || (out[0] != 31 && out[0] != 32) {
			t.Fatalf("sign message: %x %04x", out, sw)
		}
		var buf []byte
		buf = append(buf, "\x18Bitcoin Signed Message:\n"...)
		buf = appendVarint(buf, uint64(len(msg)))
		buf = append(buf, msg...)
		checkBTCMessage(t, d, "m/84'/0'/0'/0/0", msg, out)
	}
}

// checkBTCMessage recovers the signer of a Bitcoin signed message.
func checkBTCMessage(t testing.TB, d *Device, path, msg string, sig []byte) {
	t.Helper()
	if len(sig) != 65 || (sig[0] != 31 && sig[0] != 32) {
		t.Fatalf("message signature %x", sig)
	}
	var buf []byte
	buf = append(buf, "\x18Bitcoin Signed Message:\n"...)
	buf = appendVarint(buf, uint64(len(msg)))
	buf = append(buf, msg...)
	pub, _, err := ecdsa.RecoverCompact(sig, chainhash.DoubleHashB(buf))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := d.Wallet().PubKey(hdpath.MustParse(path))
	if !pub.IsEqual(want) {
		t.Fatalf("message signed by %x (%s)", pub.SerializeCompressed(), base64.StdEncoding.EncodeToString(sig))
	}
}

func TestContinueTimeout(t *testing.T) {
	d := newDevice(t, Config{})
	d.continueTimeout = 20 * time.Millisecond
	c := newTestClient(t, d)
	p := defaultPolicy(t, c, "wpkh(@0/**)", "m/84'/0'/0'")
	id := p.id()
	data := append(append([]byte{0}, id[:]...), make([]byte, 32)...)
	data = append(data, 0, 0, 0, 0, 0)
	if _, sw := c.send(claBTC, insGetWalletAddress, 0, 1, data); sw != swInterrupted {
		t.Fatalf("get wallet address: %04x", sw)
	}
	time.Sleep(100 * time.Millisecond)
	// The app dropped the command: a late CONTINUE has nothing to continue.
	if _, sw := c.send(claFramework, insContinue, 0, 0, p.serialize()); sw != swBadState {
		t.Fatalf("late continue: %04x, want b007", sw)
	}
	if got, sw := getAddress(t, c, p, nil, 0, 0, 0); sw != swOK || got != vecWpkh {
		t.Fatalf("next command: %q %04x", got, sw)
	}
}
