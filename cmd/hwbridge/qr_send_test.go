package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/hwbridge/hwbridge/daemon"
	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/emulator/qrsigner"
	"github.com/hwbridge/hwbridge/internal/devchain/btcregtest"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/internal/peers"
	hwpsbt "github.com/hwbridge/hwbridge/psbt"
	"github.com/hwbridge/hwbridge/ur"
	"github.com/hwbridge/hwbridge/ur/qrimage"
)

// lossyParts shuffles UR parts and drops every third one, as a camera catching an animated
// QR code out of order and missing frames.
func lossyParts(parts []string, seed uint64) []string {
	rng := rand.New(rand.NewPCG(seed, 3))
	ps := append([]string(nil), parts...)
	rng.Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
	var out []string
	for i, p := range ps {
		if i%3 != 2 {
			out = append(out, p)
		}
	}
	return out
}

// TestSendThroughQR: a regtest send on the embedded chain from a watch-only wallet made from
// the QR signer's account export (its QR code as a PNG, then as text), the unsigned PSBT
// shown as UR parts (text, and PNG frames) and read by the emulated QR signer out of order
// with losses, its signed answer read back by --import-qr (text, and PNG frames) with losses
// too, directly and through hwbridged, and with the npm UR libraries on the other side of
// the air gap (they decode the parts the CLI shows and encode the parts it imports); every
// signature is verified and the transaction is in the mempool once. A signed
// PSBT with changed outputs, and one the signer never saw, are refused with nothing
// broadcast; a rejection on the device leaves nothing to import.
func TestSendThroughQR(t *testing.T) {
	ctx := t.Context()
	net := &chaincfg.RegressionNetParams
	w, err := emulator.NewWallet(emulator.DefaultMnemonic, "")
	if err != nil {
		t.Fatal(err)
	}
	signer := qrsigner.New(w, nil, net)
	dir := t.TempDir()
	// the account export, as the device shows it (a PNG of its QR code) and as text
	acct, err := signer.AccountExport(0)
	if err != nil {
		t.Fatal(err)
	}
	acctPNG, err := qrimage.PNG(acct.String(), 3)
	if err != nil {
		t.Fatal(err)
	}
	acctFiles := []string{filepath.Join(dir, "account.png"), filepath.Join(dir, "account.txt")}
	os.WriteFile(acctFiles[0], acctPNG, 0o600)
	os.WriteFile(acctFiles[1], []byte(acct.String()+"\n"), 0o600)

	first, err := w.PubKey(hdpath.MustParse("m/84'/1'/0'/0/0"))
	if err != nil {
		t.Fatal(err)
	}
	mineTo, _ := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(first.SerializeCompressed()), net)
	node, err := btcregtest.Start(ctx, btcregtest.NodeOptions{MiningAddr: mineTo})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	to := btcOutside(t, "qr")
	env := map[string]string{"HWBRIDGE_DATA_DIR": t.TempDir()}
	modeArgs := []string{"--direct"}
	run := func(args ...string) result {
		t.Helper()
		return cli(t, "", env, append(append(append([]string(nil), modeArgs...), "btc", "send", "--network", "regtest", "--rpc", node.URL(), "--json"), args...)...)
	}
	mempool := func(want int) {
		t.Helper()
		if n := node.MempoolCount(); n != want {
			t.Fatalf("mempool holds %d transactions, want %d", n, want)
		}
	}
	signParts := func(parts []string, seed uint64) []string {
		t.Helper()
		answer, err := signer.Scan(ctx, lossyParts(parts, seed))
		if err != nil {
			t.Fatal(err)
		}
		return lossyParts(answer, seed+100)
	}

	for i, mode := range []string{"text", "png", "daemon"} {
		t.Run(mode, func(t *testing.T) {
			id := "qr-" + mode
			if mode == "daemon" { // the same text flow through hwbridged (v1BtcSend)
				dc := startInProcessDaemon(t, emulator.PolicyAuto)
				saved, savedEnv := modeArgs, env
				defer func() { modeArgs, env = saved, savedEnv }()
				modeArgs, env = []string{"--socket", dc.Socket}, map[string]string{"HWBRIDGE_KEY": dc.Key}
			}
			args := []string{"--to", to, "--amount", "1.5", "--fee-rate", "2", "--request-id", id, "--wallet-export", acctFiles[i%2], "--export-qr", "--qr-fragment", "90"}
			partsFile, framesDir := filepath.Join(dir, id+"-unsigned.txt"), filepath.Join(dir, id+"-unsigned")
			if mode != "png" {
				args = append(args, "--qr-parts", partsFile)
			} else {
				args = append(args, "--qr-png", framesDir)
			}
			r := run(args...)
			if r.code != 0 {
				t.Fatalf("export: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			var exp qrExport
			if err := json.Unmarshal([]byte(r.stdout), &exp); err != nil {
				t.Fatalf("%v\n%s", err, r.stdout)
			}
			if exp.BtcSendResult == nil || exp.PlanID == "" || exp.TxID != "" || exp.QRSeqLen < 3 || len(exp.QRParts) != 2*exp.QRSeqLen {
				t.Fatalf("export: %s", r.stdout)
			}
			mempool(0)
			var shown []string
			if mode != "png" {
				shown, err = qrimage.ReadParts(partsFile)
			} else {
				shown, err = qrimage.ReadParts(framesDir) // what the device's camera reads off the screen
			}
			if err != nil || len(shown) != len(exp.QRParts) {
				t.Fatalf("%d parts shown: %v", len(shown), err)
			}
			signed := signParts(shown, uint64(i))

			// signed, then the outputs changed: refused, nothing broadcast
			d := ur.NewDecoder()
			for _, p := range signed {
				d.Receive(p)
			}
			u, err := d.Result()
			if err != nil {
				t.Fatal(err)
			}
			bin, _ := ur.DecodePSBT(u)
			p, err := hwpsbt.DecodeBinary(bin)
			if err != nil {
				t.Fatal(err)
			}
			p.UnsignedTx.TxOut[0].Value -= 5000
			tb, _ := hwpsbt.Encode(p)
			te, _ := ur.NewEncoder(ur.PSBT(tb), 90)
			tampered := filepath.Join(dir, id+"-tampered.txt")
			os.WriteFile(tampered, []byte(strings.Join(te.Parts(te.SeqLen()), "\n")), 0o600)
			if r := run("--request-id", id, "--import-qr", tampered); r.code == 0 || !strings.Contains(r.stdout+r.stderr, "not the transaction exported") {
				t.Fatalf("tampered import: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			// the unsigned parts given back: refused, nothing broadcast
			if r := run("--request-id", id, "--import-qr", partsFileOr(partsFile, framesDir, mode)); r.code == 0 {
				t.Fatalf("unsigned import accepted\n%s", r.stdout)
			}
			mempool(0)

			in := filepath.Join(dir, id+"-signed.txt")
			if mode != "png" {
				os.WriteFile(in, []byte(strings.Join(signed, "\n")+"\n"), 0o600)
			} else {
				in = filepath.Join(dir, id+"-signed")
				if err := qrimage.WriteParts("", in, signed); err != nil {
					t.Fatal(err)
				}
			}
			r = run("--request-id", id, "--import-qr", in)
			if r.code != 0 {
				t.Fatalf("import: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			var res daemon.BtcSendResult
			if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
				t.Fatal(err)
			}
			h, _ := chainhash.NewHashFromStr(res.TxID)
			if res.TxID != exp.PlanID || !node.InMempool(h) {
				t.Fatalf("import: %+v", res)
			}
			mempool(1)
			// again: the recorded result, nothing sent twice
			if r := run("--request-id", id, "--import-qr", in); r.code != 0 || !strings.Contains(r.stdout, res.TxID) {
				t.Fatalf("import retry: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			mempool(1)
			if _, err := node.Mine(ctx, 1, mineTo); err != nil {
				t.Fatal(err)
			}
			mempool(0)
		})
	}

	// The npm libraries on both sides of the air gap: @keystonehq/bc-ur-registry-btc (over
	// @ngraveio/bc-ur) decodes the parts the CLI shows, and encodes the signed PSBT into the
	// parts the CLI imports (shuffled, a third lost).
	t.Run("npm UR libraries", func(t *testing.T) {
		js, err := filepath.Abs("../../ur/testdata/js")
		if err != nil {
			t.Fatal(err)
		}
		nodePath := peers.NPM(t, js, "ur-js", "@keystonehq/bc-ur-registry-btc")
		npm := func(stdin string, args ...string) string {
			t.Helper()
			cctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			cmd := exec.CommandContext(cctx, "node", append([]string{filepath.Join(js, "interop.js")}, args...)...)
			cmd.Stdin = strings.NewReader(stdin)
			if nodePath != "" {
				cmd.Env = append(os.Environ(), "NODE_PATH="+nodePath)
			}
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("node interop.js %s: %v", args[0], err)
			}
			return string(out)
		}
		id := "qr-npm"
		r := run("--to", to, "--amount", "0.7", "--fee-rate", "2", "--request-id", id, "--wallet-export", acctFiles[1], "--export-qr", "--qr-fragment", "70")
		var exp qrExport
		if err := json.Unmarshal([]byte(r.stdout), &exp); err != nil || exp.BtcSendResult == nil {
			t.Fatalf("export: exit %d %v\n%s%s", r.code, err, r.stdout, r.stderr)
		}
		var dec struct {
			Type string `json:"type"`
			PSBT string `json:"psbt"`
		}
		if err := json.Unmarshal([]byte(npm(strings.Join(lossyParts(exp.QRParts, 9), "\n"), "decode")), &dec); err != nil {
			t.Fatal(err)
		}
		unsigned, _ := base64.StdEncoding.DecodeString(exp.PSBT)
		if dec.Type != ur.TypeCryptoPSBT || dec.PSBT != hex.EncodeToString(unsigned) {
			t.Fatalf("npm decoded %s %.32s…", dec.Type, dec.PSBT)
		}
		signedBin, err := signer.Sign(ctx, unsigned)
		if err != nil {
			t.Fatal(err)
		}
		theirs := strings.Fields(npm("", "encode-psbt", hex.EncodeToString(signedBin), "70", "40"))
		in := filepath.Join(dir, id+"-signed.txt")
		os.WriteFile(in, []byte(strings.Join(lossyParts(theirs, 10), "\n")), 0o600)
		r = run("--request-id", id, "--import-qr", in)
		var res daemon.BtcSendResult
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.TxID != exp.PlanID {
			t.Fatalf("import: exit %d %v\n%s%s", r.code, err, r.stdout, r.stderr)
		}
		mempool(1)
		if _, err := node.Mine(ctx, 1, mineTo); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("terminal and pipe", func(t *testing.T) {
		// without --json: QR codes drawn on stdout (not a terminal: one after another)
		r := cli(t, "", env, "--direct", "btc", "send", "--network", "regtest", "--rpc", node.URL(), "--to", to, "--amount", "0.2", "--fee-rate", "2",
			"--request-id", "qr-terminal", "--wallet-export", acctFiles[1], "--export-qr", "--qr-fragment", "120")
		if r.code != 0 || !strings.Contains(r.stdout, "# part 1 of ") || !strings.Contains(r.stdout, "█") || !strings.Contains(r.stderr, "--import-qr PARTS --request-id qr-terminal") {
			t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		// --qr-parts -: stdout is the parts alone, which the signer reads as they are
		r = cli(t, "", env, "--direct", "btc", "send", "--network", "regtest", "--rpc", node.URL(), "--to", to, "--amount", "0.2", "--fee-rate", "2",
			"--request-id", "qr-terminal", "--wallet-export", acctFiles[1], "--export-qr", "--qr-parts", "-")
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		for _, l := range lines {
			if !strings.HasPrefix(l, "ur:crypto-psbt/") {
				t.Fatalf("stdout line %q is not a UR part\n%s", l, r.stderr)
			}
		}
		if _, err := signer.Scan(ctx, lines); err != nil {
			t.Fatal(err)
		}
		mempool(0)
	})

	t.Run("rejected on the device", func(t *testing.T) {
		r := run("--to", to, "--amount", "0.1", "--fee-rate", "2", "--request-id", "qr-rejected", "--wallet-export", acctFiles[1], "--export-qr", "--qr-parts", "-")
		if r.code != 0 {
			t.Fatalf("export: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		var exp qrExport
		json.Unmarshal([]byte(r.stdout), &exp)
		no := qrsigner.New(w, emulator.NewApprover(emulator.PolicyReject), net)
		if _, err := no.Scan(ctx, exp.QRParts); !errors.Is(err, qrsigner.ErrRejected) {
			t.Fatalf("reject: %v", err)
		}
		mempool(0)
	})
}

func partsFileOr(file, dir, mode string) string {
	if mode != "png" {
		return file
	}
	return dir
}
