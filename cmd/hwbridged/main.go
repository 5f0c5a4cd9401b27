// Command hwbridged is the hwbridge daemon (design.md "hwbridged (the daemon)"): it owns the
// hardware wallets and serves them to paired apps over JSON-RPC on a unix socket.
//
//	hwbridged [--socket PATH] [--data-dir DIR] [--emulator PATH,...] [--extapi-app NAME]
//	          [--extapi-socket PATH] [--log-level debug|info|warn|error]
//
// It stops cleanly on SIGINT or SIGTERM: running requests are cancelled (and cancelled on
// the device), the sockets are removed, the audit log and journal are closed.
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
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hwbridge/hwbridge/daemon"
	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/bitbox02"
	"github.com/hwbridge/hwbridge/device/drivers"
	"github.com/hwbridge/hwbridge/internal/buildinfo"
	"github.com/hwbridge/hwbridge/transport"
)

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(daemon.GCPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// config is one invocation's flags.
type config struct {
	socket, dataDir         string
	emulators               []string
	extAPIApp, extAPISocket string
	logLevel                string
	poll                    time.Duration
	version                 bool
	ledgerTestTokenKey      bool
}

func parseFlags(args []string, stderr io.Writer, getenv func(string) string) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("hwbridged", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.socket, "socket", daemon.DefaultSocket(getenv), "the API socket")
	fs.StringVar(&c.dataDir, "data-dir", daemon.DefaultDataDir(getenv), "app keys, request journal and audit log")
	fs.Func("emulator", "serve an emulator endpoint (udp:HOST:PORT Trezor-class, tcp:HOST:PORT Ledger-class, unix:PATH Coldcard-class, keepkey:HOST:PORT KeepKey); comma-separated or repeated", func(s string) error {
		for p := range strings.SplitSeq(s, ",") {
			p = strings.TrimSpace(p)
			if p == "" {
				continue
			}
			tp, err := transport.ParsePath(p)
			if err != nil {
				return err
			}
			if tp.USB() {
				return fmt.Errorf("%s: usb devices are found by themselves; --emulator takes udp:, tcp: and unix: paths", p)
			}
			c.emulators = append(c.emulators, tp.String())
		}
		return nil
	})
	fs.StringVar(&c.extAPIApp, "extapi-app", "", "serve go-ethereum's external-signer api (account_*) for the paired app with this name")
	fs.StringVar(&c.extAPISocket, "extapi-socket", "", "the external-signer socket (default: extapi.sock beside --socket)")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.DurationVar(&c.poll, "poll", device.DefaultPollInterval, "usb hot-plug polling interval")
	fs.BoolVar(&c.version, "version", false, "print the version (module version, commit, Go version) and exit")
	fs.BoolVar(&c.ledgerTestTokenKey, "ledger-test-token-key", false, "describe dev-chain ERC-20 tokens to Ledger-class emulators (--emulator tcp:) with hwbridge's test-key descriptors (hwemu --ledger-test-token-key trusts them; real devices never do)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if c.extAPIApp != "" && c.extAPISocket == "" {
		c.extAPISocket = filepath.Join(filepath.Dir(c.socket), "extapi.sock")
	}
	return c, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	c, err := parseFlags(args, stderr, getenv)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "hwbridged: %v\n", err)
		return 2
	}
	if c.version {
		fmt.Fprintln(stdout, buildinfo.Read("hwbridged"))
		return 0
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		fmt.Fprintf(stderr, "hwbridged: --log-level %q: use debug, info, warn or error\n", c.logLevel)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if err := serve(ctx, c, log); err != nil {
		fmt.Fprintf(stderr, "hwbridged: %v\n", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, c *config, log *slog.Logger) error {
	hub := device.NewHub(device.HubConfig{
		Drivers: drivers.Hub(drivers.Options{Logger: log, LedgerTestTokenKey: c.ledgerTestTokenKey,
			// BitBox02 pairings (the host's Noise key, the devices' keys) beside the app keys.
			BitBox02Store: &bitbox02.FileStore{Path: filepath.Join(c.dataDir, "bitbox02-noise.json")}}),
		Emulators:    c.emulators,
		USB:          device.USBFunc(transport.Enumerate),
		PollInterval: c.poll,
		Logger:       log.With("part", "hub"),
	})
	d, err := daemon.Open(daemon.Config{
		Socket:       c.socket,
		DataDir:      c.dataDir,
		Hub:          hub,
		Logger:       log,
		ExtAPIApp:    c.extAPIApp,
		ExtAPISocket: c.extAPISocket,
	})
	if err != nil {
		return err
	}
	defer d.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { _ = hub.Run(ctx) })
	err = d.Serve(ctx)
	cancel()
	wg.Wait()
	log.Info("hwbridged stopped")
	return err
}
