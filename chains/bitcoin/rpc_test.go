package bitcoin

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/btcsuite/btcd/chaincfg"
)

// TestRPCBitcoinCoreShapes drives the RPC backend against a server answering as Bitcoin
// Core does: no searchrawtransactions (so scantxoutset), estimatesmartfee in BTC/kvB, and
// error objects for unknown transactions and refused broadcasts.
func TestRPCBitcoinCoreShapes(t *testing.T) {
	d, err := ParseDescriptor("tr([73c5da0a/86h/0h/0h]" + benchXPub + "/<0;1>/*)")
	if err != nil {
		t.Fatal(err)
	}
	s0, _ := d.Derive(0, 0)
	s1, _ := d.Derive(0, 1)
	var gotAuth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		gotAuth = user + ":" + pass
		body, _ := io.ReadAll(r.Body)
		var req struct {
			Method string            `json:"method"`
			Params []json.RawMessage `json:"params"`
		}
		_ = json.Unmarshal(body, &req)
		reply := func(result, errObj string) {
			io.WriteString(w, `{"result":`+result+`,"error":`+errObj+`,"id":"hwbridge"}`)
		}
		switch req.Method {
		case "searchrawtransactions":
			reply("null", `{"code":-32601,"message":"Method not found"}`)
		case "scantxoutset":
			reply(`{"success":true,"txouts":1000,"height":850000,"bestblock":"00","unspents":[{"txid":"`+
				"aa"+hex.EncodeToString(make([]byte, 31))+`","vout":3,"scriptPubKey":"`+hex.EncodeToString(s0.PkScript)+
				`","desc":"raw()#x","amount":0.12345678,"coinbase":false,"height":849991}],"total_amount":0.12345678}`, "null")
		case "estimatesmartfee":
			reply(`{"feerate":0.00012345,"blocks":6}`, "null")
		case "getrawtransaction":
			reply("null", `{"code":-5,"message":"No such mempool or blockchain transaction. Use gettransaction for wallet transactions."}`)
		case "sendrawtransaction":
			reply("null", `{"code":-26,"message":"min relay fee not met, 100 < 141"}`)
		case "getblockcount":
			reply("850000", "null")
		default:
			reply("null", `{"code":-32601,"message":"Method not found"}`)
		}
	}))
	defer srv.Close()
	r, err := NewRPC("http://alice:s3cret@"+srv.Listener.Addr().String(), &chaincfg.MainNetParams)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	utxos, used, err := r.Scan(ctx, [][]byte{s0.PkScript, s1.PkScript})
	if err != nil {
		t.Fatal(err)
	}
	if gotAuth != "alice:s3cret" {
		t.Fatalf("auth %q", gotAuth)
	}
	if len(utxos) != 1 || utxos[0].Value != 12_345_678 || utxos[0].Confirmations != 10 || utxos[0].OutPoint.Index != 3 || !used[0] || used[1] {
		t.Fatalf("utxos %+v used %v", utxos, used)
	}
	if rate, err := r.FeeRate(ctx, 6); err != nil || rate != 12345 {
		t.Fatalf("rate %v %v (want 12.345 sat/vB)", rate, err)
	}
	if _, err := r.Confirmations(ctx, utxos[0].OutPoint.Hash); !errors.Is(err, ErrTxNotFound) {
		t.Fatalf("unknown tx: %v", err)
	}
	if h, err := r.TipHeight(ctx); err != nil || h != 850000 {
		t.Fatalf("tip %d %v", h, err)
	}
	if _, err := NewRPC("ftp://x", &chaincfg.MainNetParams); err == nil {
		t.Fatal("accepted an ftp url")
	}
}

func TestParseChainDecimal(t *testing.T) {
	for in, want := range map[string]int64{
		"0.000130718954248366": 13072, // btcd's estimatefee: rounded up
		"0.00012345":           12345,
		"1":                    100_000_000,
		"0.1":                  10_000_000,
	} {
		if got, err := parseChainDecimal(in, 8); err != nil || got != want {
			t.Errorf("%s: %d %v, want %d", in, got, err, want)
		}
	}
	if _, err := parseChainDecimal("1e-5", 8); err == nil {
		t.Error("accepted exponent form")
	}
}
