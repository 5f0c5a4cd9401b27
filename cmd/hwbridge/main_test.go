package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// result is one in-process CLI run.
type result struct {
	code           int
	stdout, stderr string
}

// cli runs hwbridge in-process with a clean environment: no daemon socket, no
// HWBRIDGE_DEVICE unless the test sets it, stdin from the given string.
func cli(t *testing.T, stdin string, env map[string]string, args ...string) result {
	t.Helper()
	return cliAsk(t, stdin, env, noTerminal, args...)
}

// noTerminal is the PIN and passphrase prompt of tests: there is no terminal to ask on (as
// in CI), also when the tests run in one.
func noTerminal(context.Context, string) (string, error) { return "", errNoTerminal }

// cliAsk is cli with the given PIN and passphrase prompt.
func cliAsk(t *testing.T, stdin string, env map[string]string, ask askSecret, args ...string) result {
	t.Helper()
	dir := t.TempDir()
	getenv := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		switch k {
		case "XDG_RUNTIME_DIR", "HOME":
			return dir
		}
		return ""
	}
	var out, errb bytes.Buffer
	e := newEnv(strings.NewReader(stdin), &out, &errb, getenv)
	e.ask = ask
	code := e.main(t.Context(), args)
	return result{code, out.String(), errb.String()}
}

func TestRunUsesProcessStreams(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"help"}, &out, &errb); code != exitOK || !strings.Contains(out.String(), "btc sign-psbt") {
		t.Fatalf("help: code %d, stdout %q", code, out.String())
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"no command", nil, "usage: hwbridge"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"unknown btc command", []string{"btc", "send-all"}, `unknown command "btc send-all"`},
		{"unknown flag", []string{"xpub", "--frob", "m/84'/0'/0'"}, "flag provided but not defined: -frob"},
		{"bad path", []string{"xpub", "m/84'/x"}, "invalid derivation path"},
		{"missing path", []string{"xpub"}, "missing argument"},
		{"extra argument", []string{"xpub", "m/0", "m/1"}, `unexpected argument "m/1"`},
		{"bad network", []string{"xpub", "m/0", "--network", "moon"}, `--network "moon"`},
		{"bad chain", []string{"address", "--chain", "doge"}, `--chain "doge"`},
		{"bad type", []string{"address", "--type", "p2wsh"}, `--type "p2wsh"`},
		{"huge index", []string{"address", "--index", "2147483648"}, "below 2^31"},
		{"sign-message without path", []string{"btc", "sign-message", "hi"}, "--path is required"},
		{"sign-message taproot path", []string{"btc", "sign-message", "hi", "--path", "m/86'/0'/0'/0/0"}, "taproot"},
		{"bad device", []string{"--device", "usb0", "xpub", "m/0"}, `--device "usb0"`},
		{"bad device path", []string{"--device", "udp:nohost", "xpub", "m/0"}, "invalid device path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cli(t, "", nil, tt.args...)
			if r.code != exitUsage {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, exitUsage, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr %q does not mention %q", r.stderr, tt.want)
			}
		})
	}
}

func TestNoDevice(t *testing.T) {
	for _, args := range [][]string{
		{"xpub", "m/84'/0'/0'"},
		{"address", "--chain", "eth"},
		{"btc", "sign-message", "hi", "--path", "m/84'/0'/0'/0/0"},
		{"eth", "sign-message", "hi"},
		{"--device", "udp:127.0.0.1:9", "xpub", "m/0"},
		{"--device", "udp:127.0.0.1:9", "devices"},
		{"--device", "73c5da0a", "xpub", "m/0"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := cli(t, "", nil, args...)
			if r.code != exitNoDevice {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, exitNoDevice, r.stderr)
			}
		})
	}
	t.Run("json", func(t *testing.T) {
		r := cli(t, "", nil, "--json", "xpub", "m/0")
		var got struct {
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Error.Code != "no_device" || got.Error.Message == "" {
			t.Errorf("exit %d, stdout %q: want a JSON no_device error", r.code, r.stdout)
		}
	})
	t.Run("devices lists nothing", func(t *testing.T) {
		r := cli(t, "", nil, "--json", "devices")
		if r.code != exitOK || strings.TrimSpace(r.stdout) != "[]" {
			t.Errorf("exit %d, stdout %q", r.code, r.stdout)
		}
	})
}

func TestBadPSBT(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.psbt")
	if err := os.WriteFile(bad, []byte("cHNidP8BAA=="), 0o600); err != nil { // a truncated psbt
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, stdin string
		args        []string
		want        string
	}{
		{"not base64", "hello world", []string{"btc", "sign-psbt", "-"}, "malformed psbt"},
		{"empty", "", []string{"btc", "sign-psbt", "-"}, "malformed psbt"},
		{"no inputs", "cHNidP8BAAoCAAAAAAAAAAAAAA==", []string{"btc", "sign-psbt", "-"}, "0 inputs"},
		{"truncated", "", []string{"btc", "sign-psbt", bad}, "malformed psbt"},
		{"missing file", "", []string{"btc", "sign-psbt", filepath.Join(dir, "nope.psbt")}, "no such file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := cli(t, tt.stdin, nil, tt.args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) || strings.Contains(r.stderr, "usage:") {
				t.Errorf("exit %d, stderr %q: want exit 2 (invalid input) mentioning %q, without a usage line", r.code, r.stderr, tt.want)
			}
		})
	}
}

func TestRefusesToBypassDaemon(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "hwbridge", "hwbridged.sock")
	if err := os.MkdirAll(filepath.Dir(sock), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"XDG_RUNTIME_DIR": dir}
	r := cli(t, "", env, "xpub", "m/0")
	if r.code != exitError || !strings.Contains(r.stderr, "--direct") {
		t.Errorf("with a daemon socket: exit %d, stderr %q", r.code, r.stderr)
	}
	r = cli(t, "", env, "--direct", "xpub", "m/0")
	if r.code != exitNoDevice {
		t.Errorf("--direct: exit %d, stderr %q", r.code, r.stderr)
	}
}
