package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/hwbridge/hwbridge/daemon"
	"github.com/hwbridge/hwbridge/daemon/keys"
)

// appsCmd manages the apps paired with hwbridged: through the running daemon (with the
// CLI's admin key from the data directory), or, when no daemon holds the data directory,
// on the app store there directly (list, rotate, revoke; pairing requests live only in a
// running daemon).
type appsCmd struct {
	e       *env
	dataDir string
	scopes  string
	overlap time.Duration
}

func (e *env) appsFlags(name string, c *appsCmd) func(args []string, n int) ([]string, error) {
	fs := e.flagSet(name)
	fs.StringVar(&c.dataDir, "data-dir", "", "hwbridged's data directory (default $HWBRIDGE_DATA_DIR or ~/.hwbridge)")
	switch name {
	case "apps approve":
		fs.StringVar(&c.scopes, "scopes", "", "grant only these of the requested scopes (comma-separated: read,sign,broadcast,admin)")
	case "apps rotate":
		fs.DurationVar(&c.overlap, "overlap", daemon.DefaultRotateOverlap, "how long the old key keeps working (0s: retire it at once)")
	}
	return func(args []string, n int) ([]string, error) { return e.parse(fs, args, n, n) }
}

// client returns the daemon client, or nil when no daemon runs on this data directory.
func (c *appsCmd) client(ctx context.Context) (*daemon.Client, error) {
	dir := c.e.dataDir(c.dataDir)
	if !daemon.LockedByDaemon(dir) {
		return nil, nil
	}
	sock, err := c.e.daemonSocket()
	if err != nil {
		return nil, err
	}
	if sock == "" {
		return nil, fmt.Errorf("hwbridged holds %s but its socket was not found: pass --socket", dir)
	}
	return c.e.daemonClient(ctx, sock, dir)
}

// store opens the app store directly (no daemon running).
func (c *appsCmd) store() (*keys.Store, error) {
	return keys.Open(filepath.Join(c.e.dataDir(c.dataDir), daemon.AppsFile), keys.Options{})
}

func runAppsList(ctx context.Context, e *env, args []string) error {
	c := &appsCmd{e: e}
	if _, err := e.appsFlags("apps list", c)(args, 0); err != nil {
		return err
	}
	var apps []keys.App
	cl, err := c.client(ctx)
	switch {
	case err != nil:
		return err
	case cl != nil:
		if err := cl.Call(ctx, "v1AppsList", nil, &apps); err != nil {
			return err
		}
	default:
		s, err := c.store()
		if err != nil {
			return err
		}
		apps = s.List()
	}
	if apps == nil {
		apps = []keys.App{}
	}
	lines := []string{}
	for _, a := range apps {
		var ks []string
		for _, k := range a.Keys {
			s := fmt.Sprintf("v%d created %s", k.Version, k.Created.Format(time.RFC3339))
			if !k.Expires.IsZero() {
				s += " expires " + k.Expires.Format(time.RFC3339)
			}
			ks = append(ks, s)
		}
		line := fmt.Sprintf("%s\t%s\t%s\tscopes %s", a.ID, a.Name, a.Status, joinScopes(a.Scopes))
		if len(a.Limits.Chains) > 0 {
			line += "\tchains " + strings.Join(a.Limits.Chains, ",")
		}
		if len(a.Limits.Devices) > 0 {
			line += "\tdevices " + strings.Join(a.Limits.Devices, ",")
		}
		if len(ks) > 0 {
			line += "\tkeys: " + strings.Join(ks, "; ")
		}
		lines = append(lines, line)
	}
	return e.print(apps, lines...)
}

func joinScopes(s []keys.Scope) string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = string(x)
	}
	return strings.Join(out, ",")
}

func runAppsApprove(ctx context.Context, e *env, args []string) error {
	c := &appsCmd{e: e}
	pos, err := e.appsFlags("apps approve", c)(args, 1)
	if err != nil {
		return err
	}
	scopes, err := keys.ParseScopes(c.scopes)
	if err != nil {
		return usagef("--scopes: %v", err)
	}
	cl, err := c.client(ctx)
	if err != nil {
		return err
	}
	if cl == nil {
		return errNoDaemon
	}
	var app keys.App
	if err := cl.Call(ctx, "v1AppsApprove", daemon.AppParams{ID: pos[0], Scopes: scopes}, &app); err != nil {
		return err
	}
	return e.print(app, fmt.Sprintf("approved %s (%s) with scopes %s: the app received its key", app.ID, app.Name, joinScopes(app.Scopes)))
}

func runAppsDeny(ctx context.Context, e *env, args []string) error {
	c := &appsCmd{e: e}
	pos, err := e.appsFlags("apps deny", c)(args, 1)
	if err != nil {
		return err
	}
	cl, err := c.client(ctx)
	if err != nil {
		return err
	}
	if cl == nil {
		return errNoDaemon
	}
	if err := cl.Call(ctx, "v1AppsDeny", daemon.AppParams{ID: pos[0]}, nil); err != nil {
		return err
	}
	return e.print(map[string]any{"denied": pos[0]}, "denied "+pos[0])
}

func runAppsRotate(ctx context.Context, e *env, args []string) error {
	c := &appsCmd{e: e}
	pos, err := e.appsFlags("apps rotate", c)(args, 1)
	if err != nil {
		return err
	}
	secs := int64(c.overlap / time.Second)
	if secs == 0 {
		secs = -1 // at once
	}
	cl, err := c.client(ctx)
	if err != nil {
		return err
	}
	var res daemon.RotateResult
	if cl != nil {
		if err := cl.Call(ctx, "v1AppsRotate", daemon.AppParams{ID: pos[0], OverlapSeconds: secs}, &res); err != nil {
			return err
		}
	} else {
		s, err := c.store()
		if err != nil {
			return err
		}
		if res.Key, res.App, err = s.Rotate(pos[0], max(c.overlap, 0)); err != nil {
			return err
		}
		res.OldExpires = time.Now().Add(max(c.overlap, 0)).UTC()
	}
	return e.print(res, fmt.Sprintf("new key for %s (shown once; give it to the app):", res.App.ID), res.Key,
		"older keys stop working at "+res.OldExpires.Format(time.RFC3339))
}

func runAppsRevoke(ctx context.Context, e *env, args []string) error {
	c := &appsCmd{e: e}
	pos, err := e.appsFlags("apps revoke", c)(args, 1)
	if err != nil {
		return err
	}
	cl, err := c.client(ctx)
	if err != nil {
		return err
	}
	if cl != nil {
		err = cl.Call(ctx, "v1AppsRevoke", daemon.AppParams{ID: pos[0]}, nil)
	} else {
		var s *keys.Store
		if s, err = c.store(); err == nil {
			err = s.Revoke(pos[0])
		}
	}
	if err != nil {
		return err
	}
	return e.print(map[string]any{"revoked": pos[0]}, "revoked "+pos[0]+": its keys stop working at once")
}
