package main

import (
	"crypto/sha256"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"

	"github.com/hwbridge/hwbridge/chains/bitcoin"
	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/internal/nodes"
)

// btcOutside is a regtest p2wpkh address no test device holds.
func btcOutside(t *testing.T, tag string) string {
	h := sha256.Sum256([]byte("hwbridge cli outside payee " + tag))
	a, err := btcutil.NewAddressWitnessPubKeyHash(h[:20], &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	return a.EncodeAddress()
}

type btcCLI struct {
	t    *testing.T
	dev  string
	node *nodes.Btcd
	env  map[string]string // e.g. HWBRIDGE_DATA_DIR shared between runs
	mode []string          // global flags choosing the mode (default --direct --device DEV)
}

func (c *btcCLI) run(stdin string, args ...string) result {
	c.t.Helper()
	mode := c.mode
	if mode == nil {
		mode = []string{"--direct", "--device", c.dev}
	}
	full := append(append([]string{}, mode...), args...)
	full = append(full, "--network", "regtest")
	if c.node != nil && (args[1] == "send" || args[1] == "balance" || args[1] == "bump-fee") {
		full = append(full, "--rpc", c.node.URL())
	}
	return cli(c.t, stdin, c.env, full...)
}

func (c *btcCLI) ok(args ...string) result {
	c.t.Helper()
	r := c.run("", args...)
	if r.code != 0 {
		c.t.Fatalf("hwbridge %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

func (c *btcCLI) mine(n int) {
	c.t.Helper()
	if _, err := c.node.Generate(c.t.Context(), n); err != nil {
		c.t.Fatal(err)
	}
}

func (c *btcCLI) mempool() []string {
	c.t.Helper()
	ids, err := c.node.Mempool(c.t.Context())
	if err != nil {
		c.t.Fatal(err)
	}
	return ids
}

// gettxout returns an unspent output's value (sat) and script hex.
func (c *btcCLI) gettxout(txid string, n int) (int64, string) {
	c.t.Helper()
	raw, err := c.node.Call(c.t.Context(), "gettxout", txid, n, false)
	if err != nil {
		c.t.Fatal(err)
	}
	var res *struct {
		Value        json.Number `json:"value"`
		ScriptPubKey struct {
			Hex     string   `json:"hex"`
			Address string   `json:"address"`
			Addrs   []string `json:"addresses"`
		} `json:"scriptPubKey"`
	}
	if err := json.Unmarshal(raw, &res); err != nil || res == nil {
		c.t.Fatalf("gettxout %s:%d: %s %v", txid, n, raw, err)
	}
	v, err := bitcoin.ParseBTC(res.Value.String())
	if err != nil {
		c.t.Fatal(err)
	}
	return int64(v), res.ScriptPubKey.Hex
}

// addressHistory lists the txids searchrawtransactions knows for an address.
func (c *btcCLI) addressHistory(addr string) []string {
	c.t.Helper()
	raw, err := c.node.Call(c.t.Context(), "searchrawtransactions", addr, 1)
	if err != nil {
		c.t.Fatal(err)
	}
	var txs []struct {
		TxID string `json:"txid"`
	}
	if err := json.Unmarshal(raw, &txs); err != nil {
		c.t.Fatal(err)
	}
	var ids []string
	for _, tx := range txs {
		ids = append(ids, tx.TxID)
	}
	return ids
}

func (c *btcCLI) receive(typ string) string {
	c.t.Helper()
	var res btcReceiveResult
	r := c.ok("btc", "receive", "--type", typ, "--json")
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		c.t.Fatal(err)
	}
	return res.Address
}

func (c *btcCLI) send(typ, to, amount string, extra ...string) bitcoin.SendResult {
	c.t.Helper()
	args := append([]string{"btc", "send", "--type", typ, "--to", to, "--amount", amount, "--fee-rate", "2", "--yes", "--json"}, extra...)
	r := c.ok(args...)
	var res bitcoin.SendResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		c.t.Fatalf("%v\n%s", err, r.stdout)
	}
	return res
}

// TestBTCSendCommand is the done-when test of the Bitcoin wallet: btcd regtest mines to
// the emulated device's address; `btc send` funds the device's other accounts, then each of
// p2wpkh, p2sh-p2wpkh, p2pkh and p2tr pays an outside address; the node shows the payment
// and the change.
func TestBTCSendCommand(t *testing.T) {
	c := &btcCLI{t: t, dev: startEmu(t, emulator.PolicyAuto)}
	mineTo := c.receive("wpkh")
	c.node = nodes.StartBtcdT(t, mineTo)
	c.mine(101)

	r := c.ok("btc", "balance", "--type", "wpkh", "--json")
	var bal btcBalanceResult
	if err := json.Unmarshal([]byte(r.stdout), &bal); err != nil {
		t.Fatal(err)
	}
	if bal.Total != 101*50e8 || bal.Confirmed != 2*50e8 {
		t.Fatalf("balance after 101 blocks: %+v", bal)
	}
	for _, typ := range []string{"sh-wpkh", "pkh", "tr"} {
		c.send("wpkh", c.receive(typ), "2")
		c.mine(1)
	}
	for _, typ := range []string{"wpkh", "sh-wpkh", "pkh", "tr"} {
		t.Run(typ, func(t *testing.T) {
			c.t = t
			to := btcOutside(t, typ)
			res := c.send(typ, to, "0.1")
			if res.Change == nil {
				t.Fatalf("no change: %+v", res)
			}
			if pool := c.mempool(); len(pool) != 1 || pool[0] != res.TxID {
				t.Fatalf("mempool %v, want [%s]", pool, res.TxID)
			}
			c.mine(1)
			if len(c.mempool()) != 0 {
				t.Fatal("not mined")
			}
			v, _ := c.gettxout(res.TxID, 1-res.Change.Output)
			if v != 10_000_000 {
				t.Fatalf("recipient got %d sat", v)
			}
			if h := c.addressHistory(to); len(h) != 1 || h[0] != res.TxID {
				t.Fatalf("recipient history %v", h)
			}
			cv, _ := c.gettxout(res.TxID, res.Change.Output)
			if cv != res.Change.Amount {
				t.Fatalf("change %d sat, want %d", cv, res.Change.Amount)
			}
			if h := c.addressHistory(res.Change.Address); len(h) != 1 || h[0] != res.TxID {
				t.Fatalf("change address %s history %v", res.Change.Address, h)
			}
			t.Logf("%s: %s fee %d sat (%d vB), change %d sat at %s", typ, res.TxID, res.Fee, res.VSize, res.Change.Amount, res.Change.Path)
		})
	}
	c.t = t

	// bump-fee: an unconfirmed send replaced at a higher rate.
	first := c.send("wpkh", btcOutside(t, "bump"), "0.2")
	r = c.ok("btc", "bump-fee", first.TxID, "--fee-rate", "10", "--yes", "--json")
	var bumped bitcoin.SendResult
	if err := json.Unmarshal([]byte(r.stdout), &bumped); err != nil {
		t.Fatal(err)
	}
	if pool := c.mempool(); len(pool) != 1 || pool[0] != bumped.TxID || bumped.Fee <= first.Fee {
		t.Fatalf("after bump-fee: mempool %v, fee %d (was %d)", pool, bumped.Fee, first.Fee)
	}
	c.mine(1)
	if v, _ := c.gettxout(bumped.TxID, 1-bumped.Change.Output); v != 20_000_000 {
		t.Fatalf("bumped payment %d", v)
	}
}

// TestBTCSendRefusals: each bad request gives a clear error, exit 2 for what was typed wrong,
// 1 for what the chain or the person refused, and
// nothing reaches the mempool.
func TestBTCSendRefusals(t *testing.T) {
	c := &btcCLI{t: t, dev: startEmu(t, emulator.PolicyAuto)}
	c.node = nodes.StartBtcdT(t, c.receive("wpkh"))
	c.mine(101)
	to := btcOutside(t, "refusals")
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		code  int
		msg   string
	}{
		{"too many decimals", "", []string{"--to", to, "--amount", "0.000000001", "--yes"}, 2, "has 9 decimal places; this unit has 8"},
		{"float notation", "", []string{"--to", to, "--amount", "1e-3", "--yes"}, 2, "not a plain decimal"},
		// these two wrapped int64 once and paid 0.001 BTC / -2^63
		{"wraps uint64", "", []string{"--to", to, "--amount", "184467440737.09651616", "--yes"}, 2, "above the largest allowed value, 21000000"},
		{"wraps int64", "", []string{"--to", to, "--amount", "92233720368.54775808", "--yes"}, 2, "above the largest allowed value"},
		{"negative", "", []string{"--to", to, "--amount", "-0.1", "--yes"}, 2, "not a plain decimal"},
		{"fee rate wraps", "", []string{"--to", to, "--amount", "0.1", "--fee-rate", "9223372036854775.807", "--yes"}, 2, "above the largest"},
		{"another network", "", []string{"--to", "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", "--amount", "0.1", "--yes"}, 2, "another network"},
		{"above the balance", "", []string{"--to", to, "--amount", "1000", "--yes"}, 1, "insufficient funds"},
		{"fee above the cap", "", []string{"--to", to, "--amount", "0.1", "--fee-rate", "5000", "--yes"}, 1, "fee above the sanity cap"},
		{"fee above --max-fee", "", []string{"--to", to, "--amount", "0.1", "--fee-rate", "50", "--max-fee", "0.00001", "--yes"}, 1, "above the cap"},
		{"not confirmed", "n\n", []string{"--to", to, "--amount", "0.1", "--fee-rate", "2"}, 1, "you did not confirm"},
		{"no answer", "", []string{"--to", to, "--amount", "0.1", "--fee-rate", "2"}, 1, "pass --yes"},
		{"missing amount", "", []string{"--to", to}, 2, "--amount"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			r := c.run(tc.stdin, append([]string{"btc", "send"}, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.msg) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, tc.code, tc.msg)
			}
			if pool := c.mempool(); len(pool) != 0 {
				t.Fatalf("broadcast anyway: %v", pool)
			}
		})
	}
}

func TestPSBTDecodeCommand(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "psbt", "testdata", "vectors", "bip174", "workflow.json"))
	if err != nil {
		t.Fatal(err)
	}
	var w map[string]string
	if err := json.Unmarshal(raw, &w); err != nil {
		t.Fatal(err)
	}
	r := cli(t, w["combined"], nil, "psbt", "decode", "-", "--network", "testnet")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"inputs (2)", "outputs (2)", "fee: 0.00010000 BTC", "tb1qmpwzkuwsqc9snjvgdt4czhjsnywa5yjdzglap9", "[signed]", "d90c6a4f/0'/0'/4'"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("decode output lacks %q:\n%s", want, r.stdout)
		}
	}
	golden(t, "psbt_decode_bip174_combined.txt", r.stdout)
	r = cli(t, w["combined"], nil, "psbt", "decode", "-", "--json")
	var s struct {
		Fee    int64 `json:"fee_sat"`
		Inputs []struct {
			Status string `json:"status"`
		} `json:"inputs"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || s.Fee != 10000 || len(s.Inputs) != 2 {
		t.Fatalf("json: %v %+v", err, s)
	}
	r = cli(t, "cHNidP8BAAA=", nil, "psbt", "decode", "-")
	if r.code != 1 || !strings.Contains(r.stderr, "malformed psbt") {
		t.Fatalf("bad psbt: exit %d %q", r.code, r.stderr)
	}
}
