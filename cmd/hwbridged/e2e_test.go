package main

// End-to-end tests of the real hwbridged binary: built into a temporary directory, run on a
// temporary socket with the Trezor emulator served over UDP from this test process, and
// driven with the daemon's Go client, the hwbridge CLI binary and go-ethereum's own
// accounts/external client.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/accounts/external"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/hwbridge/hwbridge/chains/bitcoin"
	"github.com/hwbridge/hwbridge/chains/ethereum"
	"github.com/hwbridge/hwbridge/daemon"
	"github.com/hwbridge/hwbridge/daemon/journal"
	"github.com/hwbridge/hwbridge/daemon/keys"
	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/emulator"
	trezoremu "github.com/hwbridge/hwbridge/emulator/trezor"
	"github.com/hwbridge/hwbridge/internal/devchain/btcregtest"
	"github.com/hwbridge/hwbridge/internal/devchain/ethdev"
)

// The standard test mnemonic's first Ethereum account (m/44'/60'/0'/0/0).
var deviceAddr = common.HexToAddress("0x9858EfFD232B4033E47d90003D41EC34EcaEda94")

// buildBinaries builds hwbridged and hwbridge once per test binary run.
var buildOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "hwbd-bin")
	if err != nil {
		return "", err
	}
	for _, b := range []struct{ out, pkg string }{{"hwbridged", "."}, {"hwbridge", "../hwbridge"}} {
		out, err := exec.Command("go", "build", "-o", filepath.Join(dir, b.out), b.pkg).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
		}
	}
	return dir, nil
})

// syncBuffer collects a process's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// world is one emulator, one data directory and the daemon process serving them.
type world struct {
	t        testing.TB
	bin      string
	dir      string
	socket   string
	ext      string
	dataDir  string
	emuAddr  string
	approver *emulator.Approver
	cmd      *exec.Cmd
	log      *syncBuffer
}

func newWorld(t testing.TB) *world {
	t.Helper()
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "hwbe")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	approver := emulator.NewApprover(emulator.PolicyAuto)
	emu, err := trezoremu.New(trezoremu.Options{Approver: approver})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := emu.ListenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { srv.Serve(ctx); close(served) }()
	t.Cleanup(func() { cancel(); <-served; emu.Close() })
	w := &world{t: t, bin: bin, dir: dir, socket: filepath.Join(dir, "d.sock"), ext: filepath.Join(dir, "ext.sock"),
		dataDir: filepath.Join(dir, "data"), emuAddr: "udp:" + srv.Addr().String(), approver: approver}
	w.start()
	t.Cleanup(w.stop)
	return w
}

// start runs the daemon and waits for its socket.
func (w *world) start() {
	w.t.Helper()
	w.log = &syncBuffer{}
	w.cmd = exec.Command(filepath.Join(w.bin, "hwbridged"), "--socket", w.socket, "--data-dir", w.dataDir,
		"--emulator", w.emuAddr, "--extapi-app", "geth", "--extapi-socket", w.ext, "--poll", "200ms", "--log-level", "debug")
	w.cmd.Stderr = w.log
	if err := w.cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	c := &daemon.Client{Socket: w.socket}
	defer c.Close()
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Version(ctx)
		cancel()
		if err == nil {
			break
		}
		c.Close()
		if i > 200 {
			w.t.Fatalf("hwbridged did not come up: %v\n%s", err, w.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill ends the daemon with SIGKILL: no clean shutdown, as a crash.
func (w *world) kill() {
	w.cmd.Process.Kill()
	w.cmd.Wait()
	w.cmd = nil
}

// stop ends the daemon with SIGTERM and checks it shut down cleanly.
func (w *world) stop() {
	if w.cmd == nil {
		return
	}
	w.cmd.Process.Signal(syscall.SIGTERM)
	err := w.cmd.Wait()
	w.cmd = nil
	if err != nil {
		w.t.Errorf("hwbridged exit: %v\n%s", err, w.log.String())
	}
	if _, err := os.Stat(w.socket); !errors.Is(err, os.ErrNotExist) {
		w.t.Errorf("socket left behind after a clean stop: %v", err)
	}
}

// cli runs the hwbridge binary against the daemon.
func (w *world) cli(args ...string) (string, string, int) {
	w.t.Helper()
	cmd := exec.Command(filepath.Join(w.bin, "hwbridge"), append([]string{"--socket", w.socket}, args...)...)
	cmd.Env = append(os.Environ(), "HWBRIDGE_DATA_DIR="+w.dataDir, "HOME="+w.dir, "XDG_RUNTIME_DIR=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		w.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// pair asks to pair as name and approves with the CLI; it returns the app's client.
func (w *world) pair(name string, scopes ...keys.Scope) *daemon.Client {
	w.t.Helper()
	app := &daemon.Client{Socket: w.socket}
	w.t.Cleanup(app.Close)
	errc := make(chan error, 1)
	go func() {
		_, err := app.Pair(context.Background(), keys.PairRequest{Name: name, Scopes: scopes})
		errc <- err
	}()
	var id string
	for i := 0; id == ""; i++ {
		out, errs, code := w.cli("apps", "list", "--json")
		if code != 0 {
			w.t.Fatalf("apps list: %d %s", code, errs)
		}
		var apps []keys.App
		if err := json.Unmarshal([]byte(out), &apps); err != nil {
			w.t.Fatal(err)
		}
		for _, a := range apps {
			if a.Name == name && a.Status == keys.StatusPending {
				id = a.ID
			}
		}
		if i > 100 {
			w.t.Fatal("pairing request never showed up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out, errs, code := w.cli("apps", "approve", id); code != 0 {
		w.t.Fatalf("apps approve: %d %s %s", code, out, errs)
	}
	if err := <-errc; err != nil {
		w.t.Fatal(err)
	}
	return app
}

func TestDaemonBinary(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()

	t.Run("unpaired app is refused", func(t *testing.T) {
		c := &daemon.Client{Socket: w.socket, Key: "hwbk1.0123456789.1.AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"}
		defer c.Close()
		if err := c.Call(ctx, "v1Devices", nil, nil); !errors.Is(err, keys.ErrUnknownApp) {
			t.Fatalf("got %v", err)
		}
	})

	reader := w.pair("reader", keys.ScopeRead)
	t.Run("read key lists, reads, cannot sign", func(t *testing.T) {
		var devs []device.Info
		if err := reader.Call(ctx, "v1Devices", nil, &devs); err != nil || len(devs) != 1 || devs[0].Path != w.emuAddr || !devs[0].Emulator {
			t.Fatalf("devices %+v %v", devs, err)
		}
		var a daemon.AddressResult
		if err := reader.Call(ctx, "v1Address", daemon.AddressParams{Chain: "eth", Path: "m/44'/60'/0'/0/0"}, &a); err != nil || a.Address != deviceAddr.Hex() {
			t.Fatalf("address %+v %v", a, err)
		}
		n := len(w.approver.Transcript())
		err := reader.Call(ctx, "v1SignMessage", daemon.SignMessageParams{Chain: "eth", Path: "m/44'/60'/0'/0/0", Message: "x"}, nil)
		if !errors.Is(err, keys.ErrScope) {
			t.Fatalf("sign with a read key: %v", err)
		}
		if len(w.approver.Transcript()) != n {
			t.Fatal("the device was asked although the key may not sign")
		}
	})

	t.Run("replayed and stale requests are refused", func(t *testing.T) {
		rc, err := rpc.DialIPC(ctx, w.socket)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		raw := json.RawMessage(`{"chain":"btc","path":"m/84'/0'/0'/0/1"}`)
		auth, _ := keys.Sign(reader.Key, "hwbridge_v1Address", raw, time.Now())
		if err := rc.CallContext(ctx, nil, "hwbridge_v1Address", auth, raw); err != nil {
			t.Fatal(err)
		}
		if err := daemon.FromClientError(rc.CallContext(ctx, nil, "hwbridge_v1Address", auth, raw)); !errors.Is(err, keys.ErrReplay) {
			t.Fatalf("replay: %v", err)
		}
		stale, _ := keys.Sign(reader.Key, "hwbridge_v1Address", raw, time.Now().Add(-90*time.Second))
		if err := daemon.FromClientError(rc.CallContext(ctx, nil, "hwbridge_v1Address", stale, raw)); !errors.Is(err, keys.ErrStale) {
			t.Fatalf("stale: %v", err)
		}
	})

	t.Run("rotation with overlap keeps the app working, revoke is immediate", func(t *testing.T) {
		app := w.pair("rotating", keys.ScopeRead)
		stop := make(chan struct{})
		var failures []error
		var wg sync.WaitGroup
		var mu sync.Mutex
		current := app.Key
		wg.Go(func() { // the app keeps calling throughout, switching keys when it gets the new one
			for {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				c := &daemon.Client{Socket: w.socket, Key: current}
				mu.Unlock()
				if err := c.Call(ctx, "v1Devices", nil, nil); err != nil {
					failures = append(failures, err)
				}
				c.Close()
			}
		})
		old := app.Key
		pk, _ := keys.ParseKey(old)
		out, errs, code := w.cli("apps", "rotate", pk.App, "--overlap", "2s", "--json")
		if code != 0 {
			t.Fatalf("rotate: %s", errs)
		}
		var rot daemon.RotateResult
		if err := json.Unmarshal([]byte(out), &rot); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond) // the app still uses the old key for a while
		mu.Lock()
		current = rot.Key
		mu.Unlock()
		time.Sleep(2 * time.Second)
		close(stop)
		wg.Wait()
		if len(failures) > 0 {
			t.Fatalf("%d calls failed during the rotation, first: %v", len(failures), failures[0])
		}
		oldC := &daemon.Client{Socket: w.socket, Key: old}
		defer oldC.Close()
		if err := oldC.Call(ctx, "v1Devices", nil, nil); !errors.Is(err, keys.ErrKeyExpired) {
			t.Fatalf("old key after the overlap: %v", err)
		}
		newC := &daemon.Client{Socket: w.socket, Key: rot.Key}
		defer newC.Close()
		if err := newC.Call(ctx, "v1Devices", nil, nil); err != nil {
			t.Fatal(err)
		}
		if _, errs, code := w.cli("apps", "revoke", pk.App); code != 0 {
			t.Fatalf("revoke: %s", errs)
		}
		if err := newC.Call(ctx, "v1Devices", nil, nil); !errors.Is(err, keys.ErrRevoked) {
			t.Fatalf("after revoke: %v", err)
		}
	})

	t.Run("cli in daemon mode keeps the error taxonomy", func(t *testing.T) {
		out, errs, code := w.cli("address", "--chain", "eth", "--index", "0")
		if code != 0 || !strings.Contains(out, deviceAddr.Hex()) {
			t.Fatalf("address through the daemon: %d %q %q", code, out, errs)
		}
		out, _, code = w.cli("devices")
		if code != 0 || !strings.Contains(out, w.emuAddr) || !strings.Contains(out, "73c5da0a") {
			t.Fatalf("devices through the daemon: %d %q", code, out)
		}
		w.approver.SetPolicy(emulator.PolicyReject)
		_, errs, code = w.cli("eth", "sign-message", "no thanks")
		w.approver.SetPolicy(emulator.PolicyAuto)
		if code != 3 {
			t.Fatalf("rejected on the device through the daemon: exit %d %q", code, errs)
		}
	})

	t.Run("concurrent clients are served one at a time", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for i := range 20 {
			wg.Go(func() {
				var a daemon.AddressResult
				err := reader.Call(ctx, "v1Address", daemon.AddressParams{Chain: "btc", Path: fmt.Sprintf("m/84'/0'/0'/0/%d", i%3)}, &a)
				if err == nil && !strings.HasPrefix(a.Address, "bc1q") {
					err = fmt.Errorf("address %q", a.Address)
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("external signer through go-ethereum's client", func(t *testing.T) {
		w.pair("geth", keys.ScopeRead, keys.ScopeSign)
		signer, err := external.NewExternalSigner(w.ext)
		if err != nil {
			t.Fatal(err)
		}
		accts := signer.Accounts()
		if len(accts) != daemon.DefaultExtAPIAccounts || accts[0].Address != deviceAddr {
			t.Fatalf("accounts %+v", accts)
		}
		to := common.HexToAddress("0x000000000000000000000000000000000000dEaD")
		chainID := big.NewInt(1337)
		tx := types.NewTx(&types.DynamicFeeTx{ChainID: chainID, Nonce: 7, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(3e9), Gas: 21000, To: &to, Value: big.NewInt(12345)})
		signed, err := signer.SignTx(accounts.Account{Address: deviceAddr}, tx, chainID)
		if err != nil {
			t.Fatal(err)
		}
		from, err := types.Sender(types.LatestSignerForChainID(chainID), signed)
		if err != nil || from != deviceAddr || signed.Nonce() != 7 || signed.Value().Int64() != 12345 {
			t.Fatalf("signed by %s (%v), nonce %d", from.Hex(), err, signed.Nonce())
		}
		sig, err := signer.SignText(accounts.Account{Address: deviceAddr}, []byte("hello"))
		if err != nil || len(sig) != 65 {
			t.Fatalf("sign text: %x %v", sig, err)
		}
	})

	t.Run("sign-and-broadcast with a request id pays once, across a crash", func(t *testing.T) {
		node, err := ethdev.Start(ctx, ethdev.Options{Prefund: []common.Address{deviceAddr}})
		if err != nil {
			t.Fatal(err)
		}
		defer node.Close()
		ec, err := ethclient.Dial(node.URL())
		if err != nil {
			t.Fatal(err)
		}
		defer ec.Close()
		wallet := w.pair("wallet", keys.ScopeRead, keys.ScopeSign, keys.ScopeBroadcast)
		to := common.HexToAddress("0x1111111111111111111111111111111111111111")
		send := daemon.EthSendParams{RequestID: "pay-1", SendOrder: ethereum.SendOrder{RPC: node.URL(), To: to.Hex(), Value: "0.5", ChainID: "1337"}}

		before := len(w.approver.Transcript())
		var first daemon.EthSendResult
		if err := wallet.Call(ctx, "v1EthSend", send, &first); err != nil {
			t.Fatal(err)
		}
		signScreens := len(w.approver.Transcript()) - before
		if signScreens == 0 || first.Replayed {
			t.Fatalf("first send: %+v, %d screens", first, signScreens)
		}
		var again daemon.EthSendResult
		if err := wallet.Call(ctx, "v1EthSend", send, &again); err != nil || again.Hash != first.Hash || !again.Replayed {
			t.Fatalf("retry: %+v %v", again, err)
		}
		// The daemon dies (SIGKILL) and comes back: the retry is answered from the journal.
		w.kill()
		w.start()
		if err := wallet.Call(ctx, "v1EthSend", send, &again); err != nil || again.Hash != first.Hash || !again.Replayed {
			t.Fatalf("retry after a crash: %+v %v", again, err)
		}
		if n := len(w.approver.Transcript()) - before; n != signScreens {
			t.Fatalf("the device showed %d screens, want %d (one signing)", n, signScreens)
		}
		send.Value = "0.7"
		if err := wallet.Call(ctx, "v1EthSend", send, nil); !errors.Is(err, journal.ErrParamsMismatch) {
			t.Fatalf("same id, other params: %v", err)
		}

		// A send still waiting on the device when the daemon dies had nothing signed in hand:
		// its retry runs from the start, and pays once.
		w.approver.SetPolicy(emulator.PolicyPrompt)
		pending := daemon.EthSendParams{RequestID: "pay-2", SendOrder: ethereum.SendOrder{RPC: node.URL(), To: to.Hex(), Value: "0.25", ChainID: "1337"}}
		errc := make(chan error, 1)
		go func() { errc <- wallet.Call(ctx, "v1EthSend", pending, nil) }()
		for i := 0; ; i++ {
			if _, ok := w.approver.Pending(); ok {
				break
			}
			if i > 500 {
				t.Fatal("no confirmation screen")
			}
			time.Sleep(10 * time.Millisecond)
		}
		w.kill()
		if err := <-errc; err == nil {
			t.Fatal("the interrupted call succeeded")
		}
		w.approver.SetPolicy(emulator.PolicyAuto)
		w.approver.Press(false)
		w.start()
		var second daemon.EthSendResult
		if err := wallet.Call(ctx, "v1EthSend", pending, &second); err != nil || second.Replayed {
			t.Fatalf("retry of an interrupted send: %+v %v", second, err)
		}
		if err := wallet.Call(ctx, "v1EthSend", pending, &again); err != nil || !again.Replayed || again.Hash != second.Hash {
			t.Fatalf("second retry: %+v %v", again, err)
		}

		// On the node: one payment.
		var rcpt *types.Receipt
		for i := 0; ; i++ {
			if rcpt, err = ec.TransactionReceipt(ctx, common.HexToHash(first.Hash)); err == nil {
				break
			}
			if i > 200 {
				t.Fatalf("no receipt: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if rcpt.Status != types.ReceiptStatusSuccessful {
			t.Fatal("payment failed")
		}
		bal, err := ec.BalanceAt(ctx, to, nil)
		if err != nil || bal.Cmp(new(big.Int).Div(big.NewInt(3e18), big.NewInt(4))) != 0 {
			t.Fatalf("recipient holds %s wei, want exactly 0.5 + 0.25 ETH", bal)
		}
		nonce, err := ec.NonceAt(ctx, deviceAddr, nil)
		if err != nil || nonce != 2 {
			t.Fatalf("the device account sent %d transactions, want 2", nonce)
		}
	})

	t.Run("btc send with a request id pays once, across a crash", func(t *testing.T) {
		wallet := w.pair("btc-wallet", keys.ScopeRead, keys.ScopeSign, keys.ScopeBroadcast)
		var recv daemon.AddressResult
		if err := wallet.Call(ctx, "v1Address", daemon.AddressParams{Chain: "btc", Path: "m/84'/1'/0'/0/0", Network: "regtest"}, &recv); err != nil {
			t.Fatal(err)
		}
		mineTo, err := btcutil.DecodeAddress(recv.Address, &chaincfg.RegressionNetParams)
		if err != nil {
			t.Fatal(err)
		}
		node, err := btcregtest.Start(ctx, btcregtest.NodeOptions{MiningAddr: mineTo})
		if err != nil {
			t.Fatal(err)
		}
		defer node.Close()
		to := "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
		send := daemon.BtcSendParams{RequestID: "btc-1", SendOrder: bitcoin.SendOrder{RPC: node.URL(), Network: "regtest",
			To: to, Amount: "1.25", FeeRate: "2"}}
		before := len(w.approver.Transcript())
		var first daemon.BtcSendResult
		if err := wallet.Call(ctx, "v1BtcSend", send, &first); err != nil {
			t.Fatal(err)
		}
		screens := len(w.approver.Transcript()) - before
		w.kill()
		w.start()
		var again daemon.BtcSendResult
		if err := wallet.Call(ctx, "v1BtcSend", send, &again); err != nil || again.TxID != first.TxID || !again.Replayed {
			t.Fatalf("retry after a crash: %+v %v", again, err)
		}
		if n := len(w.approver.Transcript()) - before; n != screens || screens == 0 {
			t.Fatalf("device screens %d, want %d from one signing", n, screens)
		}
		rpcc, err := bitcoin.NewRPC(node.URL(), &chaincfg.RegressionNetParams)
		if err != nil {
			t.Fatal(err)
		}
		var pool []string
		if err := rpcc.Call(ctx, "getrawmempool", &pool); err != nil || len(pool) != 1 || pool[0] != first.TxID {
			t.Fatalf("mempool %v (%v), want exactly [%s]", pool, err, first.TxID)
		}
		// The journal vanishes while the daemon is stopped: the retry is refused, not paid again,
		// until a person checks and accepts the loss (hwbridge journal check / accept-loss).
		for _, harm := range []string{"delete", "empty"} {
			w.stop()
			jpath := filepath.Join(w.dataDir, daemon.JournalFile)
			if harm == "delete" {
				os.Remove(jpath)
			} else {
				os.WriteFile(jpath, nil, 0o600)
			}
			w.start()
			if err := wallet.Call(ctx, "v1BtcSend", send, &again); !errors.Is(err, journal.ErrLost) {
				t.Fatalf("retry after the journal was %sd: %+v %v", harm, again, err)
			}
			w.stop()
			if out, errs, code := w.cli("journal", "check", "--data-dir", w.dataDir); code != 1 || !strings.Contains(out+errs, "lost") {
				t.Fatalf("journal check: %d %q %q", code, out, errs)
			}
			if out, errs, code := w.cli("journal", "accept-loss", "--data-dir", w.dataDir, "--reason", "test: checked the mempool"); code != 0 {
				t.Fatalf("journal accept-loss: %d %q %q", code, out, errs)
			}
			w.start()
			send.RequestID = "btc-after-" + harm
			var fresh daemon.BtcSendResult
			if err := wallet.Call(ctx, "v1BtcSend", send, &fresh); err != nil || fresh.Replayed {
				t.Fatalf("a new request after accept-loss: %+v %v", fresh, err)
			}
		}
		if err := rpcc.Call(ctx, "getrawmempool", &pool); err != nil || len(pool) != 3 {
			t.Fatalf("mempool %v (%v), want the first payment and the two new ones", pool, err)
		}
	})

	t.Run("audit verify passes, then detects tampering", func(t *testing.T) {
		out, errs, code := w.cli("audit", "verify", "--data-dir", w.dataDir)
		if code != 0 || !strings.HasPrefix(out, "ok:") {
			t.Fatalf("audit verify: %d %q %q", code, out, errs)
		}
		path := filepath.Join(w.dataDir, daemon.AuditFile)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"v1EthSend", "v1AppsApprove", "v1AppsRevoke", "account_signTransaction", "v1Address"} {
			if !bytes.Contains(b, []byte(`"method":"`+want+`"`)) {
				t.Errorf("no audit record for %s", want)
			}
		}
		w.stop()
		tampered := bytes.Replace(b, []byte("value 0.5 "), []byte("value 0.1 "), 1)
		if bytes.Equal(tampered, b) {
			t.Fatal("nothing to tamper with")
		}
		if err := os.WriteFile(path, tampered, 0o600); err != nil {
			t.Fatal(err)
		}
		_, errs, code = w.cli("audit", "verify", "--data-dir", w.dataDir)
		if code != 1 || !strings.Contains(errs, "edited") {
			t.Fatalf("tampered log: exit %d %q", code, errs)
		}
	})
}
