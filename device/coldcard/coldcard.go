// Package coldcard drives a Coldcard over its USB protocol (ckcc-protocol PROTOCOL.md):
// 64-byte HID packets (transport/coldcard.go), commands of a 4-byte code and packed
// arguments (protocol.go), and the link encryption the host sets up first: an ECDH
// exchange on secp256k1 ('ncry'), then AES-256-CTR for every message, and a check that the
// device signs the session key with its master key ('mitm'), so that nothing sits between
// host and device.
//
// A Coldcard is Bitcoin-only: Ethereum requests fail with ErrBitcoinOnly. It signs PSBTs
// uploaded to it ('upld' blocks, checked with 'sha2'), after the person approves them on
// the device ('stxn', then 'stok' polled until done), and the signed PSBT is downloaded
// ('dwld') and its signatures copied into the caller's packet. It has one chain setting
// (BTC, XTN testnet or XRT regtest, 'blkc'), in whose encoding it shows addresses; xpubs
// are re-encoded for the network asked.
package coldcard

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	hwpsbt "github.com/hwbridge/hwbridge/psbt"
	"github.com/hwbridge/hwbridge/transport"
)

// ErrBitcoinOnly: the request is for a chain a Coldcard does not sign for.
var ErrBitcoinOnly = fmt.Errorf("a coldcard is bitcoin-only: use a trezor or ledger for ethereum: %w", errors.ErrUnsupported)

// Defaults for Options.
const (
	// DefaultTimeout bounds one operation, approval on the device included.
	DefaultTimeout = 5 * time.Minute
	// DefaultLinkTimeout bounds each request/reply: the Coldcard answers every command at
	// once (approvals are polled), but deriving keys or the mitm check takes it a moment.
	DefaultLinkTimeout = 10 * time.Second
	// DefaultPoll is how often 'stok'/'smok' ask whether the person has decided (ckcc
	// polls every 250 ms).
	DefaultPoll = 100 * time.Millisecond
	drainQuiet  = 20 * time.Millisecond
)

// Operation names, in errors.
const (
	opStart       = "start encryption"
	opXPub        = "get xpub"
	opAddress     = "show address"
	opSignTx      = "sign transaction"
	opSignMessage = "sign message"
	opUpload      = "upload"
	opDownload    = "download"
	opVersion     = "version"
	opChain       = "block chain"
	opMITM        = "mitm check"
)

// errDesync: the device's session is not ours any more (see do).
var errDesync = errors.New("the coldcard's link encryption is out of step (another program opened its own session)")

// Options configure a Driver; the zero value works.
type Options struct {
	Logger      *slog.Logger
	Timeout     time.Duration // DefaultTimeout if 0
	LinkTimeout time.Duration // DefaultLinkTimeout if 0
	Poll        time.Duration // DefaultPoll if 0
	// OnScreen is called once per operation when the device waits for the person.
	OnScreen func()
	// Emulator marks the device as an emulator in Features.
	Emulator bool
}

// Driver is one Coldcard on a link (USB HID, or the simulator's datagram socket). Safe for
// concurrent use: each operation holds the driver.
type Driver struct {
	link transport.Link
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	sess   *transport.ColdcardSession // nil until the session is up, and after a failure
	xfp    uint32                     // master fingerprint as the device reports it (LE)
	master string                     // master xpub from mypb
	chain  string                     // "BTC", "XTN" or "XRT"
}

var _ device.Device = (*Driver)(nil)

// New returns a driver for the Coldcard on link; it talks to the device at the first call.
func New(link transport.Link, opts Options) *Driver {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.LinkTimeout <= 0 {
		opts.LinkTimeout = DefaultLinkTimeout
	}
	if opts.Poll <= 0 {
		opts.Poll = DefaultPoll
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Driver{link: link, opts: opts, log: log}
}

// Close closes the link.
func (d *Driver) Close() error { return d.link.Close() }

// do runs fn holding the driver, with the session up and ctx bounded by the timeout.
func (d *Driver) do(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.opts.Timeout)
		defer cancel()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sess == nil {
		if err := d.start(ctx); err != nil {
			return err
		}
	}
	err := fn(ctx)
	if errors.Is(err, errDesync) {
		// Another program (ckcc, HWI) set up its own session since ours, as the firmware
		// allows with ncry version 1: re-key and run the operation again, once.
		d.log.Debug("coldcard session out of step: re-keying", "op", op, "err", err)
		d.sess = nil
		if err := d.start(ctx); err != nil {
			return err
		}
		err = fn(ctx)
	}
	if err != nil {
		if errors.Is(err, errDesync) || errors.Is(err, device.ErrLinkLost) || errors.Is(err, transport.ErrColdcardFraming) || errors.Is(err, ctx.Err()) && ctx.Err() != nil {
			d.sess = nil // the keystreams may be out of step: re-key before the next call
		}
		return err
	}
	return nil
}

// start flushes the link, runs the ECDH exchange and checks the device signs the session
// key with the master key of the xpub it reported.
func (d *Driver) start(ctx context.Context) error {
	d.drain(ctx)
	if err := d.writeRaw(ctx, transport.ColdcardResync()); err != nil {
		return err
	}
	d.drain(ctx)
	priv, err := btcec.NewPrivateKey()
	if err != nil {
		return err
	}
	r, err := d.exchange(ctx, opStart, reqEncryptStart(transport.ColdcardPubKey64(priv.PubKey())))
	if err != nil {
		return err
	}
	pub, xfp, xpub, err := decodeMyPub(r)
	if err != nil {
		return err
	}
	key, err := transport.ColdcardSessionKey(priv, pub)
	if err != nil {
		return fmt.Errorf("coldcard: %s: %w: %w", opStart, device.ErrProtocol, err)
	}
	d.sess = transport.NewColdcardSession(key)
	d.xfp, d.master = xfp, xpub
	if xpub == "" {
		return nil // no seed yet: nothing to check against
	}
	if err := d.checkMITM(ctx, key); err != nil {
		d.sess = nil
		return err
	}
	r, err = d.exchange(ctx, opChain, []byte("blkc"))
	if err != nil {
		d.sess = nil
		return err
	}
	if d.chain, err = decodeASCII(opChain, r); err != nil {
		d.sess = nil
		return err
	}
	return nil
}

// checkMITM: the device signs the session key with its master private key (65 bytes,
// recovery header then r‖s); it must verify against the master xpub's key.
func (d *Driver) checkMITM(ctx context.Context, key [32]byte) error {
	r, err := d.exchange(ctx, opMITM, []byte("mitm"))
	if err != nil {
		return err
	}
	if err := r.want(opMITM, "biny"); err != nil {
		return err
	}
	if len(r.body) != 65 {
		return fmt.Errorf("coldcard: %s: %w: signature of %d bytes", opMITM, device.ErrProtocol, len(r.body))
	}
	k, err := hdkeychain.NewKeyFromString(d.master)
	if err != nil {
		return fmt.Errorf("coldcard: %s: %w: master xpub: %w", opMITM, device.ErrProtocol, err)
	}
	pub, err := k.ECPubKey()
	if err != nil {
		return fmt.Errorf("coldcard: %s: %w: %w", opMITM, device.ErrProtocol, err)
	}
	var rr, ss btcec.ModNScalar
	if rr.SetByteSlice(r.body[1:33]) || ss.SetByteSlice(r.body[33:65]) {
		return fmt.Errorf("coldcard: %s: %w: signature out of range", opMITM, device.ErrBadSignature)
	}
	if !ecdsa.NewSignature(&rr, &ss).Verify(key[:], pub) {
		return fmt.Errorf("coldcard: %s: %w: the session key is not signed by the device's master key (something sits between host and device)", opMITM, device.ErrBadSignature)
	}
	return nil
}

// drain reads and drops what is waiting on the link, until it stays quiet.
func (d *Driver) drain(ctx context.Context) {
	buf := make([]byte, 2048)
	for ctx.Err() == nil {
		_ = d.link.SetDeadline(time.Now().Add(drainQuiet))
		if _, err := d.link.Read(buf); err != nil {
			break
		}
	}
	_ = d.link.SetDeadline(time.Time{})
}

func (d *Driver) writeRaw(ctx context.Context, pkt []byte) error {
	lctx, cancel := context.WithTimeout(ctx, d.opts.LinkTimeout)
	defer cancel()
	return d.linkErr(ctx, "resync", transport.DoContext(lctx, d.link, func() error {
		_, err := d.link.Write(pkt)
		return err
	}))
}

// exchange sends one request (encrypted once the session is up) and reads its reply.
func (d *Driver) exchange(ctx context.Context, op string, msg []byte) (reply, error) {
	lctx, cancel := context.WithTimeout(ctx, d.opts.LinkTimeout)
	defer cancel()
	enc := d.sess != nil
	code := string(msg[:min(4, len(msg))])
	if enc {
		msg = d.sess.Seal(msg)
	}
	var resp []byte
	var respEnc bool
	err := transport.DoContext(lctx, d.link, func() error {
		if err := transport.WriteColdcard(d.link, msg, enc); err != nil {
			return err
		}
		var err error
		resp, respEnc, err = transport.ReadColdcard(d.link)
		return err
	})
	if err != nil {
		return reply{}, d.linkErr(ctx, op, err)
	}
	if respEnc {
		if !enc {
			return reply{}, fmt.Errorf("coldcard: %s: %w: encrypted reply to a plain request", op, device.ErrProtocol)
		}
		resp = d.sess.Open(resp)
	}
	if enc && (!respEnc || !knownReply(resp)) {
		// a reply in clear (a framing error: the device has no key or another one) or one
		// that does not decrypt to a reply signature: the device holds another session
		return reply{}, fmt.Errorf("coldcard: %s: %w: %w", op, device.ErrLinkLost, errDesync)
	}
	d.log.Debug("coldcard exchange", "op", op, "request", code, "reply", string(resp[:4]), "len", len(resp))
	return decodeReply(op, resp)
}

func (d *Driver) linkErr(ctx context.Context, op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, transport.ErrClosed), errors.Is(err, transport.ErrNoDevice):
		return fmt.Errorf("coldcard: %s: %w: %w", op, device.ErrDisconnected, err)
	case ctx.Err() != nil:
		return fmt.Errorf("coldcard: %s: %w", op, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, transport.ErrColdcardFraming):
		return fmt.Errorf("coldcard: %s: %w: %w", op, device.ErrLinkLost, err)
	}
	return fmt.Errorf("coldcard: %s: %w", op, err)
}

// Features reports the firmware version ('vers') and the chain setting.
func (d *Driver) Features(ctx context.Context) (device.Features, error) {
	var f device.Features
	err := d.do(ctx, opVersion, func(ctx context.Context) error {
		r, err := d.exchange(ctx, opVersion, []byte("vers"))
		if err != nil {
			return err
		}
		v, err := decodeASCII(opVersion, r)
		if err != nil {
			return err
		}
		// date, version, bootloader version, full date-version, hardware label (and
		// maybe more lines later)
		lines := strings.Split(v, "\n")
		model := "coldcard"
		if len(lines) >= 5 && lines[4] != "" {
			model = lines[4]
		}
		f = device.Features{
			Family: device.FamilyColdcard, Model: model, Vendor: "Coinkite", Version: lines[0],
			Initialized: d.master != "", PINProtected: true, Unlocked: true, Emulator: d.opts.Emulator,
			Capabilities: device.Capabilities{Taproot: true, DisplayAddress: true},
		}
		if len(lines) >= 2 {
			f.Version = lines[1]
		}
		return nil
	})
	return f, err
}

// Fingerprint is the master fingerprint the device gave when the session started.
func (d *Driver) Fingerprint(ctx context.Context) (device.Fingerprint, error) {
	var fp device.Fingerprint
	err := d.do(ctx, opStart, func(context.Context) error {
		if d.master == "" {
			return fmt.Errorf("coldcard: %w: it has no seed yet (set one up on the device)", device.ErrLocked)
		}
		fp = device.FingerprintFromPSBT(d.xfp)
		return nil
	})
	return fp, err
}

func netOrMain(n *chaincfg.Params) *chaincfg.Params {
	if n == nil {
		return &chaincfg.MainNetParams
	}
	return n
}

// xpub asks the device for the extended key at path.
func (d *Driver) xpub(ctx context.Context, path hdpath.Path) (*hdkeychain.ExtendedKey, error) {
	if len(path) > 12 {
		return nil, fmt.Errorf("%w: a coldcard derives at most 12 levels", device.ErrInvalidInput)
	}
	r, err := d.exchange(ctx, opXPub, reqXPub(path.String()))
	if err != nil {
		return nil, err
	}
	s, err := decodeASCII(opXPub, r)
	if err != nil {
		return nil, err
	}
	k, err := hdkeychain.NewKeyFromString(s)
	if err != nil || k.IsPrivate() || int(k.Depth()) != len(path) {
		return nil, fmt.Errorf("coldcard: %s: %w: not the public key at %s", opXPub, device.ErrProtocol, path)
	}
	return k, nil
}

// XPub returns the key at req.Path, in xpub or tpub form as req.Network asks. A Coldcard
// shows xpubs only from its own menus, so Display is refused.
func (d *Driver) XPub(ctx context.Context, req device.XPubRequest) (string, error) {
	if req.Display {
		return "", fmt.Errorf("coldcard: a coldcard shows xpubs only from its own export menus: %w", errors.ErrUnsupported)
	}
	var out string
	err := d.do(ctx, opXPub, func(ctx context.Context) error {
		k, err := d.xpub(ctx, req.Path)
		if err != nil {
			return err
		}
		k, err = k.CloneWithVersion(netOrMain(req.Network).HDPublicKeyID[:])
		if err != nil {
			return err
		}
		out = k.String()
		return nil
	})
	return out, err
}

// chainParams are the parameters whose address encoding the device's chain setting uses.
func chainParams(chain string) *chaincfg.Params {
	switch chain {
	case "BTC":
		return &chaincfg.MainNetParams
	case "XTN":
		return &chaincfg.TestNet3Params
	case "XRT":
		return &chaincfg.RegressionNetParams
	}
	return nil
}

// sameEncoding: addresses for a and b are written alike (signet and testnet share tb).
func sameEncoding(a, b *chaincfg.Params) bool {
	return a.Bech32HRPSegwit == b.Bech32HRPSegwit && a.PubKeyHashAddrID == b.PubKeyHashAddrID && a.ScriptHashAddrID == b.ScriptHashAddrID
}

// checkChain refuses a network whose addresses the device would show otherwise.
func (d *Driver) checkChain(net *chaincfg.Params) error {
	cp := chainParams(d.chain)
	if cp == nil {
		return fmt.Errorf("coldcard: %w: unknown chain setting %q", device.ErrProtocol, d.chain)
	}
	if !sameEncoding(cp, netOrMain(net)) {
		return fmt.Errorf("%w: the coldcard is set to chain %s (%s addresses), the request is for %s: change its chain (Advanced/Tools > Danger Zone > Testnet Mode) or the --network",
			device.ErrInvalidInput, d.chain, cp.Name, netOrMain(net).Name)
	}
	return nil
}

// Address returns the address at req.Path. With Display the device shows it ('show', no
// confirmation asked) and the address it returns must be the one its xpub gives; without,
// it is derived from the device's key at the path, on no screen.
func (d *Driver) Address(ctx context.Context, req device.AddressRequest) (string, error) {
	if req.Chain != device.ChainBTC {
		return "", fmt.Errorf("coldcard: address for %s: %w", req.Chain, ErrBitcoinOnly)
	}
	af, err := addrFormat(req.Script)
	if err != nil {
		return "", err
	}
	net := netOrMain(req.Network)
	var out string
	err = d.do(ctx, opAddress, func(ctx context.Context) error {
		k, err := d.xpub(ctx, req.Path)
		if err != nil {
			return err
		}
		pub, err := k.ECPubKey()
		if err != nil {
			return err
		}
		want, err := singleKeyAddress(pub, req.Script, net)
		if err != nil {
			return err
		}
		out = want.EncodeAddress()
		if !req.Display {
			return nil
		}
		if err := d.checkChain(net); err != nil {
			return err
		}
		if d.opts.OnScreen != nil {
			d.opts.OnScreen()
		}
		r, err := d.exchange(ctx, opAddress, reqShow(af, req.Path.String()))
		if err != nil {
			return err
		}
		got, err := decodeASCII(opAddress, r)
		if err != nil {
			return err
		}
		if got != out {
			return fmt.Errorf("coldcard: %s: %w: the device shows %q, its key at %s gives %q: do not use it", opAddress, device.ErrProtocol, got, req.Path, out)
		}
		return nil
	})
	return out, err
}

// singleKeyAddress is the address paying to pub as st.
func singleKeyAddress(pub *btcec.PublicKey, st device.ScriptType, net *chaincfg.Params) (btcutil.Address, error) {
	h := btcutil.Hash160(pub.SerializeCompressed())
	switch st {
	case device.ScriptPKH:
		return btcutil.NewAddressPubKeyHash(h, net)
	case device.ScriptWPKH:
		return btcutil.NewAddressWitnessPubKeyHash(h, net)
	case device.ScriptSHWPKH:
		return btcutil.NewAddressScriptHash(append([]byte{txscript.OP_0, txscript.OP_DATA_20}, h...), net)
	case device.ScriptTR:
		return btcutil.NewAddressTaproot(schnorr.SerializePubKey(txscript.ComputeTaprootKeyNoScript(pub)), net)
	}
	return nil, fmt.Errorf("%w: script type %q", device.ErrInvalidInput, st)
}

// poll asks code until the device has an answer; OnScreen hears the first "still waiting".
func (d *Driver) poll(ctx context.Context, op, code string, done func(reply) (bool, error)) error {
	prompted := false
	for {
		r, err := d.exchange(ctx, op, []byte(code))
		if err != nil {
			return err
		}
		ok, err := done(r)
		if err != nil || ok {
			return err
		}
		if !prompted && d.opts.OnScreen != nil {
			d.opts.OnScreen()
		}
		prompted = true
		t := time.NewTimer(d.opts.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("coldcard: %s: waiting for the person to decide on the device: %w", op, ctx.Err())
		case <-t.C:
		}
	}
}

// upload sends data in blocks and checks the device's running sha256 of it.
func (d *Driver) upload(ctx context.Context, data []byte) ([32]byte, error) {
	sum := sha256.Sum256(data)
	for off := 0; off < len(data); off += maxBlock {
		end := min(off+maxBlock, len(data))
		r, err := d.exchange(ctx, opUpload, reqUpload(uint32(off), uint32(len(data)), data[off:end]))
		if err != nil {
			return sum, err
		}
		pos, err := decodeInt1(opUpload, r)
		if err != nil {
			return sum, err
		}
		if pos != uint32(off) {
			return sum, fmt.Errorf("coldcard: %s: %w: device took offset %d, sent %d", opUpload, device.ErrProtocol, pos, off)
		}
	}
	r, err := d.exchange(ctx, opUpload, []byte("sha2"))
	if err != nil {
		return sum, err
	}
	if err := r.want(opUpload, "biny"); err != nil {
		return sum, err
	}
	if !bytes.Equal(r.body, sum[:]) {
		return sum, fmt.Errorf("coldcard: %s: %w: the device's checksum of the upload differs", opUpload, device.ErrLinkLost)
	}
	return sum, nil
}

// download reads file 1 (the signing result) and checks its sha256.
func (d *Driver) download(ctx context.Context, length uint32, sha [32]byte) ([]byte, error) {
	if length > maxTxn {
		return nil, fmt.Errorf("coldcard: %s: %w: result of %d bytes", opDownload, device.ErrProtocol, length)
	}
	out := make([]byte, 0, length)
	for uint32(len(out)) < length {
		n := min(uint32(maxBlock), length-uint32(len(out)))
		r, err := d.exchange(ctx, opDownload, reqDownload(uint32(len(out)), n, 1))
		if err != nil {
			return nil, err
		}
		if err := r.want(opDownload, "biny"); err != nil {
			return nil, err
		}
		if len(r.body) == 0 || uint32(len(r.body)) > n {
			return nil, fmt.Errorf("coldcard: %s: %w: block of %d bytes, asked %d", opDownload, device.ErrProtocol, len(r.body), n)
		}
		out = append(out, r.body...)
	}
	if sha256.Sum256(out) != sha {
		return nil, fmt.Errorf("coldcard: %s: %w: the result's checksum differs", opDownload, device.ErrLinkLost)
	}
	return out, nil
}

// SignPSBT uploads p, asks the device to sign it, waits for the person's decision and
// copies the signatures of the signed PSBT it returns into p.
func (d *Driver) SignPSBT(ctx context.Context, p *psbt.Packet, net *chaincfg.Params) error {
	var buf bytes.Buffer
	if err := p.Serialize(&buf); err != nil {
		return fmt.Errorf("%w: serialize psbt: %w", device.ErrInvalidInput, err)
	}
	data := buf.Bytes()
	if len(data) > maxTxn {
		return fmt.Errorf("%w: the psbt is %d bytes, a coldcard takes at most %d", device.ErrInvalidInput, len(data), maxTxn)
	}
	return d.do(ctx, opSignTx, func(ctx context.Context) error {
		// a Coldcard shows outputs in its chain's encoding: mainnet for mainnet only; XTN
		// and XRT alike for the test networks
		cp := chainParams(d.chain)
		if cp == nil || (cp.Net == chaincfg.MainNetParams.Net) != (netOrMain(net).Net == chaincfg.MainNetParams.Net) {
			return fmt.Errorf("%w: the coldcard is set to chain %s, the transaction is for %s: change its chain or the --network", device.ErrInvalidInput, d.chain, netOrMain(net).Name)
		}
		sum, err := d.upload(ctx, data)
		if err != nil {
			return err
		}
		r, err := d.exchange(ctx, opSignTx, reqSignTx(uint32(len(data)), 0, sum))
		if err != nil {
			return err
		}
		if err := r.want(opSignTx, "okay"); err != nil {
			return err
		}
		var length uint32
		var sha [32]byte
		err = d.poll(ctx, opSignTx, "stok", func(r reply) (bool, error) {
			var done bool
			var err error
			length, sha, done, err = decodeSignedTx(r)
			return done, err
		})
		if err != nil {
			return err
		}
		signed, err := d.download(ctx, length, sha)
		if err != nil {
			return err
		}
		return merge(p, signed)
	})
}

// merge copies the signatures of the device's signed PSBT into p: partial signatures and
// taproot key-path signatures of inputs p does not already hold them for.
func merge(p *psbt.Packet, signed []byte) error {
	s, err := hwpsbt.Decode(signed)
	if err != nil {
		return fmt.Errorf("coldcard: %s: %w: the signed psbt does not parse: %w", opSignTx, device.ErrProtocol, err)
	}
	if s.UnsignedTx.TxHash() != p.UnsignedTx.TxHash() || len(s.Inputs) != len(p.Inputs) {
		return fmt.Errorf("coldcard: %s: %w: the device returned another transaction", opSignTx, device.ErrBadSignature)
	}
	for i := range s.Inputs {
		in, out := &s.Inputs[i], &p.Inputs[i]
		for _, ps := range in.PartialSigs {
			if !slicesHasSig(out.PartialSigs, ps) {
				out.PartialSigs = append(out.PartialSigs, ps)
			}
		}
		if len(in.TaprootKeySpendSig) > 0 && len(out.TaprootKeySpendSig) == 0 {
			out.TaprootKeySpendSig = in.TaprootKeySpendSig
		}
	}
	return nil
}

func slicesHasSig(sigs []*psbt.PartialSig, s *psbt.PartialSig) bool {
	for _, x := range sigs {
		if bytes.Equal(x.PubKey, s.PubKey) {
			return true
		}
	}
	return false
}

// SignMessage signs a text message (BIP-137) with the key at req.Path. The Coldcard takes
// 2 to 240 printable ASCII characters and has no taproot message signatures.
func (d *Driver) SignMessage(ctx context.Context, req device.MessageRequest) (device.MessageSignature, error) {
	if req.Chain != device.ChainBTC {
		return device.MessageSignature{}, fmt.Errorf("coldcard: sign message for %s: %w", req.Chain, ErrBitcoinOnly)
	}
	st := req.Script
	if st == "" {
		st = device.ScriptPKH
	}
	if st == device.ScriptTR {
		return device.MessageSignature{}, fmt.Errorf("coldcard: sign message: BIP-137 has no taproot signatures (use pkh, sh-wpkh or wpkh): %w", errors.ErrUnsupported)
	}
	af, err := addrFormat(st)
	if err != nil {
		return device.MessageSignature{}, err
	}
	if len(req.Message) < 2 || len(req.Message) > maxMessage {
		return device.MessageSignature{}, fmt.Errorf("%w: a coldcard signs messages of 2 to %d characters, this one has %d", device.ErrInvalidInput, maxMessage, len(req.Message))
	}
	for _, c := range req.Message {
		if c < 0x20 || c > 0x7e {
			return device.MessageSignature{}, fmt.Errorf("%w: a coldcard signs printable ascii text only (byte 0x%02x)", device.ErrInvalidInput, c)
		}
	}
	net := netOrMain(req.Network)
	var out device.MessageSignature
	err = d.do(ctx, opSignMessage, func(ctx context.Context) error {
		k, err := d.xpub(ctx, req.Path)
		if err != nil {
			return err
		}
		pub, err := k.ECPubKey()
		if err != nil {
			return err
		}
		r, err := d.exchange(ctx, opSignMessage, reqSignMessage(af, req.Path.String(), req.Message))
		if err != nil {
			return err
		}
		if err := r.want(opSignMessage, "okay"); err != nil {
			return err
		}
		var addr string
		var sig []byte
		err = d.poll(ctx, opSignMessage, "smok", func(r reply) (bool, error) {
			var done bool
			var err error
			addr, sig, done, err = decodeSignedMessage(r)
			return done, err
		})
		if err != nil {
			return err
		}
		// the device names the address in its chain's encoding; ours is for net
		if cp := chainParams(d.chain); cp != nil {
			if devAddr, err := singleKeyAddress(pub, st, cp); err != nil || devAddr.EncodeAddress() != addr {
				return fmt.Errorf("coldcard: %s: %w: the device signed for %q, not its key at %s", opSignMessage, device.ErrBadSignature, addr, req.Path)
			}
		}
		a, err := singleKeyAddress(pub, st, net)
		if err != nil {
			return err
		}
		out = device.MessageSignature{Address: a.EncodeAddress(), Signature: sig}
		return nil
	})
	return out, err
}

// SignEthTx is refused: a Coldcard is Bitcoin-only.
func (d *Driver) SignEthTx(context.Context, hdpath.Path, *types.Transaction, *big.Int) (*types.Transaction, error) {
	return nil, fmt.Errorf("coldcard: sign ethereum tx: %w", ErrBitcoinOnly)
}

// SignTypedHash is refused: a Coldcard is Bitcoin-only.
func (d *Driver) SignTypedHash(context.Context, hdpath.Path, [32]byte, []byte) ([]byte, error) {
	return nil, fmt.Errorf("coldcard: sign eip-712: %w", ErrBitcoinOnly)
}
