// Command hwemu runs hwbridge's emulated hardware wallets (design.md "hwemu"): a
// Trezor-class device on UDP as the Trezor emulator speaks it, and a Ledger-class device on
// TCP as Speculos speaks it, and with --qr DIR a QR-code signer (emulator/qrsigner) whose
// camera and screen are a folder, all from one BIP-39 mnemonic, with an approval policy and
// an optional loopback control API (transcript, button presses, faults).
//
//	hwemu [--trezor ADDR|off] [--ledger ADDR|off] [--coldcard SOCKET|off] [--coldcard-chain BTC|XTN|XRT] [--coldcard-sd DIR|off]
//	      [--qr DIR|off] [--qr-network NET] [--keepkey ADDR|off] [--bitbox02 ADDR|off] [--mnemonic WORDS] [--passphrase P] [--pin N]
//	      [--approve auto|reject|prompt] [--control ADDR] [--ledger-app NAME] [--ledger-blind-signing]
//	      [--ledger-test-token-key] [--ledger-verbose-eip712]
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

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/hwbridge/hwbridge/emulator"
	bitbox02emu "github.com/hwbridge/hwbridge/emulator/bitbox02"
	coldcardemu "github.com/hwbridge/hwbridge/emulator/coldcard"
	keepkeyemu "github.com/hwbridge/hwbridge/emulator/keepkey"
	ledgeremu "github.com/hwbridge/hwbridge/emulator/ledger"
	"github.com/hwbridge/hwbridge/emulator/qrsigner"
	trezoremu "github.com/hwbridge/hwbridge/emulator/trezor"
	"github.com/hwbridge/hwbridge/internal/buildinfo"
	"github.com/hwbridge/hwbridge/transport"
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
	coldcard, coldcardChain string
	coldcardSD              string // the Coldcard's microSD card folder, or off
	keepkey                 string
	bitbox02                string
	qr                      string           // the QR signer's shared folder, or off
	qrNet                   *chaincfg.Params // the network of its account export
	mnemonic, passphrase    string
	pin                     string
	approve                 emulator.Policy
	ledgerApp               string
	trezorModel             trezoremu.Model
	blindSigning            bool
	testTokenKey            bool // trust ERC-20 descriptors signed with internal/ledgercal's test key
	verboseEIP712           bool
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
	fs.StringVar(&c.coldcard, "coldcard", "off", "Coldcard-class device on the unix datagram socket `SOCKET` (the Coldcard simulator's framing; ckcc --simulator uses "+transport.DefaultColdcardSimulator+"), or off")
	fs.StringVar(&c.coldcardChain, "coldcard-chain", "BTC", "the Coldcard's chain setting: BTC, XTN (testnet) or XRT (regtest)")
	fs.StringVar(&c.coldcardSD, "coldcard-sd", "off", "with --coldcard: the Coldcard's microSD card is folder `DIR`: every NAME.psbt put there is signed (after the approval policy) into NAME-signed.psbt and NAME-final.txn, as the firmware writes them; or off")
	fs.StringVar(&c.qr, "qr", "off", "QR-code signer (SafePal/Keystone-like) whose camera and screen are folder `DIR`: account export in DIR/account.txt and .png, requests (UR parts as text, or PNG frames) into DIR/in/, signed answers from DIR/out/; or off")
	qrNet := fs.String("qr-network", "testnet", "the QR signer's network: mainnet, or testnet (also regtest and signet: same keys)")
	fs.StringVar(&c.bitbox02, "bitbox02", "off", "BitBox02 on TCP `ADDR` (HOST:PORT; the simulator's framing, its port is 15423), or off")
	fs.StringVar(&c.keepkey, "keepkey", "off", "KeepKey device on UDP `ADDR` as the KeepKey emulator speaks it (HOST:PORT, its default 127.0.0.1:11044; debug link on PORT+1; hwbridge names it keepkey:ADDR), or off")
	fs.StringVar(&c.mnemonic, "mnemonic", emulator.DefaultMnemonic, "BIP-39 `WORDS` of the seed (default: the standard test mnemonic)")
	fs.StringVar(&c.passphrase, "passphrase", "", "BIP-39 passphrase `P`: the Ledger uses it as its seed passphrase; the Trezor turns on passphrase protection and yields P for on-device entry (the host may also type its own)")
	fs.StringVar(&c.pin, "pin", "", "Trezor and KeepKey PIN `N` (digits 1-9; asked with PinMatrixRequest, identity matrix)")
	fs.StringVar(&approve, "approve", "auto", "approval policy: auto, reject or prompt (prompt waits for POST /press or a DebugLink decision)")
	fs.StringVar(&c.control, "control", "", "serve the control API on loopback `ADDR` (HOST:PORT)")
	var model string
	fs.StringVar(&model, "trezor-model", "T", "Trezor `MODEL` to play: 1 (Trezor One, legacy 1.13.1), T (core 2.9.1), Safe3 or Safe5 (core 2.9.1)")
	fs.StringVar(&c.ledgerApp, "ledger-app", ledgeremu.AppBitcoin, "Ledger app open at start: Bitcoin, \"Bitcoin Test\" or Ethereum")
	fs.BoolVar(&c.blindSigning, "ledger-blind-signing", false, "turn on the Ledger Ethereum app's blind-signing setting")
	fs.BoolVar(&c.testTokenKey, "ledger-test-token-key", false, "also trust ERC-20 token descriptors signed with hwbridge's emulator test key (dev-chain tokens; a real device trusts only Ledger's key)")
	fs.BoolVar(&c.verboseEIP712, "ledger-verbose-eip712", false, "turn on the Ledger Ethereum app's \"Verbose EIP-712\" setting (every typed-data field shown, no blind signing needed)")
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
	if c.trezor == "off" && c.ledger == "off" && c.coldcard == "off" && c.qr == "off" && c.keepkey == "off" && c.bitbox02 == "off" {
		return nil, errors.New("every device is off: give --trezor, --ledger, --coldcard, --keepkey or --bitbox02 an address, or --qr a folder")
	}
	switch c.coldcardChain {
	case "BTC", "XTN", "XRT":
	default:
		return nil, fmt.Errorf("--coldcard-chain %q: use BTC, XTN or XRT", c.coldcardChain)
	}
	if c.coldcard == "" {
		return nil, errors.New("--coldcard: give a socket path, or off")
	}
	if c.coldcardSD != "off" && (c.coldcard == "off" || c.coldcardSD == "") {
		return nil, errors.New("--coldcard-sd DIR needs --coldcard SOCKET (the device whose card it is)")
	}
	switch *qrNet {
	case "mainnet":
		c.qrNet = &chaincfg.MainNetParams
	case "testnet", "regtest", "signet":
		c.qrNet = &chaincfg.TestNet3Params
	default:
		return nil, fmt.Errorf("--qr-network %q: use mainnet or testnet", *qrNet)
	}
	for _, a := range []struct{ name, v string }{{"--trezor", c.trezor}, {"--ledger", c.ledger}, {"--keepkey", c.keepkey}, {"--bitbox02", c.bitbox02}, {"--control", c.control}} {
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

			TrustTestTokenKey: c.testTokenKey,
			VerboseEIP712:     c.verboseEIP712,
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

	if c.coldcard != "off" {
		t := &emulator.ControlTarget{Approver: emulator.NewApprover(c.approve), Faults: new(emulator.Faults)}
		d, err := coldcardemu.New(coldcardemu.Options{
			Mnemonic:   c.mnemonic,
			Passphrase: c.passphrase,
			Chain:      c.coldcardChain,
			Approver:   t.Approver,
			Faults:     t.Faults,
			Logger:     log.With("device", "coldcard"),
		})
		if err != nil {
			return err
		}
		defer d.Close()
		srv, err := d.Listen(c.coldcard)
		if err != nil {
			return err
		}
		targets["coldcard"] = t
		wg.Go(func() { failed(srv.Serve(ctx)) })
		ready("coldcard ready on unix:%s", srv.Path())
		if c.coldcardSD != "off" {
			wg.Go(func() { failed(d.ServeCard(ctx, c.coldcardSD, 200*time.Millisecond)) })
			ready("coldcard microSD card in %s", c.coldcardSD)
		}
	}

	if c.qr != "off" {
		t := &emulator.ControlTarget{Approver: emulator.NewApprover(c.approve), Faults: new(emulator.Faults)}
		w, err := emulator.NewWallet(c.mnemonic, c.passphrase)
		if err != nil {
			return err
		}
		s := qrsigner.New(w, t.Approver, c.qrNet)
		if err := s.WriteAccount(c.qr, 0); err != nil {
			return fmt.Errorf("qr signer: %w", err)
		}
		targets["qr"] = t
		wg.Go(func() { failed(s.Serve(ctx, c.qr, 0, 200*time.Millisecond)) })
		ready("qr signer ready in %s", c.qr)
	}

	if c.keepkey != "off" {
		// The KeepKey persona takes the PIN but has no passphrase (emulator/keepkey).
		t := &emulator.ControlTarget{Approver: emulator.NewApprover(c.approve), Faults: new(emulator.Faults)}
		d, err := keepkeyemu.New(keepkeyemu.Options{
			Mnemonic: c.mnemonic,
			PIN:      c.pin,
			Approver: t.Approver,
			Faults:   t.Faults,
			Logger:   log.With("device", "keepkey"),
		})
		if err != nil {
			return err
		}
		defer d.Close()
		srv, err := d.ListenUDP(c.keepkey)
		if err != nil {
			return err
		}
		targets["keepkey"] = t
		wg.Go(func() { failed(srv.Serve(ctx)) })
		ready("keepkey ready on keepkey:%s", srv.Addr())
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
	for _, k := range []string{"trezor", "ledger", "coldcard", "qr", "keepkey", "bitbox02"} {
		if _, ok := m[k]; ok {
			out = append(out, k)
		}
	}
	return out
}
