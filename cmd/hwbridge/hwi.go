package main

// hwbridge hwi: the command-line contract Bitcoin Core's -signer runs, answered by package
// hwi (HWI's commands, JSON and codes). This file only decides where devices come from:
// --device / $HWBRIDGE_DEVICE and the USB devices found, or hwbridged's devices when the
// daemon runs (it holds them, and keeps Ledger policy registrations across calls).
//
//	bitcoind -signer="hwbridge hwi"

import (
	"context"
	"errors"
	"strings"

	"github.com/hwbridge/hwbridge/daemon"
	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/hwi"
)

// runHWI is the "hwi" subcommand. Handled errors are printed as HWI JSON and return nil, so
// the process exits 0 as HWI does; usage errors exit 2 after their JSON.
func runHWI(ctx context.Context, e *env, args []string) error {
	s := &hwi.Signer{
		Out:  e.stdout,
		Warn: e.stderr,
		Candidates: func(ctx context.Context) ([]hwi.Candidate, error) {
			var cands []hwi.Candidate
			named := e.device
			if named == "" {
				named = e.getenv("HWBRIDGE_DEVICE")
			}
			for p := range strings.SplitSeq(named, ",") {
				if p = strings.TrimSpace(p); strings.Contains(p, ":") {
					cands = append(cands, hwi.Candidate{Path: p})
				}
			}
			infos, err := e.usable(ctx)
			if err != nil {
				return cands, err
			}
			for _, in := range infos {
				cands = append(cands, hwi.Candidate{Path: in.Path, Model: in.Model})
			}
			return cands, nil
		},
		Open: e.openPath,
	}
	e.hwiThroughDaemon(ctx, s)
	return hwiUsage(s.Run(ctx, args, e.stdin))
}

// hwiUsage turns hwi's usage error into the CLI's (exit status 2).
func hwiUsage(err error) error {
	var ue *hwi.UsageError
	if errors.As(err, &ue) {
		return usagef("%s", ue.Msg)
	}
	return err
}

// hwiThroughDaemon makes s use hwbridged's devices when the daemon runs (its socket exists
// and --direct is not given), as every other command does: Bitcoin Core then signs through
// the daemon that holds the device instead of failing to open it. A daemon that cannot be
// reached is reported the HWI way, in enumerate's entries or as the command's error.
func (e *env) hwiThroughDaemon(ctx context.Context, s *hwi.Signer) {
	sock, err := e.daemonSocket()
	if err == nil && sock == "" {
		return
	}
	var c *daemon.Client
	if err == nil {
		c, err = e.daemonClient(ctx, sock, e.dataDir(""))
	}
	s.Candidates = func(ctx context.Context) ([]hwi.Candidate, error) {
		if err != nil {
			return nil, err
		}
		var infos []device.Info
		if err := c.Call(ctx, "v1Devices", nil, &infos); err != nil {
			return nil, err
		}
		var cands []hwi.Candidate
		for _, in := range infos {
			cands = append(cands, hwi.Candidate{Path: in.Path, Model: in.Model})
		}
		return cands, nil
	}
	s.Open = func(ctx context.Context, path string) (device.Device, error) {
		if err != nil {
			return nil, err
		}
		return remoteFor(ctx, &remoteDevice{c: c, sel: path}), nil
	}
	if err == nil {
		s.Unlock = hwiUnlock(c)
	}
}
