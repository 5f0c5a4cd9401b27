package main

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"

	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/internal/devchain/btcregtest"
	"github.com/hwbridge/hwbridge/internal/nodes"
)

const testConfig = `
network = "testnet"
device = "udp:127.0.0.1:1"
eth_rpc = "http://127.0.0.1:8545"

[profiles.sig]
network = "signet"
btc_rpc = "http://alice:hunter2@127.0.0.1:38332"

[profiles.reg]
network = "regtest"
`

// TestConfigPrecedence: flag > environment > profile > file > built-in default, as config
// show reports it and as a command (psbt decode's addresses) applies it.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(testConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	type shown struct {
		File     string
		Profile  string
		Settings map[string]setting
	}
	show := func(env map[string]string, args ...string) shown {
		t.Helper()
		r := cli(t, "", env, append(append([]string{"--json"}, args...), "config", "show")...)
		var s shown
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &s) != nil {
			t.Fatalf("config show %v: exit %d %s %s", args, r.code, r.stdout, r.stderr)
		}
		return s
	}
	tests := []struct {
		name        string
		env         map[string]string
		args        []string
		network     string
		source      string
		psbtNetwork []string // extra args for psbt decode
		prefix      string   // of the decoded addresses
	}{
		{"built-in default", nil, nil, "", "", nil, "bc1"},
		{"file", nil, []string{"--config", cfg}, "testnet", "file " + cfg, nil, "tb1"},
		{"file via env", map[string]string{"HWBRIDGE_CONFIG": cfg}, nil, "testnet", "file " + cfg, nil, "tb1"},
		{"default place", map[string]string{"XDG_CONFIG_HOME": dir + "/xdg"}, nil, "regtest", "profile reg", nil, "bcrt1"},
		{"profile", nil, []string{"--config", cfg, "--profile", "sig"}, "signet", "profile sig (" + cfg + ")", nil, "tb1"},
		{"profile via env", map[string]string{"HWBRIDGE_PROFILE": "reg"}, []string{"--config", cfg}, "regtest", "profile reg (" + cfg + ")", nil, "bcrt1"},
		{"env over profile", map[string]string{"HWBRIDGE_NETWORK": "mainnet"}, []string{"--config", cfg, "--profile", "reg"}, "mainnet", "env HWBRIDGE_NETWORK", nil, "bc1"},
		{"flag over env", map[string]string{"HWBRIDGE_NETWORK": "mainnet"}, []string{"--config", cfg}, "mainnet", "env HWBRIDGE_NETWORK", []string{"--network", "regtest"}, "bcrt1"},
	}
	raw, err := os.ReadFile(filepath.Join("..", "..", "psbt", "testdata", "vectors", "bip174", "workflow.json"))
	if err != nil {
		t.Fatal(err)
	}
	var w map[string]string
	if err := json.Unmarshal(raw, &w); err != nil {
		t.Fatal(err)
	}
	xdg := filepath.Join(dir, "xdg", "hwbridge")
	os.MkdirAll(xdg, 0o700)
	os.WriteFile(filepath.Join(xdg, "config.toml"), []byte("[profiles.reg]\nnetwork = \"regtest\"\n"), 0o600)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := tt.env
			if tt.name == "default place" {
				env = map[string]string{"XDG_CONFIG_HOME": filepath.Join(dir, "xdg"), "HWBRIDGE_PROFILE": "reg"}
			}
			s := show(env, tt.args...)
			got := s.Settings["network"]
			if got.Value != tt.network || (tt.source != "" && !strings.HasPrefix(got.Source, tt.source)) {
				t.Errorf("network %+v, want %q from %q", got, tt.network, tt.source)
			}
			args := append(append([]string{}, tt.args...), "psbt", "decode", "-")
			r := cli(t, w["combined"], env, append(args, tt.psbtNetwork...)...)
			if r.code != 0 || !strings.Contains(r.stdout, " "+tt.prefix) {
				t.Errorf("psbt decode: exit %d, want %s addresses:\n%s%s", r.code, tt.prefix, r.stdout, r.stderr)
			}
		})
	}
	// Secrets in URLs are not shown; the flag beats the preset device.
	s := show(nil, "--config", cfg, "--profile", "sig", "--device", "tcp:127.0.0.1:2")
	if rpc := s.Settings["btc_rpc"].Value; strings.Contains(rpc, "hunter2") || !strings.Contains(rpc, "127.0.0.1:38332") {
		t.Errorf("btc_rpc shown as %q", rpc)
	}
	if d := s.Settings["device"]; d.Value != "tcp:127.0.0.1:2" || d.Source != "flag --device" {
		t.Errorf("device %+v", d)
	}
	// Mistakes are usage errors that say what to fix.
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("netwrok = \"x\"\n"), 0o600)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--config", cfg, "--profile", "moon"}, `profile "moon" not found`},
		{[]string{"--config", filepath.Join(dir, "none.toml")}, "no such file"},
		{[]string{"--config", bad}, `unknown key "netwrok"`},
	} {
		r := cli(t, "", nil, append(tt.args, "config", "show")...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("%v: exit %d %q, want %q", tt.args, r.code, r.stderr, tt.want)
		}
	}
}

// TestRPCCookie: a bitcoind-style cookie file logs in to the node when the --rpc URL has
// none — named with --rpc-cookie, preset by the config, or found at the network's default
// place under $HOME/.bitcoin; a password file works too. No credential is ever on the
// command line. Against btcd and against the embedded regtest chain (both take the cookie's
// user:password as HTTP basic auth, as bitcoind does).
func TestRPCCookie(t *testing.T) {
	c := &btcCLI{t: t, dev: startEmu(t, emulator.PolicyAuto)}
	recv := c.receive("wpkh")
	btcd := nodes.StartBtcdT(t, recv)
	mineTo, err := btcutil.DecodeAddress(recv, &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	embedded, err := btcregtest.Start(t.Context(), btcregtest.NodeOptions{MiningAddr: mineTo})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { embedded.Close() })
	for name, nodeURL := range map[string]string{"btcd": btcd.URL(), "embedded": embedded.URL()} {
		t.Run(name, func(t *testing.T) { cookieCases(t, c.dev, nodeURL) })
	}
}

func cookieCases(t *testing.T, dev, nodeURL string) {
	u, err := url.Parse(nodeURL)
	if err != nil {
		t.Fatal(err)
	}
	pass, _ := u.User.Password()
	home := t.TempDir()
	cookie := filepath.Join(home, ".bitcoin", "regtest", ".cookie")
	os.MkdirAll(filepath.Dir(cookie), 0o700)
	os.WriteFile(cookie, []byte(u.User.Username()+":"+pass), 0o600)
	pwFile := filepath.Join(home, "pw")
	os.WriteFile(pwFile, []byte(pass+"\n"), 0o600)
	cfg := filepath.Join(home, "c.toml")
	os.WriteFile(cfg, []byte("[profiles.node]\nnetwork = \"regtest\"\nbtc_rpc = \"http://"+u.Host+"\"\nrpc_cookie = \""+cookie+"\"\n"), 0o600)
	bare := "http://" + u.Host
	for _, tt := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"--rpc-cookie", map[string]string{"HOME": t.TempDir()}, []string{"--rpc", bare, "--rpc-cookie", cookie, "--network", "regtest"}},
		{"default cookie", map[string]string{"HOME": home}, []string{"--rpc", bare, "--network", "regtest"}},
		{"password file", map[string]string{"HOME": t.TempDir()}, []string{"--rpc", bare, "--rpc-user", u.User.Username(), "--rpc-password-file", pwFile, "--network", "regtest"}},
		{"profile", map[string]string{"HOME": t.TempDir()}, []string{"--config", cfg, "--profile", "node"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := cli(t, "", tt.env, append([]string{"--direct", "--device", dev, "btc", "balance", "--json"}, tt.args...)...)
			var bal struct {
				Confirmed int64 `json:"confirmed_sat"`
			}
			if r.code != 0 || json.Unmarshal([]byte(r.stdout), &bal) != nil {
				t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
		})
	}
	// Without credentials the node refuses, and the error says how to give them.
	r := cli(t, "", map[string]string{"HOME": t.TempDir()}, "--direct", "--device", dev, "btc", "balance", "--rpc", bare, "--network", "regtest")
	if r.code == 0 || !strings.Contains(r.stderr, "--rpc-cookie") {
		t.Fatalf("no credentials: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
