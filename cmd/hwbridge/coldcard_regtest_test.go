package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"

	"github.com/hwbridge/hwbridge/chains/bitcoin"
	"github.com/hwbridge/hwbridge/daemon"
	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/devicetest"
	"github.com/hwbridge/hwbridge/emulator"
	coldcardemu "github.com/hwbridge/hwbridge/emulator/coldcard"
	"github.com/hwbridge/hwbridge/internal/devchain/btcregtest"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	hwpsbt "github.com/hwbridge/hwbridge/psbt"
	"github.com/hwbridge/hwbridge/transport"
)

// serveColdcard serves a Coldcard-class emulator with the chain setting (BTC, XTN, XRT) on
// a unix datagram socket, as hwemu --coldcard does, and returns its --device path and
// screen transcript.
func serveColdcard(t *testing.T, chain string, policy emulator.Policy) (string, *emulator.Approver) {
	t.Helper()
	ap := emulator.NewApprover(policy)
	emu, err := coldcardemu.New(coldcardemu.Options{Chain: chain, Approver: ap})
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "cc") // short: sun_path holds 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	srv, err := emu.Listen(filepath.Join(dir, "sim.sock"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("coldcard emulator: %v", err)
		}
		emu.Close()
		os.RemoveAll(dir)
	})
	return "unix:" + srv.Path(), ap
}

// TestColdcardRegtestSend is issue 18's Coldcard done-when, on the embedded regtest chain:
// a payment signed by the Coldcard-class emulator over its USB protocol (encrypted session,
// PSBT upload, stxn/stok, download) and broadcast; the same device's taproot account paid
// and spent; then a payment exported as a PSBT file, signed by the Coldcard (btc sign-psbt
// over USB, as a microSD round trip would), and imported: a copy with its outputs changed is
// refused with nothing broadcast, the real one is broadcast once. Every signature passes
// device.Verify and the pipeline's checks before anything reaches the node.
func TestColdcardRegtestSend(t *testing.T) {
	dev, ap := serveColdcard(t, "XRT", emulator.PolicyAuto)
	env := map[string]string{"HWBRIDGE_DATA_DIR": t.TempDir()}
	run := func(args ...string) result {
		t.Helper()
		return cli(t, "", env, append(append([]string{"--direct", "--device", dev}, args...), "--network", "regtest")...)
	}
	ok := func(args ...string) result {
		t.Helper()
		r := run(args...)
		if r.code != 0 {
			t.Fatalf("hwbridge %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		return r
	}
	receive := func(typ string) btcutil.Address {
		t.Helper()
		var res btcReceiveResult
		if err := json.Unmarshal([]byte(ok("btc", "receive", "--type", typ, "--json").stdout), &res); err != nil {
			t.Fatal(err)
		}
		a, err := btcutil.DecodeAddress(res.Address, &chaincfg.RegressionNetParams)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	mineTo := receive("wpkh")
	node, err := btcregtest.Start(t.Context(), btcregtest.NodeOptions{MiningAddr: mineTo})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	inPool := func(txid string) bool {
		t.Helper()
		h, err := chainhash.NewHashFromStr(txid)
		if err != nil {
			t.Fatal(err)
		}
		return node.InMempool(h)
	}
	send := func(typ string, to btcutil.Address, amount string) bitcoin.SendResult {
		t.Helper()
		r := ok("btc", "send", "--type", typ, "--to", to.EncodeAddress(), "--amount", amount, "--fee-rate", "2", "--yes", "--json", "--rpc", node.URL())
		var res bitcoin.SendResult
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.TxID == "" {
			t.Fatalf("%v\n%s", err, r.stdout)
		}
		if !inPool(res.TxID) {
			t.Fatalf("%s is not in the mempool", res.TxID)
		}
		return res
	}
	mine := func() {
		t.Helper()
		if _, err := node.Mine(t.Context(), 1, mineTo); err != nil {
			t.Fatal(err)
		}
	}

	// over USB: p2wpkh → the device's taproot account, then taproot → outside
	tr := receive("tr")
	send("wpkh", tr, "1.5")
	mine()
	outside, err := btcutil.DecodeAddress(btcOutside(t, "coldcard"), &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	res := send("tr", outside, "0.7")
	mine()
	if len(res.Transaction.Inputs) == 0 || res.Change == nil {
		t.Fatalf("taproot send: %+v", res)
	}
	signed := 0
	for _, e := range ap.Transcript() {
		if e.Title == "OK TO SEND?" && e.Outcome == emulator.OutcomeApproved {
			signed++
		}
	}
	if signed != 2 {
		t.Fatalf("the coldcard approved %d transactions, want 2: %+v", signed, ap.Transcript())
	}

	// a PSBT file signed by the coldcard
	dir := t.TempDir()
	unsigned := filepath.Join(dir, "unsigned.psbt")
	r := ok("btc", "send", "--type", "wpkh", "--to", outside.EncodeAddress(), "--amount", "0.25", "--fee-rate", "2", "--json",
		"--request-id", "cc-file-1", "--export-psbt", unsigned, "--rpc", node.URL())
	var ex daemon.BtcSendResult
	if err := json.Unmarshal([]byte(r.stdout), &ex); err != nil || ex.PlanID == "" || ex.TxID != "" {
		t.Fatalf("export: %v %+v", err, ex)
	}
	out := strings.TrimSpace(ok("btc", "sign-psbt", unsigned).stdout)
	p, err := hwpsbt.Decode([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	signedFile := filepath.Join(dir, "signed.psbt")
	bin, err := hwpsbt.Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(signedFile, bin, 0o600); err != nil {
		t.Fatal(err)
	}
	// outputs changed after signing: refused, nothing broadcast
	outScript, err := txscript.PayToAddrScript(outside)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := hwpsbt.DecodeBinary(bin)
	if err != nil {
		t.Fatal(err)
	}
	tampered := func(fn func(*psbt.Packet)) string {
		t.Helper()
		q, err := hwpsbt.Clone(tp)
		if err != nil {
			t.Fatal(err)
		}
		fn(q)
		b, err := hwpsbt.Encode(q)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, "tampered.psbt")
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	pool := node.MempoolCount()
	moreFee := tampered(func(q *psbt.Packet) {
		for _, o := range q.UnsignedTx.TxOut {
			if bytes.Equal(o.PkScript, outScript) {
				o.Value -= 10_000
			}
		}
	})
	if r := run("btc", "send", "--json", "--request-id", "cc-file-1", "--import-psbt", moreFee, "--rpc", node.URL()); r.code == 0 || !strings.Contains(r.stdout+r.stderr, "not the transaction exported") {
		t.Fatalf("tampered import: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	badSig := tampered(func(q *psbt.Packet) {
		s := q.Inputs[0].PartialSigs[0].Signature
		s[len(s)/2] ^= 1
	})
	if r := run("btc", "send", "--json", "--request-id", "cc-file-1", "--import-psbt", badSig, "--rpc", node.URL()); r.code == 0 || !strings.Contains(r.stdout+r.stderr, "refusing to broadcast") {
		t.Fatalf("bad-signature import: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if n := node.MempoolCount(); n != pool {
		t.Fatalf("mempool went from %d to %d on refused imports", pool, n)
	}
	r = ok("btc", "send", "--json", "--request-id", "cc-file-1", "--import-psbt", signedFile, "--rpc", node.URL())
	var paid daemon.BtcSendResult
	if err := json.Unmarshal([]byte(r.stdout), &paid); err != nil || paid.TxID == "" || paid.PlanID != ex.PlanID {
		t.Fatalf("import: %v %+v", err, paid)
	}
	if !inPool(paid.TxID) {
		t.Fatalf("%s is not in the mempool", paid.TxID)
	}
}

// TestColdcardThroughDaemon: the conformance suite on a Coldcard-class emulator served by
// hwbridged's hub (hwbridged --emulator unix:PATH), through the daemon's socket.
func TestColdcardThroughDaemon(t *testing.T) {
	start := func(t *testing.T, policy emulator.Policy) *daemon.Client {
		path, _ := serveColdcard(t, "BTC", policy)
		return startDaemonOn(t, path, func() transport.Link {
			l, err := transport.DialColdcardSim(context.Background(), strings.TrimPrefix(path, transport.SchemeUnix+":"))
			if err != nil {
				return failedLink{err}
			}
			return l
		})
	}
	auto, reject := start(t, emulator.PolicyAuto), start(t, emulator.PolicyReject)
	devicetest.Run(t, func(t *testing.T) device.Device { return &remoteDevice{c: auto} }, devicetest.Capabilities{
		Groups: []devicetest.Group{devicetest.GroupBitcoin}, Taproot: true,
	})
	// the suite's rejection scenario also declines an address display, which a Coldcard
	// never asks about: the refusals it does have, through the daemon
	d := &remoteDevice{c: reject}
	ctx := t.Context()
	p := devicetest.NewSpend(t, ctx, d, &chaincfg.MainNetParams, []device.ScriptType{device.ScriptWPKH}, devicetest.SpendOptions{})
	if err := d.SignPSBT(ctx, p, &chaincfg.MainNetParams); !errors.Is(err, device.ErrUserRejected) {
		t.Fatalf("sign psbt: %v, want ErrUserRejected", err)
	}
	if _, err := d.SignMessage(ctx, device.MessageRequest{Chain: device.ChainBTC, Path: hdpath.MustParse("m/84'/0'/0'/0/0"), Script: device.ScriptWPKH, Message: []byte("hello")}); !errors.Is(err, device.ErrUserRejected) {
		t.Fatalf("sign message: %v, want ErrUserRejected", err)
	}
	if _, err := d.Address(ctx, device.AddressRequest{Chain: device.ChainETH, Path: hdpath.MustParse("m/44'/60'/0'/0/0")}); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("eth address: %v, want errors.ErrUnsupported", err)
	}
}

// failedLink is a link that could not be opened: every call fails with why.
type failedLink struct{ err error }

func (f failedLink) Read([]byte) (int, error)    { return 0, f.err }
func (f failedLink) Write([]byte) (int, error)   { return 0, f.err }
func (f failedLink) Close() error                { return nil }
func (f failedLink) SetDeadline(time.Time) error { return nil }
