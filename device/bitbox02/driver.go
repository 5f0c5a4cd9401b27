package bitbox02

import (
	"context"

	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/hwbridge/hwbridge/device"
	pb "github.com/hwbridge/hwbridge/internal/bitbox02pb"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/transport"
)

// Defaults for Options.
const (
	// DefaultTimeout bounds one operation (the person's time on the device included) when
	// the caller's context has no earlier deadline.
	DefaultTimeout = 5 * time.Minute
	// DefaultLinkTimeout bounds each reply: the device answers every request at once
	// (NOT_READY while the person decides), so a silent link fails with device.ErrLinkLost.
	DefaultLinkTimeout = 3 * time.Second
)

// Sentinel errors for what the BitBox02 refuses by design. They wrap the device sentinels
// callers branch on (errors.ErrUnsupported, device.ErrInvalidInput).
var (
	// ErrNoPKH: the BitBox02 has no p2pkh (legacy) accounts.
	ErrNoPKH = fmt.Errorf("bitbox02: p2pkh (legacy) addresses and inputs are not supported by the device: %w", errors.ErrUnsupported)
	// ErrTypedHash: the BitBox02 signs EIP-712 only from the whole document, never a bare
	// hash.
	ErrTypedHash = fmt.Errorf("bitbox02: the device does not sign bare EIP-712 hashes: %w", errors.ErrUnsupported)
	// ErrForeignInput: every input of a transaction must be the device's own (single-sig,
	// one of its keys): the device streams and signs the whole transaction.
	ErrForeignInput = fmt.Errorf("bitbox02: every input must belong to the device (no external or multisig inputs): %w", device.ErrInvalidInput)
	// ErrNeedPrevTx: a segwit v0 input lacks its previous transaction, which the device
	// needs to check the spent amount (only all-taproot transactions go without).
	ErrNeedPrevTx = fmt.Errorf("bitbox02: the device needs the previous transaction of each non-taproot input (non_witness_utxo): %w", device.ErrInvalidInput)
	// ErrSighash: only SIGHASH_ALL (SIGHASH_DEFAULT for taproot) is signed.
	ErrSighash = fmt.Errorf("bitbox02: only SIGHASH_ALL / SIGHASH_DEFAULT inputs are signed: %w", errors.ErrUnsupported)
	// ErrTaprootMessage: the device signs messages with p2wpkh and p2sh-p2wpkh keys only.
	ErrTaprootMessage = fmt.Errorf("bitbox02: message signing with taproot keys is not supported by the device: %w", errors.ErrUnsupported)
)

// Options configure a Driver. The zero value pairs through an in-memory store (pairing on
// every connection) and tells nobody about screens.
type Options struct {
	Logger *slog.Logger
	// Pairing holds the pairing store and the pairing-code display.
	Pairing Pairing
	// OnScreen is called when the device puts up a screen that waits for the person.
	OnScreen func()
	// Timeout bounds each operation when ctx has no earlier deadline (DefaultTimeout if 0).
	Timeout time.Duration
	// LinkTimeout bounds each reply (DefaultLinkTimeout if 0).
	LinkTimeout time.Duration
	// Emulator marks the device as an emulator in Features.
	Emulator bool
}

// Driver is one BitBox02 on one link (a HID report pipe or the simulator's TCP stream). It
// implements device.Device. Exchanges are serialised.
type Driver struct {
	link transport.Link
	opts Options
	log  *slog.Logger

	mu sync.Mutex // held for a whole operation; guards the fields below
	ch *channel   // nil until the Noise channel is up, and after it broke
	// dirty: an exchange broke half-way; the device may still hold its request.
	dirty bool
	info  info
	fp    *device.Fingerprint
}

var (
	_ device.Device = (*Driver)(nil)
)

// New returns a driver for a BitBox02 on link. It does not talk to the device until the
// first call, which unlocks it, runs the Noise handshake and pairs if needed.
func New(link transport.Link, opts Options) *Driver {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.LinkTimeout <= 0 {
		opts.LinkTimeout = DefaultLinkTimeout
	}
	if opts.Pairing.Store == nil {
		opts.Pairing.Store = &MemStore{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Driver{link: link, opts: opts, log: log}
}

// Close releases the link.
func (d *Driver) Close() error { return d.link.Close() }

// do runs fn as one operation with the Noise channel up. An exchange that fails on the
// link drops the channel: the next call starts a new handshake ('h' resets the device's
// session).
func (d *Driver) do(ctx context.Context, op string, fn func(c *channel) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.opts.Timeout)
		defer cancel()
	}
	if d.ch == nil {
		c := &channel{link: d.link, onScreen: d.opts.OnScreen, linkTimeout: d.opts.LinkTimeout}
		if d.dirty {
			// An earlier request was abandoned (cancelled while a screen was up, or the link
			// broke): the firmware keeps it, and answers BUSY to anything new, until a RETRY
			// collects its result.
			if err := c.drain(ctx); err != nil {
				return fmt.Errorf("bitbox02: %s: %w", op, err)
			}
			d.dirty = false
		}
		in, err := c.info(ctx)
		if err != nil {
			return fmt.Errorf("bitbox02: %s: %w", op, err)
		}
		if !in.Initialized {
			return fmt.Errorf("bitbox02: %s: %w: the device has no seed yet (set it up with the BitBoxApp)", op, device.ErrLocked)
		}
		if err := c.handshake(ctx, d.opts.Pairing); err != nil {
			return fmt.Errorf("bitbox02: %s: %w", op, err)
		}
		d.log.Debug("noise channel up", "version", in.Version)
		d.ch, d.info = c, in
	}
	err := fn(d.ch)
	if err == nil {
		return nil
	}
	var de *device.Error
	if !errors.As(err, &de) && !errors.Is(err, device.ErrInvalidInput) && !errors.Is(err, errors.ErrUnsupported) {
		d.ch, d.dirty = nil, true // the link or the Noise nonces may be out of step
	}
	if ce := ctx.Err(); ce != nil && !errors.Is(err, ce) {
		err = fmt.Errorf("%w: %w", ce, err)
	}
	return fmt.Errorf("bitbox02: %s: %w", op, err)
}

// Features implements device.Device.
func (d *Driver) Features(ctx context.Context) (device.Features, error) {
	var f device.Features
	err := d.do(ctx, "features", func(c *channel) error {
		r, err := c.call(ctx, "device info", &pb.Request{Request: &pb.Request_DeviceInfo{DeviceInfo: &pb.DeviceInfoRequest{}}})
		if err != nil {
			return err
		}
		di := r.GetDeviceInfo()
		if di == nil {
			return unexpected("device info", r)
		}
		model := "bitbox02"
		if d.info.Platform == 0x02 {
			model = "bitbox02-nova"
		}
		if d.info.Edition == 0x01 {
			model += "-btconly"
		}
		f = device.Features{
			Family: device.FamilyBitBox02, Model: model, Vendor: "bitbox.swiss",
			Version: strings.TrimPrefix(di.GetVersion(), "v"), Label: di.GetName(),
			Initialized: di.GetInitialized(), PINProtected: true,
			Passphrase: di.GetMnemonicPassphraseEnabled(), Unlocked: true, Emulator: d.opts.Emulator,
			Capabilities: device.Capabilities{
				Taproot: true, EIP1559: d.info.Edition == 0, EIP712: d.info.Edition == 0, DisplayAddress: true,
			},
		}
		return nil
	})
	return f, err
}

// Fingerprint implements device.Device.
func (d *Driver) Fingerprint(ctx context.Context) (device.Fingerprint, error) {
	var fp device.Fingerprint
	err := d.do(ctx, "fingerprint", func(c *channel) error {
		var err error
		fp, err = d.fingerprint(ctx, c)
		return err
	})
	return fp, err
}

func (d *Driver) fingerprint(ctx context.Context, c *channel) (device.Fingerprint, error) {
	if d.fp != nil {
		return *d.fp, nil
	}
	r, err := c.call(ctx, "fingerprint", &pb.Request{Request: &pb.Request_Fingerprint{Fingerprint: &pb.RootFingerprintRequest{}}})
	if err != nil {
		return 0, err
	}
	b := r.GetFingerprint().GetFingerprint()
	if len(b) != 4 {
		return 0, unexpected("fingerprint", r)
	}
	fp := device.Fingerprint(uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]))
	d.fp = &fp
	return fp, nil
}

// coin maps a Bitcoin network onto the device's coin: regtest has its own (bcrt1
// addresses), every other test network is TBTC.
func coin(net *chaincfg.Params) pb.BTCCoin {
	switch {
	case net == nil || net.Net == chaincfg.MainNetParams.Net:
		return pb.BTCCoin_BTC
	case net.Net == chaincfg.RegressionNetParams.Net:
		return pb.BTCCoin_RBTC
	}
	return pb.BTCCoin_TBTC
}

// XPub implements device.Device.
func (d *Driver) XPub(ctx context.Context, req device.XPubRequest) (string, error) {
	typ := pb.BTCPubRequest_XPUB
	if coin(req.Network) != pb.BTCCoin_BTC {
		typ = pb.BTCPubRequest_TPUB
	}
	var x string
	err := d.do(ctx, "xpub", func(c *channel) error {
		r, err := c.call(ctx, "xpub", &pb.Request{Request: &pb.Request_BtcPub{BtcPub: &pb.BTCPubRequest{
			Coin: coin(req.Network), Keypath: req.Path, Output: &pb.BTCPubRequest_XpubType{XpubType: typ}, Display: req.Display,
		}}})
		if err != nil {
			return err
		}
		if x = r.GetPub().GetPub(); x == "" {
			return unexpected("xpub", r)
		}
		return nil
	})
	return x, err
}

// simpleType maps a script type onto the device's single-sig script configs.
func simpleType(s device.ScriptType) (pb.BTCScriptConfig_SimpleType, error) {
	switch s {
	case device.ScriptWPKH:
		return pb.BTCScriptConfig_P2WPKH, nil
	case device.ScriptSHWPKH:
		return pb.BTCScriptConfig_P2WPKH_P2SH, nil
	case device.ScriptTR:
		return pb.BTCScriptConfig_P2TR, nil
	case device.ScriptPKH, "":
		return 0, ErrNoPKH
	}
	return 0, fmt.Errorf("%w: script type %q", device.ErrInvalidInput, string(s))
}

func simpleConfig(t pb.BTCScriptConfig_SimpleType) *pb.BTCScriptConfig {
	return &pb.BTCScriptConfig{Config: &pb.BTCScriptConfig_SimpleType_{SimpleType: t}}
}

// Address implements device.Device.
func (d *Driver) Address(ctx context.Context, req device.AddressRequest) (string, error) {
	if req.Chain == device.ChainETH {
		return d.ethAddress(ctx, req)
	}
	if req.Chain != device.ChainBTC {
		return "", fmt.Errorf("bitbox02: address: %w: chain %q", device.ErrInvalidInput, string(req.Chain))
	}
	st, err := simpleType(req.Script)
	if err != nil {
		return "", err
	}
	var addr string
	err = d.do(ctx, "address", func(c *channel) error {
		addr, err = d.btcAddress(ctx, c, req.Network, st, req.Path, req.Display)
		return err
	})
	if err == nil && req.Display {
		device.NoteShown(ctx, addr)
	}
	return addr, err
}

func (d *Driver) btcAddress(ctx context.Context, c *channel, net *chaincfg.Params, st pb.BTCScriptConfig_SimpleType, path hdpath.Path, display bool) (string, error) {
	r, err := c.call(ctx, "address", &pb.Request{Request: &pb.Request_BtcPub{BtcPub: &pb.BTCPubRequest{
		Coin: coin(net), Keypath: path, Output: &pb.BTCPubRequest_ScriptConfig{ScriptConfig: simpleConfig(st)}, Display: display,
	}}})
	if err != nil {
		return "", err
	}
	a := r.GetPub().GetPub()
	if a == "" {
		return "", unexpected("address", r)
	}
	return a, nil
}

// SignTypedHash implements device.Device: the BitBox02 refuses bare hashes (ErrTypedHash).
func (d *Driver) SignTypedHash(context.Context, hdpath.Path, [32]byte, []byte) ([]byte, error) {
	return nil, ErrTypedHash
}

// unexpected reports a response of the wrong kind.
func unexpected(op string, r *pb.Response) error {
	return fmt.Errorf("%w: %s: unexpected response %T", device.ErrProtocol, op, r.GetResponse())
}
