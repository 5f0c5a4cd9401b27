package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/hwbridge/hwbridge/chains/bitcoin"
	"github.com/hwbridge/hwbridge/daemon"
)

func runBTCSend(ctx context.Context, e *env, args []string) error {
	var f btcWalletFlags
	var sf sendFlags
	var o bitcoin.SendOrder
	var qf qrFlags
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
	exportFile := fs.String("export-psbt", "", "build and check the payment, sign nothing, and write the unsigned PSBT to FILE for an air-gapped signer (a Coldcard's microSD card): binary BIP-174 when FILE ends in .psbt, else base64; finish with --import-psbt and the same --request-id")
	importFile := fs.String("import-psbt", "", "finish the payment exported with --export-psbt under the same --request-id: read what the signer wrote to FILE (- for stdin): the signed or finalized PSBT (binary, base64 or hex; a Coldcard's NAME-signed.psbt) or the final transaction (hex or binary; a Coldcard's NAME-final.txn); check it is the exported transaction, verify every signature, broadcast it once")
	walletExport := fs.String("wallet-export", "", "with --export-psbt or --export-qr: build from a wallet export FILE instead of a connected device: a Coldcard's Generic JSON (Advanced > MicroSD > Export Wallet > Generic JSON) or a QR signer's account export (ur:crypto-account / crypto-hdkey parts as text, or an image of its QR code)")
	qf.register(fs)
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if err := qf.check(*exportFile, *importFile); err != nil {
		return err
	}
	switch {
	case *exportFile != "" && *importFile != "":
		return usagef("btc send: give --export-psbt or --import-psbt, not both")
	case *walletExport != "" && *exportFile == "" && !qf.export:
		return usagef("btc send --wallet-export needs --export-psbt FILE or --export-qr: a wallet export cannot sign")
	case (*importFile != "" || qf.importQR != "") && sf.requestID == "":
		return usagef("btc send --import-psbt and --import-qr need --request-id ID, the id the payment was exported with")
	case *importFile == "" && qf.importQR == "" && (o.To == "" || o.Amount == ""):
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
	p := daemon.BtcSendParams{RequestID: id, Device: e.selector(), SendOrder: o, ExportPSBT: *exportFile != "" || qf.export}
	if *walletExport != "" {
		raw, err := e.readWalletExport(*walletExport)
		if err != nil {
			return err
		}
		p.WalletExport, p.Device = string(raw), ""
	}
	if *importFile != "" {
		raw, err := e.readInput(*importFile)
		if err != nil {
			return err
		}
		p.SendOrder = bitcoin.SendOrder{RPC: o.RPC, Esplora: o.Esplora, Network: o.Network}
		p.ImportPSBT = string(raw)
		if !isText(raw) { // binary BIP-174 or a binary transaction: carried as base64
			p.ImportPSBT = base64.StdEncoding.EncodeToString(raw)
		}
	}
	if qf.importQR != "" {
		b64, err := e.readQRPSBT(qf.importQR)
		if err != nil {
			return err
		}
		p.SendOrder = bitcoin.SendOrder{RPC: o.RPC, Esplora: o.Esplora, Network: o.Network}
		p.ImportPSBT = b64
	}
	res, err := e.sendBTC(ctx, p, sf.yes)
	if err != nil {
		return err
	}
	if qf.export {
		out, err := e.showQR(ctx, res, &qf)
		if err != nil {
			return err
		}
		if *exportFile != "" {
			if err := writePSBTFile(*exportFile, res.PSBT); err != nil {
				return err
			}
		}
		if res.Replayed {
			e.note("request " + id + " was already exported: these are the parts of the same unsigned PSBT")
		}
		e.note(fmt.Sprintf("the unsigned PSBT %s is %d UR parts (nothing signed or sent): scan them with the signer, then run btc send --import-qr PARTS --request-id %s", res.PlanID, out.QRSeqLen, id))
		if qf.parts == "-" {
			return e.print(out) // stdout carries the parts alone, for a pipe
		}
		return e.print(out, res.PlanID)
	}
	if p.ExportPSBT {
		if err := writePSBTFile(*exportFile, res.PSBT); err != nil {
			return err
		}
		if res.Replayed {
			e.note("request " + id + " was already exported: this is the same unsigned PSBT")
		}
		e.note(fmt.Sprintf("wrote the unsigned PSBT to %s (nothing signed or sent): sign it on the air-gapped device, then run btc send --import-psbt SIGNED --request-id %s", *exportFile, id))
		return e.print(res, res.PlanID)
	}
	if res.Replayed {
		e.note("request " + id + " was already sent: this is its recorded result (nothing was signed or sent now)")
	}
	return e.print(res, res.TxID)
}

// isText reports whether raw is text (UTF-8 without control characters but white space):
// base64 or hex, which the daemon reads as given; anything else is carried as base64.
func isText(raw []byte) bool {
	if !utf8.Valid(raw) {
		return false
	}
	for _, r := range string(raw) {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f {
			return false
		}
	}
	return true
}

// writePSBTFile writes an unsigned PSBT (base64) to path: binary BIP-174 when path ends in
// .psbt (what a Coldcard reads from microSD), else base64 text.
func writePSBTFile(path, b64 string) error {
	data := []byte(b64 + "\n")
	if strings.EqualFold(filepath.Ext(path), ".psbt") {
		bin, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return fmt.Errorf("the exported PSBT: %w", err)
		}
		data = bin
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("write the PSBT file (the export is journaled: run the same command again to write it): %w", err)
	}
	return nil
}

// printBTCResult prints a sent payment (bump-fee).
func (e *env) printBTCResult(r *bitcoin.SendResult) error {
	return e.print(r, r.TxID, fmt.Sprintf("# fee %d sat, %s", r.Fee, r.FeeRate))
}
