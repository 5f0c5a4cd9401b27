package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// btcSignMessageCmd signs a message with the key at --path (BIP-137: the signature header
// says which address type signed).
type btcSignMessageCmd struct {
	path    string
	script  string
	network string
}

func runBTCSignMessage(ctx context.Context, e *env, args []string) error {
	c := &btcSignMessageCmd{}
	fs := e.flagSet("btc sign-message")
	fs.StringVar(&c.path, "path", "", "derivation path of the signing key, e.g. m/84'/0'/0'/0/0 (required)")
	fs.StringVar(&c.script, "type", "", "address type: wpkh, sh-wpkh or pkh (default: from the path's purpose)")
	e.networkFlag(fs, &c.network, "bitcoin network")
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if c.path == "" {
		return usagef("btc sign-message: --path is required")
	}
	path, err := parsePath("--path", c.path)
	if err != nil {
		return err
	}
	st, err := c.scriptType(path)
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
	sig, err := d.SignMessage(device.WithAppSwitch(ctx), device.MessageRequest{Chain: device.ChainBTC, Path: path, Message: []byte(pos[0]), Script: st, Network: net})
	if err != nil {
		return err
	}
	b64 := base64.StdEncoding.EncodeToString(sig.Signature)
	return e.print(map[string]any{"message": pos[0], "address": sig.Address, "signature": b64, "path": path.String(), "type": string(st)},
		"address: "+sig.Address, "signature: "+b64)
}

// scriptType is --type, or the type the path's purpose stands for.
func (c *btcSignMessageCmd) scriptType(path hdpath.Path) (device.ScriptType, error) {
	if c.script != "" {
		st, err := parseScript(c.script)
		if err != nil {
			return "", err
		}
		if st == device.ScriptTR {
			return "", fmt.Errorf("--type tr: BIP-137 message signatures have no taproot form (use wpkh, sh-wpkh or pkh): %w", errors.ErrUnsupported)
		}
		return st, nil
	}
	if len(path) > 0 {
		switch path[0] {
		case 49 + hdpath.Hardened:
			return device.ScriptSHWPKH, nil
		case 84 + hdpath.Hardened:
			return device.ScriptWPKH, nil
		case 86 + hdpath.Hardened:
			return "", usagef("--path %s is a taproot path: BIP-137 has no taproot signatures; pass --type to sign with another address type", path)
		}
	}
	return device.ScriptPKH, nil
}
