package ledger

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil/psbt"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// replayExchanger plays a recorded transcript: every command must equal the next "=>"
// line, and gets the "<=" line after it.
type replayExchanger struct {
	t     *testing.T
	steps [][2][]byte
	n     int
}

func newReplay(t *testing.T, lines []string) *replayExchanger {
	t.Helper()
	r := &replayExchanger{t: t}
	var kept []string
	for _, l := range lines {
		if !strings.HasPrefix(l, "//") {
			kept = append(kept, l)
		}
	}
	lines = kept
	for i := 0; i+1 < len(lines); i += 2 {
		cmd, ok1 := strings.CutPrefix(lines[i], "=> ")
		resp, ok2 := strings.CutPrefix(lines[i+1], "<= ")
		if !ok1 || !ok2 {
			t.Fatalf("transcript line %d: %q / %q", i, lines[i], lines[i+1])
		}
		c, err1 := hex.DecodeString(strings.TrimSpace(cmd))
		p, err2 := hex.DecodeString(strings.TrimSpace(resp))
		if err1 != nil || err2 != nil {
			t.Fatalf("transcript line %d: %v %v", i, err1, err2)
		}
		r.steps = append(r.steps, [2][]byte{c, p})
	}
	return r
}

func (r *replayExchanger) Exchange(_ context.Context, apdu []byte) ([]byte, error) {
	r.t.Helper()
	if r.n >= len(r.steps) {
		r.t.Fatalf("exchange %d: command %x after the end of the transcript", r.n, apdu)
	}
	want := r.steps[r.n]
	if !bytes.Equal(apdu, want[0]) {
		r.t.Fatalf("exchange %d of %d:\n got %x\nwant %x", r.n, len(r.steps), apdu, want[0])
	}
	r.n++
	return want[1], nil
}

func (r *replayExchanger) done() {
	r.t.Helper()
	if r.n != len(r.steps) {
		r.t.Errorf("transcript of %d exchanges, %d used", len(r.steps), r.n)
	}
}

func loadCases(t testing.TB, name string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "app-bitcoin-new", name))
	if err != nil {
		t.Fatal(err)
	}
	var cases []map[string]any
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	return cases
}

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// replaySession is a session of a driver on a replayed transcript, for the Bitcoin Test app.
func replaySession(t *testing.T, r *replayExchanger) *session {
	d := New(r, Options{})
	return &session{d: d, ctx: t.Context(), op: "replay", app: AppBitcoinTest}
}

func hmacOf(t *testing.T, v any) [32]byte {
	var h [32]byte
	if v == nil {
		return h
	}
	b, err := hex.DecodeString(v.(string))
	if err != nil || len(b) != 32 {
		t.Fatalf("hmac %v", v)
	}
	copy(h[:], b)
	return h
}

func TestReplayGetExtendedPubkey(t *testing.T) {
	for _, c := range loadCases(t, "get_extended_pubkey.json") {
		t.Run(c["derivation_path"].(string), func(t *testing.T) {
			r := newReplay(t, strs(c["exchanges"]))
			got, err := replaySession(t, r).xpub(hdpath.MustParse(c["derivation_path"].(string)), c["display"].(bool))
			if err != nil {
				t.Fatal(err)
			}
			if got != c["result"].(string) {
				t.Errorf("xpub %s, want %s", got, c["result"])
			}
			r.done()
		})
	}
}

func TestReplayGetWalletAddress(t *testing.T) {
	for _, c := range loadCases(t, "get_wallet_address.json") {
		t.Run(c["policy"].(string), func(t *testing.T) {
			r := newReplay(t, strs(c["exchanges"]))
			pol := device.WalletPolicy{Name: c["name"].(string), Template: c["policy"].(string), Keys: strs(c["keys"])}
			change := uint32(0)
			if c["change"].(bool) {
				change = 1
			}
			got, err := replaySession(t, r).walletAddress(pol, hmacOf(t, c["hmac"]), change, uint32(c["address_index"].(float64)), c["display"].(bool))
			if err != nil {
				t.Fatal(err)
			}
			if got != c["address"].(string) {
				t.Errorf("address %s, want %s", got, c["address"])
			}
			r.done()
		})
	}
}

func TestReplayRegisterWallet(t *testing.T) {
	for _, c := range loadCases(t, "register_wallet.json") {
		if c["version"].(float64) != 2 {
			continue // V1 serialization: ledger-bitcoin and this driver send V2 only
		}
		t.Run(c["name"].(string), func(t *testing.T) {
			r := newReplay(t, strs(c["exchanges"]))
			pol := device.WalletPolicy{Name: c["name"].(string), Template: c["policy"].(string), Keys: strs(c["keys"])}
			got, err := replaySession(t, r).register(pol)
			if err != nil {
				t.Fatal(err)
			}
			if got != hmacOf(t, c["hmac"]) {
				t.Errorf("hmac %x, want %s", got, c["hmac"])
			}
			r.done()
		})
	}
}

func TestReplaySignPSBT(t *testing.T) {
	for _, c := range loadCases(t, "sign_psbt.json") {
		t.Run(c["policy"].(string), func(t *testing.T) {
			r := newReplay(t, strs(c["exchanges"]))
			p, err := psbt.NewFromRawBytes(strings.NewReader(c["psbt"].(string)), true)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := toV2(p, nil)
			if err != nil {
				t.Fatal(err)
			}
			pol := device.WalletPolicy{Name: c["name"].(string), Template: c["policy"].(string), Keys: strs(c["keys"])}
			sigs, err := replaySession(t, r).signPSBT(merkleize(raw), pol, hmacOf(t, c["hmac"]), len(p.Inputs))
			if err != nil {
				t.Fatal(err)
			}
			r.done()
			want := c["sigs"].([]any)
			for _, w := range want {
				w := w.(map[string]any)
				key, _ := hex.DecodeString(w["key"].(string))
				if lh, ok := w["tapleaf_hash"].(string); ok {
					b, _ := hex.DecodeString(lh)
					key = append(key, b...)
				}
				sig, _ := hex.DecodeString(w["sig"].(string))
				found := false
				for _, s := range sigs {
					found = found || (bytes.Equal(s.pubkey, key) && bytes.Equal(s.sig, sig))
				}
				if !found {
					t.Errorf("signature %x by %x not yielded (got %d signatures)", sig, key, len(sigs))
				}
			}
			mergeSigs(p, sigs)
		})
	}
}
