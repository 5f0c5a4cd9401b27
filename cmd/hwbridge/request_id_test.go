package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hwbridge/hwbridge/daemon"
	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/internal/nodes"
)

// TestSendRequestIDPaysOnce: `btc send --request-id ID` run twice pays once, in direct mode
// (the data directory's journal) and through hwbridged (the daemon's journal, preview then
// send); a journal that vanished refuses the retry instead of paying again; hostile amounts
// pay nothing on either path. Checked on btcd's mempool.
func TestSendRequestIDPaysOnce(t *testing.T) {
	dataDir := t.TempDir()
	c := &btcCLI{t: t, dev: startEmu(t, emulator.PolicyAuto), env: map[string]string{"HWBRIDGE_DATA_DIR": dataDir}}
	c.node = nodes.StartBtcdT(t, c.receive("wpkh"))
	c.mine(110)
	to := btcOutside(t, "request-id")

	send := func(c *btcCLI, stdin string, extra ...string) (result, daemon.BtcSendResult) {
		t.Helper()
		r := c.run(stdin, append([]string{"btc", "send", "--to", to, "--amount", "0.5", "--fee-rate", "2", "--json"}, extra...)...)
		var res daemon.BtcSendResult
		if r.code == 0 {
			if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
				t.Fatalf("%v\n%s", err, r.stdout)
			}
		}
		return r, res
	}
	pool := func(want int) {
		c.t.Helper()
		if p := c.mempool(); len(p) != want {
			c.t.Fatalf("mempool holds %d transactions, want %d: %v", len(p), want, p)
		}
	}

	t.Run("direct", func(t *testing.T) {
		c.t = t
		r1, first := send(c, "", "--request-id", "pay-direct", "--yes")
		if r1.code != 0 || first.TxID == "" || first.Replayed || !strings.Contains(r1.stderr, "request id pay-direct") {
			t.Fatalf("first: %d %+v\n%s", r1.code, first, r1.stderr)
		}
		r2, again := send(c, "", "--request-id", "pay-direct", "--yes")
		if r2.code != 0 || again.TxID != first.TxID || !again.Replayed || !strings.Contains(r2.stderr, "already sent") {
			t.Fatalf("retry: %d %+v\n%s", r2.code, again, r2.stderr)
		}
		pool(1)
		// without --request-id a new id is made and printed
		r3, _ := send(c, "y\n")
		if r3.code != 0 || !strings.Contains(r3.stderr, "request id cli-") {
			t.Fatalf("generated id: %d\n%s", r3.code, r3.stderr)
		}
		pool(2)
		// the journal vanishes: the retry is refused, nothing is paid again
		os.Remove(filepath.Join(dataDir, daemon.JournalFile))
		r4, _ := send(c, "", "--request-id", "pay-direct", "--yes")
		if r4.code != 1 || !strings.Contains(r4.stdout, "journal check") {
			t.Fatalf("retry after the journal vanished: %d\n%s", r4.code, r4.stderr)
		}
		pool(2)
		if r := cli(t, "", c.env, "journal", "check"); r.code != 1 || !strings.Contains(r.stdout, "lost:") {
			t.Fatalf("journal check: %d %s %s", r.code, r.stdout, r.stderr)
		}
		if r := cli(t, "", c.env, "journal", "accept-loss", "--reason", "test: checked the mempool"); r.code != 0 {
			t.Fatalf("accept-loss: %d %s %s", r.code, r.stdout, r.stderr)
		}
		if r := cli(t, "", c.env, "journal", "check"); r.code != 0 || !strings.Contains(r.stdout, "loss was accepted") {
			t.Fatalf("journal check after accept-loss: %d %s %s", r.code, r.stdout, r.stderr)
		}
		// After the loss, the journal no longer knows pay-direct, but the audit log does: the
		// retry is refused with the audit record as evidence, nothing is signed or paid.
		r5, _ := send(c, "", "--request-id", "pay-direct", "--yes")
		if r5.code != 1 || !strings.Contains(r5.stdout, `"request_id_lost"`) || !strings.Contains(r5.stdout, first.TxID) {
			t.Fatalf("retry of a lost id after accept-loss: %d\n%s\n%s", r5.code, r5.stdout, r5.stderr)
		}
		pool(2)
		// A new id pays.
		if r6, res := send(c, "", "--request-id", "pay-direct-new", "--yes"); r6.code != 0 || res.TxID == "" {
			t.Fatalf("new id after accept-loss: %d\n%s", r6.code, r6.stderr)
		}
		pool(3)
		c.mine(1)
	})

	t.Run("through hwbridged", func(t *testing.T) {
		c.t = t
		dc := startInProcessDaemon(t, emulator.PolicyAuto)
		d := &btcCLI{t: t, node: c.node, mode: []string{"--socket", dc.Socket}, env: map[string]string{"HWBRIDGE_KEY": dc.Key}}
		r1, first := send(d, "", "--request-id", "pay-daemon", "--yes")
		if r1.code != 0 || first.TxID == "" || first.Replayed {
			t.Fatalf("first: %d %+v\n%s", r1.code, first, r1.stderr)
		}
		r2, again := send(d, "", "--request-id", "pay-daemon", "--yes")
		if r2.code != 0 || again.TxID != first.TxID || !again.Replayed {
			t.Fatalf("retry: %d %+v\n%s", r2.code, again, r2.stderr)
		}
		pool(1)
		// without --yes: the daemon's preview is shown, then the payment bound to it is sent
		r3, shown := send(d, "y\n", "--request-id", "pay-daemon-2")
		if r3.code != 0 || !strings.Contains(r3.stderr, "about to sign and broadcast") || shown.PlanID == "" {
			t.Fatalf("preview and send: %d %+v\n%s", r3.code, shown, r3.stderr)
		}
		r4, _ := send(d, "n\n", "--request-id", "pay-daemon-3")
		if r4.code != 1 || !strings.Contains(r4.stdout, "did not confirm") {
			t.Fatalf("declined preview: %d\n%s", r4.code, r4.stderr)
		}
		pool(2)
		// hostile amounts through the daemon: refused as input, nothing paid
		for _, amt := range []string{"184467440737.09651616", "92233720368.54775808", "-1", "1e3"} {
			r := d.run("", "btc", "send", "--to", to, "--amount", amt, "--yes", "--request-id", "hostile-"+amt)
			if r.code != 2 {
				t.Errorf("amount %s: exit %d\n%s", amt, r.code, r.stderr)
			}
		}
		var res daemon.BtcSendResult
		for _, amt := range []string{"184467440737.09651616", "92233720368.54775808"} {
			p := daemon.BtcSendParams{RequestID: "rpc-" + amt}
			p.RPC, p.Network, p.To, p.Amount = c.node.URL(), "regtest", to, amt
			if err := dc.Call(t.Context(), "v1BtcSend", p, &res); err == nil || !strings.Contains(err.Error(), "above the largest") {
				t.Errorf("v1BtcSend amount %s: %v", amt, err)
			}
		}
		pool(2)
	})
}
