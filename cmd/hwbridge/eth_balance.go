package main

// hwbridge eth balance: the ETH (and optionally a token) balance of the device's address at
// m/44'/60'/0'/0/N, or of any --address.

import (
	"context"
	"flag"

	"github.com/ethereum/go-ethereum/common"

	"github.com/hwbridge/hwbridge/chains/ethereum"
)

func runETHBalance(ctx context.Context, e *env, args []string) error {
	var rpc, address, token string
	var index uint
	fs := e.flagSet("eth balance")
	fs.StringVar(&rpc, "rpc", e.def("eth_rpc", ""), "Ethereum JSON-RPC URL of the node (required; preset by eth_rpc, $HWBRIDGE_ETH_RPC)")
	fs.UintVar(&index, "index", 0, "address index in m/44'/60'/0'/0/N on the device")
	fs.StringVar(&address, "address", "", "any address instead of the device's (no device needed)")
	fs.StringVar(&token, "token", "", "also show this token's balance (contract address, or USDC/USDT on mainnet)")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	var who common.Address
	path := ""
	if address != "" {
		if flagGiven(fs, "index") {
			return usagef("give --address or --index, not both")
		}
		a, err := parseETHAddress("--address", address)
		if err != nil {
			return err
		}
		who = a
	}
	c, err := e.dialETH(ctx, rpc)
	if err != nil {
		return err
	}
	chainID, err := c.ChainID(ctx)
	if err != nil {
		return err
	}
	if address == "" {
		f := ethTxFlags{index: index}
		p, err := f.path()
		if err != nil {
			return err
		}
		d, err := e.open(ctx)
		if err != nil {
			return err
		}
		acct, err := ethereum.OpenAccount(ctx, d, p)
		if err != nil {
			return err
		}
		who, path = acct.Address, p.String()
	}
	wei, err := c.Balance(ctx, who)
	if err != nil {
		return err
	}
	out := map[string]any{"address": who.Hex(), "chain_id": chainID.String(), "balance_eth": ethereum.FormatEther(wei), "balance_wei": wei.String()}
	if path != "" {
		out["path"] = path
	}
	lines := []string{"address: " + who.Hex(), "chain id: " + chainID.String(), "balance: " + ethereum.FormatEther(wei) + " ETH"}
	if token != "" {
		tok, err := c.ResolveToken(ctx, token)
		if err != nil {
			return err
		}
		units, err := c.TokenBalance(ctx, tok.Address, who)
		if err != nil {
			return err
		}
		amt := ethereum.FormatUnits(units, tok.Decimals)
		out["token"] = map[string]any{"address": tok.Address.Hex(), "symbol": tok.Symbol, "decimals": tok.Decimals, "balance": amt, "balance_units": units.String()}
		lines = append(lines, "token:   "+amt+" "+tok.Symbol+" ("+tok.Address.Hex()+")")
	}
	return e.print(out, lines...)
}

func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			given = true
		}
	})
	return given
}
