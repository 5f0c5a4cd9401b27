// Command hwemu runs hwbridge's emulated hardware wallets (design.md "hwemu"): a
// Trezor-class device on UDP as the Trezor emulator speaks it, and a Ledger-class device on
// TCP as Speculos speaks it, both from one BIP-39 mnemonic, with an approval policy and an
// optional loopback control API (transcript, button presses, faults).
//
//	hwemu [--trezor ADDR|off] [--ledger ADDR|off] [--bitbox02 ADDR|off] [--mnemonic WORDS]
//	      [--passphrase P] [--pin N] [--approve auto|reject|prompt] [--control ADDR]
//	      [--ledger-app NAME] [--ledger-blind-signing]
//
// --bitbox02 (off by default) serves a BitBox02 on TCP as the BitBox02 simulator does
// (64-byte U2F HID packets on the stream; the simulator's port is 15423); drive it with
// bitbox02:HOST:PORT paths. Its pairing-code screen is decided by --approve like any other.
//
// It prints one line per device when it serves ("trezor ready on udp:127.0.0.1:21324") and
// exits cleanly on SIGINT or SIGTERM. Exit codes: 0 ok, 1 error, 2 usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hwbridge/hwbridge/emulator"
	bitbox02emu "github.com/hwbridge/hwbridge/emulator/bitbox02"
	ledgeremu "github.com/hwbridge/hwbridge/emulator/ledger"
	trezoremu "github.com/hwbridge/hwbridge/emulator/trezor"
	"github.com/hwbridge/hwbridge/internal/buildinfo"
)

const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type config struct {
	trezor, ledger, control string
	bitbox02                string
	mnemonic, passphrase    string
	pin                     string
	approve                 emulator.Policy
	ledgerApp               string
	trezorModel             trezoremu.Model
	blindSigning            bool
	verbose                 bool
	version                 bool
}

func parse(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("hwemu", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &config{}
	var approve string
	fs.StringVar(&c.trezor, "trezor", "127.0.0.1:21324", "Trezor-class device on UDP `ADDR` (HOST:PORT; DebugLink on PORT+1), or off")
	fs.StringVar(&c.ledger, "ledger", "127.0.0.1:9999", "Ledger-class device on TCP `ADDR` (Speculos APDU framing), or off")
	fs.StringVar(&c.bitbox02, "bitbox02", "off", "BitBox02 on TCP `ADDR` (HOST:PORT; the simulator's framing, its port is 15423), or off")
	fs.StringVar(&c.mnemonic, "mnemonic", emulator.DefaultMnemonic, "BIP-39 `WORDS` of the seed (default: the standard test mnemonic)")
	fs.StringVar(&c.passphrase, "passphrase", "", "BIP-39 passphrase `P`: the Ledger uses it as its seed passphrase; the Trezor turns on passphrase protection and yields P for on-device entry (the host may also type its own)")
	fs.StringVar(&c.pin, "pin", "", "Trezor PIN `N` (digits 1-9; asked with PinMatrixRequest, identity matrix)")
	fs.StringVar(&approve, "approve", "auto", "approval policy: auto, reject or prompt (prompt waits for POST /press or a DebugLink decision)")
	fs.StringVar(&c.control, "control", "", "serve the control API on loopback `ADDR` (HOST:PORT)")
	var model string
	fs.StringVar(&model, "trezor-model", "T", "Trezor `MODEL` to play: 1 (Trezor One, legacy 1.13.1), T (core 2.9.1), Safe3 or Safe5 (core 2.9.1)")
	fs.StringVar(&c.ledgerApp, "ledger-app", ledgeremu.AppBitcoin, "Ledger app open at start: Bitcoin, \"Bitcoin Test\" or Ethereum")
	fs.BoolVar(&c.blindSigning, "ledger-blind-signing", false, "turn on the Ledger Ethereum app's blind-signing setting")
	fs.BoolVar(&c.verbose, "v", false, "log each message exchanged (types only, never secrets) to stderr")
	fs.BoolVar(&c.version, "version", false, "print the version (module version, commit, Go version) and exit")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	p, err := emulator.ParsePolicy(approve)
	if err != nil {
		return nil, err
	}
	c.approve = p
	if c.trezorModel, err = trezoremu.ParseModel(model); err != nil {
		return nil, errors.New("--trezor-model: " + strings.TrimPrefix(err.Error(), "trezoremu: "))
	}
	if c.trezor == "off" && c.ledger == "off" && c.bitbox02 == "off" {
		return nil, errors.New("every device is off: give --trezor, --ledger or --bitbox02 an address")
	}
	for _, a := range []struct{ name, v string }{{"--trezor", c.trezor}, {"--ledger", c.ledger}, {"--bitbox02", c.bitbox02}, {"--control", c.control}} {
		if a.v == "off" || a.v == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			return nil, fmt.Errorf("%s %q: want HOST:PORT: %w", a.name, a.v, err)
		}
	}
	if c.control != "" {
		host, _, _ := net.SplitHostPort(c.control)
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("--control %q: the control API serves loopback only (use 127.0.0.1:PORT)", c.control)
		}
	}
	switch c.ledgerApp {
	case ledgeremu.AppBitcoin, ledgeremu.AppBitcoinTest, ledgeremu.AppEthereum:
	default:
		return nil, fmt.Errorf("--ledger-app %q: use Bitcoin, \"Bitcoin Test\" or Ethereum", c.ledgerApp)
	}
	if _, err := emulator.NewWallet(c.mnemonic, ""); err != nil {
		return nil, err
	}
	return c, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "hwemu: %v\n", err)
		return exitUsage
	}
	if c.version {
		fmt.Fprintln(stdout, buildinfo.Read("hwemu"))
		return exitOK
	}
	if err := serve(ctx, c, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "hwemu: %v\n", err)
		return exitError
	}
	return exitOK
}

// serve starts every device, prints the ready lines and runs until ctx ends or a server fails.
func serve(ctx context.Context, c *config, stdout, stderr io.Writer) error {
	level := slog.LevelInfo
	if c.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg      sync.WaitGroup
		targets = map[string]*emulator.ControlTarget{}
		outMu   sync.Mutex
	)
	ready := func(format string, a ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintf(stdout, format+"\n", a...)
	}
	failed := func(err error) {
		if err != nil {
			cancel(err)
		}
	}

	if c.trezor != "off" {
		t := &emulator.ControlTarget{Approver: emulator.NewApprover(c.approve), Faults: new(emulator.Faults)}
		d, err := trezoremu.New(trezoremu.Options{
			Model:                c.trezorModel,
			Mnemonic:             c.mnemonic,
			PIN:                  c.pin,
			PassphraseProtection: c.passphrase != "",
			Passphrase:           c.passphrase,
			Approver:             t.Approver,
			Faults:               t.Faults,
			Logger:               log.With("device", "trezor"),
		})
		if err != nil {
			return err
		}
		defer d.Close()
		srv, err := d.ListenUDP(c.trezor)
		if err != nil {
			return err
		}
		targets["trezor"] = t
		wg.Go(func() { failed(srv.Serve(ctx)) })
		ready("trezor ready on udp:%s", srv.Addr())
	}

	if c.ledger != "off" {
		t := &emulator.ControlTarget{Approver: emulator.NewApprover(c.approve), Faults: new(emulator.Faults)}
		d, err := ledgeremu.New(ledgeremu.Config{
			Mnemonic:     c.mnemonic,
			Passphrase:   c.passphrase,
			App:          c.ledgerApp,
			BlindSigning: c.blindSigning,
			Approver:     t.Approver,
			Faults:       t.Faults,
			Logger:       log.With("device", "ledger"),
		})
		if err != nil {
			return err
		}
		defer d.Close()
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", c.ledger)
		if err != nil {
			return fmt.Errorf("listen on tcp:%s (is speculos or another hwemu running?): %w", c.ledger, err)
		}
		targets["ledger"] = t
		wg.Go(func() { failed(d.Serve(ctx, ln)) })
		ready("ledger ready on tcp:%s", ln.Addr())
	}

	if c.bitbox02 != "off" {
		t := &emulator.ControlTarget{Approver: emulator.NewApprover(c.approve)}
		d, err := bitbox02emu.New(bitbox02emu.Config{
			Mnemonic:   c.mnemonic,
			Passphrase: c.passphrase,
			Approver:   t.Approver,
			Logger:     log.With("device", "bitbox02"),
		})
		if err != nil {
			return err
		}
		defer d.Close()
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", c.bitbox02)
		if err != nil {
			return fmt.Errorf("listen on tcp:%s (is the bitbox02 simulator or another hwemu running?): %w", c.bitbox02, err)
		}
		targets["bitbox02"] = t
		wg.Go(func() { failed(d.Serve(ctx, ln)) })
		ready("bitbox02 ready on bitbox02:%s", ln.Addr())
	}

	if c.control != "" {
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", c.control)
		if err != nil {
			cancel(nil)
			wg.Wait()
			return fmt.Errorf("control api: listen on %s: %w", c.control, err)
		}
		hs := &http.Server{Handler: emulator.NewControlHandler(targets), ReadHeaderTimeout: 5 * time.Second}
		wg.Go(func() {
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				failed(fmt.Errorf("control api: %w", err))
			}
		})
		wg.Go(func() {
			<-ctx.Done()
			sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer scancel()
			_ = hs.Shutdown(sctx)
		})
		ready("control api on http://%s", ln.Addr())
	}

	<-ctx.Done()
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	log.Info("hwemu stopped", "devices", strings.Join(keys(targets), ","))
	return nil
}

func keys(m map[string]*emulator.ControlTarget) []string {
	out := make([]string, 0, len(m))
	for _, k := range []string{"trezor", "ledger", "bitbox02"} {
		if _, ok := m[k]; ok {
			out = append(out, k)
		}
	}
	return out
}
