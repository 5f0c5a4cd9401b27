package main

import (
	"context"
	"fmt"

	"github.com/hwbridge/hwbridge/chains/bitcoin"
	"github.com/hwbridge/hwbridge/daemon"
)

func runBTCSend(ctx context.Context, e *env, args []string) error {
	var f btcWalletFlags
	var sf sendFlags
	var o bitcoin.SendOrder
	fs := e.flagSet("btc send")
	f.register(fs, true, e)
	sf.register(fs)
	fs.StringVar(&o.To, "to", "", "recipient address")
	fs.StringVar(&o.Amount, "amount", "", "amount in BTC, e.g. 0.1 (at most 8 decimals)")
	fs.StringVar(&o.FeeRate, "fee-rate", "", "fee rate in sat/vB (default: the node's estimate for --fee-target blocks)")
	fs.IntVar(&o.FeeTarget, "fee-target", bitcoin.DefaultFeeTarget, "confirmation target in blocks for the node's fee estimate")
	fs.StringVar(&o.MaxFee, "max-fee", "", "refuse fees above this many BTC (default 0.01)")
	fs.BoolVar(&o.Force, "force", false, "pay a fee above the sanity cap")
	fs.BoolVar(&o.NoRBF, "no-rbf", false, "do not signal replace-by-fee (BIP-125)")
	minConf := fs.Int64("min-conf", 1, "confirmations a coin needs to be spent")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if o.To == "" || o.Amount == "" {
		return usagef("btc send needs --to ADDR and --amount BTC")
	}
	if f.rpc == "" && f.esplora == "" {
		return usagef("btc send needs a chain: pass --rpc http://host:port (with --rpc-cookie or the node's default cookie) or --esplora URL")
	}
	rpc := ""
	if f.rpc != "" {
		net, err := parseNetwork(f.network)
		if err != nil {
			return err
		}
		if rpc, err = f.rpcURL(net); err != nil {
			return err
		}
	}
	if f.account >= 1<<31 {
		return usagef("--account %d is out of range", f.account)
	}
	o.RPC, o.Esplora, o.Network, o.Type, o.Account, o.Gap, o.MinConf = rpc, f.esplora, f.network, f.typ, uint32(f.account), f.gap, minConf
	id, err := e.requestID(&sf)
	if err != nil {
		return err
	}
	res, err := e.sendBTC(ctx, daemon.BtcSendParams{RequestID: id, Device: e.selector(), SendOrder: o}, sf.yes)
	if err != nil {
		return err
	}
	if res.Replayed {
		e.note("request " + id + " was already sent: this is its recorded result (nothing was signed or sent now)")
	}
	return e.print(res, res.TxID)
}

// printBTCResult prints a sent payment (bump-fee).
func (e *env) printBTCResult(r *bitcoin.SendResult) error {
	return e.print(r, r.TxID, fmt.Sprintf("# fee %d sat, %s", r.Fee, r.FeeRate))
}
