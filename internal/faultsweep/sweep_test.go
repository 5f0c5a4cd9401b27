package faultsweep

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/hwbridge/hwbridge/chains/bitcoin"
	"github.com/hwbridge/hwbridge/daemon"
	"github.com/hwbridge/hwbridge/daemon/journal"
	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/devicetest"
	"github.com/hwbridge/hwbridge/device/drivers"
	"github.com/hwbridge/hwbridge/emulator"
	ledgeremu "github.com/hwbridge/hwbridge/emulator/ledger"
	trezoremu "github.com/hwbridge/hwbridge/emulator/trezor"
	"github.com/hwbridge/hwbridge/internal/devchain/btcregtest"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/transport"
)

// Figures of the sweep.
const (
	// faultedWait is the caller's deadline for a call under a fault: above the drivers' link
	// timeout (3 s), so that a lost reply must surface as device.ErrLinkLost, and below the
	// 10 s the sweep promises.
	faultedWait = 6 * time.Second
	// promised is the bound a faulted call must fail within.
	promised = 10 * time.Second
	// workers per family: the sweep's time is waiting on link timeouts, so rigs run side by
	// side (each its own emulator, hub, journal and chain).
	workers = 12
)

// Fault kinds.
const (
	kindDrop       = "drop"
	kindCorrupt    = "corrupt"
	kindDisconnect = "disconnect"
)

// family is one device family under the sweep.
type family struct {
	name string
	path string // the hub path it is served at (the link is an in-process pipe)
	open func(t *testing.T, f *emulator.Faults) func() transport.Link
}

var families = []family{
	{"trezor", "udp:127.0.0.1:21324", func(t *testing.T, f *emulator.Faults) func() transport.Link {
		d := trezoremu.NewForTest(t, trezoremu.Options{Mnemonic: devicetest.Mnemonic, Faults: f})
		return d.Pipe
	}},
	{"ledger", "tcp:127.0.0.1:9999", func(t *testing.T, f *emulator.Faults) func() transport.Link {
		d := ledgeremu.NewForTest(t, ledgeremu.Config{Mnemonic: devicetest.Mnemonic, App: ledgeremu.AppBitcoinTest, Faults: f})
		return d.Pipe
	}},
}

// faucetKey holds the regtest chain's coinbases.
func faucetKey() *btcec.PrivateKey {
	seed := sha256.Sum256([]byte("hwbridge fault sweep faucet"))
	k, _ := btcec.PrivKeyFromBytes(seed[:])
	return k
}

var regtest = &chaincfg.RegressionNetParams

// rig is one emulated device behind a hub wired as hwbridged wires it, its own journal and
// its own regtest chain with the device's account funded.
type rig struct {
	fam    family
	hub    *device.Hub
	faults *emulator.Faults
	node   *btcregtest.Node
	rpc    *rpcclient.Client
	j      *journal.Journal
	to     btcutil.Address // where the payments go (not the device's)
	faucet btcutil.Address
	mined  []chainhash.Hash // blocks mined after funding
}

func newRig(t *testing.T, fam family) *rig {
	t.Helper()
	r := &rig{fam: fam, faults: new(emulator.Faults)}
	link := fam.open(t, r.faults)
	r.hub = device.NewHub(device.HubConfig{
		Drivers:   drivers.Hub(drivers.Options{}),
		Emulators: []string{fam.path},
		Open:      func(context.Context, string) (transport.Link, error) { return link(), nil },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.hub.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	var err error
	if r.j, err = daemon.OpenJournal(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.j.Close() })

	fk := faucetKey()
	faucet, err := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(fk.PubKey().SerializeCompressed()), regtest)
	if err != nil {
		t.Fatal(err)
	}
	r.faucet = faucet
	if r.node, err = btcregtest.Start(t.Context(), btcregtest.NodeOptions{MiningAddr: faucet}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.node.Close() })
	u, err := url.Parse(r.node.URL())
	if err != nil {
		t.Fatal(err)
	}
	pass, _ := u.User.Password()
	if r.rpc, err = rpcclient.New(&rpcclient.ConnConfig{Host: u.Host, User: u.User.Username(), Pass: pass, HTTPPostMode: true, DisableTLS: true}, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.rpc.Shutdown)
	toKey := sha256.Sum256([]byte("hwbridge fault sweep payee"))
	if r.to, err = btcutil.NewAddressWitnessPubKeyHash(toKey[:20], regtest); err != nil {
		t.Fatal(err)
	}

	// Fund the device's wpkh account 0 (receive index 0) from the first coinbase.
	var addr string
	err = r.hub.Do(t.Context(), fam.path, "sweep", func(ctx context.Context, d device.Device) error {
		addr, err = d.Address(ctx, device.AddressRequest{Chain: device.ChainBTC, Script: device.ScriptWPKH, Network: regtest,
			Path: hdpath.Path{84 + hdpath.Hardened, 1 + hdpath.Hardened, hdpath.Hardened, 0, 0}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	devAddr, err := btcutil.DecodeAddress(addr, regtest)
	if err != nil {
		t.Fatal(err)
	}
	h1, err := r.rpc.GetBlockHash(1)
	if err != nil {
		t.Fatal(err)
	}
	b1, err := r.rpc.GetBlock(h1)
	if err != nil {
		t.Fatal(err)
	}
	cb := b1.Transactions[0]
	fund := wire.NewMsgTx(2)
	fund.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: cb.TxHash(), Index: 0}, nil, nil))
	devScript, _ := txscript.PayToAddrScript(devAddr)
	fund.AddTxOut(wire.NewTxOut(cb.TxOut[0].Value-10_000, devScript))
	prev := txscript.NewCannedPrevOutputFetcher(cb.TxOut[0].PkScript, cb.TxOut[0].Value)
	wit, err := txscript.WitnessSignature(fund, txscript.NewTxSigHashes(fund, prev), 0, cb.TxOut[0].Value, cb.TxOut[0].PkScript, txscript.SigHashAll, fk, true)
	if err != nil {
		t.Fatal(err)
	}
	fund.TxIn[0].Witness = wit
	if _, err := r.rpc.SendRawTransaction(fund, false); err != nil {
		t.Fatal(err)
	}
	if err := r.mine(t.Context()); err != nil {
		t.Fatal(err)
	}
	r.mined = nil
	return r
}

func (r *rig) mine(ctx context.Context) error {
	h, err := r.node.Chain.Mine(ctx, 1, r.faucet)
	r.mined = append(r.mined, h...)
	return err
}

// keys and signing go through the hub, as the daemon's v1BtcSend does (hubDevice).
type hubSigner struct{ r *rig }

func (h hubSigner) Fingerprint(ctx context.Context) (device.Fingerprint, error) {
	return h.r.hub.Fingerprint(ctx, h.r.fam.path)
}

func (h hubSigner) XPub(ctx context.Context, req device.XPubRequest) (string, error) {
	return h.r.hub.XPub(ctx, h.r.fam.path, "sweep", req)
}

func (h hubSigner) SignPSBT(ctx context.Context, p *psbt.Packet, n *chaincfg.Params) error {
	return h.r.hub.Do(ctx, h.r.fam.path, "sweep", func(ctx context.Context, d device.Device) error { return d.SignPSBT(ctx, p, n) })
}

// send pays amount (BTC) to r.to under request id through the journaled pipeline.
func (r *rig) send(ctx context.Context, id, amount string) (*daemon.BtcSendResult, error) {
	p := daemon.BtcSendParams{RequestID: id, Device: r.fam.path}
	p.RPC, p.Network, p.To, p.Amount, p.FeeRate, p.Gap = r.node.URL(), "regtest", r.to.EncodeAddress(), amount, "2", 2
	return daemon.RunBTCSend(ctx, r.j, daemon.CLIAppID, p, hubSigner{r}, hubSigner{r}, bitcoin.Hooks{})
}

// payments counts, by amount in satoshis, the outputs paying r.to in the blocks mined since
// funding, and the transactions left in the mempool.
func (r *rig) payments(t *testing.T) (map[int64]int, int) {
	t.Helper()
	script, _ := txscript.PayToAddrScript(r.to)
	got := map[int64]int{}
	for _, h := range r.mined {
		b, err := r.rpc.GetBlock(&h)
		if err != nil {
			t.Fatal(err)
		}
		for _, tx := range b.Transactions {
			for _, o := range tx.TxOut {
				if string(o.PkScript) == string(script) {
					got[o.Value]++
				}
			}
		}
	}
	return got, r.node.MempoolCount()
}

// flowLength runs one clean send (after a first one that fills the hub's caches) and reads
// how many packets the device sent and messages it received in it.
func (r *rig) flowLength(t *testing.T) (out, in int) {
	t.Helper()
	for i, id := range []string{"warm", "measure"} {
		before := r.faults.State()
		if _, err := r.send(t.Context(), id, fmt.Sprintf("0.0000%d", 5000+i)); err != nil {
			t.Fatalf("clean send: %v", err)
		}
		if err := r.mine(t.Context()); err != nil {
			t.Fatal(err)
		}
		after := r.faults.State()
		out, in = int(after.Sent-before.Sent), int(after.Received-before.Received)
	}
	return out, in
}

// sweepCase is one fault at one index.
type sweepCase struct {
	kind  string
	index int
	n     int // the case's number: its amount is 10000+n sat, so the chain tells payments apart
}

func (c sweepCase) spec() emulator.FaultSpec {
	s := emulator.FaultSpec{Clear: true}
	switch c.kind {
	case kindDrop:
		s.DropAt = c.index
	case kindCorrupt:
		s.CorruptAt = c.index
	default:
		s.DisconnectAt = c.index
	}
	return s
}

// outcome is what one case did.
type outcome struct {
	c       sweepCase
	err     error         // the faulted call's error (nil: the fault missed the device flow)
	took    time.Duration // the faulted call
	screen  bool          // it ended at the caller's deadline: the lost reply may have followed a screen
	txid    string
	failure string // why the case failed the sweep, "" when it passed
}

// run runs one case on r: the faulted call, the retry under the same request id, a replay.
func (r *rig) run(t *testing.T, c sweepCase) outcome {
	o := outcome{c: c}
	id := fmt.Sprintf("%s-%s-%d", r.fam.name, c.kind, c.index)
	amount := btcutil.Amount(10_000 + c.n).ToBTC()
	amt := fmt.Sprintf("%.8f", amount)
	if err := r.faults.Apply(c.spec()); err != nil {
		o.failure = err.Error()
		return o
	}
	ctx, cancel := context.WithTimeout(t.Context(), faultedWait)
	start := time.Now()
	_, o.err = r.send(ctx, id, amt)
	o.took = time.Since(start)
	cancel()
	r.faults.Clear()
	if o.err != nil {
		o.failure = classify(o.err, &o.screen)
	}
	if o.took > promised {
		o.failure = fmt.Sprintf("took %v, more than %v: %v", o.took, promised, o.err)
	}
	res, err := r.send(t.Context(), id, amt)
	if err != nil {
		o.failure = fmt.Sprintf("the retry failed: %v (after %v)", err, o.err)
		return o
	}
	o.txid = res.TxID
	again, err := r.send(t.Context(), id, amt)
	if err != nil || again.TxID != res.TxID || (o.err != nil && !again.Replayed) {
		o.failure = fmt.Sprintf("the replay: %v %+v", err, again)
	}
	if err := r.mine(t.Context()); err != nil {
		o.failure = err.Error()
	}
	return o
}

// classify checks that a faulted call's error is clear: a lost reply is device.ErrLinkLost
// and says no confirmation was pending; a garbled one is device.ErrProtocol; a dropped
// link device.ErrDisconnected; a reply lost right after a screen (the person's wait) ends
// at the caller's deadline and says a confirmation may have been pending.
func classify(err error, screen *bool) string {
	msg := err.Error()
	switch {
	case errors.Is(err, device.ErrLinkLost):
		if !strings.Contains(msg, "no confirmation was pending") || !strings.Contains(msg, "next call") {
			return "unclear link-lost error: " + msg
		}
	case errors.Is(err, context.DeadlineExceeded):
		if !strings.Contains(msg, "confirmation") {
			return "a caller-deadline error that does not name the confirmation: " + msg
		}
		*screen = true
	case errors.Is(err, device.ErrProtocol), errors.Is(err, device.ErrDisconnected):
	default:
		return "an error of no link kind: " + msg
	}
	return ""
}

// TestFaultSweep: see the package documentation. It logs the counts and the time a lost
// packet costs.
func TestFaultSweep(t *testing.T) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			t.Parallel()
			rigs := make([]*rig, workers)
			for i := range rigs {
				rigs[i] = newRig(t, fam)
			}
			nOut, nIn := rigs[0].flowLength(t)
			for _, r := range rigs[1:] {
				r.flowLength(t) // fills the caches alike
			}
			t.Logf("%s send flow: %d packets from the device, %d messages to it", fam.name, nOut, nIn)
			var cases []sweepCase
			for _, k := range []string{kindDrop, kindCorrupt, kindDisconnect} {
				n := nOut
				if k == kindDisconnect {
					n = nIn
				}
				for i := 1; i <= n; i++ {
					cases = append(cases, sweepCase{kind: k, index: i, n: len(cases)})
				}
			}
			queue := make(chan sweepCase)
			results := make(chan outcome, len(cases))
			var run sync.WaitGroup
			for _, r := range rigs {
				run.Go(func() {
					for c := range queue {
						results <- r.run(t, c)
					}
				})
			}
			for _, c := range cases {
				queue <- c
			}
			close(queue)
			run.Wait()
			close(results)

			type tally struct {
				injected, hit, survived, screen, lost int
				maxTook, sumTook, sumLost             time.Duration
			}
			byKind := map[string]*tally{}
			want := map[int64]bool{}
			for o := range results {
				k := byKind[o.c.kind]
				if k == nil {
					k = &tally{}
					byKind[o.c.kind] = k
				}
				k.injected++
				if o.err != nil {
					k.hit++
					k.sumTook += o.took
					k.maxTook = max(k.maxTook, o.took)
				}
				if o.screen {
					k.screen++
					if o.c.kind != kindDrop {
						t.Errorf("%s %s at %d waited for the caller's deadline: only a lost reply can", fam.name, o.c.kind, o.c.index)
					}
				}
				if errors.Is(o.err, device.ErrLinkLost) {
					k.lost++
					k.sumLost += o.took
				}
				if o.failure != "" {
					t.Errorf("%s %s at %d: %s", fam.name, o.c.kind, o.c.index, o.failure)
				} else {
					k.survived++
				}
				want[int64(10_000+o.c.n)] = true
			}
			// Every payment is on the chain exactly once, whatever rig made it.
			paid := map[int64]int{}
			for _, r := range rigs {
				got, pool := r.payments(t)
				if pool != 0 {
					t.Errorf("%d transactions left in a mempool after the last block", pool)
				}
				for v, n := range got {
					paid[v] += n
				}
			}
			for v := range want {
				if paid[v] != 1 {
					t.Errorf("payment of %d sat is on the chain %d times, want once", v, paid[v])
				}
			}
			// Only the replies that may follow the review wait for the person: a small part of
			// the flow (Trezor: the messages after a ButtonAck; Ledger: the SIGN_PSBT window
			// from the last output's map to the first YIELD).
			if d := byKind[kindDrop]; d.screen*4 > nOut {
				t.Errorf("%d of %d lost replies waited for the person: the link timeout applies to too few", d.screen, nOut)
			}
			for _, k := range []string{kindDrop, kindCorrupt, kindDisconnect} {
				s := byKind[k]
				avg, lost := time.Duration(0), time.Duration(0)
				if s.hit > 0 {
					avg = s.sumTook / time.Duration(s.hit)
				}
				if s.lost > 0 {
					lost = s.sumLost / time.Duration(s.lost)
				}
				t.Logf("%s %-10s injected %3d, hit the flow %3d, survived %3d (failed clearly, retry paid once); "+
					"device.ErrLinkLost %d (avg %v), ended at the caller's %v deadline after a possible screen %d; faulted call avg %v max %v",
					fam.name, k, s.injected, s.hit, s.survived, s.lost, lost.Round(time.Millisecond), faultedWait, s.screen,
					avg.Round(time.Millisecond), s.maxTook.Round(time.Millisecond))
			}
		})
	}
}
