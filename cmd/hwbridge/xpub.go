package main

import (
	"context"

	"github.com/hwbridge/hwbridge/device"
)

// xpubCmd prints the extended public key at a path.
type xpubCmd struct {
	network   string
	display   bool
	switchApp bool
}

func runXPub(ctx context.Context, e *env, args []string) error {
	c := &xpubCmd{}
	fs := e.flagSet("xpub")
	e.networkFlag(fs, &c.network, "network of the key (xpub or tpub)")
	fs.BoolVar(&c.display, "display", false, "show the key on the device as well")
	fs.BoolVar(&c.switchApp, "switch-app", false, "let a Ledger open the app this needs (closing the one that is open); --display allows it too")
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	path, err := parsePath("PATH", pos[0])
	if err != nil {
		return err
	}
	net, err := parseNetwork(c.network)
	if err != nil {
		return err
	}
	d, err := e.open(ctx)
	if err != nil {
		return err
	}
	xpub, err := d.XPub(switchIf(ctx, c.display || c.switchApp), device.XPubRequest{Path: path, Network: net, Display: c.display})
	if err != nil {
		return err
	}
	fp, err := d.Fingerprint(ctx)
	if err != nil {
		return err
	}
	return e.print(map[string]any{"xpub": xpub, "path": path.String(), "fingerprint": fp.String(), "network": networkName(net)}, xpub)
}
