package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/rpc"

	"github.com/hwbridge/hwbridge/daemon/audit"
	"github.com/hwbridge/hwbridge/daemon/journal"
	"github.com/hwbridge/hwbridge/daemon/keys"
	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/buildinfo"
)

// Hub is the part of the device hub (device.Hub) the daemon uses.
type Hub interface {
	Devices() []device.Info
	Select(ctx context.Context, sel string) (string, error)
	Do(ctx context.Context, path, label string, fn func(ctx context.Context, d device.Device) error) error
	Fingerprint(ctx context.Context, path string) (device.Fingerprint, error)
	XPub(ctx context.Context, path, label string, req device.XPubRequest) (string, error)
	Subscribe(buf int) (<-chan device.Event, func())
}

// Config configures a Daemon.
type Config struct {
	Socket  string // the API socket
	DataDir string // app keys, journal, audit log
	Hub     Hub
	Logger  *slog.Logger
	// ExtAPISocket serves go-ethereum's external-signer API (account_*) for the paired app
	// named ExtAPIApp; both empty: not served.
	ExtAPISocket string
	ExtAPIApp    string
	// ExtAPIAccounts is how many Ethereum accounts (m/44'/60'/0'/0/i) account_list shows
	// (DefaultExtAPIAccounts if 0).
	ExtAPIAccounts int
	// Window is the accepted timestamp skew (keys.DefaultWindow if 0).
	Window time.Duration
	// RotateOverlap is how long an app's old key keeps working after a rotation
	// (DefaultRotateOverlap if 0).
	RotateOverlap time.Duration
	// PairTimeout is how long a pairing request waits for the user (5 minutes if 0).
	PairTimeout time.Duration
	// MaxRequest, MaxConns and UnauthIdle bound the sockets (DefaultMaxRequest,
	// DefaultMaxConns, DefaultUnauthIdle if 0).
	MaxRequest int
	MaxConns   int
	UnauthIdle time.Duration
}

// GCPercent is the GOGC hwbridged runs with unless the environment sets one. Its live heap
// is a few MiB, so at Go's default of 100 a collection runs about every 160 calls (≈25 KB
// allocated per call) and sets the p99 of a read call: 2.0–2.3 ms at GOGC=100, 0.9–1.0 ms at
// 300 (BenchmarkDaemonLatency read=v1Address/devices=1/clients=1, which runs with it); the
// idle RSS stays ≈20 MiB (cmd/hwbridged BenchmarkStartup).
const GCPercent = 300

// Defaults.
const (
	DefaultExtAPIAccounts = 3
	DefaultRotateOverlap  = 10 * time.Minute
	CLIAppID              = "cli" // the local CLI's own app, re-keyed on every daemon start
)

// Version is this build's version (from the module's build info).
func Version() string { return buildinfo.Read("hwbridged").Version }

// Daemon is one running hwbridged.
type Daemon struct {
	cfg     Config
	log     *slog.Logger
	lock    *os.File
	audit   *audit.Log
	journal *journal.Journal
	apps    *keys.Store
	// policies are the Ledger wallet policy registrations kept (policies.go).
	policies *policyStore
	// pinPrompts are the PIN matrices waiting for sendpin (pin.go).
	pinPrompts pinPrompts
	verify     *keys.Verifier
	chains     *chainClients
	conns      conns
	workers    *workers        // runs the device-call handlers (workers.go)
	ctx        context.Context // ends at shutdown; subscriptions watch it
	stop       context.CancelFunc

	ethAddrMu sync.Mutex
	ethAddrs  map[string]string // device path|index → address (for account_list)
}

// Open prepares a daemon on its data directory: it takes the directory's lock (one daemon
// per data directory), opens the audit log, the journal and the app store, and writes a
// fresh key for the local CLI to DataDir/cli.key (mode 0600).
func Open(cfg Config) (*Daemon, error) {
	if cfg.Hub == nil {
		return nil, errors.New("daemon: no device hub")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ExtAPIAccounts <= 0 {
		cfg.ExtAPIAccounts = DefaultExtAPIAccounts
	}
	if cfg.MaxRequest <= 0 {
		cfg.MaxRequest = DefaultMaxRequest
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.UnauthIdle <= 0 {
		cfg.UnauthIdle = DefaultUnauthIdle
	}
	if cfg.RotateOverlap <= 0 {
		cfg.RotateOverlap = DefaultRotateOverlap
	}
	if cfg.RotateOverlap > keys.MaxRotateOverlap {
		return nil, fmt.Errorf("daemon: a rotation overlap of %s is above the %s allowed", cfg.RotateOverlap, keys.MaxRotateOverlap)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, log: cfg.Logger, lock: lock, ethAddrs: map[string]string{}}
	d.ctx, d.stop = context.WithCancel(context.Background())
	d.workers = newWorkers(d.ctx, cfg.MaxConns)
	fail := func(err error) (*Daemon, error) {
		d.Close()
		return nil, err
	}
	other := OtherState(cfg.DataDir)() // before the audit log is created
	if d.audit, err = audit.Open(filepath.Join(cfg.DataDir, AuditFile)); err != nil {
		return fail(err)
	}
	if d.journal, err = journal.Open(filepath.Join(cfg.DataDir, JournalFile), journal.Options{
		EncodeError: encodeJournalError, DecodeError: decodeJournalError, OtherState: func() bool { return other }}); err != nil {
		return fail(err)
	}
	if err := d.journal.Lost(); err != nil {
		d.log.Error("sends are refused", "err", err)
	}
	if d.apps, err = keys.Open(filepath.Join(cfg.DataDir, AppsFile), keys.Options{PairTimeout: cfg.PairTimeout}); err != nil {
		return fail(err)
	}
	if d.policies, err = openPolicies(filepath.Join(cfg.DataDir, PoliciesFile)); err != nil {
		return fail(err)
	}
	d.verify = keys.NewVerifier(d.apps, cfg.Window, nil)
	d.chains = newChainClients(d.log)
	cliKey, err := d.apps.Ensure(CLIAppID, "hwbridge CLI", keys.AllScopes)
	if err != nil {
		return fail(err)
	}
	if err := audit.WriteFileAtomic(filepath.Join(cfg.DataDir, CLIKeyFile), []byte(cliKey+"\n"), 0o600); err != nil {
		return fail(fmt.Errorf("write the cli key: %w", err))
	}
	return d, nil
}

// lockDataDir takes an exclusive flock on DataDir/hwbridged.lock.
func lockDataDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, LockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data directory lock: %w", err)
	}
	if err := lockNB(f); err != nil {
		f.Close()
		if errors.Is(err, errors.ErrUnsupported) {
			return nil, fmt.Errorf("data directory lock: %w", err)
		}
		return nil, fmt.Errorf("another hwbridged uses the data directory %s: stop it, or pass another --data-dir: %w", dir, ErrInUse)
	}
	return f, nil
}

// LockedByDaemon reports whether a daemon holds the data directory (for the CLI's direct
// edits of the app store).
func LockedByDaemon(dir string) bool {
	f, err := lockDataDir(dir)
	if err != nil {
		return errors.Is(err, ErrInUse)
	}
	f.Close()
	return false
}

// Close releases everything Open took.
func (d *Daemon) Close() error {
	d.stop()
	var errs []error
	if d.chains != nil {
		d.chains.close()
	}
	if d.journal != nil {
		errs = append(errs, d.journal.Close())
	}
	if d.audit != nil {
		errs = append(errs, d.audit.Close())
	}
	if d.lock != nil {
		errs = append(errs, d.lock.Close())
	}
	return errors.Join(errs...)
}

// Serve serves the API socket (and the external-signer socket if configured) until ctx
// ends, then stops accepting, waits for running requests to end (their contexts are
// cancelled), and removes the sockets.
func (d *Daemon) Serve(ctx context.Context) error {
	l, err := Listen(d.cfg.Socket, d.log)
	if err != nil {
		return err
	}
	srv := rpc.NewServer()
	if err := srv.RegisterName("hwbridge", &API{d: d}); err != nil {
		l.Close()
		return fmt.Errorf("register api: %w", err)
	}
	listeners := []net.Listener{l}
	servers := []*rpc.Server{srv}
	if d.cfg.ExtAPISocket != "" {
		el, err := Listen(d.cfg.ExtAPISocket, d.log)
		if err != nil {
			l.Close()
			return fmt.Errorf("external-signer socket: %w", err)
		}
		esrv := rpc.NewServer()
		if err := esrv.RegisterName("account", &ExtAPI{d: d}); err != nil {
			l.Close()
			el.Close()
			return fmt.Errorf("register external-signer api: %w", err)
		}
		listeners = append(listeners, el)
		servers = append(servers, esrv)
		d.log.Info("serving the external-signer api", "socket", d.cfg.ExtAPISocket, "app", d.cfg.ExtAPIApp)
	}
	d.log.Info("hwbridged listening", "socket", d.cfg.Socket, "build", buildinfo.Read("hwbridged").String())
	var wg sync.WaitGroup
	errc := make(chan error, len(listeners))
	for i, l := range listeners {
		idle := d.cfg.UnauthIdle
		if i > 0 {
			idle = 0 // the external-signer API has no keys: geth holds its connection open
		}
		wg.Go(func() {
			if err := d.conns.serve(servers[i], l, d.cfg.MaxConns, d.cfg.MaxRequest, idle, d.log); err != nil && !errors.Is(err, net.ErrClosed) {
				errc <- err
			}
		})
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	d.log.Info("hwbridged stopping")
	d.stop()
	for _, l := range listeners {
		l.Close()
	}
	for _, s := range servers {
		s.Stop()
	}
	wg.Wait()
	return serveErr
}

// record writes one audit record; a failure to audit fails the request. A durable record
// (signing, broadcast, admin) is fsync'ed before record returns, in a batch shared with
// concurrent calls; a read-only call's record is queued and durable within
// audit.DefaultLazyDelay plus one fsync (daemon/audit's package doc).
func (d *Daemon) record(app, method, dev, summary string, err error, durable bool) error {
	result := "ok"
	if err != nil {
		result = "error: " + err.Error()
	}
	e := audit.Entry{App: app, Method: method, Device: dev, Summary: summary, Result: result}
	var aerr error
	if durable {
		_, aerr = d.audit.Append(e)
	} else {
		aerr = d.audit.AppendLazy(e)
	}
	if aerr != nil {
		d.log.Error("audit append failed", "err", aerr)
		return fmt.Errorf("hwbridged could not write its audit log (check the disk): %w", aerr)
	}
	return nil
}
