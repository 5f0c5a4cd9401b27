package main

// hwbridge eth send: an ETH transfer, built against a node (nonce, gas, EIP-1559 fees),
// shown, confirmed, signed on the device, checked, broadcast and followed to its receipt.
// The helpers here are shared by the other eth commands that send.

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/hwbridge/hwbridge/chains/ethereum"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// ethTxFlags are the flags every sending eth command takes.
type ethTxFlags struct {
	rpc         string
	index       uint
	yes         bool
	chainID     string
	gasLimit    uint64
	maxFee      string // gwei
	priorityFee string // gwei
	gasPrice    string // gwei, legacy
	timeout     time.Duration
}

func (f *ethTxFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.rpc, "rpc", "", "Ethereum JSON-RPC URL of the node (required), e.g. http://127.0.0.1:8545")
	fs.UintVar(&f.index, "index", 0, "address index in m/44'/60'/0'/0/N")
	fs.BoolVar(&f.yes, "yes", false, "do not ask for confirmation on this computer (the device still asks)")
	fs.StringVar(&f.chainID, "chain-id", "", "refuse unless the node is on this chain id")
	fs.Uint64Var(&f.gasLimit, "gas-limit", 0, "gas limit (default: eth_estimateGas + 20%)")
	fs.StringVar(&f.maxFee, "max-fee", "", "EIP-1559 max fee per gas, gwei (default: 2 × next base fee + priority fee)")
	fs.StringVar(&f.priorityFee, "priority-fee", "", "EIP-1559 max priority fee per gas, gwei (default: from the node's fee history)")
	fs.StringVar(&f.gasPrice, "gas-price", "", "gas price in gwei: sends a legacy (EIP-155) transaction")
	fs.DurationVar(&f.timeout, "timeout", ethereum.DefaultReceiptTimeout, "how long to wait for the receipt")
}

// options turns the fee flags into ethereum.FeeOptions and the expected chain id.
func (f *ethTxFlags) options() (ethereum.FeeOptions, *big.Int, error) {
	var o ethereum.FeeOptions
	o.GasLimit = f.gasLimit
	for _, p := range []struct {
		name, val string
		dst       **big.Int
	}{{"--max-fee", f.maxFee, &o.MaxFeePerGas}, {"--priority-fee", f.priorityFee, &o.MaxPriorityFeePerGas}, {"--gas-price", f.gasPrice, &o.GasPrice}} {
		if p.val == "" {
			continue
		}
		v, err := ethereum.ParseUnits(p.val, 9)
		if err != nil {
			return o, nil, usagef("%s %q (gwei): %v", p.name, p.val, err)
		}
		*p.dst = v
	}
	var chainID *big.Int
	if f.chainID != "" {
		id, ok := new(big.Int).SetString(f.chainID, 10)
		if !ok || id.Sign() <= 0 {
			return o, nil, usagef("--chain-id %q: give a positive decimal chain id (1 for mainnet)", f.chainID)
		}
		chainID = id
	}
	return o, chainID, nil
}

func (f *ethTxFlags) path() (hdpath.Path, error) {
	if f.index >= uint(hdpath.Hardened) {
		return nil, usagef("--index must be below 2^31")
	}
	return ethereum.DerivationPath(uint32(f.index))
}

// dialETH connects to --rpc.
func (e *env) dialETH(ctx context.Context, rpc string) (*ethereum.Client, error) {
	if rpc == "" {
		return nil, usagef("%s: --rpc URL is required (the node to build against and broadcast to)", e.cmd.name)
	}
	c, err := ethereum.Dial(ctx, rpc, e.log)
	if err != nil {
		return nil, err
	}
	e.opened = append(e.opened, closerFunc(c.Close))
	return c, nil
}

type closerFunc func()

func (f closerFunc) Close() error { f(); return nil }

// parseETHAddress parses an address flag (EIP-55 checked); a bad one is a usage error.
func parseETHAddress(flagName, s string) (common.Address, error) {
	if s == "" {
		return common.Address{}, usagef("%s is required", flagName)
	}
	a, err := ethereum.ParseAddress(s)
	if err != nil {
		return common.Address{}, usagef("%s: %v", flagName, err)
	}
	return a, nil
}

// confirm shows what will be signed (on stderr) and asks unless --yes.
func (e *env) confirm(s ethereum.Summary, yes bool) error {
	fmt.Fprintln(e.stderr, "hwbridge: about to sign and broadcast:")
	for _, l := range s.Lines() {
		fmt.Fprintln(e.stderr, "  "+l)
	}
	if yes {
		return nil
	}
	fmt.Fprint(e.stderr, "send it? [y/N] ")
	line, err := bufio.NewReader(e.stdin).ReadString('\n')
	ans := strings.ToLower(strings.TrimSpace(line))
	if ans == "y" || ans == "yes" {
		return nil
	}
	if err != nil && ans == "" {
		return errors.New("not sent: no answer on stdin (pass --yes to send without asking)")
	}
	return errors.New("not sent: you did not confirm")
}

// ethTxResult is what a sending command prints.
type ethTxResult struct {
	Hash    string           `json:"hash"`
	Block   uint64           `json:"block"`
	Status  string           `json:"status"`
	GasUsed uint64           `json:"gas_used"`
	Summary ethereum.Summary `json:"transaction"`
}

// signAndSend confirms, signs on the device, broadcasts and waits for the receipt, then
// prints the hash and the receipt's block.
func (e *env) signAndSend(ctx context.Context, c *ethereum.Client, acct *ethereum.Account, p *ethereum.Prepared, f *ethTxFlags) error {
	sent := false
	defer func() {
		if !sent {
			p.Release()
		}
	}()
	sum := p.Summary()
	if err := e.confirm(sum, f.yes); err != nil {
		return err
	}
	signed, err := acct.SignTx(ctx, p)
	if err != nil {
		return err
	}
	h, err := c.Broadcast(ctx, p, signed)
	if err != nil {
		return err
	}
	sent = true
	fmt.Fprintf(e.stderr, "hwbridge: broadcast %s; waiting for the receipt\n", h.Hex())
	r, err := c.WaitReceipt(ctx, h, ethereum.WaitOptions{Timeout: f.timeout, Progress: func(p ethereum.Progress) {
		e.log.Debug("receipt", "hash", p.Hash, "state", p.State, "elapsed", p.Elapsed)
		if p.State == "pending" {
			fmt.Fprintln(e.stderr, "hwbridge: in the node's pool, not mined yet")
		}
	}})
	if r == nil {
		return err
	}
	res := ethTxResult{Hash: h.Hex(), Block: r.BlockNumber.Uint64(), Status: "ok", GasUsed: r.GasUsed, Summary: sum}
	if r.Status != types.ReceiptStatusSuccessful {
		res.Status = "reverted"
		if e.json {
			_ = e.writeJSON(res)
		}
		return err
	}
	return e.print(res, "tx:     "+res.Hash, fmt.Sprintf("block:  %d", res.Block), fmt.Sprintf("status: ok (gas used %d)", r.GasUsed))
}

func runETHSend(ctx context.Context, e *env, args []string) error {
	var f ethTxFlags
	var to, value string
	fs := e.flagSet("eth send")
	fs.StringVar(&to, "to", "", "recipient address (EIP-55 checksummed, or all one case)")
	fs.StringVar(&value, "value", "", "amount of ETH, a decimal such as 0.25")
	f.register(fs)
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	toAddr, err := parseETHAddress("--to", to)
	if err != nil {
		return err
	}
	if value == "" {
		return usagef("--value is required (ETH, e.g. 0.25)")
	}
	wei, err := ethereum.ParseEther(value)
	if err != nil {
		return usagef("--value: %v", err)
	}
	fees, chainID, err := f.options()
	if err != nil {
		return err
	}
	path, err := f.path()
	if err != nil {
		return err
	}
	c, err := e.dialETH(ctx, f.rpc)
	if err != nil {
		return err
	}
	if _, err := c.CheckChain(ctx, chainID); err != nil {
		return err
	}
	d, err := e.open(ctx)
	if err != nil {
		return err
	}
	acct, err := ethereum.OpenAccount(ctx, d, path)
	if err != nil {
		return err
	}
	p, err := c.Prepare(ctx, ethereum.TxRequest{From: acct.Address, To: toAddr, Value: wei, ChainID: chainID, Fees: fees})
	if err != nil {
		return err
	}
	return e.signAndSend(ctx, c, acct, p, &f)
}
