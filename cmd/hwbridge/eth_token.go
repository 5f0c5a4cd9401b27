package main

// hwbridge eth token-transfer: an ERC-20 transfer(to, amount), with the amount in the
// token's own decimals (read from the contract) and the token named by address or, on
// mainnet, as USDC or USDT.

import (
	"context"
	"errors"

	"github.com/hwbridge/hwbridge/chains/ethereum"
)

func runETHTokenTransfer(ctx context.Context, e *env, args []string) error {
	var f ethTxFlags
	var token, to, amount string
	fs := e.flagSet("eth token-transfer")
	fs.StringVar(&token, "token", "", "token contract address, or a built-in symbol (USDC, USDT on mainnet)")
	fs.StringVar(&to, "to", "", "recipient address (EIP-55 checksummed, or all one case)")
	fs.StringVar(&amount, "amount", "", "amount in token units, a decimal such as 12.5")
	f.register(fs)
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if token == "" {
		return usagef("--token is required (a contract address, or USDC/USDT on mainnet)")
	}
	toAddr, err := parseETHAddress("--to", to)
	if err != nil {
		return err
	}
	if amount == "" {
		return usagef("--amount is required (token units, e.g. 12.5)")
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
	tok, err := c.ResolveToken(ctx, token)
	if errors.Is(err, ethereum.ErrInvalidAddress) {
		return usagef("--token: %v", err)
	}
	if err != nil {
		return err
	}
	units, err := ethereum.ParseUnits(amount, tok.Decimals)
	if err != nil {
		return usagef("--amount: %v (%s has %d decimals)", err, tok.Symbol, tok.Decimals)
	}
	d, err := e.open(ctx)
	if err != nil {
		return err
	}
	acct, err := ethereum.OpenAccount(ctx, d, path)
	if err != nil {
		return err
	}
	p, err := c.PrepareTokenTransfer(ctx, ethereum.TokenTransfer{From: acct.Address, Token: tok, To: toAddr, Amount: units, ChainID: chainID, Fees: fees})
	if err != nil {
		return err
	}
	return e.signAndSend(ctx, c, acct, p, &f)
}
