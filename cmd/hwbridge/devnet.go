package main

// hwbridge devnet: the dev environment for a second terminal. Until Ctrl-C or SIGTERM it
// runs, in this process, the embedded Bitcoin regtest chain and Ethereum dev chain on fixed
// loopback ports, and both emulated wallets on their usual ports (design.md "hwemu"); it
// funds the wallets' first addresses and mines a block whenever the Bitcoin mempool holds
// transactions. hwbridged and the CLI in another terminal then work against it as they
// would against real devices and nodes. It shares its chains, faucets and emulators with
// `hwbridge demo` (devenv.go).

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/ethereum/go-ethereum/common"

	"github.com/hwbridge/hwbridge/emulator"
	ledgeremu "github.com/hwbridge/hwbridge/emulator/ledger"
	"github.com/hwbridge/hwbridge/transport"
)

// Where devnet serves by default.
const (
	devnetBTCAddr    = "127.0.0.1:18443" // Bitcoin Core's regtest RPC port
	devnetETHAddr    = "127.0.0.1:8545"  // geth's HTTP RPC port
	devnetTrezorAddr = "127.0.0.1:21324" // the Trezor emulator's port, as hwemu
)

// The embedded regtest chain's JSON-RPC credentials. They are fixed so that the commands
// devnet prints (and the README shows) work as written: the chain is a throw-away local
// regtest chain on loopback, and the credentials protect nothing of value.
const (
	devnetRPCUser = "hwbridge"
	devnetRPCPass = "devnet"
)

// devnetMinePoll is how often devnet looks at the mempool: a broadcast transaction is
// confirmed within about this long plus the time to mine one block (milliseconds).
const devnetMinePoll = 100 * time.Millisecond

// What each wallet's first address receives at start.
var (
	devnetFundBTC = btcutil.Amount(10 * btcutil.SatoshiPerBitcoin)      // 10 BTC
	devnetFundETH = new(big.Int).Mul(big.NewInt(100), big.NewInt(1e18)) // 100 ETH
)

// devnetInfo is what devnet prints with --json, once everything is ready.
type devnetInfo struct {
	BTCRPC     string         `json:"btc_rpc"` // with the fixed credentials
	BTCNetwork string         `json:"btc_network"`
	BTCHeight  int64          `json:"btc_height"`
	ETHRPC     string         `json:"eth_rpc"`
	ETHChainID string         `json:"eth_chain_id"`
	Wallets    []devnetWallet `json:"wallets"`
	Emulators  string         `json:"hwbridged_emulator"` // the value for hwbridged --emulator
	Recipient  devnetAddrs    `json:"recipient"`          // addresses nobody holds a key for
}

type devnetWallet struct {
	Name    string `json:"name"`
	Path    string `json:"path"`
	BTCOnly bool   `json:"btc_only,omitempty"` // no Ethereum (the Coldcard-class wallet)
	devnetAddrs
}

type devnetAddrs struct {
	BTC string `json:"btc_address"`
	ETH string `json:"eth_address,omitempty"`
}

// devnet is one run.
type devnet struct {
	*devEnv
	info devnetInfo
}

func runDevnet(ctx context.Context, e *env, args []string) error {
	fs := e.flagSet("devnet")
	o := devEmulators{label: "hwbridge devnet", hint: " (is hwemu or another devnet running? stop it, or pass another address, or off)"}
	fs.StringVar(&o.trezor, "trezor", devnetTrezorAddr, "Trezor-class emulator on UDP `ADDR` (HOST:PORT; DebugLink on PORT+1), or off")
	fs.StringVar(&o.ledger, "ledger", ledgeremu.DefaultAddr, "Ledger-class emulator on TCP `ADDR` (Speculos APDU framing), or off")
	mnemonic := fs.String("mnemonic", emulator.DefaultMnemonic, "BIP-39 `WORDS` of both wallets' seed (default: the standard test mnemonic)")
	coldcard := fs.String("coldcard", "off", "also a Coldcard-class emulator (Bitcoin only, chain XRT) on the unix datagram `SOCKET` (the Coldcard simulator's framing; ckcc and HWI use "+transport.DefaultColdcardSimulator+"), or off")
	fs.StringVar(&o.ledgerApp, "ledger-app", ledgeremu.AppBitcoinTest, "Ledger app open at start: Bitcoin, \"Bitcoin Test\" or Ethereum (hwbridge opens the one a request needs)")
	btcAddr := fs.String("btc-rpc-addr", devnetBTCAddr, "serve the Bitcoin regtest JSON-RPC on loopback `ADDR`")
	ethAddr := fs.String("eth-rpc-addr", devnetETHAddr, "serve the Ethereum dev chain's JSON-RPC on loopback `ADDR`")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if o.trezor == "off" && o.ledger == "off" {
		return usagef("--trezor and --ledger are both off: devnet funds and serves the emulated wallets")
	}
	switch o.ledgerApp {
	case ledgeremu.AppBitcoin, ledgeremu.AppBitcoinTest, ledgeremu.AppEthereum:
	default:
		return usagef("--ledger-app %q: use Bitcoin, \"Bitcoin Test\" or Ethereum", o.ledgerApp)
	}
	if _, err := emulator.NewWallet(*mnemonic, ""); err != nil {
		return usagef("--mnemonic: %v", err)
	}
	o.trezorMnemonic, o.ledgerMnemonic = *mnemonic, *mnemonic
	if *coldcard == "" {
		return usagef("--coldcard: give a socket path, or off")
	}

	// With --json, stdout carries only the JSON object; progress goes to stderr.
	out := e.stdout
	if e.json {
		out = e.stderr
	}
	n := &devnet{devEnv: newDevEnv(e, out)}
	defer n.close()
	n.btcListen, n.btcUser, n.btcPass, n.ethListen = *btcAddr, devnetRPCUser, devnetRPCPass, *ethAddr
	fmt.Fprintln(out, "hwbridge devnet: a Bitcoin regtest chain, an Ethereum dev chain and emulated Trezor- and")
	fmt.Fprintln(out, "Ledger-class wallets (public test seed), in this process, until Ctrl-C.")
	t0 := time.Now()
	steps := []struct {
		title string
		run   func(context.Context) error
	}{
		{"Bitcoin regtest chain", n.startBitcoin},
		{"Ethereum dev chain", n.startEthereum},
		{"emulated wallets", func(ctx context.Context) error { return n.startWallets(ctx, o, *coldcard, *mnemonic) }},
		{"wallet addresses", n.addresses},
		{"fund the wallets from the faucets", n.fund},
	}
	for _, s := range steps {
		if err := n.do(ctx, s.title, s.run); err != nil {
			if ctx.Err() != nil {
				return nil // Ctrl-C while starting
			}
			return fmt.Errorf("devnet step %d (%s): %w", n.step, s.title, err)
		}
	}
	if err := n.ready(time.Since(t0)); err != nil {
		return err
	}
	err := n.run(ctx)
	fmt.Fprintln(out, "devnet: stopping")
	n.close()
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "devnet: stopped")
	return nil
}

func (n *devnet) startWallets(ctx context.Context, o devEmulators, coldcard, mnemonic string) error {
	if err := n.startEmulators(ctx, o); err != nil {
		return err
	}
	if coldcard != "off" {
		if err := n.startColdcard(coldcard, mnemonic, o.hint); err != nil {
			return err
		}
	}
	for _, w := range n.wallets {
		n.say("%s wallet on %s (every screen approved automatically)", w.name, w.path)
	}
	return nil
}

// addresses asks each wallet for its first regtest P2WPKH receive address, and the first
// one for its first Ethereum address, through the CLI as a user would.
func (n *devnet) addresses(ctx context.Context) error {
	for i, w := range n.wallets {
		var a struct{ Address string }
		if err := n.cliJSON(ctx, &a, "--device", w.path, "address", "--chain", "btc", "--network", "regtest", "--type", "wpkh"); err != nil {
			return err
		}
		w.btc = a.Address
		n.say("%s: %s (m/84'/1'/0'/0/0)", w.name, w.btc)
		if i > 0 {
			continue // both wallets hold the same seed: the same Ethereum address
		}
		if err := n.cliJSON(ctx, &a, "--device", w.path, "address", "--chain", "eth"); err != nil {
			return err
		}
		if !common.IsHexAddress(a.Address) {
			return fmt.Errorf("%s gave %q, not an Ethereum address", w.name, a.Address)
		}
		w.eth = a.Address
		n.say("%s: %s (m/44'/60'/0'/0/0)", w.name, w.eth)
	}
	return nil
}

// fund pays each distinct address once and waits until the payments are confirmed.
func (n *devnet) fund(ctx context.Context) error {
	var btcTo []btcutil.Address
	var ethTo []common.Address
	var seen []string
	for _, w := range n.wallets {
		if !slices.Contains(seen, w.btc) {
			seen = append(seen, w.btc)
			a, err := btcutil.DecodeAddress(w.btc, n.btcNet)
			if err != nil {
				return err
			}
			btcTo = append(btcTo, a)
		}
		if w.eth != "" {
			ethTo = append(ethTo, common.HexToAddress(w.eth))
		}
	}
	txid, err := n.fundBTC(ctx, btcTo, devnetFundBTC)
	if err != nil {
		return err
	}
	conf, err := n.confirmBTC(txid)
	if err != nil {
		return err
	}
	for _, a := range btcTo {
		n.say("paid %s to %s: txid %s, %s", devnetFundBTC, a, txid, conf)
	}
	hashes, err := n.fundETH(ctx, ethTo, devnetFundETH)
	if err != nil {
		return err
	}
	for i, h := range hashes {
		n.say("paid 100 ETH to %s: tx %s, mined", ethTo[i], h)
	}
	return nil
}

// ready prints the endpoints and the commands to run next (or the JSON object).
func (n *devnet) ready(took time.Duration) error {
	height, err := n.btc.GetBlockCount()
	if err != nil {
		return err
	}
	btcTo, ethTo := demoRecipient(n.btcNet)
	n.info = devnetInfo{
		BTCRPC: n.btcURL, BTCNetwork: "regtest", BTCHeight: height,
		ETHRPC: n.ethURL, ETHChainID: n.ethChain.String(),
		Recipient: devnetAddrs{BTC: btcTo.EncodeAddress(), ETH: ethTo.Hex()},
	}
	var paths []string
	for _, w := range n.wallets {
		n.info.Wallets = append(n.info.Wallets, devnetWallet{Name: w.name, Path: w.path, BTCOnly: w.btcOnly, devnetAddrs: devnetAddrs{BTC: w.btc, ETH: w.eth}})
		paths = append(paths, w.path)
	}
	n.info.Emulators = strings.Join(paths, ",")
	if n.e.json {
		if err := n.e.writeJSON(n.info); err != nil {
			return err
		}
	}
	w, i := n.wallets[0], &n.info
	lines := []string{
		"",
		fmt.Sprintf("devnet ready in %.1fs. Leave it running; Ctrl-C stops it.", took.Seconds()),
		"",
		"  Bitcoin regtest JSON-RPC   " + i.BTCRPC + "   (fixed credentials: a local dev chain)",
		"  Ethereum dev JSON-RPC      " + i.ETHRPC + "   (chain id " + i.ETHChainID + ")",
	}
	for _, w := range i.Wallets {
		lines = append(lines, fmt.Sprintf("  %-26s %s", w.Name+" wallet", w.Path))
	}
	lines = append(lines,
		fmt.Sprintf("  %-26s %s (%s)", "the wallets' BTC address", w.btc, devnetFundBTC),
		fmt.Sprintf("  %-26s %s (100 ETH)", "their ETH address", w.eth),
		fmt.Sprintf("  %-26s %s, %s", "a recipient (no one's key)", i.Recipient.BTC, i.Recipient.ETH),
		"",
		"A block is mined whenever the Bitcoin mempool holds transactions; the Ethereum chain",
		"seals a block for each transaction. In a second terminal:",
		"",
	)
	for _, c := range i.nextCommands() {
		lines = append(lines, "  "+c)
	}
	lines = append(lines, "")
	for _, l := range lines {
		fmt.Fprintln(n.out, l)
	}
	return nil
}

// run mines a block whenever the mempool holds transactions, until ctx ends (nil) or an
// emulator or the chain fails.
func (n *devnet) run(ctx context.Context) error {
	faucet, err := faucetAddress(n.btcNet)
	if err != nil {
		return err
	}
	t := time.NewTicker(devnetMinePoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-n.failed:
			return err
		case <-t.C:
		}
		if n.btcNode.MempoolCount() == 0 {
			continue
		}
		hashes, err := n.btcNode.Mine(ctx, 1, faucet)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("devnet: mine: %w", err)
		}
		if err := n.reportBlock(hashes[0]); err != nil {
			return err
		}
	}
}

// reportBlock prints the transactions a block confirmed.
func (n *devnet) reportBlock(h chainhash.Hash) error {
	blk, err := n.btc.GetBlockVerbose(&h)
	if err != nil {
		return fmt.Errorf("devnet: read block %s: %w", h, err)
	}
	n.say("block %d mined: %d transaction(s) confirmed: %s", blk.Height, len(blk.Tx)-1, strings.Join(blk.Tx[1:], " "))
	return nil
}

// nextCommands are the commands to type in a second terminal: start hwbridged on the
// emulators, list the devices through it, pay the recipient from the first wallet and see
// the payment confirmed, pay ETH from the last wallet, check the audit log. The README's
// newcomer section shows the same lines for the default addresses (readme_test.go checks).
func (i *devnetInfo) nextCommands() []string {
	first, last := i.Wallets[0], i.Wallets[0]
	for _, w := range i.Wallets {
		if !w.BTCOnly {
			last = w // the last wallet that runs Ethereum
		}
	}
	eth := "hwbridge "
	if last.Path != first.Path {
		eth += "--device " + last.Path + " "
	}
	return []string{
		"hwbridged --emulator " + i.Emulators + " &",
		"hwbridge devices",
		"export HWBRIDGE_DEVICE=" + first.Path,
		"BTC_RPC=" + i.BTCRPC,
		"hwbridge btc balance --rpc $BTC_RPC --network regtest",
		"hwbridge btc send --to " + i.Recipient.BTC + " --amount 0.5 --rpc $BTC_RPC --network regtest --yes",
		"hwbridge btc balance --rpc $BTC_RPC --network regtest",
		eth + "eth send --to " + i.Recipient.ETH + " --value 1.5 --rpc " + i.ETHRPC + " --yes",
		"hwbridge audit verify",
	}
}
