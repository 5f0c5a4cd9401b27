package main

// hwbridge demo: the newcomer path. It starts emulated wallets of both families and two
// dev chains inside this process (a Bitcoin regtest chain from btcd's own packages and an
// Ethereum dev chain from go-ethereum's), then walks through what hwbridge does, with the
// same CLI commands a user types (run in-process against the emulators' loopback paths):
// list devices, show addresses on the devices, send BTC from each family, send ETH and an
// ERC-20 token, and checks that each transaction is confirmed on its chain. It exits 0 only
// if every step was verified; a step whose code is not in this build fails loudly.

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/ethereum/go-ethereum/common"

	ledgeremu "github.com/hwbridge/hwbridge/emulator/ledger"
)

// demoTimeout bounds the whole walk-through when --timeout is not given.
const demoTimeout = 3 * time.Minute

// demo is one run of the walk-through, on a dev environment (devenv.go).
type demo struct {
	*devEnv
	results  []string // "what: txid (confirmation)" lines for the summary
	failures []string // wallets left out after a failed step
}

// demoRecipient is where the demo pays: an address nobody holds a key for.
func demoRecipient(net *chaincfg.Params) (btcutil.Address, common.Address) {
	h := sha256.Sum256([]byte("hwbridge demo recipient"))
	a, _ := btcutil.NewAddressWitnessPubKeyHash(h[:20], net)
	return a, common.BytesToAddress(h[12:])
}

func runDemo(ctx context.Context, e *env, args []string) error {
	fs := e.flagSet("demo")
	btcRPC := fs.String("btc-rpc", "", "use this Bitcoin Core/btcd JSON-RPC URL (regtest, http://user:pass@host:port) instead of the embedded chain")
	ethRPC := fs.String("eth-rpc", "", "use this Ethereum JSON-RPC URL (a dev chain) instead of the embedded one")
	timeout := fs.Duration("timeout", demoTimeout, "give up after this long")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	d := &demo{devEnv: newDevEnv(e, e.stdout)}
	d.btcURL, d.ethURL = *btcRPC, *ethRPC
	defer d.close()
	fmt.Fprintln(d.out, "hwbridge demo: emulated Trezor- and Ledger-class wallets, a Bitcoin regtest chain and an")
	fmt.Fprintln(d.out, "Ethereum dev chain, all inside this process. Every step is checked; nothing is faked.")
	t0 := time.Now()
	// Steps up to the funding are prerequisites: the demo stops at the first that fails.
	// The sends after them are independent: each runs, and a failure is reported at the end.
	steps := []struct {
		title    string
		run      func(ctx context.Context) error
		required bool
	}{
		{"Bitcoin regtest chain", d.startBitcoin, true},
		{"Ethereum dev chain", d.startEthereum, true},
		{"emulated wallets", d.startEmulators, true},
		{"list the devices", d.listDevices, true},
		{"addresses, shown on the devices", d.showAddresses, true},
		{"fund the wallets from the demo faucets", d.fundWallets, true},
		{"send BTC from each wallet", d.sendBTC, false},
		{"send BTC through QR codes from an air-gapped QR signer", d.sendBTCByQR, false},
		{"send ETH", d.sendETH, false},
		{"ERC-20: deploy the test token, transfer it from the wallet", d.sendToken, false},
	}
	for _, s := range steps {
		err := d.do(ctx, s.title, s.run)
		if err == nil {
			continue
		}
		if s.required || ctx.Err() != nil {
			fmt.Fprintf(d.out, "\ndemo failed at step %d (%s) after %.1fs\n", d.step, s.title, time.Since(t0).Seconds())
			return fmt.Errorf("demo step %d (%s): %w", d.step, s.title, err)
		}
		d.failures = append(d.failures, fmt.Sprintf("step %d (%s): %v", d.step, s.title, err))
	}
	if len(d.failures) > 0 {
		fmt.Fprintf(d.out, "\ndemo: %d steps ran in %.1fs, and these failed:\n", d.step, time.Since(t0).Seconds())
		for _, f := range d.failures {
			fmt.Fprintln(d.out, "  FAILED "+f)
		}
		for _, r := range d.results {
			fmt.Fprintln(d.out, "  verified "+r)
		}
		return fmt.Errorf("demo: %d failure(s): %s", len(d.failures), strings.Join(d.failures, "; "))
	}
	fmt.Fprintf(d.out, "\ndemo: all %d steps verified in %.1fs\n", d.step, time.Since(t0).Seconds())
	for _, r := range d.results {
		fmt.Fprintln(d.out, "  "+r)
	}
	return nil
}

// startEmulators starts a wallet of each family on free loopback ports, the Ledger-class
// one with other keys than the Trezor-class one.
func (d *demo) startEmulators(ctx context.Context) error {
	err := d.devEnv.startEmulators(ctx, devEmulators{
		trezor: "127.0.0.1:0", ledger: "127.0.0.1:0", label: "hwbridge demo",
		ledgerMnemonic: demoLedgerMnemonic,
		// A Ledger runs one app at a time; regtest coins are the Bitcoin Test app's.
		ledgerApp: ledgeremu.AppBitcoinTest,
	})
	if err != nil {
		return err
	}
	for _, w := range d.wallets {
		d.say("%s wallet on %s (a public test seed; every screen approved automatically)", w.name, w.path)
	}
	return nil
}

// demoLedgerMnemonic gives the Ledger-class wallet other keys than the Trezor-class one
// (which holds emulator.DefaultMnemonic): a BIP-39 test vector, public test material.
const demoLedgerMnemonic = "legal winner thank year wave sausage worth useful legal winner thank yellow"

// listDevices lists each wallet through the CLI. A wallet this build cannot drive is
// reported and left out of the later steps, which run on the others; the demo then fails
// at the end.
func (d *demo) listDevices(ctx context.Context) error {
	var usable []*devWallet
	for _, w := range d.wallets {
		d.say("$ hwbridge --device %s devices", w.path)
		out, err := d.cli(ctx, "--device", w.path, "devices")
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if l != "" {
				d.say("  %s", l)
			}
		}
		if _, reason, found := strings.Cut(out, "error: "); err == nil && found {
			err = fmt.Errorf("%s at %s: %s", w.name, w.path, strings.TrimSpace(reason))
		}
		if err != nil {
			d.say("  FAILED for the %s wallet, continuing without it: %v", w.name, err)
			d.failures = append(d.failures, fmt.Sprintf("%s wallet: %v", w.name, err))
			continue
		}
		usable = append(usable, w)
	}
	d.wallets = usable
	if len(usable) == 0 {
		return errors.New("no wallet could be listed")
	}
	return nil
}

func (d *demo) showAddresses(ctx context.Context) error {
	for i, w := range d.wallets {
		var a struct{ Address string }
		if err := d.cliJSON(ctx, &a, "--device", w.path, "address", "--chain", "btc", "--network", "regtest", "--type", "wpkh", "--display"); err != nil {
			return err
		}
		d.say("$ hwbridge --device %s address --chain btc --network regtest --display", w.path)
		d.say("  %s", a.Address)
		d.showScreen(w)
		if _, err := btcutil.DecodeAddress(a.Address, d.btcNet); err != nil {
			return fmt.Errorf("%s gave %q: %w", w.name, a.Address, err)
		}
		w.btc = a.Address
		if i > 0 {
			continue // Ethereum runs on the first wallet (a Ledger runs one app at a time)
		}
		if err := d.cliJSON(ctx, &a, "--device", w.path, "address", "--chain", "eth", "--display"); err != nil {
			return err
		}
		d.say("$ hwbridge --device %s address --chain eth --display", w.path)
		d.say("  %s", a.Address)
		d.showScreen(w)
		if !common.IsHexAddress(a.Address) {
			return fmt.Errorf("%s gave %q, not an Ethereum address", w.name, a.Address)
		}
		w.eth = a.Address
	}
	return nil
}

// demoFunding is what each wallet receives.
var (
	demoFundBTC = btcutil.Amount(100_000_000)                        // 1 BTC
	demoFundETH = new(big.Int).Mul(big.NewInt(10), big.NewInt(1e18)) // 10 ETH
)

func (d *demo) fundWallets(ctx context.Context) error {
	var to []btcutil.Address
	for _, w := range d.wallets {
		a, err := btcutil.DecodeAddress(w.btc, d.btcNet)
		if err != nil {
			return err
		}
		to = append(to, a)
	}
	txid, err := d.fundBTC(ctx, to, demoFundBTC)
	if err != nil {
		return err
	}
	conf, err := d.confirmBTC(txid)
	if err != nil {
		return err
	}
	d.say("faucet paid %s to each wallet: txid %s, %s", demoFundBTC, txid, conf)
	var eth []common.Address
	for _, w := range d.wallets {
		if w.eth != "" {
			eth = append(eth, common.HexToAddress(w.eth))
		}
	}
	hashes, err := d.fundETH(ctx, eth, demoFundETH)
	if err != nil {
		return err
	}
	for i, h := range hashes {
		d.say("faucet paid 10 ETH to %s: tx %s, mined", eth[i], h)
	}
	return nil
}

func (d *demo) sendBTC(ctx context.Context) error {
	to, _ := demoRecipient(d.btcNet)
	for _, w := range d.wallets {
		args := []string{"--device", w.path, "btc", "send", "--to", to.EncodeAddress(), "--amount", "0.1",
			"--fee-rate", "2", "--rpc", d.btcURL, "--network", "regtest", "--yes"}
		d.say("$ hwbridge --device %s btc send --to %s --amount 0.1 --fee-rate 2 --rpc %s --network regtest --yes", w.path, to, redactURL(d.btcURL))
		out, err := d.cli(ctx, args...)
		if err != nil {
			return err
		}
		d.showScreen(w)
		txid, err := txidIn(out)
		if err != nil {
			return err
		}
		conf, err := d.confirmBTC(txid)
		if err != nil {
			return err
		}
		d.say("  txid %s, %s", txid, conf)
		d.results = append(d.results, fmt.Sprintf("BTC send (%s): %s %s", w.name, txid, conf))
	}
	return nil
}

func (d *demo) sendETH(ctx context.Context) error {
	w := d.wallets[0]
	_, to := demoRecipient(d.btcNet)
	before, err := d.eth.BalanceAt(ctx, to, nil)
	if err != nil {
		return err
	}
	d.say("$ hwbridge --device %s eth send --to %s --value 1.5 --rpc %s --yes", w.path, to, redactURL(d.ethURL))
	out, err := d.cli(ctx, "--device", w.path, "eth", "send", "--to", to.Hex(), "--value", "1.5", "--rpc", d.ethURL, "--yes")
	if err != nil {
		return err
	}
	d.showScreen(w)
	h, err := txidIn(out)
	if err != nil {
		return err
	}
	r, err := d.waitReceipt(ctx, common.HexToHash(h))
	if err != nil {
		return err
	}
	after, err := d.eth.BalanceAt(ctx, to, nil)
	if err != nil {
		return err
	}
	want := new(big.Int).Add(before, big.NewInt(15e17))
	if after.Cmp(want) != 0 {
		return fmt.Errorf("recipient balance %s wei after the send, want %s", after, want)
	}
	conf := fmt.Sprintf("mined in block %s, status ok", r.BlockNumber)
	d.say("  tx 0x%s, %s; recipient holds 1.5 ETH more", h, conf)
	d.results = append(d.results, fmt.Sprintf("ETH send (%s): 0x%s %s", w.name, h, conf))
	return nil
}

func (d *demo) sendToken(ctx context.Context) error {
	w := d.wallets[0]
	holder := common.HexToAddress(w.eth)
	unit := big.NewInt(1_000_000) // 10^6: the token has 6 decimals
	token, deployTx, err := d.deployToken(ctx, holder, new(big.Int).Mul(big.NewInt(1000), unit))
	if err != nil {
		return err
	}
	d.say("faucet deployed dUSD (6 decimals) at %s (tx %s), 1000 dUSD minted to %s", token, deployTx, holder)
	_, to := demoRecipient(d.btcNet)
	before, err := d.tokenBalance(ctx, token, to)
	if err != nil {
		return err
	}
	d.say("$ hwbridge --device %s eth token-transfer --token %s --to %s --amount 42.5 --rpc %s --yes", w.path, token, to, redactURL(d.ethURL))
	out, err := d.cli(ctx, "--device", w.path, "eth", "token-transfer", "--token", token.Hex(), "--to", to.Hex(), "--amount", "42.5", "--rpc", d.ethURL, "--yes")
	if err != nil {
		return err
	}
	d.showScreen(w)
	h, err := txidIn(out)
	if err != nil {
		return err
	}
	r, err := d.waitReceipt(ctx, common.HexToHash(h))
	if err != nil {
		return err
	}
	after, err := d.tokenBalance(ctx, token, to)
	if err != nil {
		return err
	}
	want := new(big.Int).Add(before, big.NewInt(42_500_000))
	if after.Cmp(want) != 0 {
		return fmt.Errorf("recipient holds %s base units of dUSD after the transfer, want %s", after, want)
	}
	conf := fmt.Sprintf("mined in block %s, status ok, %d log(s)", r.BlockNumber, len(r.Logs))
	d.say("  tx 0x%s, %s; recipient holds 42.5 dUSD more", h, conf)
	d.results = append(d.results, fmt.Sprintf("ERC-20 transfer (%s): 0x%s %s", w.name, h, conf))
	return nil
}
