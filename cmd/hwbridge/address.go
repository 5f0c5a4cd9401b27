package main

import (
	"context"
	"fmt"
	"math"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// addressCmd prints an address at the standard path for its chain and script type:
// m/purpose'/coin'/account'/change/index for Bitcoin (BIP-44/49/84/86) and
// m/44'/60'/account'/0/index for Ethereum.
type addressCmd struct {
	chain     string
	script    string
	network   string
	account   uint
	index     uint
	change    bool
	display   bool
	switchApp bool
}

func runAddress(ctx context.Context, e *env, args []string) error {
	c := &addressCmd{}
	fs := e.flagSet("address")
	fs.StringVar(&c.chain, "chain", "btc", "btc or eth")
	fs.StringVar(&c.script, "type", "wpkh", "bitcoin script type: wpkh, tr, sh-wpkh or pkh")
	e.networkFlag(fs, &c.network, "bitcoin network")
	fs.UintVar(&c.account, "account", 0, "account number")
	fs.UintVar(&c.index, "index", 0, "address index")
	fs.BoolVar(&c.change, "change", false, "a change (internal) address")
	fs.BoolVar(&c.display, "display", false, "show the address on the device and wait for the user to confirm it")
	fs.BoolVar(&c.switchApp, "switch-app", false, "let a Ledger open the app this needs (closing the one that is open); --display allows it too")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if c.account >= uint(hdpath.Hardened) || c.index >= uint(hdpath.Hardened) || c.account > math.MaxUint32 {
		return usagef("--account and --index must be below 2^31")
	}
	req := device.AddressRequest{Display: c.display}
	out := map[string]any{}
	switch c.chain {
	case "btc":
		st, err := parseScript(c.script)
		if err != nil {
			return err
		}
		net, err := parseNetwork(c.network)
		if err != nil {
			return err
		}
		purpose, _ := st.Purpose()
		req.Chain, req.Script, req.Network = device.ChainBTC, st, net
		req.Path = hdpath.Path{purpose + hdpath.Hardened, net.HDCoinType + hdpath.Hardened, uint32(c.account) + hdpath.Hardened, boolIndex(c.change), uint32(c.index)}
		out["type"], out["network"] = string(st), networkName(net)
	case "eth":
		req.Chain = device.ChainETH
		req.Path = hdpath.Path{44 + hdpath.Hardened, 60 + hdpath.Hardened, uint32(c.account) + hdpath.Hardened, boolIndex(c.change), uint32(c.index)}
	default:
		return usagef("--chain %q: use btc or eth", c.chain)
	}
	d, err := e.open(ctx)
	if err != nil {
		return err
	}
	ctx, shown := device.WithShown(switchIf(ctx, c.display || c.switchApp))
	addr, err := d.Address(ctx, req)
	if err != nil {
		return err
	}
	out["address"], out["path"], out["chain"] = addr, req.Path.String(), c.chain
	if sh := shown.String(); sh != "" && sh != addr {
		// A Ledger's test app shows regtest addresses in testnet form (same script).
		out["device_shows"] = sh
		fmt.Fprintf(e.stderr, "device shows: %s (the same script as %s: the device prints it in another network's encoding)\n", sh, addr)
	}
	return e.print(out, addr)
}

func boolIndex(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}
