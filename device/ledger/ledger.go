package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/transport"
)

// Defaults for Options.
const (
	// DefaultTimeout bounds one operation (including the time the user takes to confirm)
	// when the caller's context has no earlier deadline.
	DefaultTimeout = 5 * time.Minute
	// DefaultLinkTimeout bounds each APDU exchange whose reply cannot follow a screen. A
	// Ledger app sends nothing while it shows a screen, so the driver decides from the
	// protocol which replies may wait for the person (see screen in apdu.go and
	// psbtScreens): those wait until the operation's deadline; every other reply must come
	// within DefaultLinkTimeout, or the call fails with device.ErrLinkLost and the next call
	// re-opens and drains the link. Real apps answer them in milliseconds (the Bitcoin app
	// itself gives up on a client command after about 5 s).
	DefaultLinkTimeout = 3 * time.Second
	// drainQuiet is how long the link must stay silent while stale replies are drained.
	drainQuiet = 50 * time.Millisecond
	// appSwitchTimeout bounds waiting for an app to start or quit after OPEN_APP/QUIT_APP.
	appSwitchTimeout = 15 * time.Second
	// appPollInterval is how often B0 01 is asked while an app starts (Speculos ticks
	// every 100 ms).
	appPollInterval = 100 * time.Millisecond
)

// App names as the OS reports them in B0 01 and takes in OPEN_APP (ledger.md §4).
const (
	AppBitcoin     = "Bitcoin"
	AppBitcoinTest = "Bitcoin Test"
	AppEthereum    = "Ethereum"
	appBitcoinRec  = "Bitcoin Recovery" // mainnet, all paths allowed
)

// Minimum app versions this driver speaks.
var (
	minBitcoinVersion = [3]int{2, 1, 0} // the v2 protocol (wallet policies, merkleised PSBTs)
	minEthEIP1559     = [3]int{1, 9, 0} // typed transactions
)

// Options configure a Driver. The zero value works.
type Options struct {
	// Logger receives debug records of the exchanges (APDU headers and status words, never
	// data).
	Logger *slog.Logger
	// Timeout bounds each operation when ctx has no earlier deadline (DefaultTimeout if 0).
	Timeout time.Duration
	// LinkTimeout bounds each exchange whose reply cannot follow a screen
	// (DefaultLinkTimeout if 0).
	LinkTimeout time.Duration
	// OnScreen is called once per operation when it sends an APDU whose reply may come only
	// after the person acts on a screen (a review, an address or key to compare, an app to
	// open): a UI can then say "confirm on your device".
	OnScreen func()
	// OpenApp lets the driver open the app a request needs: from the dashboard with
	// OPEN_APP, and from another app by quitting it first (QUIT_APP), as Ledger Live does,
	// but only for calls whose context says the person asked for it
	// (device.WithAppSwitch: signing, showing an address). Features never switches, nor
	// does any call without that context: it fails with device.ErrWrongApp naming the app
	// to open, and the app the person has open stays open. Leave it off
	// for a device that cannot switch (Speculos runs one app and exits on QUIT_APP). Over
	// USB a real device re-enumerates when an app starts, so the link must be reopened.
	OpenApp bool
	// Model names the device model in Features (the caller knows it from the USB product
	// id); "ledger" if empty.
	Model string
	// Emulator marks the device as an emulator in Features.
	Emulator bool
	// TokenDescriptors are extra ERC-20 token descriptors (E0 0A payloads) beside the
	// embedded Ledger-signed ones (tokens/): only descriptors signed with a key the device
	// trusts help, so this is for emulators that trust a test key (internal/ledgercal) and
	// the dev-chain tokens of tests and the demo.
	TokenDescriptors [][]byte
	// TestTokenKey (with Emulator) signs a descriptor with the emulator test key for a token
	// call that has none, from the token the caller names (device.WithToken): for an
	// emulator that trusts that key (hwemu --ledger-test-token-key) and dev-chain tokens.
	TestTokenKey bool
	// Wallets are registered wallet policies with the HMAC their registration returned,
	// so that signing with them needs no new registration.
	Wallets []device.RegisteredWallet
	// Reopen, if set, opens a fresh exchanger to the same device. The driver calls it at
	// the start of the next operation after the link failed (disconnect, timeout, a garbled
	// reply), then drains it, so that a dropped or corrupted frame costs one call, not the
	// session. Without it the driver drains the old exchanger in place when it can (a
	// *transport.Exchanger); otherwise such failures persist as device.ErrDisconnected
	// until the caller reopens.
	Reopen func(ctx context.Context) (transport.APDUExchanger, error)
}

// Driver is one Ledger reached through an APDU exchanger (Speculos TCP framing or Ledger
// HID framing). It implements device.Device. Methods are safe for concurrent use; every
// operation holds the driver for its whole APDU exchange.
type Driver struct {
	ex   transport.APDUExchanger
	opts Options
	log  *slog.Logger

	mu     sync.Mutex // held for a whole operation; guards the fields below
	broken error      // why the link failed, or nil
	// screenLeft: an exchange that may have put up a screen ended without its reply (the
	// caller gave up): a Ledger cannot take a screen down from the host, so the app may
	// answer nothing until the person dismisses it. The next exchange waits for the person.
	screenLeft bool
	fp         *device.Fingerprint
	wallets    map[[32]byte]device.RegisteredWallet // by wallet id
	xpubs      map[string]string                    // app + path → xpub, served by the open app
}

var _ device.Device = (*Driver)(nil)

// New returns a driver for the Ledger behind ex. It does not talk to the device until the
// first call. Close closes ex if it has a Close method.
func New(ex transport.APDUExchanger, opts Options) *Driver {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.LinkTimeout <= 0 {
		opts.LinkTimeout = DefaultLinkTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Driver{ex: ex, opts: opts, log: log, wallets: map[[32]byte]device.RegisteredWallet{}, xpubs: map[string]string{}}
	for _, w := range opts.Wallets {
		d.wallets[PolicyID(w.Policy)] = w
	}
	return d
}

// Wallets returns the wallet policies registered so far (given in Options.Wallets, by
// RegisterWallet, or by SignPSBT for a multisig input), to be kept by the caller: the
// device keeps no list, and another registration costs the user a review.
func (d *Driver) Wallets() []device.RegisteredWallet {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]device.RegisteredWallet, 0, len(d.wallets))
	for _, w := range d.wallets {
		out = append(out, w)
	}
	slices.SortFunc(out, func(a, b device.RegisteredWallet) int {
		return strings.Compare(a.Policy.Name+a.Policy.Template, b.Policy.Name+b.Policy.Template)
	})
	return out
}

// Close releases the exchanger.
func (d *Driver) Close() error {
	if c, ok := d.ex.(interface{ Close() error }); ok {
		return c.Close()
	}
	return nil
}

// session is one operation holding the driver's lock.
type session struct {
	d    *Driver
	ctx  context.Context
	op   string
	app  string  // the app the operation needs, "" for OS commands
	info appInfo // what B0 01 reported when the app was checked
	// prompted: Options.OnScreen was called for this operation.
	prompted bool
	// mayswitch: the driver may quit the open app and open s.app (Options.OpenApp and
	// a context from device.WithAppSwitch).
	mayswitch bool
}

// do runs fn as one operation: it takes the lock, bounds ctx, makes sure app is open
// (app "" skips that) and translates errors.
func (d *Driver) do(ctx context.Context, op, app string, fn func(s *session) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.opts.Timeout)
		defer cancel()
	}
	s := &session{d: d, ctx: ctx, op: op, app: app, mayswitch: d.opts.OpenApp && device.AppSwitchAllowed(ctx)}
	err := func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.broken != nil {
			if err := d.recoverLink(ctx); err != nil {
				return err
			}
		}
		if app != "" {
			if err := s.ensureApp(); err != nil {
				return err
			}
		}
		return fn(s)
	}()
	if err == nil {
		return nil
	}
	if errors.Is(err, device.ErrLocked) {
		d.fp = nil // another PIN may unlock another seed
		clear(d.xpubs)
	}
	if linkFailure(err) {
		d.broken = err
	}
	// A device.Error already names the family and the operation (as the Trezor driver
	// leaves it); prefixing it again printed "ledger: get xpub: ledger: get xpub: status …".
	var de *device.Error
	if errors.As(err, &de) && (de.Op == op || de.Op == "") {
		if de.Op == "" {
			de.Op = op
		}
		return err
	}
	return fmt.Errorf("ledger: %s: %w", op, err)
}

// linkFailure reports errors after which the link may be out of step with the device: no
// status word came back, or the reply made no sense.
func linkFailure(err error) bool {
	var de *device.Error
	if errors.As(err, &de) {
		return false // the device answered with a status word
	}
	return errors.Is(err, device.ErrDisconnected) || errors.Is(err, device.ErrProtocol) || errors.Is(err, device.ErrLinkLost) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// callerDone reports whether the caller's context ended (its deadline may be reached a hair
// before its timer fires: the link's deadline is the same instant).
func callerDone(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// drainer is an exchanger that can drop stale replies and get back in step
// (*transport.Exchanger).
type drainer interface {
	Drain(ctx context.Context, quiet time.Duration) error
}

// recoverLink brings a failed link back in step before the next exchange: it replaces the
// exchanger with a fresh one from Options.Reopen, then drains stale replies (a late answer
// to the abandoned exchange). Without Reopen it drains the old exchanger in place. An app
// still waiting for a CONTINUE drops its command at the next APDU (appInfo asks again).
func (d *Driver) recoverLink(ctx context.Context) error {
	if d.opts.Reopen == nil {
		if _, ok := d.ex.(drainer); !ok {
			return nil // the exchanger reports the failure itself (ErrOutOfSync)
		}
	}
	d.log.Info("re-syncing ledger link", "after", d.broken, "reopen", d.opts.Reopen != nil)
	if d.opts.Reopen != nil {
		_ = d.Close()
		ex, err := d.opts.Reopen(ctx)
		if err != nil {
			return fmt.Errorf("%w: reopen after %w: %w", device.ErrDisconnected, d.broken, err)
		}
		d.ex = ex
		d.fp = nil
		clear(d.xpubs)
	}
	if dr, ok := d.ex.(drainer); ok {
		if err := dr.Drain(ctx, drainQuiet); err != nil {
			return fmt.Errorf("%w: re-sync after %w: %w", device.ErrDisconnected, d.broken, err)
		}
	}
	d.broken = nil
	return nil
}

// exchange sends one command and returns the reply data and status word. Transport
// failures come back as errors; status words are the caller's. A command whose reply may
// follow a screen (c.screen) waits until the operation's deadline and tells
// Options.OnScreen; any other gets the link timeout, after which it fails with
// device.ErrLinkLost.
func (s *session) exchange(c command) ([]byte, uint16, error) {
	apdu, err := c.encode()
	if err != nil {
		return nil, 0, err
	}
	ctx := s.ctx
	if s.d.screenLeft {
		c.screen = true
	}
	if c.screen {
		if !s.prompted && s.d.opts.OnScreen != nil {
			s.prompted = true
			s.d.opts.OnScreen()
		}
	} else {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.d.opts.LinkTimeout)
		defer cancel()
	}
	resp, err := s.d.ex.Exchange(ctx, apdu)
	s.d.screenLeft = err != nil && c.screen
	if err != nil {
		s.d.log.Debug("apdu failed", "op", s.op, "header", fmt.Sprintf("%x", apdu[:4]), "err", err)
		if !c.screen && !callerDone(s.ctx) && errors.Is(err, context.DeadlineExceeded) {
			// not wrapping err: the caller's deadline did not pass
			return nil, 0, fmt.Errorf("%w (no reply to %x for %v; no screen can precede it): %v",
				device.ErrLinkLost, apdu[:4], s.d.opts.LinkTimeout, err)
		}
		return nil, 0, transportError(err)
	}
	data, sw, err := splitReply(resp)
	if err != nil {
		return nil, 0, err
	}
	s.d.log.Debug("apdu", "op", s.op, "header", fmt.Sprintf("%x", apdu[:4]), "lc", len(c.data), "reply", len(data), "sw", fmt.Sprintf("%04x", sw))
	return data, sw, nil
}

// call sends one command and returns its data on 0x9000; any other status word is an
// error naming the operation.
func (s *session) call(c command) ([]byte, error) {
	data, sw, err := s.exchange(c)
	if err != nil {
		return nil, err
	}
	if sw != swOK {
		return nil, s.statusError(sw, data)
	}
	return data, nil
}

// statusError is statusError for this session: an app that B0 01 showed to be the right
// one and that answers 0x6D00 lacks the command (too old), rather than being the wrong app.
func (s *session) statusError(sw uint16, data []byte) error {
	if sw == swINSNotSupported && s.info.Name != "" && appMatches(s.info.Name, s.app) {
		return &device.Error{Op: s.op, Family: device.FamilyLedger, Code: int(sw), Kind: errors.ErrUnsupported,
			Message: fmt.Sprintf("the %s app %s does not know this command: update it with Ledger Live", s.info.Name, s.info.Version)}
	}
	return statusError(s.op, s.app, sw, data)
}

// transportError maps a failed exchange onto the device taxonomy: a link that went away
// or fell out of step is ErrDisconnected (reopen the device); a reply that does not frame
// is ErrProtocol. An ended context stays as it is.
func transportError(err error) error {
	switch {
	case errors.Is(err, transport.ErrClosed), errors.Is(err, transport.ErrOutOfSync), errors.Is(err, transport.ErrNoDevice):
		return fmt.Errorf("%w: %w", device.ErrDisconnected, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("the device did not answer in time while a confirmation may have been on its screen (confirm or reject it there; the next call re-syncs the link): %w", err)
	case errors.Is(err, context.Canceled):
		return err
	}
	return fmt.Errorf("%w: garbled reply (no confirmation was pending; the next call re-opens and drains the link): %w", device.ErrProtocol, err)
}

// appInfo asks which app is open (B0 01). A Bitcoin app left waiting for a CONTINUE
// (the host gave up on a client command) answers the next APDU with 0x6A80 and drops the
// command; B0 01 is then asked again.
func (s *session) appInfo() (appInfo, error) {
	data, sw, err := s.exchange(command{cla: claOS, ins: insAppInfo})
	if err == nil && sw == swIncorrectData {
		data, sw, err = s.exchange(command{cla: claOS, ins: insAppInfo})
	}
	if err != nil {
		return appInfo{}, err
	}
	if sw != swOK {
		return appInfo{}, statusError(s.op, "", sw, nil)
	}
	return parseAppInfo(data)
}

// appMatches reports whether the open app serves requests for want.
func appMatches(open, want string) bool {
	if open == want {
		return true
	}
	return want == AppBitcoin && open == appBitcoinRec
}

// ensureApp checks that s.app is open, opening it only if s.mayswitch.
func (s *session) ensureApp() error {
	info, err := s.appInfo()
	if err != nil {
		return err
	}
	if !appMatches(info.Name, s.app) {
		if !s.mayswitch {
			return s.wrongApp(info.Name)
		}
		if info, err = s.switchApp(info.Name); err != nil {
			return err
		}
	}
	s.info = info
	if s.app == AppBitcoin || s.app == AppBitcoinTest {
		if v, ok := parseVersion(info.Version); ok && versionLess(v, minBitcoinVersion) {
			return fmt.Errorf("the %s app is version %s, which lacks the v2 protocol: update it to 2.1.0 or later with Ledger Live: %w", info.Name, info.Version, errors.ErrUnsupported)
		}
	}
	return nil
}

func (s *session) wrongApp(open string) error {
	what := "the " + open + " app is open"
	if open == dashboardName {
		what = "the dashboard is showing"
	}
	return &device.Error{Op: s.op, Family: device.FamilyLedger, Code: int(swCLANotSupported), Kind: device.ErrWrongApp,
		Message: openAppMessage(s.app) + " (" + what + ")"}
}

// switchApp quits the open app (if any) and opens s.app from the dashboard.
func (s *session) switchApp(open string) (appInfo, error) {
	ctx, cancel := context.WithTimeout(s.ctx, appSwitchTimeout)
	defer cancel()
	sub := &session{d: s.d, ctx: ctx, op: s.op, app: s.app, mayswitch: true}
	if open != dashboardName {
		s.d.log.Info("quitting ledger app", "app", open, "want", s.app)
		data, sw, err := sub.exchange(command{cla: claOS, ins: insQuitApp})
		if err != nil {
			return appInfo{}, err
		}
		if sw != swOK {
			if sw == swINSNotSupported || sw == swCLANotSupported {
				return appInfo{}, s.wrongApp(open) // the app cannot be quit from the host
			}
			return appInfo{}, statusError(s.op, s.app, sw, data)
		}
		if _, err := sub.waitApp(dashboardName); err != nil {
			return appInfo{}, err
		}
	}
	s.d.log.Info("opening ledger app", "app", s.app)
	// the dashboard asks the person to allow the app to open
	data, sw, err := sub.exchange(command{cla: claDashboard, ins: insOpenApp, data: []byte(s.app), screen: true})
	if err != nil {
		return appInfo{}, err
	}
	if sw != swOK {
		return appInfo{}, statusError(s.op, s.app, sw, data)
	}
	return sub.waitApp(s.app)
}

// waitApp polls B0 01 until the app named want is open. Status words (an app still
// starting) keep it polling; a failed link or a locked device ends it.
func (s *session) waitApp(want string) (appInfo, error) {
	t := time.NewTicker(appPollInterval)
	defer t.Stop()
	for {
		info, err := s.appInfo()
		switch {
		case err == nil && appMatches(info.Name, want):
			return info, nil
		case errors.Is(err, device.ErrLocked):
			return appInfo{}, err
		case err != nil:
			var de *device.Error
			if !errors.As(err, &de) && !errors.Is(err, device.ErrProtocol) {
				return appInfo{}, err
			}
		}
		select {
		case <-s.ctx.Done():
			return appInfo{}, fmt.Errorf("waiting for the %s app to open: %w", want, s.ctx.Err())
		case <-t.C:
		}
	}
}

// parseVersion reads "major.minor.patch" (a suffix such as "-rc1" is ignored).
func parseVersion(v string) ([3]int, bool) {
	var out [3]int
	parts := strings.SplitN(v, ".", 3)
	if len(parts) != 3 {
		return out, false
	}
	for i, p := range parts {
		if j := strings.IndexFunc(p, func(r rune) bool { return r < '0' || r > '9' }); j >= 0 {
			p = p[:j]
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			return out, false
		}
		out[i] = n
	}
	return out, true
}

func versionLess(a, b [3]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// Features reports the open app and what the driver supports. A locked device reports
// Unlocked false.
func (d *Driver) Features(ctx context.Context) (device.Features, error) {
	f := device.Features{
		Family:       device.FamilyLedger,
		Vendor:       "ledger.com",
		Model:        d.opts.Model,
		Initialized:  true,
		PINProtected: true,
		Unlocked:     true,
		Emulator:     d.opts.Emulator,
		Capabilities: device.Capabilities{Taproot: true, Multisig: true, EIP1559: true, EIP712Hash: true, DisplayAddress: true},
	}
	if f.Model == "" {
		f.Model = "ledger"
	}
	err := d.do(ctx, "features", "", func(s *session) error {
		info, err := s.appInfo()
		if errors.Is(err, device.ErrLocked) {
			f.Unlocked = false
			f.Version = "locked"
			return nil
		}
		if err != nil {
			return err
		}
		f.Version = info.Version
		if info.Name != dashboardName {
			f.App = info.Name
		}
		return nil
	})
	if err != nil {
		return device.Features{}, err
	}
	return f, nil
}

// bitcoinApp is the app that serves net: "Bitcoin" for coin type 0, "Bitcoin Test" for
// the test networks (testnet, signet and regtest all use the test app).
func bitcoinApp(net *chaincfg.Params) string {
	if net == nil || net.HDCoinType == 0 {
		return AppBitcoin
	}
	return AppBitcoinTest
}

func netOrMain(net *chaincfg.Params) *chaincfg.Params {
	if net == nil {
		return &chaincfg.MainNetParams
	}
	return net
}
