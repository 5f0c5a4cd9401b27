// Command hwbridge is the hwbridge CLI (design.md "hwbridge (the CLI)"): it lists hardware
// wallets, reads xpubs and addresses, and signs PSBTs and messages. It talks to devices
// through hwbridged when the daemon's socket exists (client.go), else (or with --direct)
// directly.
//
// Exit codes (one table, errors.go): 0 ok, 1 error, 2 usage or invalid input, 3 rejected on
// the device, 4 device problem (none found, several attached, locked, disconnected, wrong app,
// busy).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
)

// Exit codes (design.md).
const (
	exitOK       = 0
	exitError    = 1
	exitUsage    = 2
	exitRejected = 3
	exitNoDevice = 4
)

// command is one subcommand. name may have two words ("btc sign-psbt"); run parses its own
// flags from args (global flags are accepted there too) and does the work. To add a
// subcommand, add its file and one line here.
type command struct {
	name    string
	args    string // synopsis after the name
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

// commands is the command table, filled in init: some commands (completion) read it.
var commands []command

func init() { commands = commandTable() }

func commandTable() []command {
	return []command{
		{"devices", "", "list connected wallets (and the device named with --device)", runDevices},
		{"device info", "", "print the device's model, firmware, open app, protection, capabilities and fingerprint", runDeviceInfo},
		{"xpub", "PATH [--network N]", "print the extended public key at PATH", runXPub},
		{"address", "--chain btc|eth [--type T] [--network N] [--account N] [--index N] [--change] [--display]", "print (and optionally show) an address", runAddress},
		{"btc sign-psbt", "FILE|- [--network N]", "sign a PSBT and print it, base64", runBTCSignPSBT},
		{"btc sign-message", "MESSAGE --path PATH [--type T] [--network N]", "sign a message (BIP-137)", runBTCSignMessage},
		{"btc receive", "[--type T] [--account N] [--network N] [--index N] [--rpc URL|--esplora URL] [--display]", "print the next receive address of the device's account (checked against the device)", runBTCReceive},
		{"btc balance", "--rpc URL|--esplora URL [--type T] [--account N] [--network N] [--gap N]", "print the account's balance and coins (watch-only, from the device's xpub)", runBTCBalance},
		{"btc send", "--to ADDR --amount BTC --rpc URL --network NET [--fee-rate SAT/VB] [--type T] [--account N] [--yes] [--max-fee BTC] [--force] [--export-psbt FILE | --export-qr | --import-psbt FILE --request-id ID | --import-qr PARTS --request-id ID]", "send bitcoin: build, show, confirm, sign on the device (or export the unsigned PSBT for an air-gapped signer, as a file or as QR codes, and import it signed), check, broadcast; prints the txid", runBTCSend},
		{"btc bump-fee", "TXID --fee-rate SAT/VB --rpc URL --network NET [--type T] [--account N] [--yes]", "replace an unconfirmed transaction of the account with a higher fee (BIP-125)", runBTCBumpFee},
		{"psbt decode", "FILE|- [--network N]", "print a PSBT: inputs, outputs, amounts, fee, derivations, signatures", runPSBTDecode},
		{"eth sign-message", "MESSAGE [--index N]", "sign a message (EIP-191 personal_sign)", runETHSignMessage},
		{"eth balance", "--rpc URL [--index N | --address ADDR] [--token ADDR|USDC|USDT]", "print the ETH (and token) balance of the device's address", runETHBalance},
		{"eth send", "--to ADDR --value ETH --rpc URL [--index N] [--yes] [--chain-id N] [--max-fee GWEI] [--priority-fee GWEI] [--gas-price GWEI] [--gas-limit N]", "send ETH: show, confirm, sign on the device, broadcast, wait for the receipt", runETHSend},
		{"eth token-transfer", "--token ADDR|USDC|USDT --to ADDR --amount N --rpc URL [--index N] [--yes] [fee flags as eth send]", "send ERC-20 tokens (amount in the token's decimals)", runETHTokenTransfer},
		{"eth sign-typed-data", "FILE|- [--index N]", "sign EIP-712 typed data (hashed here; a Trezor T/Safe gets the whole document and shows its fields)", runETHSignTypedData},
		{"demo", "[--btc-rpc URL] [--eth-rpc URL] [--timeout D]", "walk through hwbridge on emulated wallets and in-process dev chains", runDemo},
		{"devnet", "[--trezor ADDR|off] [--ledger ADDR|off] [--mnemonic WORDS] [--ledger-app NAME] [--btc-rpc-addr ADDR] [--eth-rpc-addr ADDR]", "run emulated wallets and funded regtest/dev chains until Ctrl-C, for hwbridged and the CLI in another terminal", runDevnet},
		{"apps list", "[--data-dir DIR]", "list apps paired with hwbridged (and pending pairing requests)", runAppsList},
		{"apps pair", "NAME [--scopes S]", "ask hwbridged to pair an app named NAME and wait for approval (for apps that cannot ask themselves, e.g. the external-signer app)", runAppsPair},
		{"apps approve", "ID [--scopes S] [--data-dir DIR]", "approve an app's pairing request (it receives its key)", runAppsApprove},
		{"apps deny", "ID [--data-dir DIR]", "refuse an app's pairing request", runAppsDeny},
		{"apps rotate", "ID [--overlap D] [--data-dir DIR]", "issue a new key for an app; the old one works for the overlap", runAppsRotate},
		{"apps revoke", "ID [--data-dir DIR]", "revoke an app and all its keys at once", runAppsRevoke},
		{"audit verify", "[--data-dir DIR]", "check hwbridged's hash-chained audit log", runAuditVerify},
		{"journal check", "[--data-dir DIR]", "check the request journal (what makes a request id pay at most once) against its head", runJournalCheck},
		{"journal accept-loss", "--reason TEXT [--data-dir DIR]", "start the request journal again after a loss you checked on the chain (recorded in the audit log)", runJournalAcceptLoss},
		{"forget", "[--fingerprint FP] [--data-dir DIR]", "make hwbridged forget the Ledger wallet policies it registered and the Trezor passphrase sessions it holds open", runForget},
		{"udev install", "[--print] [--path FILE] [--no-reload]", "install the udev rules that give your user access to USB wallets (Linux), and reload udev", runUdevInstall},
		{"completion", "bash|zsh|fish", "print a shell completion script (eval \"$(hwbridge completion bash)\" in ~/.bashrc)", runCompletion},
		{"config show", "[--profile P] [--config FILE]", "print the effective settings (config file, profile, environment) and where each comes from", runConfigShow},
		{"version", "", "print the version of hwbridge (and of hwbridged when it runs)", runVersion},
		{"hwi", "[--fingerprint FP] [--chain C] [--stdin] [--emulators] COMMAND ...", "the HWI command contract Bitcoin Core's -signer runs (bitcoind -signer=\"hwbridge hwi\"); hwbridge hwi --help lists the commands", runHWI},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole CLI behind main, callable in-process from tests.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := newEnv(os.Stdin, stdout, stderr, os.Getenv)
	return e.main(ctx, args)
}

// usageError marks bad command lines (exit 2).
type usageError struct{ msg string }

func (u *usageError) Error() string { return u.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

func (e *env) main(ctx context.Context, args []string) int {
	if err := e.loadConfig(args); err != nil {
		return e.finish(err)
	}
	e.device, e.socket = e.def("device", ""), e.def("socket", "")
	fs := e.flagSet("hwbridge")
	version := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			e.usage(e.stdout)
			return exitOK
		}
		return e.finish(usagef("%v (hwbridge help lists the global flags)", err))
	}
	rest := fs.Args()
	switch {
	case *version:
		rest = []string{"version"}
	case len(rest) == 0:
		e.usage(e.stderr)
		return exitUsage
	case rest[0] == "help":
		return e.help(ctx, rest[1:])
	}
	cmd, n, ok := findCommand(rest)
	if !ok {
		if group := commandGroup(rest[0]); len(group) > 0 && (len(rest) == 1 || isHelpFlag(rest[1])) {
			e.groupHelp(e.stdout, rest[0], group)
			return exitOK
		}
		return e.finish(unknownCommand(rest))
	}
	e.cmd = cmd
	err := cmd.run(ctx, e, rest[n:])
	e.close()
	return e.finish(err)
}

// findCommand matches the longest command name at the front of args.
func findCommand(args []string) (command, int, bool) {
	for _, n := range []int{2, 1} {
		if len(args) < n {
			continue
		}
		name := strings.Join(args[:n], " ")
		if i := slices.IndexFunc(commands, func(c command) bool { return c.name == name }); i >= 0 {
			return commands[i], n, true
		}
	}
	return command{}, 0, false
}

func (e *env) usage(w io.Writer) {
	fmt.Fprintln(w, "usage: hwbridge [--device D] [--socket PATH] [--direct] [--json] COMMAND [ARGS]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %s\n      %s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
	}
	fmt.Fprintln(w, "\nglobal flags (before or after the command):")
	fmt.Fprintln(w, "  --device D     a device path (hid:PATH, usb:BUS-PORT, udp:HOST:PORT, tcp:HOST:PORT, unix:PATH) or master fingerprint (8 hex digits); default $HWBRIDGE_DEVICE")
	fmt.Fprintln(w, "  --socket PATH  the hwbridged socket")
	fmt.Fprintln(w, "  --direct       talk to the device directly, not through hwbridged")
	fmt.Fprintln(w, "  --json         print results (and errors) as JSON")
	fmt.Fprintln(w, "  --config FILE  the config file (default $XDG_CONFIG_HOME/hwbridge/config.toml, or $HWBRIDGE_CONFIG)")
	fmt.Fprintln(w, "  --profile P    a [profiles.P] table of the config file (or $HWBRIDGE_PROFILE)")
	fmt.Fprintln(w, "  --version      print the version and exit")
	fmt.Fprintln(w, "\nsettings: flag > environment (HWBRIDGE_NETWORK, HWBRIDGE_BTC_RPC, HWBRIDGE_ETH_RPC, HWBRIDGE_DEVICE,")
	fmt.Fprintln(w, "HWBRIDGE_SOCKET, HWBRIDGE_RPC_COOKIE, HWBRIDGE_RPC_USER, HWBRIDGE_RPC_PASSWORD_FILE) > profile > config file;")
	fmt.Fprintln(w, "hwbridge config show prints what applies.")
	fmt.Fprintln(w, "\nhwbridge help COMMAND (or COMMAND --help) shows a command's own flags.")
	fmt.Fprintln(w, "exit codes: 0 ok, 1 error, 2 usage or invalid input, 3 rejected on the device, 4 device problem (none found, several attached, locked, disconnected, wrong app, busy, link lost)")
}

// finish prints err and maps it to an exit code: one JSON object on stdout under --json
// (usage errors included), else a line on stderr.
func (e *env) finish(err error) int {
	if err == nil || errors.Is(err, errHelpShown) {
		return exitOK
	}
	kind := errorKind(err)
	code := exitCodeOf(kind)
	switch {
	case e.json:
		_ = e.writeJSON(map[string]any{"error": map[string]any{"code": kind, "exit": code, "message": err.Error()}})
	default:
		fmt.Fprintf(e.stderr, "hwbridge: %v\n", err)
	}
	if kind == "usage" && e.cmd.name != "" && !e.json {
		fmt.Fprintf(e.stderr, "usage: hwbridge %s %s\n(hwbridge help %s shows its flags)\n", e.cmd.name, e.cmd.args, e.cmd.name)
	}
	e.log.Debug("command failed", "command", e.cmd.name, "kind", kind, "exit", code)
	return code
}

// newLogger logs warnings and worse to stderr (debug with HWBRIDGE_DEBUG=1).
func newLogger(w io.Writer, getenv func(string) string) *slog.Logger {
	level := slog.LevelWarn
	if getenv("HWBRIDGE_DEBUG") == "1" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
