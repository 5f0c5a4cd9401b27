package bitbox02

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"

	"github.com/flynn/noise"
	"golang.org/x/crypto/curve25519"

	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/transport"
)

// DefaultAddr is where the BitBox02 simulator listens (bitbox02-firmware
// test/simulator/simulator.c, port 15423).
const DefaultAddr = "127.0.0.1:15423"

// Version is the firmware version the emulator reports; the API it serves is that of
// firmware 9.21 (bitbox-api requires at least 9.15 for PSBTs, 9.10 for taproot).
const Version = "v9.21.0"

// Config configures a device. Zero values take the defaults noted per field.
type Config struct {
	// Mnemonic and Passphrase make the seed (default: emulator.DefaultMnemonic, none).
	Mnemonic   string
	Passphrase string
	// BTCOnly emulates the Bitcoin-only edition (no Ethereum).
	BTCOnly bool
	// Approver decides confirmation screens, the pairing code included (default: a new
	// auto-approving one).
	Approver *emulator.Approver
	// Logger gets debug lines about exchanges (default: discards). Secrets are never logged.
	Logger *slog.Logger
}

// Device is one emulated BitBox02: U2F HID packets on a TCP stream (as the simulator serves
// them) or an in-process pipe, the HWW framing, the Noise XX channel with pairing, and the
// protobuf API inside. Requests are processed one at a time per connection, as on a real
// device.
type Device struct {
	wallet   *emulator.Wallet
	approver *emulator.Approver
	log      *slog.Logger
	btcOnly  bool
	static   noise.DHKey // the device's Noise static key

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	paired     [][]byte          // host static keys whose pairing code the person confirmed
	registered map[string]string // multisig accounts: registration key → name
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
	d := &Device{wallet: w, approver: cfg.Approver, log: cfg.Logger, btcOnly: cfg.BTCOnly}
	if d.approver == nil {
		d.approver = emulator.NewApprover(emulator.PolicyAuto)
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	// A real BitBox02 makes its Noise key once from its RNG and keeps it in flash. The
	// emulator derives it from the seed so that it stays the same across restarts.
	mk := w.Master()
	kb, err := mk.ECPrivKey()
	if err != nil {
		return nil, err
	}
	priv := sha256.Sum256(append([]byte("hwbridge bitbox02 emulator noise static key"), kb.Serialize()...))
	pub, err := curve25519.X25519(priv[:], curve25519.Basepoint)
	if err != nil {
		return nil, err
	}
	d.static = noise.DHKey{Private: priv[:], Public: pub}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	return d, nil
}

// Wallet is the device's key store.
func (d *Device) Wallet() *emulator.Wallet { return d.wallet }

// Approver decides the device's screens and keeps its transcript.
func (d *Device) Approver() *emulator.Approver { return d.approver }

// Fingerprint is the master key fingerprint.
func (d *Device) Fingerprint() uint32 { return d.wallet.Fingerprint() }

// StaticKey is the device's Noise static public key.
func (d *Device) StaticKey() []byte { return d.static.Public }

// Close stops serving and waits for the connections to end.
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
		return fmt.Errorf("bitbox02emu: listen on %s (is another emulator or the simulator running?): %w", addr, err)
	}
	return d.Serve(ctx, ln)
}

// Serve accepts connections on ln until ctx ends or Close; it closes ln.
func (d *Device) Serve(ctx context.Context, ln net.Listener) error {
	return emulator.ServeConns(ctx, d.ctx, ln, "bitbox02emu", d.serveConn)
}

// Pipe returns the host end of an in-process link carrying the same 64-byte packets.
func (d *Device) Pipe() transport.Link {
	host, dev := net.Pipe()
	d.wg.Go(func() { d.serveConn(d.ctx, dev) })
	return host
}

// TB is the part of testing.TB that NewForTest uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// NewForTest builds a device for a test and closes it when the test ends.
func NewForTest(tb TB, cfg Config) *Device {
	tb.Helper()
	d, err := New(cfg)
	if err != nil {
		tb.Fatalf("bitbox02emu: %v", err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}

func (d *Device) isPaired(host []byte) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, h := range d.paired {
		if string(h) == string(host) {
			return true
		}
	}
	return false
}

func (d *Device) addPaired(host []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, h := range d.paired {
		if string(h) == string(host) {
			return
		}
	}
	d.paired = append(d.paired, append([]byte(nil), host...))
}

// HWW framing (bitbox02-firmware src/hww.c).
const (
	hwwReqNew    = 0x00
	hwwReqRetry  = 0x01
	hwwReqCancel = 0x02
	hwwReqInfo   = 'i'

	hwwRspAck      = 0x00
	hwwRspNotReady = 0x01
	hwwRspBusy     = 0x02
	hwwRspNack     = 0x03
)

// U2F HID error reply for a command the device does not serve (U2FHID_ERROR,
// ERR_INVALID_CMD).
const u2fErrInvalidCmd = 0x01

// conn is one host connection: its Noise state and its request in flight.
type conn struct {
	d   *Device
	c   net.Conn
	ctx context.Context

	noise *noiseState
	api   *apiWorker
	job   *job // the HWW request still running (answered NOT_READY), or nil
}

func (d *Device) serveConn(ctx context.Context, c net.Conn) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	defer c.Close()
	cn := &conn{d: d, c: c, ctx: ctx, noise: &noiseState{}}
	cn.api = newAPIWorker(cn)
	defer cn.api.stop()
	pkt := make([]byte, transport.U2FPacketSize)
	for {
		if _, err := io.ReadFull(c, pkt); err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				d.log.Debug("bitbox02 emulator connection ended", "err", err)
			}
			return
		}
		cid := binary.BigEndian.Uint32(pkt[0:4])
		rd := transport.U2FReader{CID: cid}
		done, err := rd.Add(pkt)
		for err == nil && !done {
			if _, err = io.ReadFull(c, pkt); err == nil {
				done, err = rd.Add(pkt)
			}
		}
		if err != nil {
			d.log.Debug("bitbox02 emulator: bad packet", "err", err)
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
				return
			}
			if werr := transport.WriteU2F(c, cid, transport.U2FCmdError, []byte{u2fErrInvalidCmd}); werr != nil {
				return
			}
			continue
		}
		cmd, msg := rd.Message()
		var reply []byte
		if cmd != transport.U2FCmdBitBox02 {
			cmd, reply = transport.U2FCmdError, []byte{u2fErrInvalidCmd}
		} else {
			reply = cn.hww(msg)
		}
		if err := transport.WriteU2F(c, cid, cmd, reply); err != nil {
			return
		}
	}
}

// hww answers one HWW request.
func (cn *conn) hww(msg []byte) []byte {
	if len(msg) == 0 {
		return []byte{hwwRspNack}
	}
	switch msg[0] {
	case hwwReqInfo:
		return cn.d.info()
	case hwwReqNew:
		if cn.job != nil {
			return []byte{hwwRspBusy}
		}
		j := cn.start(msg[1:])
		return cn.await(j, true)
	case hwwReqRetry:
		if cn.job == nil {
			return []byte{hwwRspNack}
		}
		// The firmware answers RETRY with the result once its task is done, and NOT_READY
		// while it runs; the emulator waits for the result, which saves the host's polls.
		// A NOT_READY comes back only while a screen waits in prompt mode, so that a host
		// that gave up can tell the request still stands.
		if _, ok := cn.d.approver.Pending(); ok {
			select {
			case r := <-cn.job.done:
				cn.job = nil
				return append([]byte{hwwRspAck}, r...)
			default:
				return []byte{hwwRspNotReady}
			}
		}
		return cn.await(cn.job, false)
	case hwwReqCancel:
		return []byte{hwwRspNack} // the firmware cancels nothing either
	}
	return []byte{hwwRspNack}
}

// info is the 'i' reply (src/hww.c _api_info): version, platform BitBox02, edition,
// unlocked, initialized.
func (d *Device) info() []byte {
	b := append([]byte{byte(len(Version))}, Version...)
	edition := byte(0x00)
	if d.btcOnly {
		edition = 0x01
	}
	return append(b, 0x00, edition, 0x01, 0x01)
}

// job is one HWW request being processed. The firmware spins a request's task once: a
// task that finishes without waiting for the person is answered at once (ACK), one that
// puts up a screen is answered NOT_READY and then polled with RETRY.
type job struct {
	done    chan []byte
	blocked chan struct{}
	once    sync.Once
}

// waiting marks the job as waiting for the person.
func (j *job) waiting() { j.once.Do(func() { close(j.blocked) }) }

func (cn *conn) start(req []byte) *job {
	j := &job{done: make(chan []byte, 1), blocked: make(chan struct{})}
	go func() { j.done <- cn.process(j, req) }()
	return j
}

// await answers for j: ACK with its result, or NOT_READY if it waits for the person (only
// for the first answer; a RETRY waits for the result).
func (cn *conn) await(j *job, first bool) []byte {
	if first {
		select {
		case r := <-j.done:
			return append([]byte{hwwRspAck}, r...)
		case <-j.blocked:
			cn.job = j
			return []byte{hwwRspNotReady}
		}
	}
	select {
	case r := <-j.done:
		cn.job = nil
		return append([]byte{hwwRspAck}, r...)
	case <-cn.ctx.Done():
		return []byte{hwwRspNack}
	}
}

// ask puts up a confirmation screen for the job's request.
func (cn *conn) ask(j *job, title string, lines ...string) (bool, error) {
	j.waiting()
	return cn.d.approver.Ask(cn.ctx, emulator.Screen{Device: "bitbox02", Title: title, Lines: lines})
}

// show records an informational screen.
func (cn *conn) show(title string, lines ...string) {
	cn.d.approver.Show(emulator.Screen{Device: "bitbox02", Title: title, Lines: lines})
}
