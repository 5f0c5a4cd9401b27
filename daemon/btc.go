package daemon

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/wire"

	"github.com/hwbridge/hwbridge/chains/bitcoin"
	"github.com/hwbridge/hwbridge/chains/ethereum"
	"github.com/hwbridge/hwbridge/daemon/journal"
	"github.com/hwbridge/hwbridge/daemon/keys"
	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// BtcChainParams name a Bitcoin backend.
type BtcChainParams struct {
	RPC     string `json:"rpc,omitempty"`     // node JSON-RPC URL http://user:pass@host:port
	Esplora string `json:"esplora,omitempty"` // or an Esplora REST base URL
	Network string `json:"network,omitempty"` // mainnet (default), testnet, signet, regtest
}

func (p BtcChainParams) backend() (bitcoin.Backend, *chaincfg.Params, error) {
	net, err := parseNetwork(p.Network)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case p.RPC != "" && p.Esplora != "":
		return nil, nil, fmt.Errorf("%w: give rpc or esplora, not both", device.ErrInvalidInput)
	case p.RPC != "":
		r, err := bitcoin.NewRPC(p.RPC, net)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: rpc: %v", device.ErrInvalidInput, err)
		}
		return r, net, nil
	case p.Esplora != "":
		return bitcoin.NewEsplora(p.Esplora, net), net, nil
	}
	return nil, nil, fmt.Errorf("%w: name the chain: rpc (http://user:pass@host:port) or esplora", device.ErrInvalidInput)
}

// BtcSendParams is a payment to build, sign and broadcast once.
type BtcSendParams struct {
	RequestID string `json:"request_id"` // a retry with the same id never signs or pays twice
	Device    string `json:"device,omitempty"`
	BtcChainParams
	Type    string `json:"type,omitempty"` // account script type: wpkh (default), tr, sh-wpkh, pkh
	Account uint32 `json:"account,omitempty"`
	To      string `json:"to"`
	Amount  string `json:"amount"`             // BTC, decimal
	FeeRate string `json:"fee_rate,omitempty"` // sat/vB; empty asks the backend (regtest: 1)
}

// BtcSendResult is a broadcast payment.
type BtcSendResult struct {
	TxID     string `json:"txid"`
	Fee      int64  `json:"fee"` // satoshis
	Replayed bool   `json:"replayed,omitempty"`
	Resumed  bool   `json:"resumed,omitempty"`
}

type btcCheckpoint struct {
	Raw string `json:"raw"` // hex of the signed transaction
	Fee int64  `json:"fee"`
}

// hubKeys is a bitcoin.KeySource served from the hub's cache.
type hubKeys struct {
	c   *call
	dev string
}

func (h hubKeys) Fingerprint(ctx context.Context) (device.Fingerprint, error) {
	return h.c.d.cfg.Hub.Fingerprint(ctx, h.dev)
}

func (h hubKeys) XPub(ctx context.Context, req device.XPubRequest) (string, error) {
	return h.c.d.cfg.Hub.XPub(ctx, h.dev, h.c.label(), req)
}

// V1BtcSend builds a payment from the device's account (watch-only scan of the backend),
// signs it on the device, checks it and broadcasts it, once per request id.
func (a *API) V1BtcSend(ctx context.Context, auth keys.Auth, raw json.RawMessage) (*BtcSendResult, error) {
	var p BtcSendParams
	c, err := a.d.begin("v1BtcSend", auth, raw, &p)
	if err != nil {
		return nil, toRPC(err)
	}
	var res BtcSendResult
	summary := fmt.Sprintf("btc send request %q %s BTC to %s (%s account %d, fee rate %q) via %s%s", p.RequestID, p.Amount, p.To,
		p.Type, p.Account, p.FeeRate, ethereum.RedactURL(p.RPC), p.Esplora)
	outcome, err := c.journaled(ctx, raw, p.RequestID, device.ChainBTC,
		func(ctx context.Context, resume json.RawMessage, checkpoint func(json.RawMessage) error) (any, error) {
			return c.btcSend(ctx, p, resume, checkpoint)
		}, &res)
	res.Replayed, res.Resumed = outcome == journal.Replayed, outcome == journal.Resumed
	switch {
	case err != nil:
	case res.Replayed:
		summary += ": answered from the journal (nothing signed or sent): txid " + res.TxID
	default:
		summary += fmt.Sprintf(": txid %s fee %d sat", res.TxID, res.Fee)
	}
	if err := c.finish(summary, err); err != nil {
		return nil, err
	}
	return &res, nil
}

func (c *call) btcSend(ctx context.Context, p BtcSendParams, resume json.RawMessage, checkpoint func(json.RawMessage) error) (*BtcSendResult, error) {
	be, net, err := p.backend()
	if err != nil {
		return nil, err
	}
	if resume != nil {
		var cp btcCheckpoint
		if err := json.Unmarshal(resume, &cp); err != nil {
			return nil, err
		}
		tx, err := decodeTx(cp.Raw)
		if err != nil {
			return nil, err
		}
		id, err := broadcastOnce(ctx, be, tx)
		if err != nil {
			return nil, err
		}
		return &BtcSendResult{TxID: id, Fee: cp.Fee}, nil
	}
	st := device.ScriptWPKH
	if p.Type != "" {
		st = device.ScriptType(p.Type)
	}
	if p.Account >= hdpath.Hardened {
		return nil, fmt.Errorf("%w: account %d out of range", device.ErrInvalidInput, p.Account)
	}
	to, err := bitcoin.DecodeAddress(p.To, net)
	if err != nil {
		return nil, err
	}
	amount, err := bitcoin.ParseBTC(p.Amount)
	if err != nil {
		return nil, err
	}
	req := bitcoin.SendRequest{Payments: []bitcoin.Payment{{Address: to, Amount: int64(amount)}}}
	if p.FeeRate != "" {
		if req.FeeRate, err = bitcoin.ParseFeeRate(p.FeeRate); err != nil {
			return nil, err
		}
	} else {
		req.FeeRate, err = be.FeeRate(ctx, 6)
		if errors.Is(err, bitcoin.ErrNoFeeEstimate) && net.Net == chaincfg.RegressionNetParams.Net {
			req.FeeRate, err = bitcoin.SatPerVB(1), nil
		}
		if err != nil {
			return nil, err
		}
	}
	dev, err := c.device(ctx, p.Device)
	if err != nil {
		return nil, err
	}
	desc, err := bitcoin.AccountDescriptor(ctx, hubKeys{c, dev}, st, net, p.Account)
	if err != nil {
		return nil, err
	}
	w := &bitcoin.Wallet{Desc: desc, Net: net, Backend: be}
	state, err := w.Scan(ctx)
	if err != nil {
		return nil, err
	}
	plan, err := w.BuildSend(ctx, state, req)
	if err != nil {
		return nil, err
	}
	var tx *wire.MsgTx
	if err := c.do(ctx, dev, func(ctx context.Context, d device.Device) error {
		tx, err = w.Sign(ctx, plan, d)
		return err
	}); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := tx.Serialize(&buf); err != nil {
		return nil, err
	}
	cp, _ := json.Marshal(btcCheckpoint{Raw: hex.EncodeToString(buf.Bytes()), Fee: plan.Fee})
	if err := checkpoint(cp); err != nil {
		return nil, fmt.Errorf("journal the signed transaction (nothing was sent): %w", err)
	}
	id, err := be.Broadcast(ctx, tx)
	if err != nil {
		return nil, fmt.Errorf("%w (the signed transaction is journaled: retry with the same request_id to broadcast it again)", err)
	}
	return &BtcSendResult{TxID: id.String(), Fee: plan.Fee}, nil
}

// broadcastOnce sends tx unless the backend already knows it.
func broadcastOnce(ctx context.Context, be bitcoin.Backend, tx *wire.MsgTx) (string, error) {
	id := tx.TxHash()
	if _, err := be.Confirmations(ctx, id); err == nil {
		return id.String(), nil
	}
	got, err := be.Broadcast(ctx, tx)
	if err != nil {
		return "", err
	}
	return got.String(), nil
}

func decodeTx(s string) (*wire.MsgTx, error) {
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) > maxPSBT {
		return nil, fmt.Errorf("%w: tx must be the hex of a transaction", device.ErrInvalidInput)
	}
	tx := wire.NewMsgTx(wire.TxVersion)
	if err := tx.Deserialize(bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("%w: tx: %v", device.ErrInvalidInput, err)
	}
	return tx, nil
}

// BtcBroadcastParams is a signed transaction to send.
type BtcBroadcastParams struct {
	BtcChainParams
	Tx string `json:"tx"` // hex
}

// V1BtcBroadcast sends a signed Bitcoin transaction (unless the backend already has it).
func (a *API) V1BtcBroadcast(ctx context.Context, auth keys.Auth, raw json.RawMessage) (*BtcSendResult, error) {
	var p BtcBroadcastParams
	c, err := a.d.begin("v1BtcBroadcast", auth, raw, &p)
	if err != nil {
		return nil, toRPC(err)
	}
	var res BtcSendResult
	summary := "btc broadcast via " + ethereum.RedactURL(p.RPC) + p.Esplora
	err = func() error {
		if err := c.chain(device.ChainBTC); err != nil {
			return err
		}
		be, _, err := p.backend()
		if err != nil {
			return err
		}
		tx, err := decodeTx(p.Tx)
		if err != nil {
			return err
		}
		summary += fmt.Sprintf(": txid %s, %d inputs, %d outputs", tx.TxHash(), len(tx.TxIn), len(tx.TxOut))
		res.TxID, err = broadcastOnce(ctx, be, tx)
		return err
	}()
	if err := c.finish(summary, err); err != nil {
		return nil, err
	}
	return &res, nil
}
