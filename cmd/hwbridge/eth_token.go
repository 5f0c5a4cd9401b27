package main

// hwbridge eth token-transfer: an ERC-20 transfer(to, amount), with the amount in the
// token's own decimals (read from the contract) and the token named by address or, on
// mainnet, as USDC or USDT.

import (
	"context"

	"github.com/hwbridge/hwbridge/chains/ethereum"
)

func runETHTokenTransfer(ctx context.Context, e *env, args []string) error {
	var f ethTxFlags
	var o ethereum.SendOrder
	fs := e.flagSet("eth token-transfer")
	fs.StringVar(&o.Token, "token", "", "token contract address, or a built-in symbol (USDC, USDT on mainnet)")
	fs.StringVar(&o.To, "to", "", "recipient address (EIP-55 checksummed, or all one case)")
	fs.StringVar(&o.Amount, "amount", "", "amount in token units, a decimal such as 12.5")
	f.register(fs, e)
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if o.Token == "" {
		return usagef("--token is required (a contract address, or USDC/USDT on mainnet)")
	}
	if _, err := parseETHAddress("--to", o.To); err != nil {
		return err
	}
	if o.Amount == "" {
		return usagef("--amount is required (token units, e.g. 12.5)")
	}
	return e.runETHOrder(ctx, &f, o)
}
