package bitcoin

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// Esplora is a Backend over the Esplora REST API (blockstream/esplora, mempool.space's
// /api): /address/:a, /address/:a/utxo, /tx/:id/hex, /tx/:id/status, /fee-estimates,
// /blocks/tip/height and POST /tx.
type Esplora struct {
	base   string
	net    *chaincfg.Params
	client *http.Client
}

const maxEsploraReply = 16 << 20

// NewEsplora returns a client for an API base URL such as https://blockstream.info/api.
func NewEsplora(base string, net *chaincfg.Params) *Esplora {
	return &Esplora{base: strings.TrimRight(base, "/"), net: net, client: &http.Client{Timeout: 60 * time.Second}}
}

func (e *Esplora) do(ctx context.Context, method, path string, body []byte) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, method, e.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "text/plain")
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("esplora %s: %w", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxEsploraReply))
	if err != nil {
		return nil, 0, fmt.Errorf("esplora %s: %w", path, err)
	}
	return raw, resp.StatusCode, nil
}

func (e *Esplora) get(ctx context.Context, path string, out any) error {
	raw, code, err := e.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	if code == http.StatusNotFound {
		return fmt.Errorf("esplora %s: %w", path, ErrTxNotFound)
	}
	if code != http.StatusOK {
		return fmt.Errorf("esplora %s: http %d: %s", path, code, strings.TrimSpace(string(raw[:min(len(raw), 200)])))
	}
	if s, ok := out.(*string); ok {
		*s = strings.TrimSpace(string(raw))
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(out); err != nil {
		return fmt.Errorf("esplora %s: %w", path, err)
	}
	return nil
}

type esploraStatus struct {
	Confirmed   bool  `json:"confirmed"`
	BlockHeight int64 `json:"block_height"`
}

// Scan implements Backend.
func (e *Esplora) Scan(ctx context.Context, scripts [][]byte) ([]UTXO, []bool, error) {
	tip, err := e.TipHeight(ctx)
	if err != nil {
		return nil, nil, err
	}
	used := make([]bool, len(scripts))
	var out []UTXO
	for i, s := range scripts {
		_, addrs, _, err := txscript.ExtractPkScriptAddrs(s, e.net)
		if err != nil || len(addrs) != 1 {
			return nil, nil, fmt.Errorf("script %x has no address", s)
		}
		addr := addrs[0].EncodeAddress()
		var info struct {
			Chain struct {
				TxCount int64 `json:"tx_count"`
			} `json:"chain_stats"`
			Mempool struct {
				TxCount int64 `json:"tx_count"`
			} `json:"mempool_stats"`
		}
		if err := e.get(ctx, "/address/"+addr, &info); err != nil {
			return nil, nil, err
		}
		used[i] = info.Chain.TxCount+info.Mempool.TxCount > 0
		if !used[i] {
			continue
		}
		var us []struct {
			TxID   string        `json:"txid"`
			Vout   uint32        `json:"vout"`
			Value  int64         `json:"value"`
			Status esploraStatus `json:"status"`
		}
		if err := e.get(ctx, "/address/"+addr+"/utxo", &us); err != nil {
			return nil, nil, err
		}
		for _, u := range us {
			h, err := chainhash.NewHashFromStr(u.TxID)
			if err != nil {
				return nil, nil, fmt.Errorf("esplora: txid %q", u.TxID)
			}
			conf := int64(0)
			if u.Status.Confirmed {
				conf = tip - u.Status.BlockHeight + 1
			}
			out = append(out, UTXO{OutPoint: wire.OutPoint{Hash: *h, Index: u.Vout}, Value: u.Value, PkScript: s, Confirmations: conf})
		}
	}
	sortUTXOs(out)
	return out, used, nil
}

// RawTx implements Backend.
func (e *Esplora) RawTx(ctx context.Context, txid chainhash.Hash) (*wire.MsgTx, error) {
	var s string
	if err := e.get(ctx, "/tx/"+txid.String()+"/hex", &s); err != nil {
		return nil, err
	}
	tx, err := decodeTxHex(s)
	if err != nil {
		return nil, err
	}
	if tx.TxHash() != txid {
		return nil, fmt.Errorf("esplora answered transaction %s for %s", tx.TxHash(), txid)
	}
	return tx, nil
}

// FeeRate implements Backend: the estimate for the smallest listed target ≥ target.
func (e *Esplora) FeeRate(ctx context.Context, target int) (FeeRate, error) {
	var m map[string]json.Number
	if err := e.get(ctx, "/fee-estimates", &m); err != nil {
		return 0, err
	}
	best, bestT := "", 0
	for k, v := range m {
		t, err := strconv.Atoi(k)
		if err != nil || t < target {
			continue
		}
		if best == "" || t < bestT {
			best, bestT = v.String(), t
		}
	}
	if best == "" {
		return 0, ErrNoFeeEstimate
	}
	v, err := parseChainDecimal(best, 3)
	if err != nil || v <= 0 {
		return 0, ErrNoFeeEstimate
	}
	return FeeRate(v), nil
}

// Broadcast implements Backend.
func (e *Esplora) Broadcast(ctx context.Context, tx *wire.MsgTx) (chainhash.Hash, error) {
	var buf bytes.Buffer
	if err := tx.Serialize(&buf); err != nil {
		return chainhash.Hash{}, err
	}
	raw, code, err := e.do(ctx, http.MethodPost, "/tx", []byte(hex.EncodeToString(buf.Bytes())))
	if err != nil {
		return chainhash.Hash{}, err
	}
	if code != http.StatusOK {
		return chainhash.Hash{}, fmt.Errorf("%w: %s", ErrRejected, strings.TrimSpace(string(raw[:min(len(raw), 300)])))
	}
	h, err := chainhash.NewHashFromStr(strings.TrimSpace(string(raw)))
	if err != nil || *h != tx.TxHash() {
		return chainhash.Hash{}, fmt.Errorf("esplora answered %q for %s", strings.TrimSpace(string(raw)), tx.TxHash())
	}
	return *h, nil
}

// TipHeight implements Backend.
func (e *Esplora) TipHeight(ctx context.Context) (int64, error) {
	var s string
	if err := e.get(ctx, "/blocks/tip/height", &s); err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("esplora tip height %q", s)
	}
	return n, nil
}

// Confirmations implements Backend.
func (e *Esplora) Confirmations(ctx context.Context, txid chainhash.Hash) (int64, error) {
	var st esploraStatus
	if err := e.get(ctx, "/tx/"+txid.String()+"/status", &st); err != nil {
		return 0, err
	}
	if !st.Confirmed {
		return 0, nil
	}
	tip, err := e.TipHeight(ctx)
	if err != nil {
		return 0, err
	}
	return tip - st.BlockHeight + 1, nil
}
