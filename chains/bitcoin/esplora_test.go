package bitcoin

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

func recorded(t *testing.T, name string, repl ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "esplora", name))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(strings.NewReplacer(repl...).Replace(string(b)))
}

func TestEsplora(t *testing.T) {
	net := &chaincfg.MainNetParams
	d, err := ParseDescriptor("tr([73c5da0a/86h/0h/0h]xpub6BgBgsespWvERF3LHQu6CnqdvfEvtMcQjYrcRzx53QJjSxarj2afYWcLteoGVky7D3UKDP9QyrLprQ3VCECoY49yfdDEHGCtMMj92pReUsQ/<0;1>/*)")
	if err != nil {
		t.Fatal(err)
	}
	used, _ := d.Derive(0, 0)
	usedAddr, _ := d.Address(0, 0, net)
	unused, _ := d.Derive(0, 1)
	prev := wire.NewMsgTx(2)
	prev.AddTxIn(wire.NewTxIn(&wire.OutPoint{Index: 7}, nil, nil))
	prev.AddTxOut(wire.NewTxOut(100000, used.PkScript))
	var pbuf bytes.Buffer
	_ = prev.Serialize(&pbuf)
	txid := prev.TxHash().String()
	var posted string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case p == "/api/blocks/tip/height":
			io.WriteString(w, "840010")
		case p == "/api/address/"+usedAddr.EncodeAddress():
			w.Write(recorded(t, "address.json", "ADDR", usedAddr.EncodeAddress()))
		case strings.HasPrefix(p, "/api/address/") && strings.HasSuffix(p, "/utxo"):
			w.Write(recorded(t, "utxo.json", "TXID", txid))
		case strings.HasPrefix(p, "/api/address/"):
			w.Write(recorded(t, "address_unused.json", "ADDR", strings.TrimPrefix(p, "/api/address/")))
		case p == "/api/fee-estimates":
			w.Write(recorded(t, "fee-estimates.json"))
		case p == "/api/tx/"+txid+"/hex":
			io.WriteString(w, hex.EncodeToString(pbuf.Bytes()))
		case p == "/api/tx/"+txid+"/status":
			w.Write(recorded(t, "tx_status.json"))
		case p == "/api/tx" && r.Method == http.MethodPost:
			b, _ := io.ReadAll(r.Body)
			posted = string(b)
			if strings.HasPrefix(posted, "00") {
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, `sendrawtransaction RPC error: {"code":-26,"message":"min relay fee not met"}`)
				return
			}
			io.WriteString(w, txid)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	e := NewEsplora(srv.URL+"/api/", net)
	ctx := t.Context()

	utxos, usedFlags, err := e.Scan(ctx, [][]byte{used.PkScript, unused.PkScript})
	if err != nil {
		t.Fatal(err)
	}
	if !usedFlags[0] || usedFlags[1] || len(utxos) != 2 {
		t.Fatalf("used %v, utxos %+v", usedFlags, utxos)
	}
	var conf, mem UTXO
	for _, u := range utxos {
		if u.OutPoint.Index == 0 {
			conf = u
		} else {
			mem = u
		}
	}
	if conf.Value != 100000 || conf.Confirmations != 11 || mem.Confirmations != 0 || mem.Value != 2500 {
		t.Fatalf("utxos %+v", utxos)
	}
	rate, err := e.FeeRate(ctx, 6)
	if err != nil || rate != 68285 {
		t.Fatalf("fee rate %v %v", rate, err)
	}
	if rate, _ := e.FeeRate(ctx, 200); rate != 1027 {
		t.Fatalf("fee rate for 200 blocks %v", rate)
	}
	if _, err := e.FeeRate(ctx, 2000); !errors.Is(err, ErrNoFeeEstimate) {
		t.Fatalf("beyond the longest target: %v", err)
	}
	got, err := e.RawTx(ctx, prev.TxHash())
	if err != nil || got.TxHash() != prev.TxHash() {
		t.Fatalf("raw tx %v", err)
	}
	if n, err := e.Confirmations(ctx, prev.TxHash()); err != nil || n != 9 {
		t.Fatalf("confirmations %d %v", n, err)
	}
	var unknown [32]byte
	if _, err := e.Confirmations(ctx, unknown); !errors.Is(err, ErrTxNotFound) {
		t.Fatalf("unknown transaction: %v", err)
	}
	id, err := e.Broadcast(ctx, prev)
	if err != nil || id != prev.TxHash() || posted != hex.EncodeToString(pbuf.Bytes()) {
		t.Fatalf("broadcast %s %v (posted %q)", id, err, posted)
	}
	if h, err := e.TipHeight(ctx); err != nil || h != 840010 {
		t.Fatalf("tip %d %v", h, err)
	}
	// A refused broadcast (the test server refuses a transaction whose hex starts 00).
	bad := wire.NewMsgTx(0)
	bad.AddTxIn(wire.NewTxIn(&wire.OutPoint{}, nil, nil))
	bad.AddTxOut(wire.NewTxOut(1, []byte{txscript.OP_TRUE}))
	if _, err := e.Broadcast(ctx, bad); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "min relay fee not met") {
		t.Fatalf("rejected broadcast: %v", err)
	}
}
