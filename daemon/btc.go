package daemon

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/wire"

	"github.com/hwbridge/hwbridge/chains/bitcoin"
	"github.com/hwbridge/hwbridge/chains/ethereum"
	"github.com/hwbridge/hwbridge/daemon/keys"
	"github.com/hwbridge/hwbridge/device"
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

// BtcBroadcastParams is a signed transaction to send.
type BtcBroadcastParams struct {
	BtcChainParams
	Tx string `json:"tx"` // hex
}

// V1BtcBroadcast sends a signed Bitcoin transaction (unless the backend already has it).
func (a *API) V1BtcBroadcast(ctx context.Context, auth keys.Auth, raw json.RawMessage) (*BtcSendResult, error) {
	ctx, done := a.d.conns.bind(ctx)
	defer done()
	var p BtcBroadcastParams
	c, err := a.d.begin(ctx, "v1BtcBroadcast", auth, raw, &p)
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
		tx, err := bitcoin.DecodeTx(p.Tx)
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
