// Package coldcard is hwbridge's Coldcard-class emulator: the Coldcard USB protocol
// (ckcc-protocol PROTOCOL.md, protocol.py; firmware shared/usb.py) served on a unix datagram
// socket as the Coldcard simulator serves it (one 64-byte packet per datagram, replies to the
// sender's bound path), so ckcc's `ckcc --simulator` and hwbridge's unix:PATH both reach it.
//
// It keeps the firmware's state machine: the 'ncry' ECDH session (AES-256-CTR, counters
// from zero, the reply to 'ncry' in clear), 'mitm' signing the session key with the master
// key, a PSBT uploaded in 256-byte-aligned blocks with a running sha256 ('upld', 'sha2'),
// 'stxn' starting the approval and 'stok' polled until the person decides (okay while
// waiting, refu, err_, or strx with the result's length and hash), 'dwld' reading the
// result, 'smsg'/'smok' for BIP-137 messages, 'xpub', 'show', 'vers', 'blkc', 'ping'.
// Screens go to the emulator.Approver (transcript, auto/reject/prompt). Like the other
// personas it shares only the transport framing with the driver in device/coldcard.
// SignFile and ServeCard sign PSBT files as from its microSD card (microsd.go).
package coldcard

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/chaincfg"

	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/transport"
)

// Limits from ckcc/constants.py.
const (
	maxBlock   = 2048       // MAX_BLK_LEN
	maxTxn     = 384 * 1024 // MAX_TXN_LEN (Mk3)
	maxUpload  = 2 * maxTxn // MAX_UPLOAD_LEN
	maxMessage = 240        // MSG_SIGNING_MAX_LENGTH
	maxDepth   = 12         // MAX_PATH_DEPTH

	stxnFinalize  = 0x01
	stxnVisualize = 0x02
	stxnFlagsMask = 0x07
)

// Version lines 'vers' answers: date, version, bootloader, date-version, hardware label.
var versionLines = []string{"2025-09-30", "5.4.4", "3.2.0", "250930154430", "mk4"}

// Options configure a Device.
type Options struct {
	Mnemonic   string // BIP-39 words (emulator.DefaultMnemonic if empty)
	Passphrase string // BIP-39 passphrase (the Coldcard's "passphrase" feature, already applied)
	// Chain is the chain setting: "BTC" (default), "XTN" (testnet) or "XRT" (regtest). It
	// selects the address encoding and xpub/tpub version bytes.
	Chain    string
	Approver *emulator.Approver // nil: approve everything
	// Faults, if set, drops, corrupts or delays reply packets, or makes the device forget
	// the session at a request (no reply), as the control API arms them.
	Faults *emulator.Faults
	Logger *slog.Logger
}

// Device is one emulated Coldcard.
type Device struct {
	w        *emulator.Wallet
	chain    string
	net      *chaincfg.Params
	approver *emulator.Approver
	faults   *emulator.Faults
	log      *slog.Logger

	mu   sync.Mutex // guards everything below (one request at a time, and the approvals)
	sess *transport.ColdcardSession
	// bound: ncry version 2 was used: every request must be encrypted, no re-keying.
	bound bool
	// encReq: the last request that got past framing was encrypted (encrypted_req).
	encReq   bool
	psram    [2][]byte // file 0: the upload; file 1: the signing result
	checksum hash.Hash
	active   *action // the request waiting for the person (UserAuthorizedAction)
	// ephemeral makes the session key pair of each ncry; nil: a fresh random one. The
	// transcript replay sets it to the recorded run's key.
	ephemeral func() (*btcec.PrivateKey, error)
	ctx       context.Context
	stop      context.CancelFunc
}

// action is a request waiting for the person's decision.
type action struct {
	kind    string // "stok" or "smok"
	done    bool
	refused bool
	failed  string
	result  []byte // smok: the signature; stok: in psram[1]
	address string
	length  int
	sha     [32]byte
}

// New builds a device.
func New(o Options) (*Device, error) {
	m := o.Mnemonic
	if m == "" {
		m = emulator.DefaultMnemonic
	}
	w, err := emulator.NewWallet(m, o.Passphrase)
	if err != nil {
		return nil, err
	}
	return newDevice(w, o)
}

func newDevice(w *emulator.Wallet, o Options) (*Device, error) {
	d := &Device{w: w, approver: o.Approver, faults: o.Faults, log: o.Logger, checksum: sha256.New()}
	if d.approver == nil {
		d.approver = emulator.NewApprover(emulator.PolicyAuto)
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	switch o.Chain {
	case "", "BTC":
		d.chain, d.net = "BTC", &chaincfg.MainNetParams
	case "XTN":
		d.chain, d.net = "XTN", &chaincfg.TestNet3Params
	case "XRT":
		d.chain, d.net = "XRT", &chaincfg.RegressionNetParams
	default:
		return nil, fmt.Errorf("coldcard emulator: chain %q (use BTC, XTN or XRT)", o.Chain)
	}
	d.ctx, d.stop = context.WithCancel(context.Background())
	return d, nil
}

// Close cancels screens still waiting.
func (d *Device) Close() error {
	d.stop()
	return nil
}

// Server is a device listening on its unix datagram socket.
type Server struct {
	d    *Device
	conn *net.UnixConn
	path string
}

// Listen binds the simulator socket at path (a stale socket file there is replaced).
func (d *Device) Listen(path string) (*Server, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		_ = os.Remove(path)
	}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("coldcard emulator: listen on unix:%s: %w", path, err)
	}
	return &Server{d: d, conn: c, path: path}, nil
}

// Path is the socket's path.
func (s *Server) Path() string { return s.path }

// Serve answers packets until ctx ends; it then closes the socket and removes its path.
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { _ = s.conn.Close() })
	defer stop()
	defer os.Remove(s.path)
	defer s.conn.Close()
	var ra transport.ColdcardReassembler
	ra.Max = transport.ColdcardMaxRequest
	buf := make([]byte, 4096)
	for {
		n, from, err := s.conn.ReadFromUnix(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("coldcard emulator: read: %w", err)
		}
		if from == nil || from.Name == "" {
			continue // an unbound client cannot be answered
		}
		msg, enc, done, err := ra.Add(buf[:n])
		var reply []byte
		var replyEnc bool
		switch {
		case err != nil:
			reply, replyEnc = s.d.framing(framingReason(err, n))
		case !done:
			continue
		case s.d.faults.Incoming():
			s.d.forget()
			continue
		default:
			reply, replyEnc = s.d.Handle(msg, enc)
		}
		pkts, perr := transport.ColdcardPackets(reply, replyEnc)
		if perr != nil {
			return perr
		}
		if wait := s.d.faults.Delay(); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
		}
		for _, p := range pkts {
			p, ok := s.d.faults.Outgoing(p)
			if !ok {
				continue
			}
			if _, err := s.conn.WriteToUnix(p, from); err != nil {
				s.d.log.Debug("coldcard emulator: reply not delivered", "err", err)
				break
			}
		}
	}
}

// forget drops the session, as a power cycle would (the disconnect fault).
func (d *Device) forget() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sess, d.bound, d.encReq = nil, false, false
}

func framingReason(err error, n int) string {
	switch {
	case n < transport.ColdcardPacketSize:
		return "short"
	case n > transport.ColdcardPacketSize:
		return "long"
	case strings.Contains(err.Error(), "longer"):
		return "xlong"
	}
	return "badsz"
}

// Handle answers one whole request (as reassembled from packets, encrypted or not) with
// the reply and whether it is encrypted. It is the firmware's usb_hid_recv after framing.
func (d *Device) Handle(msg []byte, encrypted bool) ([]byte, bool) {
	if len(msg) < 4 {
		return d.framing("badsz")
	}
	d.mu.Lock()
	if !encrypted && d.bound {
		d.mu.Unlock()
		return d.framing("must encrypt")
	}
	if encrypted {
		if d.sess == nil {
			d.mu.Unlock()
			return d.framing("no key")
		}
		msg = d.sess.Open(msg)
	}
	defer d.mu.Unlock()
	d.encReq = encrypted
	resp, err := d.handle(string(msg[:4]), msg[4:], encrypted)
	var fe framingError
	switch {
	case errors.As(err, &fe):
		resp = []byte("fram" + string(fe))
	case errors.Is(err, errBusy):
		resp = []byte("busy")
	case err != nil:
		m := err.Error()
		if len(m) > 80 {
			m = m[:80]
		}
		resp = []byte("err_" + m)
	case resp == nil:
		resp = []byte("okay")
	}
	d.log.Debug("coldcard request", "cmd", printable(msg[:4]), "reply", printable(resp[:4]), "encrypted", encrypted)
	if encrypted && d.sess != nil {
		return d.sess.Seal(resp), true
	}
	return resp, false
}

// framing answers a framing error with 'fram' and the reason. As the firmware's
// send_response does, it is encrypted when the last request that got through was (its
// encrypted_req is not updated by a request refused here).
func (d *Device) framing(why string) ([]byte, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	resp := []byte("fram" + why)
	if d.encReq && d.sess != nil {
		return d.sess.Seal(resp), true
	}
	return resp, false
}

func printable(b []byte) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, string(b))
}

// framingError is answered with 'fram', as FramingError is.
type framingError string

func (e framingError) Error() string { return string(e) }

func int1(v uint32) []byte { return binary.LittleEndian.AppendUint32([]byte("int1"), v) }

func (d *Device) handle(cmd string, args []byte, encrypted bool) ([]byte, error) {
	switch cmd {
	case "ping":
		return append([]byte("biny"), args...), nil
	case "logo", "rebo":
		return nil, nil
	case "vers":
		return []byte("asci" + strings.Join(versionLines, "\n")), nil
	case "blkc":
		return []byte("asci" + d.chain), nil
	case "ncry":
		return d.encryptStart(args)
	case "mitm":
		if !encrypted {
			return nil, errors.New("must encrypt")
		}
		return d.mitm()
	case "upld":
		return d.upload(args)
	case "sha2":
		return append([]byte("biny"), d.checksum.Sum(nil)...), nil
	case "dwld":
		return d.download(args)
	case "xpub":
		if !encrypted {
			return nil, errors.New("must encrypt")
		}
		return d.xpub(args)
	case "show":
		return d.show(args)
	case "stxn":
		return d.signTx(args)
	case "smsg":
		return d.signMessage(args)
	case "stok", "smok":
		return d.poll(cmd)
	}
	return nil, errors.New("Unknown cmd")
}

func (d *Device) encryptStart(args []byte) ([]byte, error) {
	if len(args) < 68 {
		return nil, errors.New("Assertion usb.py")
	}
	version := binary.LittleEndian.Uint32(args)
	if version != 1 && version != 2 {
		return nil, framingError("bad ncry version")
	}
	if d.bound {
		return nil, framingError("crypto already set up")
	}
	newKey := btcec.NewPrivateKey
	if d.ephemeral != nil {
		newKey = d.ephemeral
	}
	priv, err := newKey()
	if err != nil {
		return nil, err
	}
	key, err := transport.ColdcardSessionKey(priv, args[4:68])
	if err != nil {
		return nil, errors.New("invalid pubkey")
	}
	if version == 2 {
		d.bound = true
	}
	d.sess = transport.NewColdcardSession(key)
	xpub, err := d.w.Public(hdpath.Path{}, d.net.HDPublicKeyID[:])
	if err != nil {
		return nil, err
	}
	xs := xpub.String()
	out := append([]byte("mypb"), transport.ColdcardPubKey64(priv.PubKey())...)
	out = binary.LittleEndian.AppendUint32(out, xfpLE(d.w.Fingerprint()))
	out = binary.LittleEndian.AppendUint32(out, uint32(len(xs)))
	return append(out, xs...), nil
}

// xfpLE is the fingerprint as the firmware keeps it: the four bytes read little-endian.
func xfpLE(fp uint32) uint32 {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], fp)
	return binary.LittleEndian.Uint32(b[:])
}

func (d *Device) mitm() ([]byte, error) {
	priv, err := d.w.PrivKey(hdpath.Path{})
	if err != nil {
		return nil, err
	}
	sig := ecdsa.SignCompact(priv, d.sess.Key[:], true)
	return append([]byte("biny"), sig...), nil
}

func (d *Device) upload(args []byte) ([]byte, error) {
	if len(args) < 8 {
		return nil, errors.New("Assertion usb.py")
	}
	offset, total := binary.LittleEndian.Uint32(args), binary.LittleEndian.Uint32(args[4:])
	data := args[8:]
	if offset == 0 {
		d.checksum = sha256.New()
		d.psram[0] = d.psram[0][:0]
	}
	if offset%256 != 0 {
		return nil, errors.New("alignment")
	}
	if uint64(offset)+uint64(len(data)) > uint64(total) || total > maxUpload {
		return nil, errors.New("long")
	}
	d.checksum.Write(data)
	if int(offset) > len(d.psram[0]) {
		d.psram[0] = append(d.psram[0], make([]byte, int(offset)-len(d.psram[0]))...)
	}
	d.psram[0] = append(d.psram[0][:offset], data...)
	return int1(offset), nil
}

func (d *Device) download(args []byte) ([]byte, error) {
	if len(args) < 12 {
		return nil, errors.New("Assertion usb.py")
	}
	offset, length, file := binary.LittleEndian.Uint32(args), binary.LittleEndian.Uint32(args[4:]), binary.LittleEndian.Uint32(args[8:])
	length = min(length, maxBlock)
	if file > 1 {
		return nil, errors.New("bad fnum")
	}
	if offset > maxTxn {
		return nil, errors.New("bad offset")
	}
	if length < 1 {
		return nil, errors.New("len")
	}
	if offset == 0 {
		d.checksum = sha256.New()
	}
	out := make([]byte, length)
	if src := d.psram[file]; int(offset) < len(src) {
		copy(out, src[offset:])
	}
	d.checksum.Write(out)
	return append([]byte("biny"), out...), nil
}

// parsePath reads a text subpath as cleanup_deriv_path does (m/…, ' or h or p hardened).
func parsePath(b []byte) (hdpath.Path, error) {
	s := strings.ReplaceAll(strings.ToLower(string(b)), "p", "'")
	p, err := hdpath.Parse(s)
	if err != nil || len(p) > maxDepth {
		return nil, errors.New("bad deriv path")
	}
	return p, nil
}

func (d *Device) xpub(args []byte) ([]byte, error) {
	p, err := parsePath(args)
	if err != nil {
		return nil, err
	}
	k, err := d.w.Public(p, d.net.HDPublicKeyID[:])
	if err != nil {
		return nil, err
	}
	return []byte("asci" + k.String()), nil
}

func kindOf(af uint32) (emulator.ScriptKind, error) {
	switch af {
	case 0x01:
		return emulator.P2PKH, nil
	case 0x07:
		return emulator.P2WPKH, nil
	case 0x13:
		return emulator.P2SHP2WPKH, nil
	case 0x23, 0x17: // 0x17: the old P2TR value the firmware still maps
		return emulator.P2TR, nil
	}
	return 0, errors.New("Unsupported address format")
}

func (d *Device) address(af uint32, p hdpath.Path) (string, error) {
	kind, err := kindOf(af)
	if err != nil {
		return "", err
	}
	pub, err := d.w.PubKey(p)
	if err != nil {
		return "", err
	}
	a, err := emulator.Address(pub, kind, d.net)
	if err != nil {
		return "", err
	}
	return a.EncodeAddress(), nil
}

// show: the address goes on the screen and back to the host; nothing to approve.
func (d *Device) show(args []byte) ([]byte, error) {
	if len(args) < 4 {
		return nil, errors.New("Assertion usb.py")
	}
	af := binary.LittleEndian.Uint32(args)
	p, err := parsePath(args[4:])
	if err != nil {
		return nil, err
	}
	addr, err := d.address(af, p)
	if err != nil {
		return nil, err
	}
	d.approver.Show(emulator.Screen{Device: "coldcard", Title: "Address", Lines: []string{addr, "= " + p.String()}})
	return []byte("asci" + addr), nil
}

// begin makes a an active request, unless one is already waiting (busy).
func (d *Device) begin(a *action) error {
	if d.active != nil && !d.active.done {
		return errBusy
	}
	d.active = a
	return nil
}

// errBusy is answered with busy, as CCBusyError is: another request waits for the person.
var errBusy = errors.New("busy")

// decide shows the screen and settles a in the background, as the firmware's UX task
// does while the host polls.
// Under the auto and reject policies the screen is decided before the reply to stxn/smsg,
// so that the first poll already has the answer (the host polls after 250 ms anyway) and a
// session replays the same bytes.
func (d *Device) decide(a *action, s emulator.Screen, approved func() error) {
	settle := func(ok bool, err error) {
		switch {
		case err != nil:
			a.failed = "Cancelled"
		case !ok:
			a.refused = true
		default:
			if err := approved(); err != nil {
				a.failed = err.Error()
			}
		}
		a.done = true
	}
	if d.approver.Policy() != emulator.PolicyPrompt {
		settle(d.approver.Ask(d.ctx, s)) // d.mu is held: approved runs under it, as below
		return
	}
	go func() {
		ok, err := d.approver.Ask(d.ctx, s)
		d.mu.Lock()
		defer d.mu.Unlock()
		settle(ok, err)
	}()
}

func (d *Device) signTx(args []byte) ([]byte, error) {
	if len(args) < 40 {
		return nil, errors.New("Assertion usb.py")
	}
	length, flags := binary.LittleEndian.Uint32(args), binary.LittleEndian.Uint32(args[4:])
	if !bytes.Equal(args[8:40], d.checksum.Sum(nil)) {
		return []byte("err_Checksum"), nil
	}
	if length <= 50 || length > maxTxn || int(length) > len(d.psram[0]) {
		return nil, errors.New("badlen")
	}
	flags &= stxnFlagsMask
	if flags&stxnVisualize != 0 {
		return nil, errors.New("visualize is not emulated")
	}
	raw := bytes.Clone(d.psram[0][:length])
	a := &action{kind: "stok"}
	// the firmware reads and checks the PSBT before it shows anything
	tx, err := parseTx(raw, d.w, d.net)
	if err != nil {
		return nil, err
	}
	if err := d.begin(a); err != nil {
		return nil, err
	}
	d.decide(a, tx.screen(d.chain), func() error {
		out, err := tx.sign(d.w, flags&stxnFinalize != 0)
		if err != nil {
			return err
		}
		d.psram[1] = out
		a.length, a.sha = len(out), sha256.Sum256(out)
		return nil
	})
	return nil, nil
}

func (d *Device) signMessage(args []byte) ([]byte, error) {
	if len(args) < 12 {
		return nil, errors.New("Assertion usb.py")
	}
	af := binary.LittleEndian.Uint32(args)
	ls, lm := binary.LittleEndian.Uint32(args[4:]), binary.LittleEndian.Uint32(args[8:])
	rest := args[12:]
	if uint64(ls) > uint64(len(rest)) || uint64(len(rest))-uint64(ls) != uint64(lm) {
		return nil, errors.New("badlen")
	}
	p, err := parsePath(rest[:ls])
	if err != nil {
		return nil, err
	}
	msg := rest[ls:]
	if len(msg) < 2 {
		return nil, errors.New("too short")
	}
	if len(msg) > maxMessage {
		return nil, errors.New("too long")
	}
	for _, c := range msg {
		if c < 0x20 || c > 0x7e {
			return nil, errors.New("must be ascii printable")
		}
	}
	if af == 0x23 {
		return nil, errors.New("Unsupported address format")
	}
	addr, err := d.address(af, p)
	if err != nil {
		return nil, err
	}
	a := &action{kind: "smok", address: addr}
	if err := d.begin(a); err != nil {
		return nil, err
	}
	s := emulator.Screen{Device: "coldcard", Title: "Ok to sign this?", Lines: []string{string(msg), "Using the key associated with address:", addr}}
	d.decide(a, s, func() error {
		priv, err := d.w.PrivKey(p)
		if err != nil {
			return err
		}
		sig := ecdsa.SignCompact(priv, messageDigest(msg), true)
		switch af {
		case 0x13:
			sig[0] += 4
		case 0x07:
			sig[0] += 8
		}
		a.result = sig
		return nil
	})
	return nil, nil
}

func (d *Device) poll(cmd string) ([]byte, error) {
	a := d.active
	if a == nil || a.kind != cmd {
		return nil, errors.New("No active request")
	}
	if !a.done {
		return nil, nil // still waiting on the person
	}
	d.active = nil
	switch {
	case a.refused:
		return []byte("refu"), nil
	case a.failed != "":
		return nil, errors.New(a.failed)
	case cmd == "smok":
		out := binary.LittleEndian.AppendUint32([]byte("smrx"), uint32(len(a.address)))
		return append(append(out, a.address...), a.result...), nil
	}
	out := binary.LittleEndian.AppendUint32([]byte("strx"), uint32(a.length))
	return append(out, a.sha[:]...), nil
}
