package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/btcsuite/btcd/btcutil"

	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/emulator/qrsigner"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/ur"
)

// demoQRMnemonic is the QR signer's seed in the demo: a BIP-39 test vector, public test
// material, other keys than the two USB wallets'.
const demoQRMnemonic = "letter advice cage absurd amount doctor acoustic avoid letter advice cage above"

// sendBTCByQR pays from an emulated QR-code signer (SafePal/Keystone-like): a watch-only
// wallet from its account export, the unsigned PSBT shown as UR parts, scanned by the
// signer, its signed answer scanned back, verified and broadcast.
func (d *demo) sendBTCByQR(ctx context.Context) error {
	w, err := emulator.NewWallet(demoQRMnemonic, "")
	if err != nil {
		return err
	}
	approver := emulator.NewApprover(emulator.PolicyAuto)
	signer := qrsigner.New(w, approver, d.btcNet)
	dir, err := os.MkdirTemp("", "hwbridge-demo-qr-")
	if err != nil {
		return err
	}
	d.closers = append(d.closers, func() error { return os.RemoveAll(dir) })

	acct, err := signer.AccountExport(0)
	if err != nil {
		return err
	}
	acctFile := filepath.Join(dir, "account.txt")
	if err := os.WriteFile(acctFile, []byte(acct.String()+"\n"), 0o600); err != nil {
		return err
	}
	d.say("QR signer account export (its \"connect software wallet\" QR code): %.60s…", acct.String())
	pub, err := w.PubKey(hdpath.MustParse("m/84'/1'/0'/0/0"))
	if err != nil {
		return err
	}
	addr, err := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(pub.SerializeCompressed()), d.btcNet)
	if err != nil {
		return err
	}
	txid, err := d.fundBTC(ctx, []btcutil.Address{addr}, demoFundBTC)
	if err != nil {
		return err
	}
	if _, err := d.confirmBTC(txid); err != nil {
		return err
	}
	d.say("faucet paid %s to the QR signer's %s", demoFundBTC, addr)

	var idb [6]byte
	_, _ = rand.Read(idb[:])
	id := "demo-qr-" + hex.EncodeToString(idb[:])
	to, _ := demoRecipient(d.btcNet)
	d.say("$ hwbridge btc send --wallet-export account.txt --export-qr --qr-parts unsigned.txt --to %s --amount 0.1 --fee-rate 2 --rpc %s --network regtest --request-id %s --yes", to, redactURL(d.btcURL), id)
	out, err := d.cli(ctx, "--json", "btc", "send", "--wallet-export", acctFile, "--export-qr", "--qr-parts", filepath.Join(dir, "unsigned.txt"),
		"--to", to.EncodeAddress(), "--amount", "0.1", "--fee-rate", "2", "--rpc", d.btcURL, "--network", "regtest", "--request-id", id, "--yes")
	if err != nil {
		return err
	}
	var exp qrExport
	if err := json.Unmarshal([]byte(out), &exp); err != nil || exp.BtcSendResult == nil {
		return fmt.Errorf("export: answer %q: %v", out, err)
	}
	d.say("  unsigned PSBT %s in %d UR parts (%s)", exp.PlanID, exp.QRSeqLen, exp.QRParts[0][:strings.LastIndex(exp.QRParts[0], "/")])
	signed, err := signer.Scan(ctx, exp.QRParts)
	if err != nil {
		return err
	}
	for _, e := range approver.Transcript() {
		d.say("  QR signer screen: [%s] %s: %s", e.Outcome, e.Title, strings.Join(e.Lines, "; "))
	}
	if err := os.WriteFile(filepath.Join(dir, "signed.txt"), []byte(strings.Join(signed, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	d.say("  the signer shows the signed PSBT in %d UR parts (%s)", len(signed), signed[0][:strings.LastIndex(signed[0], "/")])
	d.say("$ hwbridge btc send --import-qr signed.txt --request-id %s --rpc %s --network regtest", id, redactURL(d.btcURL))
	out, err = d.cli(ctx, "btc", "send", "--import-qr", filepath.Join(dir, "signed.txt"), "--request-id", id, "--rpc", d.btcURL, "--network", "regtest")
	if err != nil {
		return err
	}
	txid, err = txidIn(out)
	if err != nil {
		return err
	}
	if txid != exp.PlanID {
		return fmt.Errorf("broadcast %s, but the exported transaction is %s", txid, exp.PlanID)
	}
	conf, err := d.confirmBTC(txid)
	if err != nil {
		return err
	}
	d.say("  txid %s, %s", txid, conf)
	d.results = append(d.results, fmt.Sprintf("BTC send (QR signer, %s): %s %s", ur.TypeCryptoPSBT, txid, conf))
	return nil
}
