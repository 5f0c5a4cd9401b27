package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/hwbridge/hwbridge/chains/bitcoin"
	"github.com/hwbridge/hwbridge/daemon"
	"github.com/hwbridge/hwbridge/emulator"
	coldcardemu "github.com/hwbridge/hwbridge/emulator/coldcard"
	"github.com/hwbridge/hwbridge/internal/devchain/btcregtest"
	hwpsbt "github.com/hwbridge/hwbridge/psbt"
	"github.com/hwbridge/hwbridge/transport"
)

// serveColdcardDevice is serveColdcard that also gives the emulated device (for its
// microSD card).
func serveColdcardDevice(t *testing.T, chain string) (*coldcardemu.Device, string) {
	t.Helper()
	emu, err := coldcardemu.New(coldcardemu.Options{Chain: chain, Approver: emulator.NewApprover(emulator.PolicyAuto)})
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "ccsd") // short: sun_path holds 108 bytes
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
	return emu, "unix:" + srv.Path()
}

// TestColdcardMicroSDImport: a payment exported as a PSBT file, signed by the Coldcard-class
// emulator as from its microSD card (it writes NAME-signed.psbt and NAME-final.txn, the
// transaction finalized, in hex), and imported from each file the user may carry back: the
// final transaction (hex, and binary), the signed PSBT, and the PSBT finalized by a
// coordinator (base64). A final transaction with its outputs changed or its witness broken
// is refused with nothing broadcast; each request pays once. In direct mode and through
// hwbridged (whose hub serves the emulator), on the embedded regtest chain.
func TestColdcardMicroSDImport(t *testing.T) {
	emu, dev := serveColdcardDevice(t, "XRT")
	env := map[string]string{"HWBRIDGE_DATA_DIR": t.TempDir()}
	direct := func(args ...string) result {
		t.Helper()
		return cli(t, "", env, append(append([]string{"--direct", "--device", dev}, args...), "--network", "regtest")...)
	}
	var rcv btcReceiveResult
	if r := direct("btc", "receive", "--type", "wpkh", "--json"); r.code != 0 || json.Unmarshal([]byte(r.stdout), &rcv) != nil {
		t.Fatalf("receive: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	mineTo, err := btcutil.DecodeAddress(rcv.Address, &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	node, err := btcregtest.Start(t.Context(), btcregtest.NodeOptions{MiningAddr: mineTo})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	outside := btcOutside(t, "coldcard-microsd")
	dir := t.TempDir()

	flow := func(t *testing.T, run func(args ...string) result, prefix string) {
		ok := func(args ...string) result {
			t.Helper()
			r := run(args...)
			if r.code != 0 {
				t.Fatalf("hwbridge %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
			}
			return r
		}
		export := func(id string) (daemon.BtcSendResult, string) {
			t.Helper()
			file := filepath.Join(dir, id+".psbt")
			var ex daemon.BtcSendResult
			r := ok("btc", "send", "--type", "wpkh", "--to", outside, "--amount", "0.3", "--fee-rate", "2", "--json",
				"--request-id", id, "--export-psbt", file, "--rpc", node.URL())
			if err := json.Unmarshal([]byte(r.stdout), &ex); err != nil || ex.PlanID == "" || ex.TxID != "" {
				t.Fatalf("export %s: %v %+v", id, err, ex)
			}
			return ex, file
		}
		microSD := func(file string) (signed, final string) {
			t.Helper()
			files, err := emu.SignFile(t.Context(), file)
			if err != nil {
				t.Fatal(err)
			}
			base := strings.TrimSuffix(file, ".psbt")
			if len(files) != 2 || files[0] != base+"-signed.psbt" || files[1] != base+"-final.txn" {
				t.Fatalf("the coldcard wrote %v", files)
			}
			return files[0], files[1]
		}
		imp := func(id, file string) result {
			t.Helper()
			return run("btc", "send", "--json", "--request-id", id, "--import-psbt", file, "--rpc", node.URL())
		}
		paid := func(id, file, planID string) daemon.BtcSendResult {
			t.Helper()
			pool := node.MempoolCount()
			r := imp(id, file)
			var res daemon.BtcSendResult
			if err := json.Unmarshal([]byte(r.stdout), &res); r.code != 0 || err != nil || res.TxID == "" || res.PlanID != planID {
				t.Fatalf("import %s: exit %d %v %+v\n%s", file, r.code, err, res, r.stderr)
			}
			h, err := chainhash.NewHashFromStr(res.TxID)
			if err != nil {
				t.Fatal(err)
			}
			if !node.InMempool(h) || node.MempoolCount() != pool+1 {
				t.Fatalf("%s is not in the mempool (%d → %d)", res.TxID, pool, node.MempoolCount())
			}
			return res
		}
		refused := func(r result, what, want string) {
			t.Helper()
			if r.code == 0 || !strings.Contains(r.stdout+r.stderr, want) {
				t.Fatalf("%s: exit %d, want a refusal saying %q\n%s%s", what, r.code, want, r.stdout, r.stderr)
			}
		}
		// writeTx writes the transaction of a -final.txn file changed by fn, in hex or binary
		writeTx := func(name string, txt []byte, fn func(*wire.MsgTx), binary bool) string {
			t.Helper()
			tx, err := bitcoin.DecodeTx(string(txt))
			if err != nil {
				t.Fatal(err)
			}
			fn(tx)
			var b bytes.Buffer
			if err := tx.Serialize(&b); err != nil {
				t.Fatal(err)
			}
			out := b.Bytes()
			if !binary {
				out = []byte(hex.EncodeToString(out) + "\r\n")
			}
			f := filepath.Join(dir, name)
			if err := os.WriteFile(f, out, 0o600); err != nil {
				t.Fatal(err)
			}
			return f
		}

		// 1: the final transaction in hex, as the card carries it
		ex, file := export(prefix + "-1")
		signedPSBT, finalTxn := microSD(file)
		txt, err := os.ReadFile(finalTxn)
		if err != nil {
			t.Fatal(err)
		}
		pool := node.MempoolCount()
		// its outputs changed (the payee's amount lowered, the fee raised)
		lower := writeTx(prefix+"-lower.txn", txt, func(tx *wire.MsgTx) {
			for _, o := range tx.TxOut {
				o.Value -= 5000
			}
		}, false)
		refused(imp(prefix+"-1", lower), "final transaction with other outputs", "not the transaction exported")
		// its witness broken
		broken := writeTx(prefix+"-broken.txn", txt, func(tx *wire.MsgTx) { tx.TxIn[0].Witness[0][8] ^= 1 }, false)
		refused(imp(prefix+"-1", broken), "final transaction with a broken signature", "refusing to broadcast")
		if n := node.MempoolCount(); n != pool {
			t.Fatalf("refused imports changed the mempool: %d → %d", pool, n)
		}
		first := paid(prefix+"-1", finalTxn, ex.PlanID)
		// the signed PSBT of the same request: answered from the journal, paid once
		r := imp(prefix+"-1", signedPSBT)
		var again daemon.BtcSendResult
		if err := json.Unmarshal([]byte(r.stdout), &again); r.code != 0 || err != nil || again.TxID != first.TxID || !again.Replayed {
			t.Fatalf("import of the signed PSBT after the final transaction: %d %v %+v", r.code, err, again)
		}

		// 2: the PSBT finalized by a coordinator (final_scriptwitness, no partial
		// signatures), base64
		ex, file = export(prefix + "-2")
		signedPSBT, _ = microSD(file)
		bin, err := os.ReadFile(signedPSBT)
		if err != nil {
			t.Fatal(err)
		}
		p, err := hwpsbt.DecodeBinary(bin)
		if err != nil {
			t.Fatal(err)
		}
		if err := psbt.MaybeFinalizeAll(p); err != nil {
			t.Fatal(err)
		}
		for i := range p.Inputs {
			if len(p.Inputs[i].FinalScriptWitness) == 0 || len(p.Inputs[i].PartialSigs) != 0 {
				t.Fatalf("input %d is not finalized", i)
			}
		}
		finalized := filepath.Join(dir, prefix+"-2-finalized.txt")
		b64, err := hwpsbt.EncodeBase64(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(finalized, []byte(b64+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		paid(prefix+"-2", finalized, ex.PlanID)

		// 3: the final transaction in binary (what USB signing with finalize gives)
		ex, file = export(prefix + "-3")
		_, finalTxn = microSD(file)
		txt, err = os.ReadFile(finalTxn)
		if err != nil {
			t.Fatal(err)
		}
		binTx := writeTx(prefix+"-3.bin", txt, func(*wire.MsgTx) {}, true)
		paid(prefix+"-3", binTx, ex.PlanID)
	}

	t.Run("direct", func(t *testing.T) { flow(t, direct, "sd-direct") })
	t.Run("through hwbridged", func(t *testing.T) {
		c := startDaemonOn(t, dev, func() transport.Link {
			l, err := transport.DialColdcardSim(context.Background(), strings.TrimPrefix(dev, transport.SchemeUnix+":"))
			if err != nil {
				return failedLink{err}
			}
			return l
		})
		denv := map[string]string{"HWBRIDGE_KEY": c.Key}
		flow(t, func(args ...string) result {
			t.Helper()
			return cli(t, "", denv, append(append([]string{"--socket", c.Socket}, args...), "--network", "regtest")...)
		}, "sd-daemon")
	})
}
