package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/hwbridge/hwbridge/chains/bitcoin"
	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/transport"
)

// env is one CLI invocation: its streams, the global flags and the device it opened.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	log            *slog.Logger

	// global flags
	device string
	socket string
	direct bool
	json   bool

	cmd    command
	opened []io.Closer
	conf   *config   // settings from the config file and the environment (loadConfig)
	noUSB  error     // why USB enumeration is unavailable in this build, once tried
	ask    askSecret // asks the user for a PIN or passphrase (the terminal; tests replace it)
}

func newEnv(stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) *env {
	return &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv, log: newLogger(stderr, getenv), ask: ttySecret}
}

// flagSet returns a flag set that also takes the global flags, so they work before and
// after the command name.
func (e *env) flagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are printed by finish, help by parse
	fs.Usage = func() {}
	fs.StringVar(&e.device, "device", e.device, "device path (hid:, usb:, udp:, tcp:) or master fingerprint; default $HWBRIDGE_DEVICE")
	fs.StringVar(&e.socket, "socket", e.socket, "hwbridged socket path")
	fs.BoolVar(&e.direct, "direct", e.direct, "talk to the device directly, not through hwbridged")
	fs.BoolVar(&e.json, "json", e.json, "print JSON")
	fs.String("config", "", "config file (read before the flags: see hwbridge config show)")
	fs.String("profile", "", "config profile")
	return fs
}

// parse parses a command's flags, allowing them between and after positional arguments,
// and checks the number of positionals.
func (e *env) parse(fs *flag.FlagSet, args []string, minPos, maxPos int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				e.commandHelp(e.stdout, e.cmd, fs)
				return nil, errHelpShown
			}
			return nil, &usageError{err.Error()}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if rest[0] == "--" {
			pos = append(pos, rest[1:]...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	switch {
	case len(pos) < minPos:
		return nil, usagef("%s: missing argument", e.cmd.name)
	case len(pos) > maxPos:
		return nil, usagef("%s: unexpected argument %q", e.cmd.name, pos[maxPos])
	}
	return pos, nil
}

func (e *env) close() {
	for _, c := range e.opened {
		_ = c.Close()
	}
	e.opened = nil
}

// writeJSON prints v as indented JSON on stdout.
func (e *env) writeJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// print writes the result: v as JSON with --json, else the text lines.
func (e *env) print(v any, lines ...string) error {
	if e.json {
		return e.writeJSON(v)
	}
	for _, l := range lines {
		if _, err := fmt.Fprintln(e.stdout, l); err != nil {
			return err
		}
	}
	return nil
}

// onButton tells the user the device (a Trezor, a Ledger) waits for them, once per command.
func (e *env) onButton(name string) func() {
	said := false
	return func() {
		if !said {
			said = true
			fmt.Fprintf(e.stderr, "hwbridge: confirm on your %s\n", name)
		}
	}
}

// networkFlag registers --network, preset by the config and $HWBRIDGE_NETWORK.
func (e *env) networkFlag(fs *flag.FlagSet, p *string, what string) {
	fs.StringVar(p, "network", e.def("network", "mainnet"), what+": "+bitcoin.NetworkNames+" (preset by network, $HWBRIDGE_NETWORK)")
}

// parseNetwork maps --network (the table is chains/bitcoin's).
func parseNetwork(s string) (*chaincfg.Params, error) {
	n, err := bitcoin.Network(s)
	if err != nil {
		return nil, usagef("--network %q: unknown network (use %s)", s, bitcoin.NetworkNames)
	}
	return n, nil
}

func networkName(net *chaincfg.Params) string { return bitcoin.NetworkName(net) }

// parsePath parses a derivation path argument (exit 2 when it does not parse).
func parsePath(flagName, s string) (hdpath.Path, error) {
	p, err := hdpath.Parse(s)
	if err != nil {
		return nil, usagef("%s: %v", flagName, err)
	}
	return p, nil
}

func parseScript(s string) (device.ScriptType, error) {
	st := device.ScriptType(strings.ToLower(s))
	if _, err := st.Purpose(); err != nil {
		return "", usagef("--type %q: use wpkh, tr, sh-wpkh or pkh", s)
	}
	return st, nil
}

func isRejected(err error) bool { return errors.Is(err, device.ErrUserRejected) }

func isNoDevice(err error) bool {
	return errors.Is(err, device.ErrNoDevice) || errors.Is(err, transport.ErrNoDevice)
}
