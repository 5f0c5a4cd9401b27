package bitcoin

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// RPC is a Backend over Bitcoin Core-compatible JSON-RPC (HTTP POST, basic auth), as btcd
// also serves it. UTXOs are found with btcd's address index (searchrawtransactions, which
// needs --txindex --addrindex) and checked with gettxout; against Bitcoin Core, which has
// no address index, scantxoutset is used instead (it sees confirmed outputs only).
type RPC struct {
	url        string
	user, pass string
	net        *chaincfg.Params
	client     *http.Client
}

// Limits on node answers.
const (
	maxRPCReply  = 64 << 20
	searchPage   = 100
	maxScanPages = 1000
)

// NewRPC returns a client for a node URL "http://user:pass@host:port".
func NewRPC(rawURL string, net *chaincfg.Params) (*RPC, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("rpc url %q: want http://user:pass@host:port", redact(rawURL))
	}
	r := &RPC{net: net, client: &http.Client{Timeout: 60 * time.Second}}
	if u.User != nil {
		r.user = u.User.Username()
		r.pass, _ = u.User.Password()
	}
	u.User = nil
	r.url = u.String()
	return r, nil
}

func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	u.User = url.User(u.User.Username())
	return u.String()
}

// RPCError is a node's JSON-RPC error.
type RPCError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *RPCError) Error() string { return fmt.Sprintf("node error %d: %s", e.Code, e.Message) }

const (
	rpcMethodNotFound = -32601
	rpcNoInformation  = -5
	rpcMiscError      = -1
)

func isRPCCode(err error, codes ...int) bool {
	var re *RPCError
	if !errors.As(err, &re) {
		return false
	}
	for _, c := range codes {
		if re.Code == c {
			return true
		}
	}
	return false
}

// Call makes one JSON-RPC call and decodes its result into out (if not nil).
func (r *RPC) Call(ctx context.Context, method string, out any, params ...any) error {
	if params == nil {
		params = []any{}
	}
	body, err := json.Marshal(map[string]any{"jsonrpc": "1.0", "id": "hwbridge", "method": method, "params": params})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if r.user != "" || r.pass != "" {
		req.SetBasicAuth(r.user, r.pass)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: the node at %s does not answer (is it running? is --rpc right?): %w", method, r.url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxRPCReply))
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return fmt.Errorf("%s: the node refused the credentials (give them with --rpc-cookie FILE, --rpc-user and --rpc-password-file, the node's default cookie, or in the --rpc URL)", method)
	}
	var reply struct {
		Result json.RawMessage `json:"result"`
		Error  *RPCError       `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&reply); err != nil {
		return fmt.Errorf("%s: http %d: %s", method, resp.StatusCode, strings.TrimSpace(string(raw[:min(len(raw), 200)])))
	}
	if reply.Error != nil {
		return fmt.Errorf("%s: %w", method, reply.Error)
	}
	if out == nil {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(reply.Result))
	d.UseNumber()
	if err := d.Decode(out); err != nil {
		return fmt.Errorf("%s: decode result: %w", method, err)
	}
	return nil
}

type searchTx struct {
	Hex           string `json:"hex"`
	Confirmations int64  `json:"confirmations"`
}

type txOutResult struct {
	Confirmations int64 `json:"confirmations"`
	Coinbase      bool  `json:"coinbase"`
}

// Scan implements Backend.
func (r *RPC) Scan(ctx context.Context, scripts [][]byte) ([]UTXO, []bool, error) {
	utxos, used, err := r.scanAddrIndex(ctx, scripts)
	if isRPCCode(err, rpcMethodNotFound) {
		return r.scanTxOutSet(ctx, scripts)
	}
	return utxos, used, err
}

func (r *RPC) scanAddrIndex(ctx context.Context, scripts [][]byte) ([]UTXO, []bool, error) {
	used := make([]bool, len(scripts))
	index := make(map[string]int, len(scripts))
	for i, s := range scripts {
		index[string(s)] = i
	}
	cands := map[wire.OutPoint]UTXO{}
	spent := map[wire.OutPoint]bool{}
	for _, s := range scripts {
		_, addrs, _, err := txscript.ExtractPkScriptAddrs(s, r.net)
		if err != nil || len(addrs) != 1 {
			return nil, nil, fmt.Errorf("script %x has no address", s)
		}
		addr := addrs[0].EncodeAddress()
		for page := 0; page < maxScanPages; page++ {
			var txs []searchTx
			err := r.Call(ctx, "searchrawtransactions", &txs, addr, 1, page*searchPage, searchPage, 0, false)
			if isRPCCode(err, rpcNoInformation) {
				break // no transactions for this address
			}
			if err != nil {
				return nil, nil, err
			}
			for _, st := range txs {
				tx, err := decodeTxHex(st.Hex)
				if err != nil {
					return nil, nil, fmt.Errorf("searchrawtransactions %s: %w", addr, err)
				}
				h := tx.TxHash()
				for _, in := range tx.TxIn {
					spent[in.PreviousOutPoint] = true
				}
				for n, out := range tx.TxOut {
					if j, ok := index[string(out.PkScript)]; ok {
						used[j] = true
						op := wire.OutPoint{Hash: h, Index: uint32(n)}
						cands[op] = UTXO{OutPoint: op, Value: out.Value, PkScript: out.PkScript, Confirmations: st.Confirmations, Coinbase: blockchainIsCoinbase(tx)}
					}
				}
			}
			if len(txs) < searchPage {
				break
			}
		}
	}
	var out []UTXO
	for op, u := range cands {
		if spent[op] {
			continue
		}
		var res *txOutResult
		if err := r.Call(ctx, "gettxout", &res, op.Hash.String(), op.Index, true); err != nil {
			return nil, nil, err
		}
		if res == nil {
			continue // spent
		}
		u.Confirmations, u.Coinbase = res.Confirmations, res.Coinbase || u.Coinbase
		out = append(out, u)
	}
	sortUTXOs(out)
	return out, used, nil
}

func blockchainIsCoinbase(tx *wire.MsgTx) bool {
	return len(tx.TxIn) == 1 && tx.TxIn[0].PreviousOutPoint.Index == wire.MaxPrevOutIndex &&
		tx.TxIn[0].PreviousOutPoint.Hash == (chainhash.Hash{})
}

// scanTxOutSet is the Bitcoin Core path: scantxoutset over raw() descriptors.
func (r *RPC) scanTxOutSet(ctx context.Context, scripts [][]byte) ([]UTXO, []bool, error) {
	descs := make([]string, len(scripts))
	index := map[string]int{}
	for i, s := range scripts {
		descs[i] = "raw(" + hex.EncodeToString(s) + ")"
		index[hex.EncodeToString(s)] = i
	}
	var res struct {
		Height   int64 `json:"height"`
		Unspents []struct {
			TxID         string      `json:"txid"`
			Vout         uint32      `json:"vout"`
			ScriptPubKey string      `json:"scriptPubKey"`
			Amount       json.Number `json:"amount"`
			Height       int64       `json:"height"`
			Coinbase     bool        `json:"coinbase"`
		} `json:"unspents"`
	}
	if err := r.Call(ctx, "scantxoutset", &res, "start", descs); err != nil {
		return nil, nil, err
	}
	used := make([]bool, len(scripts))
	var out []UTXO
	for _, u := range res.Unspents {
		h, err := chainhash.NewHashFromStr(u.TxID)
		if err != nil {
			return nil, nil, fmt.Errorf("scantxoutset: txid %q", u.TxID)
		}
		v, err := parseChainDecimal(u.Amount.String(), 8)
		if err != nil {
			return nil, nil, fmt.Errorf("scantxoutset: amount %q: %w", u.Amount, err)
		}
		script, err := hex.DecodeString(u.ScriptPubKey)
		if err != nil {
			return nil, nil, fmt.Errorf("scantxoutset: script %q", u.ScriptPubKey)
		}
		if j, ok := index[u.ScriptPubKey]; ok {
			used[j] = true
		}
		conf := int64(0)
		if u.Height > 0 {
			conf = res.Height - u.Height + 1
		}
		out = append(out, UTXO{OutPoint: wire.OutPoint{Hash: *h, Index: u.Vout}, Value: v, PkScript: script, Confirmations: conf, Coinbase: u.Coinbase})
	}
	sortUTXOs(out)
	return out, used, nil
}

func decodeTxHex(s string) (*wire.MsgTx, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("transaction hex: %w", err)
	}
	var tx wire.MsgTx
	if err := tx.Deserialize(bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("transaction: %w", err)
	}
	return &tx, nil
}

// RawTx implements Backend.
func (r *RPC) RawTx(ctx context.Context, txid chainhash.Hash) (*wire.MsgTx, error) {
	var s string
	err := r.Call(ctx, "getrawtransaction", &s, txid.String(), 0)
	if isRPCCode(err, rpcNoInformation) {
		return nil, fmt.Errorf("%w: %s (btcd needs --txindex)", ErrTxNotFound, txid)
	}
	if err != nil {
		return nil, err
	}
	tx, err := decodeTxHex(s)
	if err != nil {
		return nil, err
	}
	if tx.TxHash() != txid {
		return nil, fmt.Errorf("the node answered transaction %s for %s", tx.TxHash(), txid)
	}
	return tx, nil
}

// FeeRate implements Backend: estimatesmartfee (Bitcoin Core), else estimatefee (btcd).
func (r *RPC) FeeRate(ctx context.Context, target int) (FeeRate, error) {
	var smart struct {
		FeeRate *json.Number `json:"feerate"`
		Errors  []string     `json:"errors"`
	}
	err := r.Call(ctx, "estimatesmartfee", &smart, target)
	if err == nil && smart.FeeRate != nil {
		return btcPerKvB(smart.FeeRate.String())
	}
	if err != nil && !isRPCCode(err, rpcMethodNotFound) {
		return 0, err
	}
	var n json.Number
	if err := r.Call(ctx, "estimatefee", &n, target); err != nil {
		if isRPCCode(err, rpcMethodNotFound, rpcMiscError) {
			return 0, ErrNoFeeEstimate
		}
		return 0, err
	}
	return btcPerKvB(n.String())
}

// btcPerKvB converts a BTC/kvB rate to FeeRate: 1e-8 BTC/kvB is 1 msat/vB.
func btcPerKvB(s string) (FeeRate, error) {
	v, err := parseChainDecimal(s, 8)
	if err != nil {
		return 0, fmt.Errorf("fee estimate %q: %w", s, err)
	}
	if v <= 0 {
		return 0, ErrNoFeeEstimate
	}
	return FeeRate(v), nil
}

// Broadcast implements Backend.
func (r *RPC) Broadcast(ctx context.Context, tx *wire.MsgTx) (chainhash.Hash, error) {
	var buf bytes.Buffer
	if err := tx.Serialize(&buf); err != nil {
		return chainhash.Hash{}, err
	}
	var id string
	if err := r.Call(ctx, "sendrawtransaction", &id, hex.EncodeToString(buf.Bytes())); err != nil {
		var re *RPCError
		if errors.As(err, &re) {
			return chainhash.Hash{}, fmt.Errorf("%w: %s", ErrRejected, re.Message)
		}
		return chainhash.Hash{}, err
	}
	h, err := chainhash.NewHashFromStr(id)
	if err != nil {
		return chainhash.Hash{}, fmt.Errorf("sendrawtransaction answered %q", id)
	}
	if *h != tx.TxHash() {
		return chainhash.Hash{}, fmt.Errorf("the node answered txid %s for %s", h, tx.TxHash())
	}
	return *h, nil
}

// TipHeight implements Backend.
func (r *RPC) TipHeight(ctx context.Context) (int64, error) {
	var n int64
	err := r.Call(ctx, "getblockcount", &n)
	return n, err
}

// Confirmations implements Backend (getrawtransaction verbose; btcd needs --txindex for
// mined transactions).
func (r *RPC) Confirmations(ctx context.Context, txid chainhash.Hash) (int64, error) {
	var res struct {
		Confirmations int64 `json:"confirmations"`
	}
	err := r.Call(ctx, "getrawtransaction", &res, txid.String(), 1)
	if isRPCCode(err, rpcNoInformation) {
		return 0, fmt.Errorf("%w: %s", ErrTxNotFound, txid)
	}
	return res.Confirmations, err
}
