package btcregtest

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/hwbridge/hwbridge/internal/nodes"
)

// startBtcd runs the pinned btcd in regtest (tx and address indexes) with its coinbases
// paying to testKey, and returns its RPC URL.
func startBtcd(t *testing.T) string {
	t.Helper()
	_, wpkh, _ := testKey()
	return nodes.StartBtcdT(t, wpkh.EncodeAddress()).URL()
}

// shape describes a JSON value's structure: object keys with their shapes, the shape of an
// array's first element, or the scalar's type.
func shape(v any) string {
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ":" + shape(v[k])
		}
		return "{" + strings.Join(parts, ",") + "}"
	case []any:
		if len(v) == 0 {
			return "[]"
		}
		return "[" + shape(v[0]) + "]"
	case nil:
		return "null"
	case float64:
		return "number"
	case string:
		return "string"
	case bool:
		return "bool"
	}
	return fmt.Sprintf("%T", v)
}

// TestMatchesBtcd runs the same calls on a real btcd regtest and on the embedded chain and
// compares the answers' structure, and the values that must agree.
func TestMatchesBtcd(t *testing.T) {
	real := newRPC(t, startBtcd(t))
	real.must("generate", 101) // btcd v0.26 regtest: segwit and taproot active from block 1
	want := flow(t, real)

	emb := newRPC(t, startEmbedded(t).URL())
	got := flow(t, emb)

	// Known differences, each with its reason.
	skip := map[string]string{
		"getblockchaininfo": "v0.26 reports its always-active deployments differently from v0.24's BIP9 list",
	}
	for name, w := range want {
		if why, ok := skip[name]; ok {
			t.Logf("%s: not compared: %s", name, why)
			continue
		}
		var wv, gv any
		json.Unmarshal(w, &wv)
		json.Unmarshal(got[name], &gv)
		if ws, gs := shape(wv), shape(gv); ws != gs {
			t.Errorf("%s: shape differs\nbtcd:     %s\nembedded: %s", name, ws, gs)
		}
	}
	// Values that do not depend on block hashes or times.
	for _, name := range []string{
		"sendrawtransaction_bad", "sendrawtransaction_again", "getblockhash_range",
		"getrawtransaction_unknown", "nosuchmethod",
	} {
		if string(want[name]) != string(got[name]) {
			t.Errorf("%s: btcd %s, embedded %s", name, want[name], got[name])
		}
	}
	for _, name := range []string{"getrawtransaction_1", "getrawtransaction_mempool"} {
		w := decode[map[string]any](t, want[name])
		g := decode[map[string]any](t, got[name])
		for _, k := range []string{"confirmations", "version", "locktime"} {
			if w[k] != g[k] {
				t.Errorf("%s.%s: btcd %v, embedded %v", name, k, w[k], g[k])
			}
		}
		// The spent coinbases differ (block times), so the DER signature may be a byte
		// longer or shorter.
		for _, k := range []string{"size", "vsize", "weight"} {
			if d := w[k].(float64) - g[k].(float64); d > 1 || d < -1 {
				t.Errorf("%s.%s: btcd %v, embedded %v", name, k, w[k], g[k])
			}
		}
	}
	tw := decode[[]map[string]any](t, want["testmempoolaccept"])[0]
	tg := decode[[]map[string]any](t, got["testmempoolaccept"])[0]
	for _, k := range []string{"allowed"} {
		if fmt.Sprint(tw[k]) != fmt.Sprint(tg[k]) {
			t.Errorf("testmempoolaccept.%s: btcd %v, embedded %v", k, tw[k], tg[k])
		}
	}
}
