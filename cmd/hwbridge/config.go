package main

// The CLI's settings: a config file with named profiles, and environment variables, under
// the flags. Precedence: flag > environment > profile > the file's top-level values >
// built-in default.
//
//	# $XDG_CONFIG_HOME/hwbridge/config.toml (or --config FILE, $HWBRIDGE_CONFIG)
//	network = "mainnet"
//	[profiles.regtest]                 # --profile regtest, or $HWBRIDGE_PROFILE
//	network = "regtest"
//	btc_rpc = "http://127.0.0.1:18443"
//	rpc_cookie = "~/.bitcoin/regtest/.cookie"

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/hwbridge/hwbridge/chains/ethereum"
)

// settingKeys is the one table of settings: the config key, its environment variable and
// the flag it presets.
var settingKeys = []struct{ key, env, flag string }{
	{"network", "HWBRIDGE_NETWORK", "--network"},
	{"btc_rpc", "HWBRIDGE_BTC_RPC", "--rpc of btc commands"},
	{"eth_rpc", "HWBRIDGE_ETH_RPC", "--rpc of eth commands"},
	{"device", "HWBRIDGE_DEVICE", "--device"},
	{"socket", "HWBRIDGE_SOCKET", "--socket"},
	{"rpc_cookie", "HWBRIDGE_RPC_COOKIE", "--rpc-cookie"},
	{"rpc_user", "HWBRIDGE_RPC_USER", "--rpc-user"},
	{"rpc_password_file", "HWBRIDGE_RPC_PASSWORD_FILE", "--rpc-password-file"},
}

// setting is one resolved value and where it came from.
type setting struct {
	Value  string `json:"value"`
	Source string `json:"source"` // "env HWBRIDGE_…", "profile NAME (FILE)", "file FILE"
}

// config is what loadConfig found.
type config struct {
	path    string // the file read ("" none)
	profile string
	values  map[string]setting
}

// configPath is the file to read and whether the person named it (then it must exist).
func (e *env) configPath(flagPath string) (string, bool) {
	if flagPath != "" {
		return expandHome(flagPath, e.getenv), true
	}
	if p := e.getenv("HWBRIDGE_CONFIG"); p != "" {
		return expandHome(p, e.getenv), true
	}
	dir := e.getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home := e.getenv("HOME")
		if home == "" {
			return "", false
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "hwbridge", "config.toml"), false
}

func expandHome(p string, getenv func(string) string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok && getenv("HOME") != "" {
		return filepath.Join(getenv("HOME"), rest)
	}
	return p
}

// prescan finds --config and --profile anywhere on the command line: they decide the
// defaults of every other flag, so they are read before any flag set is parsed.
func prescan(args []string) (cfg, profile string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		for _, name := range []string{"config", "profile"} {
			var v string
			switch {
			case a == "-"+name || a == "--"+name:
				if i+1 < len(args) {
					v = args[i+1]
					i++
				}
			case strings.HasPrefix(a, "-"+name+"=") || strings.HasPrefix(a, "--"+name+"="):
				_, v, _ = strings.Cut(a, "=")
			default:
				continue
			}
			if name == "config" {
				cfg = v
			} else {
				profile = v
			}
		}
	}
	return cfg, profile
}

// loadConfig reads the config file and the environment for args' command line.
func (e *env) loadConfig(args []string) error {
	flagPath, profile := prescan(args)
	if profile == "" {
		profile = e.getenv("HWBRIDGE_PROFILE")
	}
	c := &config{profile: profile, values: map[string]setting{}}
	path, named := e.configPath(flagPath)
	var file map[string]any
	if path != "" {
		_, err := toml.DecodeFile(path, &file)
		switch {
		case errors.Is(err, fs.ErrNotExist) && !named:
		case err != nil:
			return usagef("config %s: %v", path, err)
		default:
			c.path = path
		}
	}
	take := func(tbl map[string]any, source string) error {
		for k, v := range tbl {
			if k == "profiles" && source == "file "+path {
				continue
			}
			if !slices.ContainsFunc(settingKeys, func(s struct{ key, env, flag string }) bool { return s.key == k }) {
				return usagef("config %s: unknown key %q in %s (known: %s)", path, k, source, knownKeys())
			}
			s, ok := v.(string)
			if !ok {
				return usagef("config %s: %s in %s must be a string", path, k, source)
			}
			c.values[k] = setting{Value: expandHome(s, e.getenv), Source: source}
		}
		return nil
	}
	if err := take(file, "file "+path); err != nil {
		return err
	}
	if profile != "" {
		profiles, _ := file["profiles"].(map[string]any)
		p, ok := profiles[profile].(map[string]any)
		if !ok {
			names := make([]string, 0, len(profiles))
			for n := range profiles {
				names = append(names, n)
			}
			sort.Strings(names)
			where := "no config file"
			if c.path != "" {
				where = c.path + " has " + strings.Join(names, ", ")
				if len(names) == 0 {
					where = c.path + " has none"
				}
			}
			return usagef("profile %q not found (%s): add [profiles.%s] to the config file", profile, where, profile)
		}
		if err := take(p, fmt.Sprintf("profile %s (%s)", profile, path)); err != nil {
			return err
		}
	}
	for _, s := range settingKeys {
		if v := strings.TrimSpace(e.getenv(s.env)); v != "" {
			c.values[s.key] = setting{Value: expandHome(v, e.getenv), Source: "env " + s.env}
		}
	}
	e.conf = c
	return nil
}

func knownKeys() string {
	var ks []string
	for _, s := range settingKeys {
		ks = append(ks, s.key)
	}
	return strings.Join(ks, ", ")
}

// def is the preset value of key (from the environment, the profile or the file), or
// fallback: the default of the flag it presets.
func (e *env) def(key, fallback string) string {
	if e.conf != nil {
		if s, ok := e.conf.values[key]; ok {
			return s.Value
		}
	}
	return fallback
}

// runConfigShow prints the effective settings and where each came from; URLs are shown
// without their passwords.
func runConfigShow(ctx context.Context, e *env, args []string) error {
	fs := e.flagSet("config show")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	type shown struct {
		File     string             `json:"file,omitempty"`
		Profile  string             `json:"profile,omitempty"`
		Settings map[string]setting `json:"settings"`
	}
	out := shown{File: e.conf.path, Profile: e.conf.profile, Settings: map[string]setting{}}
	lines := []string{"file: " + orNone(e.conf.path), "profile: " + orNone(e.conf.profile)}
	for _, k := range settingKeys {
		s, ok := e.conf.values[k.key]
		// Flags given on this command line win over the presets.
		switch k.key {
		case "device":
			if e.device != s.Value {
				s, ok = setting{Value: e.device, Source: "flag --device"}, e.device != ""
			}
		case "socket":
			if e.socket != s.Value {
				s, ok = setting{Value: e.socket, Source: "flag --socket"}, e.socket != ""
			}
		}
		if !ok {
			continue
		}
		if strings.HasSuffix(k.key, "_rpc") {
			s.Value = ethereum.RedactURL(s.Value)
		}
		out.Settings[k.key] = s
		lines = append(lines, fmt.Sprintf("%s = %q  (%s; presets %s)", k.key, s.Value, s.Source, k.flag))
	}
	return e.print(out, lines...)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
