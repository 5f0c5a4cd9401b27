package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"

	"github.com/hwbridge/hwbridge/chains/bitcoin"
	"github.com/hwbridge/hwbridge/daemon"
	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/internal/nodes"
	hwpsbt "github.com/hwbridge/hwbridge/psbt"
)

// TestSendThroughPSBTFile: `btc send --export-psbt` writes the unsigned PSBT and pays nothing;
// the PSBT signed by the emulated device (`btc sign-psbt`, standing in for an air-gapped
// Coldcard) is imported with the same request id and paid once, in direct mode and through
// hwbridged; a PSBT with changed outputs, another request's transaction or a broken signature
// is refused with nothing broadcast; an import that could not reach the node resumes from its
// journaled checkpoint. Checked on btcd's mempool.
func TestSendThroughPSBTFile(t *testing.T) {
	dataDir := t.TempDir()
	c := &btcCLI{t: t, dev: startEmu(t, emulator.PolicyAuto), env: map[string]string{"HWBRIDGE_DATA_DIR": dataDir}}
	c.node = nodes.StartBtcdT(t, c.receive("wpkh"))
	c.mine(110)
	to := btcOutside(t, "psbt-file")
	toAddr, err := btcutil.DecodeAddress(to, &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	toScript, err := txscript.PayToAddrScript(toAddr)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()

	run := func(t *testing.T, c *btcCLI, prefix string, before int) {
		decodeRes := func(r result) daemon.BtcSendResult {
			t.Helper()
			var res daemon.BtcSendResult
			if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
				t.Fatalf("%v\n%s\n%s", err, r.stdout, r.stderr)
			}
			return res
		}
		pool := func(want int) []string {
			t.Helper()
			p := c.mempool()
			if len(p) != want {
				t.Fatalf("mempool holds %d transactions, want %d: %v", len(p), want, p)
			}
			return p
		}
		export := func(c *btcCLI, id, amount, file string) daemon.BtcSendResult {
			t.Helper()
			res := decodeRes(c.ok("btc", "send", "--to", to, "--amount", amount, "--fee-rate", "2", "--json", "--request-id", id, "--export-psbt", file))
			if res.PlanID == "" || res.PSBT == "" || res.Raw != "" || res.TxID != "" {
				t.Fatalf("export %s: %+v", id, res)
			}
			return res
		}
		sign := func(c *btcCLI, in, out string) []byte {
			t.Helper()
			signed := strings.TrimSpace(c.ok("btc", "sign-psbt", in).stdout)
			p, err := hwpsbt.Decode([]byte(signed))
			if err != nil {
				t.Fatal(err)
			}
			bin, err := hwpsbt.Encode(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(out, bin, 0o600); err != nil {
				t.Fatal(err)
			}
			return bin
		}
		// tamper writes a variant of the signed PSBT in bin, changed by fn.
		tamper := func(bin []byte, name string, fn func(p *psbt.Packet)) string {
			t.Helper()
			p, err := hwpsbt.Decode(bin)
			if err != nil {
				t.Fatal(err)
			}
			fn(p)
			b64, err := hwpsbt.EncodeBase64(p)
			if err != nil {
				t.Fatal(err)
			}
			f := filepath.Join(dir, name)
			if err := os.WriteFile(f, []byte(b64), 0o600); err != nil {
				t.Fatal(err)
			}
			return f
		}
		imp := func(c *btcCLI, id, file string) result {
			t.Helper()
			return c.run("", "btc", "send", "--json", "--request-id", id, "--import-psbt", file)
		}
		refused := func(r result, what, want string) {
			t.Helper()
			if r.code == 0 || !strings.Contains(r.stdout+r.stderr, want) {
				t.Fatalf("%s: exit %d, want a refusal saying %q\n%s%s", what, r.code, want, r.stdout, r.stderr)
			}
		}

		unsignedFile := filepath.Join(dir, prefix+"-unsigned.psbt")
		first := export(c, prefix+"-1", "0.5", unsignedFile)
		bin, err := os.ReadFile(unsignedFile)
		if err != nil || !bytes.HasPrefix(bin, []byte("psbt\xff")) {
			t.Fatalf("the .psbt file is not binary BIP-174: %q %v", bin[:min(len(bin), 8)], err)
		}
		if p, err := hwpsbt.Decode(bin); err != nil || p.UnsignedTx.TxHash().String() != first.PlanID || p.IsComplete() {
			t.Fatalf("exported PSBT: plan %s, want %s, %v", p.UnsignedTx.TxHash(), first.PlanID, err)
		}
		// the export again: the same PSBT, from the journal
		b64File := filepath.Join(dir, prefix+"-unsigned.txt")
		if again := export(c, prefix+"-1", "0.5", b64File); again.PlanID != first.PlanID || !again.Replayed {
			t.Fatalf("export retry: %+v", again)
		}
		if b, _ := os.ReadFile(b64File); strings.TrimSpace(string(b)) != first.PSBT {
			t.Fatalf("base64 file: %q", b)
		}
		pool(before)
		// an ordinary send with the exported id is refused: only the import finishes it
		r := c.run("", "btc", "send", "--to", to, "--amount", "0.5", "--fee-rate", "2", "--yes", "--request-id", prefix+"-1")
		refused(r, "device send of an exported id", "--import-psbt")
		pool(before)

		signedFile := filepath.Join(dir, prefix+"-signed.psbt")
		signed := sign(c, unsignedFile, signedFile)
		// outputs changed: the payment pays less, the fee more
		moreFee := tamper(signed, prefix+"-outputs.txt", func(p *psbt.Packet) {
			for _, o := range p.UnsignedTx.TxOut {
				if bytes.Equal(o.PkScript, toScript) {
					o.Value -= 10_000
				}
			}
		})
		refused(imp(c, prefix+"-1", moreFee), "outputs changed", "not the transaction exported")
		// a signature that does not verify
		badSig := tamper(signed, prefix+"-badsig.txt", func(p *psbt.Packet) {
			s := p.Inputs[0].PartialSigs[0].Signature
			s[len(s)/2] ^= 0x01
		})
		refused(imp(c, prefix+"-1", badSig), "broken signature", "refusing to broadcast")
		// another request's transaction
		otherFile := filepath.Join(dir, prefix+"-other.psbt")
		export(c, prefix+"-2", "0.25", otherFile)
		otherSigned := filepath.Join(dir, prefix+"-other-signed.psbt")
		sign(c, otherFile, otherSigned)
		refused(imp(c, prefix+"-1", otherSigned), "another request's PSBT", "not the transaction exported")
		refused(imp(c, prefix+"-3", signedFile), "an id never exported", "no exported PSBT")
		pool(before)

		// the node cannot be reached: the checked transaction is journaled, not broadcast
		mode := c.mode
		if mode == nil {
			mode = []string{"--direct", "--device", c.dev}
		}
		r = cli(t, "", c.env, append(mode, "btc", "send", "--json", "--request-id", prefix+"-1", "--import-psbt", signedFile,
			"--network", "regtest", "--rpc", "http://user:pass@127.0.0.1:1")...)
		refused(r, "import with the node down", "journaled")
		pool(before)

		// the retry resumes from the journal's checkpoint and broadcasts it
		r = imp(c, prefix+"-1", signedFile)
		if r.code != 0 {
			t.Fatalf("import: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		paid := decodeRes(r)
		if paid.TxID == "" || paid.PlanID != first.PlanID || paid.Replayed || !paid.Resumed {
			t.Fatalf("import: %+v", paid)
		}
		ids := pool(before + 1)
		found := false
		for _, id := range ids {
			found = found || id == paid.TxID
		}
		if !found {
			t.Fatalf("%s is not in the mempool %v", paid.TxID, ids)
		}
		tx, err := hex.DecodeString(paid.Raw)
		if err != nil || !bytes.Contains(tx, toScript) {
			t.Fatalf("the broadcast transaction does not pay %s: %v", to, err)
		}
		// the retry pays once; a tampered retry changes nothing either
		again := imp(c, prefix+"-1", signedFile)
		if res := decodeRes(again); again.code != 0 || res.TxID != paid.TxID || !res.Replayed {
			t.Fatalf("import retry: %d %+v", again.code, res)
		}
		refused(imp(c, prefix+"-1", moreFee), "tampered retry after the payment", "not the transaction exported")
		pool(before + 1)
	}

	t.Run("direct", func(t *testing.T) {
		c.t = t
		run(t, c, "direct", 0)
	})
	// A watch-only wallet from a Coldcard's Generic JSON export (chain XRT, the emulator's
	// BIP-84 account): the export needs no device; the emulator signs as the Coldcard would.
	t.Run("watch-only from a Coldcard wallet export", func(t *testing.T) {
		c.t = t
		var rcv btcReceiveResult
		if err := json.Unmarshal([]byte(c.ok("btc", "receive", "--type", "wpkh", "--json").stdout), &rcv); err != nil {
			t.Fatal(err)
		}
		d, err := bitcoin.ParseDescriptor(rcv.Descriptor)
		if err != nil {
			t.Fatal(err)
		}
		first, err := d.Address(0, 0, &chaincfg.RegressionNetParams)
		if err != nil {
			t.Fatal(err)
		}
		k := d.Keys[0]
		export, err := json.Marshal(map[string]any{"chain": "XRT", "xfp": strings.ToUpper(fmt.Sprintf("%08x", k.Fingerprint)), "account": 0,
			"bip84": map[string]string{"name": "p2wpkh", "deriv": "m/84'/1'/0'", "xpub": k.XPub.String(), "first": first.EncodeAddress()}})
		if err != nil {
			t.Fatal(err)
		}
		exportFile := filepath.Join(dir, "coldcard-export.json")
		if err := os.WriteFile(exportFile, export, 0o600); err != nil {
			t.Fatal(err)
		}
		w := &btcCLI{t: t, node: c.node, mode: []string{"--direct"}, env: c.env} // no device
		unsigned := filepath.Join(dir, "watch-unsigned.psbt")
		r := w.ok("btc", "send", "--to", to, "--amount", "0.1", "--fee-rate", "2", "--json", "--request-id", "watch-1",
			"--export-psbt", unsigned, "--wallet-export", exportFile)
		var ex daemon.BtcSendResult
		if err := json.Unmarshal([]byte(r.stdout), &ex); err != nil || ex.PlanID == "" {
			t.Fatalf("export: %v %+v", err, ex)
		}
		if r := w.run("", "btc", "send", "--to", to, "--amount", "0.1", "--yes", "--request-id", "watch-2", "--wallet-export", exportFile); r.code != 2 {
			t.Fatalf("--wallet-export without --export-psbt: exit %d\n%s", r.code, r.stderr)
		}
		signedOut := strings.TrimSpace(c.ok("btc", "sign-psbt", unsigned).stdout)
		signed := filepath.Join(dir, "watch-signed.txt")
		if err := os.WriteFile(signed, []byte(signedOut), 0o600); err != nil {
			t.Fatal(err)
		}
		before := len(c.mempool())
		r = w.ok("btc", "send", "--json", "--request-id", "watch-1", "--import-psbt", signed)
		var paid daemon.BtcSendResult
		if err := json.Unmarshal([]byte(r.stdout), &paid); err != nil || paid.TxID == "" || paid.PlanID != ex.PlanID {
			t.Fatalf("import: %v %+v", err, paid)
		}
		if n := len(c.mempool()); n != before+1 {
			t.Fatalf("mempool %d, want %d", n, before+1)
		}
	})
	t.Run("through hwbridged", func(t *testing.T) {
		c.t = t
		dc := startInProcessDaemon(t, emulator.PolicyAuto)
		d := &btcCLI{t: t, node: c.node, mode: []string{"--socket", dc.Socket}, env: map[string]string{"HWBRIDGE_KEY": dc.Key}}
		run(t, d, "daemon", 2)

		// wallet_export through v1BtcSend: no device is asked for the keys
		unsigned := filepath.Join(dir, "daemon-watch-unsigned.psbt")
		var ex, paid daemon.BtcSendResult
		if err := json.Unmarshal([]byte(d.ok("btc", "send", "--to", to, "--amount", "0.1", "--fee-rate", "2", "--json", "--request-id", "daemon-watch-1",
			"--export-psbt", unsigned, "--wallet-export", filepath.Join(dir, "coldcard-export.json")).stdout), &ex); err != nil || ex.PlanID == "" {
			t.Fatalf("export: %v %+v", err, ex)
		}
		signed := filepath.Join(dir, "daemon-watch-signed.txt")
		if err := os.WriteFile(signed, []byte(strings.TrimSpace(d.ok("btc", "sign-psbt", unsigned).stdout)), 0o600); err != nil {
			t.Fatal(err)
		}
		before := len(c.mempool())
		if err := json.Unmarshal([]byte(d.ok("btc", "send", "--json", "--request-id", "daemon-watch-1", "--import-psbt", signed).stdout), &paid); err != nil || paid.PlanID != ex.PlanID {
			t.Fatalf("import: %v %+v", err, paid)
		}
		if n := len(c.mempool()); n != before+1 {
			t.Fatalf("mempool %d, want %d", n, before+1)
		}
	})
}
