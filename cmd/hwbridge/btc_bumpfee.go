package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/hwbridge/hwbridge/chains/bitcoin"
	"github.com/hwbridge/hwbridge/device"
)

// runBTCBumpFee replaces an unconfirmed transaction of the wallet (BIP-125): same inputs,
// same payments, a higher fee taken from the change.
func runBTCBumpFee(ctx context.Context, e *env, args []string) error {
	var f btcWalletFlags
	fs := e.flagSet("btc bump-fee")
	f.register(fs, true, e)
	feeRate := fs.String("fee-rate", "", "the new fee rate in sat/vB (required)")
	force := fs.Bool("force", false, "pay a fee above the sanity cap")
	yes := fs.Bool("yes", false, "do not ask for confirmation on this computer")
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	txid, err := chainhash.NewHashFromStr(pos[0])
	if err != nil || len(pos[0]) != 64 {
		return usagef("btc bump-fee: %q is not a transaction id", pos[0])
	}
	if *feeRate == "" {
		return usagef("btc bump-fee needs --fee-rate SAT/VB")
	}
	rate, err := bitcoin.ParseFeeRate(*feeRate)
	if err != nil {
		return fmt.Errorf("--fee-rate: %w", err)
	}
	bw, err := e.openWallet(ctx, &f, true)
	if err != nil {
		return err
	}
	be := bw.w.Backend
	conf, err := be.Confirmations(ctx, *txid)
	if err != nil {
		return err
	}
	if conf > 0 {
		return fmt.Errorf("transaction %s is already confirmed (%d); nothing to bump", txid, conf)
	}
	orig, err := be.RawTx(ctx, *txid)
	if err != nil {
		return err
	}
	st, err := bw.w.Scan(ctx)
	if err != nil {
		return err
	}
	// The coins the original spends (the scan no longer lists them: they are spent in the
	// mempool) and what it paid.
	var coins []wire.OutPoint
	var spent int64
	bumped := &bitcoin.State{Positions: st.Positions, NextIndex: st.NextIndex}
	for i, in := range orig.TxIn {
		if in.Sequence >= wire.MaxTxInSequenceNum-1 {
			return fmt.Errorf("transaction %s does not signal replaceability (input %d is final)", txid, i)
		}
		prev, err := be.RawTx(ctx, in.PreviousOutPoint.Hash)
		if err != nil {
			return err
		}
		out := prev.TxOut[in.PreviousOutPoint.Index]
		if _, ok := st.Positions[string(out.PkScript)]; !ok {
			return fmt.Errorf("input %d of %s is not this wallet's (wrong --type or --account?)", i, txid)
		}
		pc, err := be.Confirmations(ctx, in.PreviousOutPoint.Hash)
		if err != nil {
			return err
		}
		coins = append(coins, in.PreviousOutPoint)
		spent += out.Value
		bumped.UTXOs = append(bumped.UTXOs, bitcoin.UTXO{OutPoint: in.PreviousOutPoint, Value: out.Value, PkScript: out.PkScript, Confirmations: pc, Coinbase: false})
	}
	req := bitcoin.SendRequest{FeeRate: rate, Force: *force, Coins: coins}
	var paid int64
	for _, o := range orig.TxOut {
		paid += o.Value
		if pos, ok := st.Positions[string(o.PkScript)]; ok && pos[0] == 1 {
			continue // our change: rebuilt
		}
		_, addrs, _, err := txscript.ExtractPkScriptAddrs(o.PkScript, bw.net)
		if err != nil || len(addrs) != 1 {
			return fmt.Errorf("output of %s has no address; cannot rebuild it", txid)
		}
		req.Payments = append(req.Payments, bitcoin.Payment{Address: addrs[0], Amount: o.Value})
	}
	oldFee := spent - paid
	// Reuse the change index of the original when it had change.
	for _, o := range orig.TxOut {
		if pos, ok := st.Positions[string(o.PkScript)]; ok && pos[0] == 1 {
			bumped.NextIndex[1] = pos[1]
		}
	}
	plan, err := bw.w.BuildSend(ctx, bumped, req)
	if errors.Is(err, bitcoin.ErrInsufficientFunds) {
		return fmt.Errorf("the original's inputs cannot pay %s: %w", rate, err)
	}
	if err != nil {
		return btcErr(err)
	}
	// BIP-125: the replacement pays more in total, and at least the relay fee for itself.
	if plan.Fee < oldFee+plan.VSize {
		return fmt.Errorf("a fee of %d sat does not replace %s (it paid %d sat; at least %d is needed): raise --fee-rate", plan.Fee, txid, oldFee, oldFee+plan.VSize)
	}
	fmt.Fprintf(e.stderr, "hwbridge: replacing %s (fee %d sat) with a fee of %d sat\n", txid, oldFee, plan.Fee)
	res, err := bw.w.Complete(device.WithAppSwitch(ctx), plan, bw.dev, bitcoin.Hooks{Note: e.note,
		Show: func(_ context.Context, r *bitcoin.SendResult) error { return e.confirmSend(btcLines(r), *yes) }})
	if err != nil {
		return err
	}
	return e.printBTCResult(res)
}
