package main

// The dev environment that `hwbridge demo` and `hwbridge devnet` share: the in-process
// Bitcoin regtest chain (internal/devchain/btcregtest) or a given node, the in-process
// Ethereum dev chain (internal/devchain/ethdev) or a given node, their faucets, and the
// emulated wallets served on loopback paths that the CLI reaches like any device.

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
	"sync"
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

	ethchain "github.com/hwbridge/hwbridge/chains/ethereum"
	"github.com/hwbridge/hwbridge/emulator"
	ledgeremu "github.com/hwbridge/hwbridge/emulator/ledger"
	trezoremu "github.com/hwbridge/hwbridge/emulator/trezor"
	"github.com/hwbridge/hwbridge/internal/devchain/btcregtest"
	"github.com/hwbridge/hwbridge/internal/devchain/ethdev"
	"github.com/hwbridge/hwbridge/testdata/erc20"
)

// devEnv is a running dev environment: chains, clients, emulated wallets, and what closes
// them. Fields set before the start* calls choose what starts.
type devEnv struct {
	e   *env
	out io.Writer // progress lines

	btcNet *chaincfg.Params
	btcURL string // a node to use; empty starts the embedded chain
	ethURL string // likewise for Ethereum
	// Where the embedded chains serve JSON-RPC (loopback HOST:PORT; empty: a free port) and
	// the embedded Bitcoin chain's credentials (empty password: a random one).
	btcListen, btcUser, btcPass string
	ethListen                   string

	btcNode  *btcregtest.Node // the embedded chain, when it runs
	btc      *rpcclient.Client
	eth      *ethclient.Client
	ethChain *big.Int
	wallets  []*devWallet

	// failed receives an emulator server's failure while it should still be serving.
	failed chan error

	step    int
	closers []func() error
}

func newDevEnv(e *env, out io.Writer) *devEnv {
	return &devEnv{e: e, out: out, btcNet: &chaincfg.RegressionNetParams, failed: make(chan error, 2)}
}

// devWallet is one emulated wallet, driven through its loopback path like any device.
type devWallet struct {
	name   string          // "Trezor-class", "Ledger-class"
	path   string          // udp:HOST:PORT or tcp:HOST:PORT
	screen func() []string // what the device showed since the last call
	btc    string          // its regtest P2WPKH receive address
	eth    string          // its Ethereum address (families that run Ethereum here)
	// btcOnly: a family without Ethereum (the Coldcard-class wallet)
	btcOnly bool
}

// devEmulators says which emulated wallets run, and where.
type devEmulators struct {
	trezor, ledger string // loopback HOST:PORT (port 0: a free one), or "off"
	// trezorMnemonic and ledgerMnemonic are the seeds; empty means emulator.DefaultMnemonic.
	trezorMnemonic, ledgerMnemonic string
	ledgerApp                      string // the app open at start (ledgeremu.AppBitcoin, ...)
	label                          string // the Trezor-class device's label
	// hint ends a listen error: what to do when the address is taken.
	hint string
}

// startEmulators starts the emulated wallet families in this process, each serving its
// real wire protocol on a loopback port (Trezor Codec v1 over UDP, Speculos APDUs over TCP),
// so that the CLI (and hwbridged) reach them by path exactly as they reach any device.
// Their servers stop before the devices close.
func (d *devEnv) startEmulators(ctx context.Context, o devEmulators) error {
	serveCtx, stop := context.WithCancel(context.Background())
	var serving sync.WaitGroup
	defer func() {
		d.closers = append(d.closers, func() error { stop(); serving.Wait(); return nil })
	}()
	goServe := func(what string, serve func(context.Context) error) {
		serving.Go(func() {
			err := serve(serveCtx)
			if serveCtx.Err() != nil {
				return // stopped by close
			}
			if err == nil {
				err = errors.New("stopped serving")
			}
			select {
			case d.failed <- fmt.Errorf("%s: %w", what, err):
			default:
			}
		})
	}
	if o.trezor != "off" {
		tz, err := trezoremu.New(trezoremu.Options{Mnemonic: o.trezorMnemonic, Label: o.label, Logger: d.e.log})
		if err != nil {
			return fmt.Errorf("trezor-class emulator: %w", err)
		}
		d.closers = append(d.closers, tz.Close)
		srv, err := tz.ListenUDP(o.trezor)
		if err != nil {
			return fmt.Errorf("trezor-class emulator on udp:%s%s: %w", o.trezor, o.hint, err)
		}
		d.closers = append(d.closers, srv.Close)
		goServe("trezor-class emulator", srv.Serve)
		d.wallets = append(d.wallets, &devWallet{name: "Trezor-class", path: "udp:" + srv.Addr().String(), screen: screenReader(tz.Approver())})
	}
	if o.ledger != "off" {
		lg, err := ledgeremu.New(ledgeremu.Config{Mnemonic: o.ledgerMnemonic, App: o.ledgerApp, Logger: d.e.log})
		if err != nil {
			return fmt.Errorf("ledger-class emulator: %w", err)
		}
		d.closers = append(d.closers, lg.Close)
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", o.ledger)
		if err != nil {
			return fmt.Errorf("ledger-class emulator on tcp:%s%s: %w", o.ledger, o.hint, err)
		}
		goServe("ledger-class emulator", func(ctx context.Context) error { return lg.Serve(ctx, ln) })
		d.wallets = append(d.wallets, &devWallet{name: "Ledger-class", path: "tcp:" + ln.Addr().String(), screen: screenReader(lg.Approver())})
	}
	return nil
}

// do runs one step with its header and timing.
func (d *devEnv) do(ctx context.Context, title string, fn func(context.Context) error) error {
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

func (d *devEnv) say(format string, args ...any) { fmt.Fprintf(d.out, "    "+format+"\n", args...) }

func (d *devEnv) close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		if err := d.closers[i](); err != nil {
			d.e.log.Debug("cleanup", "err", err)
		}
	}
	d.closers = nil
}

// demoFaucetKey holds the coins the demo and devnet hand out: the coinbases of the embedded chain,
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

func (d *devEnv) startBitcoin(ctx context.Context) error {
	faucet, err := faucetAddress(d.btcNet)
	if err != nil {
		return err
	}
	if d.btcURL == "" {
		t := time.Now()
		node, err := btcregtest.Start(ctx, btcregtest.NodeOptions{
			MiningAddr: faucet, Logger: d.e.log,
			Addr: d.btcListen, User: d.btcUser, Pass: d.btcPass,
		})
		if err != nil {
			return err
		}
		d.closers = append(d.closers, node.Close)
		d.btcNode = node
		d.btcURL = node.URL()
		d.say("btcd v0.24.2 blockchain + mempool (full script validation) + mining, in process")
		d.say("mined %d blocks to the faucet %s in %.2fs (segwit and taproot active from block %d)",
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

func (d *devEnv) startEthereum(ctx context.Context) error {
	if d.ethURL == "" {
		t := time.Now()
		node, err := ethdev.Start(ctx, ethdev.Options{Addr: d.ethListen, Logger: d.e.log})
		if err != nil {
			return err
		}
		d.closers = append(d.closers, node.Close)
		d.ethURL = node.URL()
		d.say("go-ethereum core chain (EVM, state, dev genesis; a block per transaction), in process, %.2fs", time.Since(t).Seconds())
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

// redactURL hides a URL's password (the one helper chains/ethereum already has).
func redactURL(s string) string { return ethchain.RedactURL(s) }

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
func (d *devEnv) mineBTC(n int) ([]string, error) {
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
func (d *devEnv) confirmBTC(txid string) (string, error) {
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
func (d *devEnv) fundBTC(ctx context.Context, to []btcutil.Address, amount btcutil.Amount) (string, error) {
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
func (d *devEnv) fundETH(ctx context.Context, to []common.Address, value *big.Int) ([]common.Hash, error) {
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
		if err := d.sendFaucetTx(ctx, tx); err != nil {
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

// poolCatchUp bounds how long sendFaucetTx waits for geth's transaction pool to see a
// top-up that is already mined.
const poolCatchUp = 10 * time.Second

// sendFaucetTx broadcasts a faucet transaction. geth --dev shows the top-up's receipt
// before its transaction pool has moved to the new head (the pool resets on the chain-head
// event, in its own goroutine), so for a moment the pool still sees the faucet's balance
// as 0 and answers "insufficient funds"; that answer is retried until poolCatchUp. The
// embedded chain has no pool and never answers so after a top-up.
func (d *devEnv) sendFaucetTx(ctx context.Context, tx *types.Transaction) error {
	deadline := time.Now().Add(poolCatchUp)
	for {
		err := d.eth.SendTransaction(ctx, tx)
		if err == nil || !strings.Contains(err.Error(), "insufficient funds") || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last answer: %v)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// topUpFaucet funds the faucet key from the node's unlocked dev account (geth --dev's
// eth_accounts[0]) with eth_sendTransaction.
func (d *devEnv) topUpFaucet(ctx context.Context, faucet common.Address, need *big.Int) error {
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

// waitReceipt waits for a successful receipt, and for the node's latest block to hold it
// (chains/ethereum's WaitReceipt).
func (d *devEnv) waitReceipt(ctx context.Context, h common.Hash) (*types.Receipt, error) {
	return ethchain.NewClient(d.eth, nil).WaitReceipt(ctx, h, ethchain.WaitOptions{})
}

// cliRunner is *env seen through an interface: the command table holds runDemo, and a
// direct call of env.main from here would make the table depend on itself at
// initialization (Go does not follow calls through interfaces).
type cliRunner interface {
	main(ctx context.Context, args []string) int
}

// cli runs a hwbridge command line in this process, as a user would type it, and returns
// its stdout.
func (d *devEnv) cli(ctx context.Context, args ...string) (string, error) {
	var out, errOut bytes.Buffer
	var sub cliRunner = newEnv(strings.NewReader(""), &out, &errOut, d.e.getenv)
	code := sub.main(ctx, append([]string{"--direct"}, args...))
	if code != exitOK {
		shown := make([]string, len(args))
		for i, a := range args {
			shown[i] = redactURL(a)
		}
		why := strings.TrimSpace(errOut.String())
		if why == "" { // --json: the error is the JSON object on stdout
			why = strings.Join(strings.Fields(out.String()), " ")
		}
		return out.String(), fmt.Errorf("hwbridge %s: exit %d: %s", strings.Join(shown, " "), code, why)
	}
	return out.String(), nil
}

// showScreen prints what the wallet displayed since the last call.
func (d *devEnv) showScreen(w *devWallet) {
	if w.screen == nil {
		return
	}
	for _, line := range w.screen() {
		d.say("  %s screen: %s", w.name, line)
	}
}

// cliJSON runs a command with --json and decodes its answer.
func (d *devEnv) cliJSON(ctx context.Context, v any, args ...string) error {
	out, err := d.cli(ctx, append([]string{"--json"}, args...)...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("hwbridge %s: answer %q: %w", strings.Join(args, " "), out, err)
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

// deployToken deploys the committed test token (6 decimals, like USDC) from the faucet,
// minting supply to holder, and returns its address.
func (d *devEnv) deployToken(ctx context.Context, holder common.Address, supply *big.Int) (common.Address, common.Hash, error) {
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
	if err := d.sendFaucetTx(ctx, tx); err != nil {
		return common.Address{}, common.Hash{}, fmt.Errorf("send the token deployment: %w", err)
	}
	r, err := d.waitReceipt(ctx, tx.Hash())
	if err != nil {
		return common.Address{}, common.Hash{}, err
	}
	return r.ContractAddress, tx.Hash(), nil
}

// tokenBalance calls balanceOf(who).
func (d *devEnv) tokenBalance(ctx context.Context, token, who common.Address) (*big.Int, error) {
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
