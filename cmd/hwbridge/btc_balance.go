package main

import (
	"context"
	"fmt"

	"github.com/hwbridge/hwbridge/chains/bitcoin"
)

// btcBalanceResult is what `btc balance` prints.
type btcBalanceResult struct {
	Network     string          `json:"network"`
	Descriptor  string          `json:"descriptor"`
	Confirmed   int64           `json:"confirmed_sat"`
	Total       int64           `json:"total_sat"`
	UTXOs       []btcUTXOResult `json:"utxos"`
	NextReceive string          `json:"next_receive_address"`
}

type btcUTXOResult struct {
	Outpoint      string `json:"outpoint"`
	Amount        int64  `json:"amount_sat"`
	Address       string `json:"address"`
	Confirmations int64  `json:"confirmations"`
	Immature      bool   `json:"immature_coinbase,omitempty"`
}

func runBTCBalance(ctx context.Context, e *env, args []string) error {
	var f btcWalletFlags
	fs := e.flagSet("btc balance")
	f.register(fs, true, e)
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	bw, err := e.openWallet(ctx, &f, true)
	if err != nil {
		return err
	}
	st, err := bw.w.Scan(ctx)
	if err != nil {
		return err
	}
	conf, total := st.Balance()
	next, err := bw.w.Desc.Address(0, st.NextIndex[0], bw.net)
	if err != nil {
		return err
	}
	res := btcBalanceResult{Network: networkName(bw.net), Descriptor: bw.w.Desc.String(), Confirmed: conf, Total: total, NextReceive: next.EncodeAddress(), UTXOs: []btcUTXOResult{}}
	lines := []string{
		fmt.Sprintf("confirmed: %s BTC", bitcoin.FormatBTC(conf)),
		fmt.Sprintf("total:     %s BTC (with unconfirmed and immature coins)", bitcoin.FormatBTC(total)),
	}
	for _, u := range st.UTXOs {
		pos := st.Positions[string(u.PkScript)]
		a, _ := bw.w.Desc.Address(pos[0], pos[1], bw.net)
		r := btcUTXOResult{Outpoint: u.OutPoint.String(), Amount: u.Value, Confirmations: u.Confirmations, Immature: !u.Spendable()}
		if a != nil {
			r.Address = a.EncodeAddress()
		}
		res.UTXOs = append(res.UTXOs, r)
		lines = append(lines, fmt.Sprintf("  %s  %s BTC  %s  %d conf", r.Outpoint, bitcoin.FormatBTC(u.Value), r.Address, u.Confirmations))
	}
	lines = append(lines, "next receive address: "+res.NextReceive)
	return e.print(res, lines...)
}
