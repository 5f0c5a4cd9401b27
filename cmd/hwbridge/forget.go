package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/hwbridge/hwbridge/daemon"
)

// runForget is `hwbridge forget [--fingerprint FP]`: hwbridged drops what it keeps for
// devices that HWI could not (README "What hwbridged keeps"): the Ledger wallet policy
// registrations in its data directory and the open Trezor passphrase sessions. Without a
// running daemon the registrations file is edited directly (no session is open then).
func runForget(ctx context.Context, e *env, args []string) error {
	fs := e.flagSet("forget")
	fp := fs.String("fingerprint", "", "only the device with this master key fingerprint (8 hex digits)")
	dataDir := fs.String("data-dir", "", "data directory (default $HWBRIDGE_DATA_DIR or ~/.hwbridge)")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *fp != "" {
		if _, ok := parseFingerprint(strings.ToLower(*fp)); !ok {
			return usagef("forget --fingerprint %q: want 8 hex digits", *fp)
		}
	}
	var res daemon.ForgetResult
	sock, err := e.daemonSocket()
	if err != nil {
		return err
	}
	if sock != "" {
		c, err := e.daemonClient(ctx, sock, e.dataDir(*dataDir))
		if err != nil {
			return err
		}
		if err := c.Call(ctx, "v1Forget", daemon.ForgetParams{Fingerprint: *fp}, &res); err != nil {
			return err
		}
	} else if res.Policies, err = daemon.ForgetPolicies(e.dataDir(*dataDir), strings.ToLower(*fp)); err != nil {
		return err
	}
	return e.print(res, fmt.Sprintf("forgot %d wallet policy registrations and %d passphrase sessions", res.Policies, res.Sessions))
}
