package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hwbridge/hwbridge/daemon"
	"github.com/hwbridge/hwbridge/daemon/keys"
	"github.com/hwbridge/hwbridge/emulator"
)

// TestAppsPair: the CLI asks to pair an app and waits; an approval (as hwbridge apps
// approve does) makes it print the key, which works for the scopes granted.
func TestAppsPair(t *testing.T) {
	admin := startInProcessDaemon(t, emulator.PolicyAuto)
	done := make(chan result, 1)
	go func() {
		done <- cli(t, "", nil, "--socket", admin.Socket, "apps", "pair", "geth", "--scopes", "read,sign", "--print-key")
	}()
	var pending keys.App
	for deadline := time.Now().Add(10 * time.Second); ; {
		var apps []keys.App
		if err := admin.Call(t.Context(), "v1AppsList", nil, &apps); err != nil {
			t.Fatal(err)
		}
		if i := slices.IndexFunc(apps, func(a keys.App) bool { return a.Name == "geth" && a.Status == keys.StatusPending }); i >= 0 {
			pending = apps[i]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pending request for geth: %+v", apps)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := admin.Call(t.Context(), "v1AppsApprove", daemon.AppParams{ID: pending.ID}, nil); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.code != exitOK || !strings.Contains(r.stdout, "paired "+pending.ID+" (geth) with scopes read,sign") || !strings.Contains(r.stderr, "hwbridge apps approve ID") {
		t.Fatalf("exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	app := &daemon.Client{Socket: admin.Socket, Key: lines[len(lines)-1]}
	defer app.Close()
	var fp daemon.FingerprintResult
	if err := app.Call(t.Context(), "v1Fingerprint", daemon.DeviceParams{}, &fp); err != nil || fp.Fingerprint != "73c5da0a" {
		t.Fatalf("the new key: %v %+v", err, fp)
	}

	t.Run("no key printed by default", func(t *testing.T) {
		done := make(chan result, 1)
		go func() { done <- cli(t, "", nil, "--socket", admin.Socket, "apps", "pair", "geth2") }()
		for deadline := time.Now().Add(10 * time.Second); ; {
			var apps []keys.App
			if err := admin.Call(t.Context(), "v1AppsList", nil, &apps); err != nil {
				t.Fatal(err)
			}
			if i := slices.IndexFunc(apps, func(a keys.App) bool { return a.Name == "geth2" && a.Status == keys.StatusPending }); i >= 0 {
				if err := admin.Call(t.Context(), "v1AppsApprove", daemon.AppParams{ID: apps[i].ID}, nil); err != nil {
					t.Fatal(err)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no pending request for geth2")
			}
			time.Sleep(10 * time.Millisecond)
		}
		r := <-done
		if r.code != exitOK || strings.Contains(r.stdout, keys.KeyPrefix) || !strings.Contains(r.stdout, "no key printed") {
			t.Fatalf("exit %d\nstdout %q", r.code, r.stdout)
		}
	})
	t.Run("no daemon", func(t *testing.T) {
		r := cli(t, "", nil, "apps", "pair", "geth")
		if r.code != exitError || !strings.Contains(r.stderr, "hwbridged is not running") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("bad scope", func(t *testing.T) {
		r := cli(t, "", nil, "apps", "pair", "geth", "--scopes", "everything")
		if r.code != exitUsage {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
}
