package main

// hwbridge hwi through hwbridged: the daemon's devices, with what HWI cannot keep (a Ledger's
// policy registrations, a Trezor's passphrase session). remoteLedger and remoteTrezor add to
// remoteDevice the optional interfaces package hwi looks for, as the drivers have them.

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/hwbridge/hwbridge/daemon"
	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/hwi"
	"github.com/hwbridge/hwbridge/transport"
)

// remoteLedger is a Ledger reached through hwbridged, whose registrations it keeps.
type remoteLedger struct{ *remoteDevice }

var _ hwi.PolicyDevice = remoteLedger{}

// RegisterWallet answers the stored registration of the policy, or registers it (the
// person reviews it once; hwbridged keeps the HMAC).
func (r remoteLedger) RegisterWallet(ctx context.Context, pol device.WalletPolicy, net *chaincfg.Params) ([32]byte, error) {
	var res daemon.RegisterPolicyResult
	var hmac [32]byte
	err := r.c.Call(ctx, "v1BtcRegisterPolicy", daemon.PolicyParams{Device: r.sel, Network: netName(net), Name: pol.Name, Template: pol.Template, Keys: pol.Keys}, &res)
	if err != nil {
		return hmac, err
	}
	b, err := hex.DecodeString(res.HMAC)
	if err != nil || len(b) != 32 {
		return hmac, fmt.Errorf("hwbridged answered hmac %q: %w", res.HMAC, device.ErrProtocol)
	}
	return [32]byte(b), nil
}

func (r remoteLedger) WalletAddress(ctx context.Context, pol device.WalletPolicy, hmac [32]byte, change, index uint32, display bool, net *chaincfg.Params) (string, error) {
	var res daemon.AddressResult
	err := r.c.Call(ctx, "v1BtcPolicyAddress", daemon.PolicyAddressParams{
		PolicyParams: daemon.PolicyParams{Device: r.sel, Network: netName(net), Name: pol.Name, Template: pol.Template, Keys: pol.Keys},
		HMAC:         hex.EncodeToString(hmac[:]), Change: change, Index: index, Display: display}, &res)
	return res.Address, err
}

// remoteTrezor is a Trezor reached through hwbridged.
type remoteTrezor struct{ *remoteDevice }

var _ hwi.MultisigDevice = remoteTrezor{}

func (r remoteTrezor) MultisigAddress(ctx context.Context, req device.MultisigAddressRequest) (string, error) {
	p := daemon.MultisigAddressParams{Device: r.sel, Network: netName(req.Network), Script: string(req.Script), Threshold: req.Threshold,
		Path: req.Path.String(), Display: req.Display}
	for _, k := range req.Keys {
		mk := daemon.MultisigKeyParams{XPub: k.XPub}
		if len(k.Steps) > 0 {
			mk.Steps = strings.TrimPrefix(k.Steps.String(), "m/")
		}
		if len(k.Pub) > 0 {
			mk.Pub = hex.EncodeToString(k.Pub)
		}
		p.Keys = append(p.Keys, mk)
	}
	var res daemon.AddressResult
	err := r.c.Call(ctx, "v1BtcMultisigAddress", p, &res)
	return res.Address, err
}

var _ hwi.PINDevice = remoteTrezor{}

// PromptPIN makes the Trezor show its PIN matrix; hwbridged holds the request for SendPIN.
func (r remoteTrezor) PromptPIN(ctx context.Context) (bool, error) {
	var res daemon.PromptPINResult
	err := r.c.Call(ctx, "v1PromptPin", daemon.DeviceParams{Device: r.sel}, &res)
	return res.Prompted, err
}

// SendPIN answers the PIN matrix with the positions the person read off it.
func (r remoteTrezor) SendPIN(ctx context.Context, positions string) (bool, error) {
	var res daemon.SendPINResult
	err := r.c.Call(ctx, "v1SendPin", daemon.SendPINParams{Device: r.sel, PIN: positions}, &res)
	return res.Unlocked, err
}

// remoteFor wraps a daemon device in what its family offers beyond device.Device, by the
// kind hwbridged lists it as (v1Devices answers from the hub's cache: it never waits
// behind a request that holds the device, such as a prompted PIN matrix).
func remoteFor(ctx context.Context, r *remoteDevice) device.Device {
	var infos []device.Info
	if err := r.c.Call(ctx, "v1Devices", nil, &infos); err != nil {
		return r // the command's own call reports the error
	}
	for _, in := range infos {
		if in.Path != r.sel {
			continue
		}
		switch in.Kind {
		case transport.KindLedger:
			return remoteLedger{r}
		case transport.KindTrezor:
			return remoteTrezor{r}
		}
	}
	return r
}

// hwiUnlock gives a Trezor behind hwbridged its passphrase (-p): a new session that later
// calls share, so the person enters it once. A Ledger takes no passphrase from the host
// (HWI ignores -p for it too).
func hwiUnlock(c *daemon.Client) func(ctx context.Context, d device.Device, passphrase string) error {
	return func(ctx context.Context, d device.Device, passphrase string) error {
		r, ok := d.(remoteTrezor)
		if !ok {
			return nil
		}
		var res daemon.UnlockResult
		return c.Call(ctx, "v1Unlock", daemon.UnlockParams{Device: r.sel, Passphrase: passphrase}, &res)
	}
}
