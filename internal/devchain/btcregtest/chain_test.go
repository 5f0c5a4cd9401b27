package btcregtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// testKey is the key the coinbases of the tests pay to.
func testKey() (*btcec.PrivateKey, *btcutil.AddressWitnessPubKeyHash, *btcutil.AddressTaproot) {
	seed := sha256.Sum256([]byte("hwbridge btcregtest test key"))
	priv, pub := btcec.PrivKeyFromBytes(seed[:])
	wpkh, err := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(pub.SerializeCompressed()), &chaincfg.RegressionNetParams)
	if err != nil {
		panic(err)
	}
	tr, err := btcutil.NewAddressTaproot(schnorr.SerializePubKey(txscript.ComputeTaprootKeyNoScript(pub)), &chaincfg.RegressionNetParams)
	if err != nil {
		panic(err)
	}
	return priv, wpkh, tr
}

// rpc is a raw JSON-RPC client over btcd's rpcclient in HTTP POST mode.
type rpc struct {
	t *testing.T
	c *rpcclient.Client
}

func newRPC(t *testing.T, rawURL string) *rpc {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	pass, _ := u.User.Password()
	c, err := rpcclient.New(&rpcclient.ConnConfig{
		Host: u.Host, User: u.User.Username(), Pass: pass, HTTPPostMode: true, DisableTLS: true,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Shutdown)
	return &rpc{t: t, c: c}
}

// call returns the raw result, or the RPC error.
func (r *rpc) call(method string, params ...any) (json.RawMessage, error) {
	raw := make([]json.RawMessage, len(params))
	for i, p := range params {
		b, err := json.Marshal(p)
		if err != nil {
			r.t.Fatal(err)
		}
		raw[i] = b
	}
	return r.c.RawRequest(method, raw)
}

func (r *rpc) must(method string, params ...any) json.RawMessage {
	r.t.Helper()
	res, err := r.call(method, params...)
	if err != nil {
		r.t.Fatalf("%s %v: %v", method, params, err)
	}
	return res
}

func decode[T any](t *testing.T, raw json.RawMessage) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return v
}

// spendCoinbase builds a P2WPKH spend of the first output of the coinbase at height, paying
// 1 BTC to the taproot address and the rest (minus fee) back to the P2WPKH address.
func spendCoinbase(t *testing.T, r *rpc, height int, fee int64) (*wire.MsgTx, string) {
	t.Helper()
	priv, wpkh, tr := testKey()
	hash := decode[string](t, r.must("getblockhash", height))
	blk := decode[map[string]any](t, r.must("getblock", hash, 1))
	cbID := blk["tx"].([]any)[0].(string)
	out := decode[map[string]any](t, r.must("gettxout", cbID, 0, true))
	if out == nil {
		t.Fatalf("coinbase %s:0 is spent", cbID)
	}
	amt, err := btcutil.NewAmount(out["value"].(float64))
	if err != nil {
		t.Fatal(err)
	}
	cb, _ := chainhash.NewHashFromStr(cbID)
	pkW, _ := txscript.PayToAddrScript(wpkh)
	pkT, _ := txscript.PayToAddrScript(tr)
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(wire.NewOutPoint(cb, 0), nil, nil))
	tx.AddTxOut(wire.NewTxOut(1e8, pkT))
	tx.AddTxOut(wire.NewTxOut(int64(amt)-1e8-fee, pkW))
	fetcher := txscript.NewCannedPrevOutputFetcher(pkW, int64(amt))
	wit, err := txscript.WitnessSignature(tx, txscript.NewTxSigHashes(tx, fetcher), 0, int64(amt), pkW, txscript.SigHashAll, priv, true)
	if err != nil {
		t.Fatal(err)
	}
	tx.TxIn[0].Witness = wit
	var buf bytes.Buffer
	if err := tx.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return tx, hex.EncodeToString(buf.Bytes())
}

// flow runs the same calls against a node and returns each answer by name. The node's
// coinbases pay to testKey's P2WPKH address, and witness spends are active.
func flow(t *testing.T, r *rpc) map[string]json.RawMessage {
	t.Helper()
	got := map[string]json.RawMessage{}
	_, wpkh, tr := testKey()
	got["generate"] = r.must("generate", 3)
	tip := decode[int](t, r.must("getblockcount"))
	got["getblockchaininfo"] = r.must("getblockchaininfo")
	got["getbestblockhash"] = r.must("getbestblockhash")

	tx, txHex := spendCoinbase(t, r, 1, 2000)
	txid := tx.TxHash().String()

	// A tampered signature fails script validation in the mempool.
	bad := tx.Copy()
	sig := bytes.Clone(bad.TxIn[0].Witness[0])
	sig[10] ^= 1
	bad.TxIn[0].Witness[0] = sig
	var badBuf bytes.Buffer
	bad.Serialize(&badBuf)
	got["testmempoolaccept_bad"] = r.must("testmempoolaccept", []string{hex.EncodeToString(badBuf.Bytes())}, 0.1)
	_, err := r.call("sendrawtransaction", hex.EncodeToString(badBuf.Bytes()))
	got["sendrawtransaction_bad"] = rpcErr(t, err)

	got["testmempoolaccept"] = r.must("testmempoolaccept", []string{txHex}, 0.1)
	got["sendrawtransaction"] = r.must("sendrawtransaction", txHex)
	_, err = r.call("sendrawtransaction", txHex)
	got["sendrawtransaction_again"] = rpcErr(t, err)
	got["getrawmempool"] = r.must("getrawmempool")
	got["getmempoolinfo"] = r.must("getmempoolinfo")
	got["gettxout_mempool"] = r.must("gettxout", txid, 1, true)
	got["getrawtransaction_mempool"] = r.must("getrawtransaction", txid, 1)
	got["gettxspendingprevout"] = r.must("gettxspendingprevout", []map[string]any{{"txid": tx.TxIn[0].PreviousOutPoint.Hash.String(), "vout": 0}})
	got["searchrawtransactions_mempool"] = r.must("searchrawtransactions", tr.EncodeAddress(), 1, 0, 100, 1)

	got["generate_1"] = r.must("generate", 1)
	blockHash := decode[[]string](t, got["generate_1"])[0]
	got["getblock_0"] = r.must("getblock", blockHash, 0)
	got["getblock_1"] = r.must("getblock", blockHash, 1)
	got["getblock_2"] = r.must("getblock", blockHash, 2)
	got["getblockheader"] = r.must("getblockheader", blockHash, true)
	got["getblockheader_hex"] = r.must("getblockheader", blockHash, false)
	got["getblockhash"] = r.must("getblockhash", tip+1)
	got["getrawtransaction"] = r.must("getrawtransaction", txid, 0)
	got["getrawtransaction_1"] = r.must("getrawtransaction", txid, 1)
	got["gettxout"] = r.must("gettxout", txid, 1, true)
	got["gettxout_spent"] = r.must("gettxout", tx.TxIn[0].PreviousOutPoint.Hash.String(), 0, true)
	got["searchrawtransactions"] = r.must("searchrawtransactions", tr.EncodeAddress(), 1, 0, 100, 1)
	got["searchrawtransactions_wpkh"] = r.must("searchrawtransactions", wpkh.EncodeAddress(), 1, 0, 2, 0, true)
	got["estimatefee"] = r.must("estimatefee", 6)
	_, err = r.call("getblockhash", 100000)
	got["getblockhash_range"] = rpcErr(t, err)
	_, err = r.call("getrawtransaction", strings.Repeat("ab", 32), 1)
	got["getrawtransaction_unknown"] = rpcErr(t, err)
	_, err = r.call("nosuchmethod")
	got["nosuchmethod"] = rpcErr(t, err)
	return got
}

// rpcErr returns the RPC error code of err as JSON (the message differs between versions).
func rpcErr(t *testing.T, err error) json.RawMessage {
	t.Helper()
	if err == nil {
		t.Fatal("call succeeded, want an RPC error")
	}
	var code int
	if _, scanErr := fmt.Sscanf(err.Error(), "%d:", &code); scanErr != nil {
		t.Fatalf("not an RPC error: %v", err)
	}
	return json.RawMessage(fmt.Sprintf(`{"code":%d}`, code))
}

func startEmbedded(t *testing.T) *Node {
	t.Helper()
	_, wpkh, _ := testKey()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := Start(ctx, NodeOptions{MiningAddr: wpkh})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func TestEmbeddedFlow(t *testing.T) {
	n := startEmbedded(t)
	if n.Height() != SegwitHeight {
		t.Fatalf("height %d, want %d", n.Height(), SegwitHeight)
	}
	r := newRPC(t, n.URL())
	got := flow(t, r)

	mempoolBad := decode[[]map[string]any](t, got["testmempoolaccept_bad"])
	if mempoolBad[0]["allowed"] == true || !strings.Contains(mempoolBad[0]["reject-reason"].(string), "failed to validate input") {
		t.Errorf("tampered signature: %s", got["testmempoolaccept_bad"])
	}
	if string(got["sendrawtransaction_bad"]) != `{"code":-25}` {
		t.Errorf("tampered sendrawtransaction: %s, want -25 (btcd: script failures are ErrRPCTxError)", got["sendrawtransaction_bad"])
	}
	ok := decode[[]map[string]any](t, got["testmempoolaccept"])
	if ok[0]["allowed"] != true {
		t.Errorf("testmempoolaccept: %s", got["testmempoolaccept"])
	}
	blk := decode[map[string]any](t, got["getblock_2"])
	raw := blk["rawtx"].([]any)
	if len(raw) != 2 {
		t.Fatalf("block has %d transactions, want 2", len(raw))
	}
	rt := decode[map[string]any](t, got["getrawtransaction_1"])
	if rt["confirmations"].(float64) != 1 {
		t.Errorf("confirmations %v", rt["confirmations"])
	}
	if string(got["gettxout_spent"]) != "null" {
		t.Errorf("spent coinbase: %s", got["gettxout_spent"])
	}
	if string(got["getblockhash_range"]) != `{"code":-1}` {
		t.Errorf("getblockhash out of range: %s", got["getblockhash_range"])
	}
	if string(got["nosuchmethod"]) != `{"code":-32601}` {
		t.Errorf("unknown method: %s", got["nosuchmethod"])
	}
	if rate := decode[float64](t, got["estimatefee"]); rate <= 0 {
		t.Logf("estimatefee %v (the estimator needs more mined transactions)", rate)
	}
}

func TestAuthAndMethod(t *testing.T) {
	n := startEmbedded(t)
	body := `{"jsonrpc":"1.0","id":1,"method":"getblockcount","params":[]}`
	tests := []struct {
		name, method, user, pass string
		want                     int
	}{
		{"ok", http.MethodPost, "", "", http.StatusOK},
		{"bad password", http.MethodPost, "hwbridge", "nope", http.StatusUnauthorized},
		{"get", http.MethodGet, "", "", http.StatusMethodNotAllowed},
	}
	user, pass := n.RPC.Credentials()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, "http://"+n.RPC.Addr(), strings.NewReader(body))
			u, p := user, pass
			if tc.user != "" {
				u, p = tc.user, tc.pass
			}
			req.SetBasicAuth(u, p)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}

func TestServeRefusesNonLoopback(t *testing.T) {
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Serve(ServerOptions{Addr: "0.0.0.0:0"}); err == nil {
		t.Fatal("served on 0.0.0.0")
	}
}

func BenchmarkMineToSegwit(b *testing.B) {
	_, wpkh, _ := testKey()
	for b.Loop() {
		c, err := New(Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.MineTo(context.Background(), SegwitHeight, wpkh); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// FuzzHandle feeds request bodies from outside to the JSON-RPC handler: it must answer
// every request with a JSON reply (or nothing for a notification) and never panic.
func FuzzHandle(f *testing.F) {
	_, wpkh, _ := testKey()
	c, err := New(Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { c.Close() })
	if _, err := c.Mine(context.Background(), 2, wpkh); err != nil {
		f.Fatal(err)
	}
	s := &Server{c: c, miningAddr: wpkh}
	for _, seed := range []string{
		`{"jsonrpc":"1.0","id":1,"method":"getblockcount","params":[]}`,
		`{"jsonrpc":"2.0","id":"x","method":"getblock","params":["00",2]}`,
		`{"id":1,"method":"sendrawtransaction","params":["0200"]}`,
		`{"id":1,"method":"testmempoolaccept","params":[["00"]]}`,
		`{"id":1,"method":"searchrawtransactions","params":["bcrt1q",1]}`,
		`{"id":1,"method":"gettxout","params":["` + strings.Repeat("0", 64) + `",0]}`,
		`[{"id":1,"method":"getbestblockhash","params":[]}]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if bytes.Contains(body, []byte("generate")) {
			return // mining is slow by design; it has its own tests
		}
		reply := s.handle(context.Background(), body)
		if reply != nil && !json.Valid(reply) {
			t.Fatalf("invalid JSON reply %q", reply)
		}
	})
}

// TestMempoolCount: what waits in the mempool is counted until a block takes it.
func TestMempoolCount(t *testing.T) {
	n := startEmbedded(t)
	r := newRPC(t, n.URL())
	if c := n.MempoolCount(); c != 0 {
		t.Fatalf("fresh chain: %d in the mempool", c)
	}
	tx, _ := spendCoinbase(t, r, 1, 10_000)
	if _, err := n.SubmitTx(tx); err != nil {
		t.Fatal(err)
	}
	if c := n.MempoolCount(); c != 1 {
		t.Fatalf("after a submission: %d in the mempool, want 1", c)
	}
	_, wpkh, _ := testKey()
	if _, err := n.Mine(t.Context(), 1, wpkh); err != nil {
		t.Fatal(err)
	}
	if c := n.MempoolCount(); c != 0 {
		t.Fatalf("after a block: %d in the mempool", c)
	}
}
