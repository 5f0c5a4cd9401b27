package ledgeremu

import (
	"context"
	"crypto/hmac"
	"crypto/sha512"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/tyler-smith/go-bip39"

	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/transport"
)

// App names, as B0 01 reports them and E0 D8 opens them.
const (
	AppBitcoin     = "Bitcoin"
	AppBitcoinTest = "Bitcoin Test"
	AppEthereum    = "Ethereum"
	appDashboard   = "BOLOS"
)

// Versions reported by B0 01 (and E0 06 for Ethereum).
const (
	osVersion      = "2.2.3"
	bitcoinVersion = "2.4.6"
	ethMajor       = 1
	ethMinor       = 17
	ethPatch       = 0
)

// DefaultAddr is Speculos' APDU port, where hwemu serves the Ledger-class device.
const DefaultAddr = "127.0.0.1:9999"

// continueTimeout is how long the Bitcoin app waits for the host's answer to a client
// command (the app's 50 ticks of 100 ms) before it drops the command.
const continueTimeout = 5 * time.Second

// Config configures a device. Zero values take the defaults noted per field.
type Config struct {
	// Mnemonic and Passphrase make the seed (default: emulator.DefaultMnemonic, no passphrase).
	Mnemonic   string
	Passphrase string
	// App is the app open at start: AppBitcoin (default), AppBitcoinTest or AppEthereum.
	// "BOLOS" or "dashboard" starts on the dashboard.
	App string
	// BlindSigning turns on the Ethereum app's blind-signing setting (off by default, as on
	// a real device): transactions with calldata and hashed EIP-712 need it.
	BlindSigning bool
	// TrustTestTokenKey makes the Ethereum app also accept ERC-20 token descriptors signed
	// with the emulator test key (internal/ledgercal.TestKey), for tokens deployed on
	// development chains. A real device trusts only Ledger's key; so does the emulator by
	// default.
	TrustTestTokenKey bool
	// VerboseEIP712 turns on the Ethereum app's "Verbose EIP-712" setting: a full EIP-712
	// message is shown field by field and signed without blind signing.
	VerboseEIP712 bool
	// Approver decides confirmation screens (default: a new auto-approving one).
	Approver *emulator.Approver
	// Faults holds injected faults (default: a new, empty set).
	Faults *emulator.Faults
	// Logger gets debug lines about exchanges (default: discards). Secrets are never logged.
	Logger *slog.Logger
}

// Device is one emulated Ledger-class device: the dashboard plus the Bitcoin, Bitcoin Test
// and Ethereum apps, one open at a time. Serve it over TCP with Serve/ListenAndServe
// (Speculos APDU framing) or in-process with Pipe. Commands are processed one at a time
// across all connections, as on a real device.
type Device struct {
	wallet    *emulator.Wallet
	policyKey [32]byte // SLIP-21 "LEDGER-Wallet policy" key for wallet-policy HMACs
	approver  *emulator.Approver
	faults    *emulator.Faults
	log       *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	continueTimeout time.Duration

	mu     sync.Mutex // serialises commands; guards the fields below
	app    string     // "" = dashboard
	locked bool
	blind  bool
	eth    ethState
	// Ethereum app state besides the flow in progress
	trustTestKey bool
	verbose712   bool
	assets       assetSlots
	eip712       *eip712Ctx
}

// New builds a device from cfg.
func New(cfg Config) (*Device, error) {
	mn := cfg.Mnemonic
	if mn == "" {
		mn = emulator.DefaultMnemonic
	}
	w, err := emulator.NewWallet(mn, cfg.Passphrase)
	if err != nil {
		return nil, err
	}
	seed := bip39.NewSeed(mn, cfg.Passphrase) // already validated by NewWallet
	d := &Device{
		wallet:    w,
		policyKey: slip21Key(seed, "LEDGER-Wallet policy"),
		approver:  cfg.Approver,
		faults:    cfg.Faults,
		log:       cfg.Logger,
		blind:     cfg.BlindSigning,

		trustTestKey: cfg.TrustTestTokenKey,
		verbose712:   cfg.VerboseEIP712,

		continueTimeout: continueTimeout,
	}
	clear(seed)
	if d.approver == nil {
		d.approver = emulator.NewApprover(emulator.PolicyAuto)
	}
	if d.faults == nil {
		d.faults = &emulator.Faults{}
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	switch cfg.App {
	case "", AppBitcoin:
		d.app = AppBitcoin
	case AppBitcoinTest, AppEthereum:
		d.app = cfg.App
	case appDashboard, "dashboard":
		d.app = ""
	default:
		return nil, fmt.Errorf("ledgeremu: unknown app %q (use %q, %q or %q)", cfg.App, AppBitcoin, AppBitcoinTest, AppEthereum)
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	return d, nil
}

// slip21Key derives a SLIP-21 node key for one label below the master node.
func slip21Key(seed []byte, label string) [32]byte {
	m := hmac.New(sha512.New, []byte("Symmetric key seed"))
	m.Write(seed)
	master := m.Sum(nil)
	c := hmac.New(sha512.New, master[:32])
	c.Write([]byte{0})
	c.Write([]byte(label))
	node := c.Sum(nil)
	var k [32]byte
	copy(k[:], node[32:])
	clear(master)
	clear(node)
	return k
}

// Wallet is the device's key store.
func (d *Device) Wallet() *emulator.Wallet { return d.wallet }

// Approver is the device's approval policy and screen transcript.
func (d *Device) Approver() *emulator.Approver { return d.approver }

// Faults is the device's fault injection.
func (d *Device) Faults() *emulator.Faults { return d.faults }

// App is the name of the open app ("BOLOS" on the dashboard).
func (d *Device) App() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.app == "" {
		return appDashboard
	}
	return d.app
}

// SetLocked locks or unlocks the device (PIN screen): while locked every APDU gets 0x5515.
func (d *Device) SetLocked(locked bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.locked = locked
}

// SetBlindSigning changes the Ethereum app's blind-signing setting.
func (d *Device) SetBlindSigning(on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.blind = on
}

// SetVerboseEIP712 changes the Ethereum app's "Verbose EIP-712" setting.
func (d *Device) SetVerboseEIP712(on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.verbose712 = on
}

// Close stops every connection and waits for their goroutines.
func (d *Device) Close() error {
	d.cancel()
	d.wg.Wait()
	return nil
}

// ListenAndServe listens on addr (HOST:PORT) and serves until ctx ends or Close.
func (d *Device) ListenAndServe(ctx context.Context, addr string) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("ledgeremu: listen on %s (is another emulator or speculos running?): %w", addr, err)
	}
	return d.Serve(ctx, ln)
}

// Serve accepts Speculos APDU connections on ln until ctx ends or Close; it closes ln.
func (d *Device) Serve(ctx context.Context, ln net.Listener) error {
	return emulator.ServeConns(ctx, d.ctx, ln, "ledgeremu", d.serveConn)
}

// Pipe returns the host end of an in-process link to the device carrying Speculos framing
// (net.Pipe). The device serves the other end until either end is closed or Close.
func (d *Device) Pipe() transport.Link {
	host, dev := net.Pipe()
	d.wg.Go(func() {
		d.serveConn(d.ctx, dev)
	})
	return host
}

// conn is one host connection.
type conn struct {
	d   *Device
	c   net.Conn
	ctx context.Context
}

// errDisconnect ends a connection on purpose (an injected disconnect).
var errDisconnect = errors.New("ledgeremu: injected disconnect")

func (d *Device) serveConn(ctx context.Context, c net.Conn) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	defer c.Close()
	cn := &conn{d: d, c: c, ctx: ctx}
	for {
		apdu, err := cn.read(0)
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil && !errors.Is(err, errDisconnect) {
				d.log.Debug("ledger emulator connection ended", "err", err)
			}
			return
		}
		data, sw, err := cn.handle(apdu)
		if errors.Is(err, errContinueTimeout) {
			d.log.Debug("ledger emulator dropped a command", "err", err)
			continue
		}
		if err != nil {
			d.log.Debug("ledger emulator connection dropped during a command", "err", err)
			return
		}
		if err := cn.write(data, sw); err != nil {
			return
		}
	}
}

// read reads one command APDU frame, applying the disconnect fault. timeout 0 waits until
// the connection ends.
func (cn *conn) read(timeout time.Duration) ([]byte, error) {
	if timeout > 0 {
		_ = cn.c.SetReadDeadline(time.Now().Add(timeout))
		defer cn.c.SetReadDeadline(time.Time{})
	}
	apdu, err := transport.ReadSpeculosAPDU(cn.c)
	if err != nil {
		return nil, err
	}
	if cn.d.faults.Incoming() {
		cn.d.log.Debug("ledger emulator: injected disconnect")
		cn.d.resetState()
		cn.c.Close()
		return nil, errDisconnect
	}
	return apdu, nil
}

// write sends one reply frame (header, data and status word in a single Write), applying
// the delay, drop and corrupt faults.
func (cn *conn) write(data []byte, sw uint16) error {
	if dl := cn.d.faults.Delay(); dl > 0 {
		t := time.NewTimer(dl)
		select {
		case <-t.C:
		case <-cn.ctx.Done():
			t.Stop()
			return cn.ctx.Err()
		}
	}
	frame := make([]byte, 4, 4+len(data)+2)
	frame[0], frame[1], frame[2], frame[3] = byte(len(data)>>24), byte(len(data)>>16), byte(len(data)>>8), byte(len(data))
	frame = append(frame, data...)
	frame = append(frame, byte(sw>>8), byte(sw))
	out, send := cn.d.faults.Outgoing(frame)
	if !send {
		cn.d.log.Debug("ledger emulator: injected drop of a reply", "sw", fmt.Sprintf("%04x", sw))
		return nil
	}
	if len(out) == len(frame) && &out[0] == &frame[0] {
		// Untouched: frame it through the shared codec.
		return transport.WriteSpeculosResponse(cn.c, data, sw)
	}
	_, err := cn.c.Write(out)
	return err
}

// resetState forgets any multi-APDU flow (a disconnect, as unplugging would).
func (d *Device) resetState() {
	d.eth = ethState{}
	d.assets = assetSlots{}
	d.eip712 = nil
}

// interrupt sends a Bitcoin app client command (SW 0xE000) and returns the data of the
// host's CONTINUE (F8 01). Any other APDU is answered 0x6A80 by the caller's reply and
// aborts the command.
func (cn *conn) interrupt(cmd []byte) ([]byte, error) {
	if err := cn.write(cmd, swInterrupted); err != nil {
		return nil, fmt.Errorf("%w: %w", errConnLost, err)
	}
	raw, err := cn.read(cn.d.continueTimeout)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// The app gives up on the command and answers nothing; a late CONTINUE then gets
		// 0xB007 (no interrupted command).
		return nil, errContinueTimeout
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errConnLost, err)
	}
	a, err := ParseAPDU(raw)
	if err != nil {
		return nil, fail(swWrongDataLength, "bad apdu while waiting for continue")
	}
	if a.CLA != claFramework || a.INS != insContinue {
		return nil, fail(swIncorrectData, "expected continue (f8 01), got %02x %02x", a.CLA, a.INS)
	}
	return a.Data, nil
}

// errConnLost aborts a command whose connection went away in the middle; errContinueTimeout
// one whose host did not answer a client command in time.
var (
	errConnLost        = errors.New("ledgeremu: connection lost in the middle of a command")
	errContinueTimeout = errors.New("ledgeremu: no continue from the host in time; command dropped")
)

// handle runs one command APDU and returns its final reply. err is non-nil only when the
// connection is gone.
func (cn *conn) handle(raw []byte) (data []byte, sw uint16, err error) {
	d := cn.d
	d.mu.Lock()
	defer d.mu.Unlock()
	a, perr := ParseAPDU(raw)
	if perr != nil {
		return nil, swWrongLength, nil
	}
	if d.locked {
		return nil, swLocked, nil
	}
	out, herr := cn.dispatch(a)
	if herr == nil {
		return out, swOK, nil
	}
	if errors.Is(herr, errConnLost) || errors.Is(herr, errContinueTimeout) {
		d.resetState()
		return nil, 0, herr
	}
	var se *swError
	if errors.As(herr, &se) {
		d.log.Debug("ledger emulator command refused", "cla", a.CLA, "ins", a.INS, "sw", fmt.Sprintf("%04x", se.sw), "why", se.msg)
		return se.data, se.sw, nil
	}
	d.log.Warn("ledger emulator command failed", "cla", a.CLA, "ins", a.INS, "err", herr)
	return nil, 0x6F00, nil
}

// dispatch routes one APDU to the OS, the dashboard or the open app.
func (cn *conn) dispatch(a APDU) ([]byte, error) {
	d := cn.d
	if a.CLA == claOS {
		switch a.INS {
		case insAppAndVer:
			return d.appAndVersion(), nil
		case insQuitApp:
			if d.app != "" {
				d.log.Debug("ledger emulator: app quit", "app", d.app)
			}
			d.app = ""
			d.resetState()
			return nil, nil
		}
		if d.app == "" {
			return nil, fail(swINSNotSupported, "unknown os instruction %02x", a.INS)
		}
	}
	switch d.app {
	case "":
		if a.CLA == claDashboard && a.INS == insOpenApp {
			return nil, cn.openApp(string(a.Data))
		}
		return nil, fail(swAppNotOpen, "no app open (the dashboard answers %02x %02x)", a.CLA, a.INS)
	case AppBitcoin, AppBitcoinTest:
		return cn.bitcoin(a)
	case AppEthereum:
		return cn.ethereum(a)
	}
	return nil, fail(swBadState, "unknown app %q", d.app)
}

// appAndVersion is the B0 01 reply: format 1, name, version, flags.
func (d *Device) appAndVersion() []byte {
	name, ver := appDashboard, osVersion
	switch d.app {
	case AppBitcoin, AppBitcoinTest:
		name, ver = d.app, bitcoinVersion
	case AppEthereum:
		name, ver = d.app, fmt.Sprintf("%d.%d.%d", ethMajor, ethMinor, ethPatch)
	}
	out := []byte{1, byte(len(name))}
	out = append(out, name...)
	out = append(out, byte(len(ver)))
	out = append(out, ver...)
	return append(out, 1, 0x02) // flags: 0x02 = PIN validated
}

// openApp switches from the dashboard to the named app (E0 D8).
func (cn *conn) openApp(name string) error {
	d := cn.d
	switch name {
	case AppBitcoin, AppBitcoinTest, AppEthereum:
	default:
		return fail(swAppNotInstalled, "app %q is not installed", name)
	}
	ok, err := cn.ask("Open application", name)
	if err != nil {
		return err
	}
	if !ok {
		return fail(0x5501, "user refused to open %s", name)
	}
	d.app = name
	d.resetState()
	return nil
}

// ask shows a confirmation screen and waits for the approver's decision. A wait cut short
// (the connection closed, the device stopped) ends the command.
func (cn *conn) ask(title string, lines ...string) (bool, error) {
	ok, err := cn.d.approver.Ask(cn.ctx, emulator.Screen{Device: "ledger", Title: title, Lines: lines})
	if err != nil {
		return false, fmt.Errorf("%w: %w", errConnLost, err)
	}
	return ok, nil
}

// show records an informational screen (a warning page of a review flow).
func (cn *conn) show(title string, lines ...string) {
	cn.d.approver.Show(emulator.Screen{Device: "ledger", Title: title, Lines: lines})
}

// Fingerprint is the master key fingerprint (73c5da0a for the default mnemonic).
func (d *Device) Fingerprint() uint32 { return d.wallet.Fingerprint() }

// TB is the part of testing.TB that NewForTest uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// NewForTest builds a device for a test (httptest style): it fails the test on a bad
// config and closes the device when the test ends. Use Pipe for in-process links or Serve
// on a loopback listener for TCP.
func NewForTest(tb TB, cfg Config) *Device {
	tb.Helper()
	d, err := New(cfg)
	if err != nil {
		tb.Fatalf("ledgeremu: %v", err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}
