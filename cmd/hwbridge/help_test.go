package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/hwbridge/hwbridge/daemon"
	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/transport"
)

// TestHelp: help is a tree (overview, groups, commands), every way of asking exits 0 and
// prints on stdout, and a command's help lists only its own flags.
func TestHelp(t *testing.T) {
	top := cli(t, "", nil, "help")
	if top.code != exitOK || top.stderr != "" {
		t.Fatalf("help: exit %d, stderr %q", top.code, top.stderr)
	}
	golden(t, "help.txt", top.stdout)
	for _, args := range [][]string{{"--help"}, {"-h"}} {
		if r := cli(t, "", nil, args...); r.code != exitOK || r.stdout != top.stdout {
			t.Errorf("%v: exit %d, stdout differs from hwbridge help", args, r.code)
		}
	}
	btc := cli(t, "", nil, "help", "btc")
	if btc.code != exitOK || !strings.HasPrefix(btc.stdout, "hwbridge btc commands:") {
		t.Fatalf("help btc: exit %d %q", btc.code, btc.stdout)
	}
	for _, args := range [][]string{{"btc"}, {"btc", "--help"}} {
		if r := cli(t, "", nil, args...); r.code != exitOK || r.stdout != btc.stdout {
			t.Errorf("%v: exit %d, %q", args, r.code, r.stdout)
		}
	}
	for _, c := range commands {
		if c.name == "hwi" { // HWI's own argument parser and help
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			words := strings.Fields(c.name)
			viaHelp := cli(t, "", nil, append([]string{"help"}, words...)...)
			viaFlag := cli(t, "", nil, append(words, "--help")...)
			viaH := cli(t, "", nil, append(words, "-h")...)
			if viaHelp.code != exitOK || viaFlag.code != exitOK || viaH.code != exitOK {
				t.Fatalf("exit %d %d %d (stderr %q)", viaHelp.code, viaFlag.code, viaH.code, viaFlag.stderr)
			}
			if viaHelp.stdout != viaFlag.stdout || viaFlag.stdout != viaH.stdout {
				t.Fatalf("the three ways of asking differ:\n%s\n%s", viaHelp.stdout, viaFlag.stdout)
			}
			out := viaFlag.stdout
			if !strings.HasPrefix(out, "usage: hwbridge "+c.name) || !strings.Contains(out, c.summary) {
				t.Fatalf("help of %s:\n%s", c.name, out)
			}
			for _, g := range globalFlags {
				if strings.Contains(out, "\n  --"+g+" ") || strings.Contains(out, "\n  --"+g+"\n") {
					t.Errorf("lists the global flag --%s as its own:\n%s", g, out)
				}
			}
		})
	}
	golden(t, "help-btc-send.txt", cli(t, "", nil, "help", "btc", "send").stdout)
}

// TestUnknownCommands: typos get suggestions, the message names only the command words, and
// --json makes the failure one JSON object on stdout.
func TestUnknownCommands(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"adress", "--chain", "btc"}, `unknown command "adress"; did you mean address?`},
		{[]string{"btc", "sned", "--to", "x"}, `unknown command "btc sned"; did you mean btc send?`},
		{[]string{"devics"}, `did you mean devices or device?`},
		{[]string{"frobnicate"}, `unknown command "frobnicate" (hwbridge help lists the commands)`},
		{[]string{"help", "btc", "sendd"}, `did you mean btc send?`},
	}
	for _, tt := range tests {
		r := cli(t, "", nil, tt.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tt.args, r.code, r.stderr, tt.want)
		}
		j := cli(t, "", nil, append([]string{"--json"}, tt.args...)...)
		var got struct {
			Error struct {
				Code    string
				Exit    int
				Message string
			}
		}
		if j.code != exitUsage || json.Unmarshal([]byte(j.stdout), &got) != nil || got.Error.Code != "usage" || got.Error.Exit != exitUsage || !strings.Contains(got.Error.Message, tt.want) {
			t.Errorf("--json %v: exit %d, stdout %q", tt.args, j.code, j.stdout)
		}
	}
	// A bad flag under --json is one JSON object too.
	j := cli(t, "", nil, "--json", "xpub", "m/0", "--network", "moon")
	if j.code != exitUsage || !json.Valid([]byte(j.stdout)) || !strings.Contains(j.stdout, `"code": "usage"`) {
		t.Errorf("--json bad flag: exit %d, stdout %q", j.code, j.stdout)
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}, {"--direct", "version"}} {
		r := cli(t, "", nil, args...)
		if r.code != exitOK || !strings.HasPrefix(r.stdout, "hwbridge ") || !strings.Contains(r.stdout, runtime.Version()) {
			t.Errorf("%v: exit %d, %q", args, r.code, r.stdout)
		}
	}
	r := cli(t, "", nil, "--json", "version")
	var got struct {
		CLI struct{ Program, Version, Go, Platform string } `json:"hwbridge"`
	}
	if r.code != exitOK || json.Unmarshal([]byte(r.stdout), &got) != nil || got.CLI.Program != "hwbridge" || got.CLI.Go != runtime.Version() {
		t.Errorf("--json version: %q", r.stdout)
	}
}

// TestErrorKindsBothPaths: one table of error kinds → exit code and JSON code, the same
// for an error made here (direct mode) and the same error answered by hwbridged.
func TestErrorKindsBothPaths(t *testing.T) {
	devErr := func(kind error) error {
		return fmt.Errorf("sign: %w", &device.Error{Op: "sign tx", Family: "ledger", Code: 0x6985, Kind: kind})
	}
	tests := []struct {
		err  error
		kind string
		exit int
	}{
		{usagef("bad flag"), "usage", exitUsage},
		{fmt.Errorf("amount: %w", device.ErrInvalidInput), "invalid_input", exitUsage},
		{devErr(device.ErrInvalidInput), "device_refused", exitError},
		{devErr(device.ErrUserRejected), "user_rejected", exitRejected},
		{fmt.Errorf("x: %w", device.ErrNoDevice), "no_device", exitNoDevice},
		{fmt.Errorf("x: %w", transport.ErrNoDevice), "no_device", exitNoDevice},
		{fmt.Errorf("2 devices are attached: %w", device.ErrSeveralDevices), "several_devices", exitNoDevice},
		{devErr(device.ErrLocked), "locked", exitNoDevice},
		{devErr(device.ErrWrongApp), "wrong_app", exitNoDevice},
		{fmt.Errorf("x: %w", device.ErrDisconnected), "disconnected", exitNoDevice},
		{fmt.Errorf("x: %w", device.ErrBusy), "busy", exitNoDevice},
		{devErr(device.ErrBadSignature), "bad_signature", exitError},
		{errors.New("node down"), "error", exitError},
	}
	for _, tt := range tests {
		remote := daemon.FromClientError(daemon.WireError(tt.err))
		for path, err := range map[string]error{"direct": tt.err, "daemon": remote} {
			if tt.kind == "usage" && path == "daemon" {
				continue // usage errors never reach the daemon
			}
			if k, x := errorKind(err), exitCodeOf(errorKind(err)); k != tt.kind || x != tt.exit {
				t.Errorf("%s %q: kind %s exit %d, want %s %d", path, tt.err, k, x, tt.kind, tt.exit)
			}
		}
	}
}
