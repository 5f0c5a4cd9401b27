package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/hwbridge/hwbridge/chains/bitcoin"
	hwpsbt "github.com/hwbridge/hwbridge/psbt"
)

// btcSendFlags are `btc send`'s own flags.
type btcSendFlags struct {
	btcWalletFlags
	to      string
	amount  string
	feeRate string
	maxFee  string
	force   bool
	yes     bool
	minConf int64
}

// btcSendResult is what `btc send` (and bump-fee) print.
type btcSendResult struct {
	TxID        string          `json:"txid"`
	Fee         int64           `json:"fee_sat"`
	VSize       int64           `json:"vsize"`
	FeeRate     string          `json:"fee_rate"`
	Selection   string          `json:"coin_selection"`
	Change      *btcChange      `json:"change,omitempty"`
	Transaction *hwpsbt.Summary `json:"transaction"`
}

type btcChange struct {
	Output  int    `json:"output"`
	Amount  int64  `json:"amount_sat"`
	Address string `json:"address"`
	Path    string `json:"path"`
}

func runBTCSend(ctx context.Context, e *env, args []string) error {
	var f btcSendFlags
	fs := e.flagSet("btc send")
	f.register(fs, true)
	fs.StringVar(&f.to, "to", "", "recipient address")
	fs.StringVar(&f.amount, "amount", "", "amount in BTC, e.g. 0.1 (at most 8 decimals)")
	fs.StringVar(&f.feeRate, "fee-rate", "", "fee rate in sat/vB (default: the node's estimate)")
	fs.StringVar(&f.maxFee, "max-fee", "", "refuse fees above this many BTC (default 0.01)")
	fs.BoolVar(&f.force, "force", false, "pay a fee above the sanity cap")
	fs.BoolVar(&f.yes, "yes", false, "do not ask for confirmation on this computer (the device still asks)")
	fs.Int64Var(&f.minConf, "min-conf", 1, "confirmations a coin needs to be spent")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if f.to == "" || f.amount == "" {
		return usagef("btc send needs --to ADDR and --amount BTC")
	}
	net, err := parseNetwork(f.network)
	if err != nil {
		return err
	}
	// Everything the user typed is checked before the device is touched.
	to, err := bitcoin.DecodeAddress(f.to, net)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	amount, err := bitcoin.ParseBTC(f.amount)
	if err != nil {
		return fmt.Errorf("--amount: %w", err)
	}
	req := bitcoin.SendRequest{Payments: []bitcoin.Payment{{Address: to, Amount: int64(amount)}}, Force: f.force, MinConf: f.minConf}
	if f.feeRate != "" {
		if req.FeeRate, err = bitcoin.ParseFeeRate(f.feeRate); err != nil {
			return fmt.Errorf("--fee-rate: %w", err)
		}
	}
	if f.maxFee != "" {
		v, err := bitcoin.ParseBTC(f.maxFee)
		if err != nil {
			return fmt.Errorf("--max-fee: %w", err)
		}
		req.MaxFee = int64(v)
	}
	bw, err := e.openWallet(ctx, &f.btcWalletFlags, true)
	if err != nil {
		return err
	}
	if req.FeeRate == 0 {
		if req.FeeRate, err = e.estimateFee(ctx, bw.w.Backend, net); err != nil {
			return err
		}
	}
	st, err := bw.w.Scan(ctx)
	if err != nil {
		return err
	}
	plan, err := bw.w.BuildSend(ctx, st, req)
	if err != nil {
		return btcErr(err)
	}
	return e.signAndBroadcastBTC(ctx, bw, plan, f.yes)
}

// estimateFee asks the backend for a 6-block rate; regtest falls back to 1 sat/vB.
func (e *env) estimateFee(ctx context.Context, be bitcoin.Backend, net *chaincfg.Params) (bitcoin.FeeRate, error) {
	rate, err := be.FeeRate(ctx, 6)
	if errors.Is(err, bitcoin.ErrNoFeeEstimate) && net.Net == chaincfg.RegressionNetParams.Net {
		fmt.Fprintln(e.stderr, "hwbridge: the node has no fee estimate; regtest uses 1 sat/vB")
		return bitcoin.SatPerVB(1), nil
	}
	if err != nil {
		return 0, btcErr(err)
	}
	return rate, nil
}

// signAndBroadcastBTC shows the plan, asks unless yes, signs on the device (through
// device.Verify), runs the checks before broadcast, broadcasts and prints the txid.
func (e *env) signAndBroadcastBTC(ctx context.Context, bw *btcWallet, plan *bitcoin.Plan, yes bool) error {
	sum, err := hwpsbt.Describe(plan.PSBT, bw.net)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stderr, "hwbridge: about to sign and broadcast:")
	for _, l := range strings.Split(strings.TrimRight(sum.Text(), "\n"), "\n") {
		fmt.Fprintln(e.stderr, "  "+l)
	}
	if !yes {
		fmt.Fprint(e.stderr, "send it? [y/N] ")
		line, rerr := bufio.NewReader(e.stdin).ReadString('\n')
		ans := strings.ToLower(strings.TrimSpace(line))
		if ans != "y" && ans != "yes" {
			if rerr != nil && ans == "" {
				return errors.New("not sent: no answer on stdin (pass --yes to send without asking)")
			}
			return errors.New("not sent: you did not confirm")
		}
	}
	tx, err := bw.w.Sign(ctx, plan, bw.dev)
	if err != nil {
		return err
	}
	id, err := bw.w.Broadcast(ctx, tx)
	if err != nil {
		return err
	}
	res := btcSendResult{TxID: id.String(), Fee: plan.Fee, VSize: plan.VSize, FeeRate: plan.FeeRate.String(), Selection: plan.Method, Transaction: sum}
	if c := plan.Change; c != nil {
		s, err := bw.w.Desc.Derive(c.Branch, c.Child)
		if err != nil {
			return err
		}
		res.Change = &btcChange{Output: c.Index, Amount: c.Amount, Address: c.Address, Path: pathText(s.Keys[0].Path)}
	}
	return e.print(res, id.String())
}
