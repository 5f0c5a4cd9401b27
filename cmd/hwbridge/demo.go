package main

// hwbridge demo: the newcomer path. It starts emulated wallets of both families and two
// dev chains inside this process (a Bitcoin regtest chain from btcd's own packages and an
// Ethereum dev chain from go-ethereum's), then walks through what hwbridge does, with the
// same CLI commands a user types (run in-process against the emulators' loopback paths):
// list devices, show addresses on the devices, send BTC from each family, send ETH and an
// ERC-20 token, and checks that each transaction is confirmed on its chain. It exits 0 only
// if every step was verified; a step whose code is not in this build fails loudly.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/hwbridge/hwbridge/emulator"
	ledgeremu "github.com/hwbridge/hwbridge/emulator/ledger"
	trezoremu "github.com/hwbridge/hwbridge/emulator/trezor"
	"github.com/hwbridge/hwbridge/internal/devchain/btcregtest"
	"github.com/hwbridge/hwbridge/internal/devchain/ethdev"
	"github.com/hwbridge/hwbridge/testdata/erc20"
)

// demoTimeout bounds the whole walk-through when --timeout is not given.
const demoTimeout = 3 * time.Minute

// demo is one run of the walk-through.
type demo struct {
	e        *env
	out      io.Writer
	btcNet   *chaincfg.Params
	btcURL   string
	ethURL   string
	btc      *rpcclient.Client
	eth      *ethclient.Client
	ethChain *big.Int
	closers  []func() error
	step     int
	results  []string // "what: txid (confirmation)" lines for the summary
	wallets  []*demoWallet
	failures []string // wallets left out after a failed step
}

// demoWallet is one emulated wallet, driven through its loopback path like any device.
type demoWallet struct {
	name   string          // "Trezor-class", "Ledger-class"
	path   string          // udp:HOST:PORT or tcp:HOST:PORT
	screen func() []string // what the device showed since the last call
	btc    string          // its regtest P2WPKH receive address
	eth    string          // its Ethereum address (families that run Ethereum here)
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
	d := &demo{e: e, out: e.stdout, btcNet: &chaincfg.RegressionNetParams, btcURL: *btcRPC, ethURL: *ethRPC}
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

// do runs one step with its header and timing.
func (d *demo) do(ctx context.Context, title string, fn func(context.Context) error) error {
	d.step++
	fmt.Fprintf(d.out, "\n[%d] %s\n", d.step, title)
	t := time.Now()
	err := fn(ctx)
	if err != nil {
		fmt.Fprintf(d.out, "    FAILED: %v\n", err)
		return err
	}
	fmt.Fprintf(d.out, "    ok (%.2fs)\n", time.Since(t).Seconds())
	return nil
}

func (d *demo) say(format string, args ...any) { fmt.Fprintf(d.out, "    "+format+"\n", args...) }

func (d *demo) close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		if err := d.closers[i](); err != nil {
			d.e.log.Debug("demo cleanup", "err", err)
		}
	}
	d.closers = nil
}

// demoFaucetKey holds the coins the demo hands out: the coinbases of the embedded chain,
// and the genesis balance of the embedded Ethereum chain's ethdev.FaucetKey. Public test
// material.
func demoFaucetKey() *btcec.PrivateKey {
	seed := sha256.Sum256([]byte("hwbridge demo bitcoin faucet"))
	k, _ := btcec.PrivKeyFromBytes(seed[:])
	return k
}

func faucetAddress(net *chaincfg.Params) (*btcutil.AddressWitnessPubKeyHash, error) {
	return btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(demoFaucetKey().PubKey().SerializeCompressed()), net)
}

func (d *demo) startBitcoin(ctx context.Context) error {
	faucet, err := faucetAddress(d.btcNet)
	if err != nil {
		return err
	}
	if d.btcURL == "" {
		t := time.Now()
		node, err := btcregtest.Start(ctx, btcregtest.NodeOptions{MiningAddr: faucet, Logger: d.e.log})
		if err != nil {
			return err
		}
		d.closers = append(d.closers, node.Close)
		d.btcURL = node.URL()
		d.say("btcd v0.24.2 blockchain + mempool (full script validation) + mining, in process")
		d.say("mined %d blocks to the demo faucet %s in %.2fs (segwit and taproot active from block %d)",
			node.Height(), faucet, time.Since(t).Seconds(), btcregtest.SegwitHeight+1)
		d.say("JSON-RPC (btcd's) on %s", redactURL(d.btcURL))
	} else {
		d.say("using the node at %s", redactURL(d.btcURL))
	}
	c, err := btcClient(d.btcURL)
	if err != nil {
		return err
	}
	d.btc = c
	d.closers = append(d.closers, func() error { c.Shutdown(); return nil })
	n, err := c.GetBlockCount()
	if err != nil {
		return fmt.Errorf("the bitcoin node at %s does not answer (is it running, in regtest, with these credentials?): %w", redactURL(d.btcURL), err)
	}
	if n < 101 {
		// A fresh node: mature one coinbase (btcd pays its --miningaddr; Core the faucet).
		if _, err := d.mineBTC(int(101 - n)); err != nil {
			return err
		}
		d.say("mined %d blocks on the node", 101-n)
		n = 101
	}
	d.say("tip height %d", n)
	return nil
}

func (d *demo) startEthereum(ctx context.Context) error {
	if d.ethURL == "" {
		t := time.Now()
		node, err := ethdev.Start(ctx, ethdev.Options{Logger: d.e.log})
		if err != nil {
			return err
		}
		d.closers = append(d.closers, node.Close)
		d.ethURL = node.URL()
		d.say("go-ethereum node + eth + simulated beacon (a block per transaction), in process, %.2fs", time.Since(t).Seconds())
		d.say("JSON-RPC on %s", d.ethURL)
	} else {
		d.say("using the node at %s", redactURL(d.ethURL))
	}
	c, err := ethclient.DialContext(ctx, d.ethURL)
	if err != nil {
		return fmt.Errorf("ethereum node %s: %w", redactURL(d.ethURL), err)
	}
	d.eth = c
	d.closers = append(d.closers, func() error { c.Close(); return nil })
	id, err := c.ChainID(ctx)
	if err != nil {
		return fmt.Errorf("the ethereum node at %s does not answer (is it running?): %w", redactURL(d.ethURL), err)
	}
	d.ethChain = id
	d.say("chain id %s", id)
	return nil
}

// startEmulators starts both emulated wallet families in this process, each serving its
// real wire protocol on a loopback port (Trezor Codec v1 over UDP, Speculos APDUs over TCP),
// so that the CLI reaches them by path exactly as it reaches any device.
func (d *demo) startEmulators(ctx context.Context) error {
	tz, err := trezoremu.New(trezoremu.Options{Label: "hwbridge demo", Logger: d.e.log})
	if err != nil {
		return fmt.Errorf("trezor-class emulator: %w", err)
	}
	d.closers = append(d.closers, tz.Close)
	srv, err := tz.ListenUDP("127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("trezor-class emulator: %w", err)
	}
	serveCtx, stop := context.WithCancel(context.Background())
	d.closers = append(d.closers, func() error { stop(); return srv.Close() })
	go func() {
		if err := srv.Serve(serveCtx); err != nil {
			d.e.log.Debug("trezor-class emulator stopped", "err", err)
		}
	}()
	d.wallets = append(d.wallets, &demoWallet{name: "Trezor-class", path: "udp:" + srv.Addr().String(), screen: screenReader(tz.Approver())})

	// A Ledger runs one app at a time; regtest coins are the Bitcoin Test app's.
	lg, err := ledgeremu.New(ledgeremu.Config{Mnemonic: demoLedgerMnemonic, App: ledgeremu.AppBitcoinTest, Logger: d.e.log})
	if err != nil {
		return fmt.Errorf("ledger-class emulator: %w", err)
	}
	d.closers = append(d.closers, lg.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("ledger-class emulator: %w", err)
	}
	go func() {
		if err := lg.Serve(serveCtx, ln); err != nil {
			d.e.log.Debug("ledger-class emulator stopped", "err", err)
		}
	}()
	d.wallets = append(d.wallets, &demoWallet{name: "Ledger-class", path: "tcp:" + ln.Addr().String(), screen: screenReader(lg.Approver())})
	for _, w := range d.wallets {
		d.say("%s wallet on %s (a public test seed; every screen approved automatically)", w.name, w.path)
	}
	return nil
}

// demoLedgerMnemonic gives the Ledger-class wallet other keys than the Trezor-class one
// (which holds emulator.DefaultMnemonic): a BIP-39 test vector, public test material.
const demoLedgerMnemonic = "legal winner thank year wave sausage worth useful legal winner thank yellow"

// screenReader returns what an emulated device showed since the previous call.
func screenReader(a *emulator.Approver) func() []string {
	seen := 0
	return func() []string {
		t := a.Transcript()
		if seen > len(t) {
			seen = 0
		}
		var out []string
		for _, e := range t[seen:] {
			line := e.Title
			if len(e.Lines) > 0 {
				line += ": " + strings.Join(e.Lines, " | ")
			}
			out = append(out, fmt.Sprintf("[%s] %s", e.Outcome, line))
		}
		seen = len(t)
		return out
	}
}

// redactURL hides a URL's password.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// btcClient is a JSON-RPC client (btcd's rpcclient, HTTP POST) for a node URL.
func btcClient(rawURL string) (*rpcclient.Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return nil, usagef("--btc-rpc %q: want http://user:pass@host:port", redactURL(rawURL))
	}
	pass, _ := u.User.Password()
	return rpcclient.New(&rpcclient.ConnConfig{
		Host: u.Host + u.Path, User: u.User.Username(), Pass: pass,
		HTTPPostMode: true, DisableTLS: u.Scheme != "https",
	}, nil)
}

// btcCall makes a raw JSON-RPC call.
func btcCall(c *rpcclient.Client, method string, params ...any) (json.RawMessage, error) {
	raw := make([]json.RawMessage, len(params))
	for i, p := range params {
		b, err := json.Marshal(p)
		if err != nil {
			return nil, err
		}
		raw[i] = b
	}
	return c.RawRequest(method, raw)
}

// mineBTC mines n blocks: "generate" (btcd, the embedded chain), else "generatetoaddress"
// to the faucet (Bitcoin Core).
func (d *demo) mineBTC(n int) ([]string, error) {
	res, err := btcCall(d.btc, "generate", n)
	var rerr *btcjson.RPCError
	if errors.As(err, &rerr) && rerr.Code == btcjson.ErrRPCMethodNotFound.Code {
		faucet, ferr := faucetAddress(d.btcNet)
		if ferr != nil {
			return nil, ferr
		}
		res, err = btcCall(d.btc, "generatetoaddress", n, faucet.EncodeAddress())
	}
	if err != nil {
		return nil, fmt.Errorf("mine %d block(s): %w", n, err)
	}
	var hashes []string
	if err := json.Unmarshal(res, &hashes); err != nil {
		return nil, fmt.Errorf("mine: %w", err)
	}
	return hashes, nil
}

// confirmBTC mines a block and checks that txid is in it, returning its confirmations line.
func (d *demo) confirmBTC(txid string) (string, error) {
	hashes, err := d.mineBTC(1)
	if err != nil {
		return "", err
	}
	res, err := btcCall(d.btc, "getrawtransaction", txid, 1)
	if err != nil {
		return "", fmt.Errorf("look up %s: %w", txid, err)
	}
	var tx btcjson.TxRawResult
	if err := json.Unmarshal(res, &tx); err != nil {
		return "", err
	}
	if tx.Confirmations < 1 || tx.BlockHash != hashes[0] {
		return "", fmt.Errorf("transaction %s is not in the block just mined (%s); confirmations %d", txid, hashes[0], tx.Confirmations)
	}
	h, err := btcCall(d.btc, "getblockheader", hashes[0], true)
	if err != nil {
		return "", err
	}
	var hdr btcjson.GetBlockHeaderVerboseResult
	if err := json.Unmarshal(h, &hdr); err != nil {
		return "", err
	}
	return fmt.Sprintf("confirmed in block %d (%d confirmation)", hdr.Height, tx.Confirmations), nil
}

// fundBTC pays amount to each address from the faucet's mature coinbases, mines it and
// returns the txid.
func (d *demo) fundBTC(ctx context.Context, to []btcutil.Address, amount btcutil.Amount) (string, error) {
	key := demoFaucetKey()
	faucet, err := faucetAddress(d.btcNet)
	if err != nil {
		return "", err
	}
	faucetScript, err := txscript.PayToAddrScript(faucet)
	if err != nil {
		return "", err
	}
	need := amount*btcutil.Amount(len(to)) + 10_000
	// The faucet's coins are coinbases; take mature, unspent ones from the chain's start.
	var (
		inputs []wire.OutPoint
		values []int64
		total  btcutil.Amount
	)
	tip, err := d.btc.GetBlockCount()
	if err != nil {
		return "", err
	}
	for h := int64(1); h <= tip-100 && total < need; h++ {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		hash, err := d.btc.GetBlockHash(h)
		if err != nil {
			return "", err
		}
		blk, err := d.btc.GetBlockVerbose(hash)
		if err != nil {
			return "", err
		}
		cb, err := chainhash.NewHashFromStr(blk.Tx[0])
		if err != nil {
			return "", err
		}
		out, err := d.btc.GetTxOut(cb, 0, true)
		if err != nil || out == nil || out.ScriptPubKey.Hex != hex.EncodeToString(faucetScript) {
			continue
		}
		v, err := btcutil.NewAmount(out.Value)
		if err != nil {
			return "", err
		}
		inputs = append(inputs, wire.OutPoint{Hash: *cb, Index: 0})
		values = append(values, int64(v))
		total += v
	}
	if total < need {
		return "", fmt.Errorf("the demo faucet %s has %s of mature coinbases, %s needed: with --btc-rpc, start the regtest node with --miningaddr=%s (btcd) and mine 101 blocks", faucet, total, need, faucet)
	}
	tx := wire.NewMsgTx(2)
	for _, op := range inputs {
		tx.AddTxIn(wire.NewTxIn(&op, nil, nil))
	}
	for _, a := range to {
		pk, err := txscript.PayToAddrScript(a)
		if err != nil {
			return "", err
		}
		tx.AddTxOut(wire.NewTxOut(int64(amount), pk))
	}
	const fee = 5_000
	tx.AddTxOut(wire.NewTxOut(int64(total-amount*btcutil.Amount(len(to)))-fee, faucetScript))
	prev := txscript.NewMultiPrevOutFetcher(nil)
	for i, op := range inputs {
		prev.AddPrevOut(op, wire.NewTxOut(values[i], faucetScript))
	}
	hashes := txscript.NewTxSigHashes(tx, prev)
	for i := range inputs {
		w, err := txscript.WitnessSignature(tx, hashes, i, values[i], faucetScript, txscript.SigHashAll, key, true)
		if err != nil {
			return "", err
		}
		tx.TxIn[i].Witness = w
	}
	var buf bytes.Buffer
	if err := tx.Serialize(&buf); err != nil {
		return "", err
	}
	res, err := btcCall(d.btc, "sendrawtransaction", hex.EncodeToString(buf.Bytes()))
	if err != nil {
		return "", fmt.Errorf("broadcast the faucet transaction: %w", err)
	}
	var txid string
	if err := json.Unmarshal(res, &txid); err != nil {
		return "", err
	}
	return txid, nil
}

// fundETH sends value wei to each address from the faucet: an unlocked node account
// (geth --dev) or ethdev.FaucetKey (the embedded chain), and waits for the receipts.
func (d *demo) fundETH(ctx context.Context, to []common.Address, value *big.Int) ([]common.Hash, error) {
	key := ethdev.FaucetKey()
	from := crypto.PubkeyToAddress(key.PublicKey)
	nonce, err := d.eth.PendingNonceAt(ctx, from)
	if err != nil {
		return nil, err
	}
	head, err := d.eth.HeaderByNumber(ctx, nil)
	if err != nil {
		return nil, err
	}
	tip, err := d.eth.SuggestGasTipCap(ctx)
	if err != nil {
		return nil, err
	}
	bal, err := d.eth.BalanceAt(ctx, from, nil)
	if err != nil {
		return nil, err
	}
	need := new(big.Int).Mul(value, big.NewInt(int64(len(to)+1)))
	if bal.Cmp(need) < 0 {
		if err := d.topUpFaucet(ctx, from, need); err != nil {
			return nil, fmt.Errorf("the demo faucet %s holds %s wei and could not be topped up (%v): with --eth-rpc, use a dev node with an unlocked funded account (geth --dev) or fund it", from, bal, err)
		}
		if nonce, err = d.eth.PendingNonceAt(ctx, from); err != nil {
			return nil, err
		}
	}
	feeCap := new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip)
	var hashes []common.Hash
	for i, a := range to {
		tx, err := types.SignTx(types.NewTx(&types.DynamicFeeTx{
			ChainID: d.ethChain, Nonce: nonce + uint64(i), GasTipCap: tip, GasFeeCap: feeCap,
			Gas: 21_000, To: &a, Value: value,
		}), types.LatestSignerForChainID(d.ethChain), key)
		if err != nil {
			return nil, err
		}
		if err := d.eth.SendTransaction(ctx, tx); err != nil {
			return nil, fmt.Errorf("send the faucet transaction: %w", err)
		}
		hashes = append(hashes, tx.Hash())
	}
	for _, h := range hashes {
		if _, err := d.waitReceipt(ctx, h); err != nil {
			return nil, err
		}
	}
	return hashes, nil
}

// topUpFaucet funds the faucet key from the node's unlocked dev account (geth --dev's
// eth_accounts[0]) with eth_sendTransaction.
func (d *demo) topUpFaucet(ctx context.Context, faucet common.Address, need *big.Int) error {
	var accounts []common.Address
	if err := d.eth.Client().CallContext(ctx, &accounts, "eth_accounts"); err != nil {
		return err
	}
	if len(accounts) == 0 {
		return errors.New("the node has no unlocked account")
	}
	var h common.Hash
	arg := map[string]any{"from": accounts[0], "to": faucet, "value": "0x" + need.Text(16)}
	if err := d.eth.Client().CallContext(ctx, &h, "eth_sendTransaction", arg); err != nil {
		return err
	}
	_, err := d.waitReceipt(ctx, h)
	return err
}

// waitReceipt waits for a successful receipt.
func (d *demo) waitReceipt(ctx context.Context, h common.Hash) (*types.Receipt, error) {
	for {
		r, err := d.eth.TransactionReceipt(ctx, h)
		if err == nil {
			if r.Status != types.ReceiptStatusSuccessful {
				return r, fmt.Errorf("transaction %s failed on chain (status %d)", h, r.Status)
			}
			return r, nil
		}
		if !errors.Is(err, ethereum.NotFound) && !strings.Contains(err.Error(), "indexing is in progress") {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no receipt for %s: %w", h, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// cliRunner is *env seen through an interface: the command table holds runDemo, and a
// direct call of env.main from here would make the table depend on itself at
// initialization (Go does not follow calls through interfaces).
type cliRunner interface {
	main(ctx context.Context, args []string) int
}

// cli runs a hwbridge command line in this process, as a user would type it, and returns
// its stdout.
func (d *demo) cli(ctx context.Context, args ...string) (string, error) {
	var out, errOut bytes.Buffer
	var sub cliRunner = newEnv(strings.NewReader(""), &out, &errOut, d.e.getenv)
	code := sub.main(ctx, append([]string{"--direct"}, args...))
	if code != exitOK {
		shown := make([]string, len(args))
		for i, a := range args {
			shown[i] = redactURL(a)
		}
		return out.String(), fmt.Errorf("hwbridge %s: exit %d: %s", strings.Join(shown, " "), code, strings.TrimSpace(errOut.String()))
	}
	return out.String(), nil
}

// showScreen prints what the wallet displayed since the last call.
func (d *demo) showScreen(w *demoWallet) {
	if w.screen == nil {
		return
	}
	for _, line := range w.screen() {
		d.say("  %s screen: %s", w.name, line)
	}
}

// listDevices lists each wallet through the CLI. A wallet this build cannot drive is
// reported and left out of the later steps, which run on the others; the demo then fails
// at the end.
func (d *demo) listDevices(ctx context.Context) error {
	var usable []*demoWallet
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

// cliJSON runs a command with --json and decodes its answer.
func (d *demo) cliJSON(ctx context.Context, v any, args ...string) error {
	out, err := d.cli(ctx, append([]string{"--json"}, args...)...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("hwbridge %s: answer %q: %w", strings.Join(args, " "), out, err)
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

// txidIn finds the 64-hex-digit transaction id in a command's answer.
func txidIn(out string) (string, error) {
	for _, f := range strings.FieldsFunc(out, func(r rune) bool { return !strings.ContainsRune("0123456789abcdefABCDEFx", r) }) {
		f = strings.TrimPrefix(f, "0x")
		if len(f) == 64 {
			if _, err := hex.DecodeString(f); err == nil {
				return strings.ToLower(f), nil
			}
		}
	}
	return "", fmt.Errorf("no transaction id in %q", strings.TrimSpace(out))
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

// deployToken deploys the committed test token (6 decimals, like USDC) from the faucet,
// minting supply to holder, and returns its address.
func (d *demo) deployToken(ctx context.Context, holder common.Address, supply *big.Int) (common.Address, common.Hash, error) {
	data, err := erc20.DeployData("Demo USD", "dUSD", supply, holder)
	if err != nil {
		return common.Address{}, common.Hash{}, err
	}
	key := ethdev.FaucetKey()
	from := crypto.PubkeyToAddress(key.PublicKey)
	nonce, err := d.eth.PendingNonceAt(ctx, from)
	if err != nil {
		return common.Address{}, common.Hash{}, err
	}
	gas, err := d.eth.EstimateGas(ctx, ethereum.CallMsg{From: from, Data: data})
	if err != nil {
		return common.Address{}, common.Hash{}, fmt.Errorf("estimate the token deployment: %w", err)
	}
	head, err := d.eth.HeaderByNumber(ctx, nil)
	if err != nil {
		return common.Address{}, common.Hash{}, err
	}
	tip, err := d.eth.SuggestGasTipCap(ctx)
	if err != nil {
		return common.Address{}, common.Hash{}, err
	}
	tx, err := types.SignTx(types.NewTx(&types.DynamicFeeTx{
		ChainID: d.ethChain, Nonce: nonce, GasTipCap: tip,
		GasFeeCap: new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip),
		Gas:       gas + gas/5, Data: data,
	}), types.LatestSignerForChainID(d.ethChain), key)
	if err != nil {
		return common.Address{}, common.Hash{}, err
	}
	if err := d.eth.SendTransaction(ctx, tx); err != nil {
		return common.Address{}, common.Hash{}, fmt.Errorf("send the token deployment: %w", err)
	}
	r, err := d.waitReceipt(ctx, tx.Hash())
	if err != nil {
		return common.Address{}, common.Hash{}, err
	}
	return r.ContractAddress, tx.Hash(), nil
}

// tokenBalance calls balanceOf(who).
func (d *demo) tokenBalance(ctx context.Context, token, who common.Address) (*big.Int, error) {
	a, err := erc20.ABI()
	if err != nil {
		return nil, err
	}
	in, err := a.Pack("balanceOf", who)
	if err != nil {
		return nil, err
	}
	out, err := d.eth.CallContract(ctx, ethereum.CallMsg{To: &token, Data: in}, nil)
	if err != nil {
		return nil, fmt.Errorf("balanceOf: %w", err)
	}
	v, err := a.Unpack("balanceOf", out)
	if err != nil || len(v) != 1 {
		return nil, fmt.Errorf("balanceOf answer %x: %v", out, err)
	}
	b, ok := v[0].(*big.Int)
	if !ok {
		return nil, fmt.Errorf("balanceOf answer %x is not a number", out)
	}
	return b, nil
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
