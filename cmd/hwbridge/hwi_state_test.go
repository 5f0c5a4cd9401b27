package main

// What HWI cannot keep, kept by hwbridged, through `hwbridge hwi` as Bitcoin Core runs it:
// a Ledger wallet policy registered once (also across a daemon restart), a Trezor passphrase
// entered once for a session.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/tyler-smith/go-bip39"

	"github.com/hwbridge/hwbridge/chains/bitcoin"
	"github.com/hwbridge/hwbridge/daemon"
	"github.com/hwbridge/hwbridge/device"
	hwdrivers "github.com/hwbridge/hwbridge/device/drivers"
	"github.com/hwbridge/hwbridge/emulator"
	ledgeremu "github.com/hwbridge/hwbridge/emulator/ledger"
	trezoremu "github.com/hwbridge/hwbridge/emulator/trezor"
	"github.com/hwbridge/hwbridge/hwi"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/transport"
)

// stateDaemon runs hwbridged in process on dataDir for one emulator endpoint; stop ends
// it (the emulator lives on), so that a test can start another on the same data.
func stateDaemon(t *testing.T, dataDir, path string, open func() transport.Link) (c *daemon.Client, stop func()) {
	t.Helper()
	hub := device.NewHub(device.HubConfig{
		Drivers:   hwdrivers.Hub(hwdrivers.Options{}),
		Emulators: []string{path},
		Open:      func(ctx context.Context, _ string) (transport.Link, error) { return open(), nil },
	})
	sockDir, err := os.MkdirTemp("", "hwbs")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(sockDir, "d.sock")
	d, err := daemon.Open(daemon.Config{Socket: sock, DataDir: dataDir, Hub: hub})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- hub.Run(ctx) }()
	go func() { done <- d.Serve(ctx) }()
	key, err := os.ReadFile(filepath.Join(dataDir, daemon.CLIKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	c = &daemon.Client{Socket: sock, Key: strings.TrimSpace(string(key))}
	for i := 0; ; i++ {
		if _, err := c.Version(ctx); err == nil {
			break
		} else if i > 200 {
			t.Fatal(err)
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		c.Close()
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
		d.Close()
		os.RemoveAll(sockDir)
	}
	t.Cleanup(stop)
	return c, stop
}

// hwiVia runs `hwbridge hwi` through the daemon at c and decodes its JSON line.
func hwiVia(t *testing.T, c *daemon.Client, dataDir string, args ...string) map[string]any {
	t.Helper()
	r := cli(t, "", map[string]string{"HWBRIDGE_DATA_DIR": dataDir}, append([]string{"--socket", c.Socket, "hwi"}, args...)...)
	var v map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &v); r.code != exitOK || err != nil {
		t.Fatalf("hwi %v: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
	}
	return v
}

// seedKey is the key at path of a seed (with a passphrase), from the seed alone.
func seedKey(t *testing.T, mnemonic, passphrase string, path hdpath.Path, net *chaincfg.Params) (fp string, key *hdkeychain.ExtendedKey) {
	t.Helper()
	master, err := hdkeychain.NewMaster(bip39.NewSeed(mnemonic, passphrase), net)
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
	if key, err = k.Neuter(); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", btcutil.Hash160(mpub.SerializeCompressed())[:4]), key
}

// multisigSpend is a PSBT spending a 2-of-3 output of desc at receive index, as Bitcoin Core
// builds one for a multisig signer wallet: witness script, every key's derivation, the
// previous transaction, and the cosigners' xpubs.
func multisigSpend(t *testing.T, desc *bitcoin.Descriptor, index uint32, net *chaincfg.Params) string {
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
	to, _ := demoRecipient(net)
	toScript, _ := txscript.PayToAddrScript(to)
	tx.AddTxOut(wire.NewTxOut(240_000, toScript))
	p, err := psbt.NewFromUnsignedTx(tx)
	if err != nil {
		t.Fatal(err)
	}
	bip32, _ := sc.PSBTDerivations(desc.Kind)
	p.Inputs[0] = psbt.PInput{NonWitnessUtxo: prev, WitnessUtxo: prev.TxOut[0], WitnessScript: sc.WitnessScript, Bip32Derivation: bip32, SighashType: txscript.SigHashAll}
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

// TestHWILedgerPolicyRegisteredOnce: through hwbridged, a multisig wallet registered with
// registerdescriptor is reviewed on the Ledger once; signtx calls on its outputs sign with
// that registration (also after hwbridged restarts: the HMAC is in its data directory), and
// displayaddress of the same policy needs no review either. Forgetting makes the next use
// register again.
func TestHWILedgerPolicyRegisteredOnce(t *testing.T) {
	net := &chaincfg.RegressionNetParams
	approver := emulator.NewApprover(emulator.PolicyAuto)
	lg, err := ledgeremu.New(ledgeremu.Config{Mnemonic: testMnemonic, App: ledgeremu.AppBitcoinTest, Approver: approver})
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	dataDir := filepath.Join(t.TempDir(), "data")
	open := func() transport.Link { return lg.Pipe() }
	c, stop := stateDaemon(t, dataDir, hwi.LedgerEmulatorPath, open)
	reviews := func() int {
		n := 0
		for _, e := range approver.Transcript() {
			if e.Title == "Register wallet" {
				n++
			}
		}
		return n
	}

	acct := hdpath.MustParse("m/48'/1'/0'/2'")
	var exprs []string
	for _, m := range []string{testMnemonic, "legal winner thank year wave sausage worth useful legal winner thank yellow", "zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo wrong"} {
		fp, x := seedKey(t, m, "", acct, net)
		exprs = append(exprs, fmt.Sprintf("[%s/48h/1h/0h/2h]%s/<0;1>/*", fp, x))
	}
	descStr := fmt.Sprintf("wsh(sortedmulti(2,%s))", strings.Join(exprs, ","))
	desc, err := bitcoin.ParseDescriptor(descStr)
	if err != nil {
		t.Fatal(err)
	}
	base := []string{"--chain", "regtest", "-d", hwi.LedgerEmulatorPath}
	reg := hwiVia(t, c, dataDir, append(base, "registerdescriptor", "Cold 2of3", descStr)...)
	if _, ok := reg["registration"].(string); !ok || reviews() != 1 {
		t.Fatalf("registerdescriptor: %v, %d reviews", reg, reviews())
	}
	// Registering the same descriptor again answers the kept registration.
	if again := hwiVia(t, c, dataDir, append(base, "registerdescriptor", "Cold 2of3", descStr)...); again["registration"] != reg["registration"] || reviews() != 1 {
		t.Fatalf("second registerdescriptor: %v, %d reviews", again, reviews())
	}
	signs := func(index uint32) {
		t.Helper()
		v := hwiVia(t, c, dataDir, append(base, "signtx", multisigSpend(t, desc, index, net))...)
		if v["signed"] != true {
			t.Fatalf("signtx index %d: %v", index, v)
		}
		p, err := psbt.NewFromRawBytes(strings.NewReader(v["psbt"].(string)), true)
		if err != nil || len(p.Inputs[0].PartialSigs) != 1 {
			t.Fatalf("signtx index %d: %v (%v)", index, p, err)
		}
	}
	signs(3)
	signs(4)
	if n := reviews(); n != 1 {
		t.Fatalf("%d registration reviews after two signtx, want 1", n)
	}
	want, _ := desc.Address(1, 7, net)
	shown := hwiVia(t, c, dataDir, append(base, "displayaddress", "--registration", reg["registration"].(string), "--index", "7", "--change")...)
	if shown["address"] != want.EncodeAddress() {
		t.Fatalf("displayaddress --registration: %v, want %s", shown, want)
	}

	// A new hwbridged on the same data directory: still no second review.
	stop()
	c, stop = stateDaemon(t, dataDir, hwi.LedgerEmulatorPath, open)
	signs(5)
	if n := reviews(); n != 1 {
		t.Fatalf("%d registration reviews after a daemon restart, want 1", n)
	}
	// HWI's display_multisig_address registers its own "2 of 3 Multisig" policy: once.
	first, _ := desc.Address(0, 0, net)
	for range 2 {
		v := hwiVia(t, c, dataDir, append(base, "displayaddress", "--desc", descStr)...)
		if v["address"] != first.EncodeAddress() {
			t.Fatalf("displayaddress --desc: %v, want %s", v, first)
		}
	}
	if n := reviews(); n != 2 {
		t.Fatalf("%d registration reviews after two multisig displayaddress, want 2", n)
	}
	var stored []daemon.StoredPolicy
	if err := c.Call(t.Context(), "v1PoliciesList", nil, &stored); err != nil || len(stored) != 2 {
		t.Fatalf("stored policies %v (%v)", stored, err)
	}
	if fi, err := os.Stat(filepath.Join(dataDir, daemon.PoliciesFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("policies file: %v %v", fi, err)
	}
	// Forgotten: the next signtx registers (and stores) again.
	r := cli(t, "", map[string]string{"HWBRIDGE_DATA_DIR": dataDir}, "--socket", c.Socket, "forget", "--fingerprint", "73c5da0a")
	if r.code != exitOK {
		t.Fatalf("forget: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	stop()
	c, _ = stateDaemon(t, dataDir, hwi.LedgerEmulatorPath, open)
	signs(6)
	if n := reviews(); n != 3 {
		t.Fatalf("%d registration reviews after forget, want 3", n)
	}
}

// TestHWITrezorPassphraseSession: a passphrase-protected Trezor behind hwbridged answers
// HWI's commands for the passphrase wallet after one `hwbridge hwi -p …`; later calls give
// no passphrase (the daemon never has one to give: the device keeps it for the session
// hwbridged holds open). Without it, or after forget, the device is not ready (-12).
func TestHWITrezorPassphraseSession(t *testing.T) {
	net := &chaincfg.RegressionNetParams
	tz, err := trezoremu.New(trezoremu.Options{Mnemonic: testMnemonic, PassphraseProtection: true, Approver: emulator.NewApprover(emulator.PolicyAuto)})
	if err != nil {
		t.Fatal(err)
	}
	defer tz.Close()
	dataDir := filepath.Join(t.TempDir(), "data")
	c, _ := stateDaemon(t, dataDir, hwi.TrezorEmulatorPath, func() transport.Link { return tz.Pipe() })
	base := []string{"--chain", "regtest", "-d", hwi.TrezorEmulatorPath}
	if v := hwiVia(t, c, dataDir, append(base, "getmasterxpub")...); v["code"] != float64(hwi.CodeDeviceNotReady) {
		t.Fatalf("without a passphrase: %v", v)
	}
	fp, want := seedKey(t, testMnemonic, "hwi secret", hdpath.MustParse("m/84'/1'/0'"), net)
	if v := hwiVia(t, c, dataDir, append(base, "-p", "hwi secret", "getmasterxpub")...); v["xpub"] != want.String() {
		t.Fatalf("getmasterxpub -p: %v, want %s", v, want)
	}
	// Entered once: every later call, by path or by the passphrase wallet's fingerprint.
	for _, args := range [][]string{
		append(base, "getxpub", "m/84h/1h/0h"),
		{"--chain", "regtest", "--fingerprint", fp, "getmasterxpub"},
		{"--chain", "regtest", "--fingerprint", fp, "getdescriptors"},
		{"--chain", "regtest", "--fingerprint", fp, "signmessage", "entered once", "m/44h/1h/0h/0/0"},
	} {
		v := hwiVia(t, c, dataDir, args...)
		if v["code"] != nil {
			t.Fatalf("%v after the passphrase: %v", args, v)
		}
		if x, ok := v["xpub"]; ok && x != want.String() {
			t.Fatalf("%v: %v, want %s", args, v, want)
		}
		if d, ok := v["receive"].([]any); ok && !strings.Contains(d[1].(string), "["+fp+"/84h/1h/0h]"+want.String()) {
			t.Fatalf("getdescriptors of the passphrase wallet: %v", d)
		}
	}
	list := []any{}
	r := cli(t, "", map[string]string{"HWBRIDGE_DATA_DIR": dataDir}, "--socket", c.Socket, "hwi", "--chain", "regtest", "enumerate")
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 1 || list[0].(map[string]any)["fingerprint"] != fp {
		t.Fatalf("enumerate in the session: %q (%v)", r.stdout, err)
	}
	// forget ends the session: the passphrase is asked for again.
	r = cli(t, "", map[string]string{"HWBRIDGE_DATA_DIR": dataDir}, "--socket", c.Socket, "forget")
	if r.code != exitOK || !strings.Contains(r.stdout, "1 passphrase session") {
		t.Fatalf("forget: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	if v := hwiVia(t, c, dataDir, append(base, "getmasterxpub")...); v["code"] != float64(hwi.CodeDeviceNotReady) {
		t.Fatalf("after forget: %v", v)
	}
}

// TestHWITrezorPINThroughDaemon: promptpin/sendpin with HWI's answers through hwbridged:
// promptpin leaves the Trezor's PIN matrix up (hwbridged holds the request), sendpin
// answers it ({"success": false} for a wrong PIN, true for the right one), and the device
// then serves HWI's commands; a second promptpin is -11 as with HWI.
func TestHWITrezorPINThroughDaemon(t *testing.T) {
	tz, err := trezoremu.New(trezoremu.Options{Model: trezoremu.ModelOne, Mnemonic: testMnemonic, PIN: "1234", Approver: emulator.NewApprover(emulator.PolicyAuto)})
	if err != nil {
		t.Fatal(err)
	}
	defer tz.Close()
	dataDir := filepath.Join(t.TempDir(), "data")
	c, _ := stateDaemon(t, dataDir, hwi.TrezorEmulatorPath, func() transport.Link { return tz.Pipe() })
	base := []string{"--chain", "regtest", "-d", hwi.TrezorEmulatorPath}
	if v := hwiVia(t, c, dataDir, append(base, "getmasterxpub")...); v["code"] != float64(hwi.CodeDeviceNotReady) {
		t.Fatalf("locked: %v", v)
	}
	if v := hwiVia(t, c, dataDir, append(base, "sendpin", "1234")...); v["code"] == nil {
		t.Fatalf("sendpin without promptpin: %v", v)
	}
	for _, step := range []struct {
		args []string
		want string
	}{
		{[]string{"promptpin"}, `{"success":true}`},
		{[]string{"sendpin", "9999"}, `{"success":false}`},
		{[]string{"promptpin"}, `{"success":true}`},
		{[]string{"sendpin", "1234"}, `{"success":true}`},
		{[]string{"promptpin"}, `{"code":-11,"error":"The PIN has already been sent to this device"}`},
	} {
		v := hwiVia(t, c, dataDir, append(base, step.args...)...)
		if b, _ := json.Marshal(v); string(b) != step.want {
			t.Fatalf("%v: %s, want %s", step.args, b, step.want)
		}
	}
	_, want := seedKey(t, testMnemonic, "", hdpath.MustParse("m/84'/1'/0'"), &chaincfg.RegressionNetParams)
	if v := hwiVia(t, c, dataDir, append(base, "getmasterxpub")...); v["xpub"] != want.String() {
		t.Fatalf("unlocked: %v", v)
	}
}

// TestHWITrezorMultisigThroughDaemon: displayaddress of a multisig descriptor reaches a
// Trezor behind hwbridged (v1BtcMultisigAddress) and shows the address the descriptor
// gives.
func TestHWITrezorMultisigThroughDaemon(t *testing.T) {
	net := &chaincfg.RegressionNetParams
	c := startInProcessDaemon(t, emulator.PolicyAuto)
	dataDir := filepath.Join(filepath.Dir(c.Socket), "data")
	acct := hdpath.MustParse("m/48'/1'/0'/1'")
	var exprs []string
	for _, m := range []string{"zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo wrong", testMnemonic} {
		fp, x := seedKey(t, m, "", acct, net)
		exprs = append(exprs, fmt.Sprintf("[%s/48h/1h/0h/1h]%s/0/*", fp, x))
	}
	descStr := fmt.Sprintf("sh(wsh(sortedmulti(2,%s)))", strings.Join(exprs, ","))
	desc, err := bitcoin.ParseDescriptor(descStr)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := desc.Address(0, 0, net)
	v := hwiVia(t, c, dataDir, "--chain", "regtest", "--fingerprint", "73c5da0a", "displayaddress", "--desc", descStr)
	if v["address"] != want.EncodeAddress() {
		t.Fatalf("multisig displayaddress through hwbridged: %v, want %s", v, want)
	}
}
