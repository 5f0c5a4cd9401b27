package main

import (
	"context"
	"fmt"

	"github.com/hwbridge/hwbridge/daemon"
	"github.com/hwbridge/hwbridge/daemon/keys"
)

// runAppsPair asks hwbridged to pair an app, as an app does with hwbridge_v1Pair, and waits
// until the user approves it (hwbridge apps approve ID, in another terminal) or denies it.
// It is how an app that cannot pair by itself gets its record: the external-signer socket
// (hwbridged --extapi-app NAME) serves the paired app of that name. The key is printed
// once on stdout.
func runAppsPair(ctx context.Context, e *env, args []string) error {
	fs := e.flagSet("apps pair")
	scopes := fs.String("scopes", "read", "scopes to ask for (comma-separated: read,sign,broadcast,admin)")
	showKey := fs.Bool("print-key", false, "print the app's key (shown once); the external-signer socket serves the app by its name and needs none")
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	sc, err := keys.ParseScopes(*scopes)
	if err != nil {
		return usagef("--scopes: %v", err)
	}
	sock, err := e.daemonSocket()
	if err != nil {
		return err
	}
	if sock == "" {
		return fmt.Errorf("hwbridged is not running (no socket at %s): start it first", daemon.DefaultSocket(e.getenv))
	}
	c := &daemon.Client{Socket: sock}
	e.opened = append(e.opened, closerFunc(c.Close))
	fmt.Fprintf(e.stderr, "hwbridge: asked hwbridged to pair %q with scopes %s; approve it in another terminal:\n", pos[0], joinScopes(sc))
	fmt.Fprintln(e.stderr, "  hwbridge apps list            (shows the request's ID)")
	fmt.Fprintln(e.stderr, "  hwbridge apps approve ID")
	res, err := c.Pair(ctx, keys.PairRequest{Name: pos[0], Scopes: sc})
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("paired %s (%s) with scopes %s", res.App.ID, res.App.Name, joinScopes(res.App.Scopes))
	if !*showKey {
		// The app this command pairs for (hwbridged --extapi-app NAME) is found by name; a
		// key nobody uses is a secret lying around, so it is not printed.
		res.Key = ""
		return e.print(res, msg+" (no key printed: --print-key prints it, for an app that signs its own requests)")
	}
	return e.print(res, msg+"; its key (shown once):", res.Key)
}
