package main

import (
	"context"

	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// ethSignMessageCmd signs a message with personal_sign (EIP-191) at m/44'/60'/0'/0/index.
type ethSignMessageCmd struct {
	index uint
}

func runETHSignMessage(ctx context.Context, e *env, args []string) error {
	c := &ethSignMessageCmd{}
	fs := e.flagSet("eth sign-message")
	fs.UintVar(&c.index, "index", 0, "address index in m/44'/60'/0'/0/N")
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if c.index >= uint(hdpath.Hardened) {
		return usagef("--index must be below 2^31")
	}
	path := hdpath.Path{44 + hdpath.Hardened, 60 + hdpath.Hardened, hdpath.Hardened, 0, uint32(c.index)}
	d, err := e.open(ctx)
	if err != nil {
		return err
	}
	sig, err := d.SignMessage(device.WithAppSwitch(ctx), device.MessageRequest{Chain: device.ChainETH, Path: path, Message: []byte(pos[0])})
	if err != nil {
		return err
	}
	hexSig := hexutil.Encode(sig.Signature)
	return e.print(map[string]any{"message": pos[0], "address": sig.Address, "signature": hexSig, "path": path.String()},
		"address: "+sig.Address, "signature: "+hexSig)
}
