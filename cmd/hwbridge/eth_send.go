package main

// hwbridge eth send: an ETH transfer, built against a node (nonce, gas, EIP-1559 fees),
// shown, confirmed, signed on the device, checked, broadcast and followed to its receipt.
// The helpers here are shared by the other eth commands that send.

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/hwbridge/hwbridge/chains/ethereum"
	"github.com/hwbridge/hwbridge/daemon"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// ethTxFlags are the flags every sending eth command takes.
type ethTxFlags struct {
	rpc         string
	index       uint
	send        sendFlags
	chainID     string
	gasLimit    uint64
	maxFee      string // gwei
	priorityFee string // gwei
	gasPrice    string // gwei, legacy
	timeout     time.Duration
}

func (f *ethTxFlags) register(fs *flag.FlagSet, e *env) {
	fs.StringVar(&f.rpc, "rpc", e.def("eth_rpc", ""), "Ethereum JSON-RPC URL of the node (required; preset by eth_rpc, $HWBRIDGE_ETH_RPC), e.g. http://127.0.0.1:8545")
	fs.UintVar(&f.index, "index", 0, "address index in m/44'/60'/0'/0/N")
	f.send.register(fs)
	fs.StringVar(&f.chainID, "chain-id", "", "refuse unless the node is on this chain id")
	fs.Uint64Var(&f.gasLimit, "gas-limit", 0, "gas limit (default: eth_estimateGas + 20%)")
	fs.StringVar(&f.maxFee, "max-fee", "", "EIP-1559 max fee per gas, gwei (default: 2 × next base fee + priority fee)")
	fs.StringVar(&f.priorityFee, "priority-fee", "", "EIP-1559 max priority fee per gas, gwei (default: from the node's fee history)")
	fs.StringVar(&f.gasPrice, "gas-price", "", "gas price in gwei: sends a legacy (EIP-155) transaction")
	fs.DurationVar(&f.timeout, "timeout", ethereum.DefaultReceiptTimeout, "how long to wait for the receipt")
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

// order fills the node and fee fields of an order from the flags.
func (f *ethTxFlags) order(o *ethereum.SendOrder) error {
	if f.index >= uint(hdpath.Hardened) {
		return usagef("--index must be below 2^31")
	}
	o.RPC, o.Index, o.ChainID, o.GasLimit = f.rpc, uint32(f.index), f.chainID, f.gasLimit
	o.MaxFee, o.PriorityFee, o.GasPrice = f.maxFee, f.priorityFee, f.gasPrice
	if f.timeout < 0 || f.timeout > ethereum.MaxReceiptWait {
		return usagef("--timeout %s: give 0 to %s", f.timeout, ethereum.MaxReceiptWait)
	}
	o.ReceiptTimeout = int64((f.timeout + time.Second - 1) / time.Second)
	return nil
}

// runETHOrder sends o (ETH or a token) and prints the result.
func (e *env) runETHOrder(ctx context.Context, f *ethTxFlags, o ethereum.SendOrder) error {
	if err := f.order(&o); err != nil {
		return err
	}
	id, err := e.requestID(&f.send)
	if err != nil {
		return err
	}
	res, err := e.sendETH(ctx, daemon.EthSendParams{RequestID: id, Device: e.selector(), SendOrder: o}, f.send.yes)
	if err != nil {
		return err
	}
	if res.Replayed {
		e.note("request " + id + " was already sent: this is its recorded result (nothing was signed or sent now)")
	}
	lines := []string{"tx:     " + res.Hash}
	if res.Status != "" {
		lines = append(lines, fmt.Sprintf("block:  %d", res.Block), fmt.Sprintf("status: %s (gas used %d)", res.Status, res.GasUsed))
	}
	return e.print(res, lines...)
}

func runETHSend(ctx context.Context, e *env, args []string) error {
	var f ethTxFlags
	var o ethereum.SendOrder
	fs := e.flagSet("eth send")
	fs.StringVar(&o.To, "to", "", "recipient address (EIP-55 checksummed, or all one case)")
	fs.StringVar(&o.Value, "value", "", "amount of ETH, a decimal such as 0.25")
	f.register(fs, e)
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if _, err := parseETHAddress("--to", o.To); err != nil {
		return err
	}
	if o.Value == "" {
		return usagef("--value is required (ETH, e.g. 0.25)")
	}
	return e.runETHOrder(ctx, &f, o)
}
