package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/hwbridge/hwbridge/device"
)

// deviceInfo is what `hwbridge device info` prints.
type deviceInfo struct {
	device.Features
	Fingerprint string `json:"fingerprint,omitempty"`
}

// runDeviceInfo prints the selected device's features: model, firmware, the open app,
// protection, capabilities and master fingerprint. Nothing is shown on the device, and a
// Ledger's open app stays open.
func runDeviceInfo(ctx context.Context, e *env, args []string) error {
	fs := e.flagSet("device info")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	d, err := e.open(ctx)
	if err != nil {
		return err
	}
	f, err := d.Features(ctx)
	if err != nil {
		return err
	}
	info := deviceInfo{Features: f}
	lines := []string{
		"family:       " + string(f.Family),
		"model:        " + f.Model,
		"firmware:     " + f.Version,
	}
	if f.Vendor != "" {
		lines = append(lines, "vendor:       "+f.Vendor)
	}
	if f.Label != "" {
		lines = append(lines, fmt.Sprintf("label:        %q", f.Label))
	}
	if f.App != "" {
		lines = append(lines, "open app:     "+f.App)
	}
	// The fingerprint needs the Bitcoin app on a Ledger: leave it out rather than switch apps.
	if fp, err := d.Fingerprint(ctx); err == nil {
		info.Fingerprint = fp.String()
		lines = append(lines, "fingerprint:  "+info.Fingerprint)
	} else {
		e.log.Debug("no fingerprint", "err", err)
	}
	lines = append(lines,
		"initialized:  "+yesNo(f.Initialized),
		"pin:          "+yesNo(f.PINProtected),
		"passphrase:   "+yesNo(f.Passphrase),
		"unlocked:     "+yesNo(f.Unlocked),
		"emulator:     "+yesNo(f.Emulator),
		"capabilities: "+capabilityList(f.Capabilities),
	)
	return e.print(info, lines...)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func capabilityList(c device.Capabilities) string {
	var out []string
	for _, x := range []struct {
		on   bool
		name string
	}{
		{c.Taproot, "taproot"}, {c.Multisig, "multisig"}, {c.EIP1559, "eip1559"},
		{c.EIP712, "eip712"}, {c.EIP712Hash, "eip712-hash"}, {c.DisplayAddress, "display-address"},
	} {
		if x.on {
			out = append(out, x.name)
		}
	}
	if len(out) == 0 {
		return "-"
	}
	return strings.Join(out, ", ")
}
