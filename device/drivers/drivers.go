// Package drivers wires each device family to its driver the way hwbridged and the CLI
// run them: one function per family, and the hub's table built from them. Tests that
// want production behaviour (link timeouts, re-opening a Ledger link, prompts) use it too.
package drivers

import (
	"context"
	"log/slog"
	"time"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/bitbox02"
	"github.com/hwbridge/hwbridge/device/coldcard"
	"github.com/hwbridge/hwbridge/device/keepkey"
	"github.com/hwbridge/hwbridge/device/ledger"
	"github.com/hwbridge/hwbridge/device/trezor"
	"github.com/hwbridge/hwbridge/internal/keepkeypb"
	"github.com/hwbridge/hwbridge/internal/trezorpb"
	"github.com/hwbridge/hwbridge/transport"
)

// Options are the host's parts of the drivers. The zero value works.
type Options struct {
	// Logger gets the drivers' records, with a "device" attribute naming the family.
	Logger *slog.Logger
	// PIN and Passphrase answer a Trezor's PIN and passphrase requests on the host (the
	// CLI's terminal prompts); nil leaves them to the device (device.ErrLocked).
	PIN        func(ctx context.Context) (string, error)
	Passphrase func(ctx context.Context) (string, error)
	// Timeout and LinkTimeout override the drivers' defaults (tests); 0 keeps them
	// (trezor/ledger DefaultTimeout and DefaultLinkTimeout).
	Timeout, LinkTimeout time.Duration
	// BitBox02Store keeps the BitBox02 pairings (the host's Noise key and the devices'
	// keys); nil means a bitbox02.FileStore at bitbox02.DefaultStorePath.
	BitBox02Store bitbox02.Store
	// LedgerTestTokenKey lets the Ledger driver describe dev-chain tokens to a Ledger-class
	// emulator with descriptors signed by hwbridge's emulator test key (ledger.Options
	// TestTokenKey); it applies to emulator links only (hwemu --ledger-test-token-key).
	LedgerTestTokenKey bool
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

// Hub is the hub's driver table; each device it opens is wrapped in device.Verify.
func Hub(o Options) map[string]device.Driver {
	return map[string]device.Driver{
		transport.KindTrezor: func(link transport.Link, c device.DriverConfig) (device.Device, error) {
			return device.Verify(Trezor(link, c, o)), nil
		},
		transport.KindLedger: func(link transport.Link, c device.DriverConfig) (device.Device, error) {
			return device.Verify(Ledger(link, c, o)), nil
		},
		transport.KindBitBox02: func(link transport.Link, c device.DriverConfig) (device.Device, error) {
			return device.Verify(BitBox02(link, c, o)), nil
		},
		transport.KindColdcard: func(link transport.Link, c device.DriverConfig) (device.Device, error) {
			return device.Verify(Coldcard(link, c, o)), nil
		},
		transport.KindKeepKey: func(link transport.Link, c device.DriverConfig) (device.Device, error) {
			return device.Verify(KeepKey(link, c, o)), nil
		},
	}
}

// BitBox02 drives a BitBox02 on link (U2F HID packets: a USB report pipe or the
// simulator's TCP stream): c.Prompt hears every screen that waits for the person,
// c.PairingCode the pairing code of a first connection.
func BitBox02(link transport.Link, c device.DriverConfig, o Options) *bitbox02.Driver {
	store := o.BitBox02Store
	if store == nil {
		path, err := bitbox02.DefaultStorePath()
		if err != nil {
			path = "bitbox02-noise.json" // no config dir: the working directory
		}
		store = &bitbox02.FileStore{Path: path}
	}
	return bitbox02.New(link, bitbox02.Options{
		Logger:      o.logger().With("device", "bitbox02"),
		Pairing:     bitbox02.Pairing{Store: store, ShowCode: c.PairingCode},
		OnScreen:    c.Prompt,
		Timeout:     o.Timeout,
		LinkTimeout: o.LinkTimeout,
		Emulator:    c.Emulator,
	})
}

// Coldcard drives a Coldcard on link (USB HID, or the simulator's unix: socket): c.Prompt
// hears each wait for the person (a transaction or message to approve, an address shown).
func Coldcard(link transport.Link, c device.DriverConfig, o Options) *coldcard.Driver {
	return coldcard.New(link, coldcard.Options{
		Logger:      o.logger().With("device", "coldcard"),
		OnScreen:    c.Prompt,
		Emulator:    c.Emulator,
		Timeout:     o.Timeout,
		LinkTimeout: o.LinkTimeout,
	})
}

// KeepKey drives a KeepKey on link: c.Prompt hears every ButtonRequest. PIN and
// Passphrase are the same host prompts as a Trezor's (KeepKey shows the same scrambled
// 3×3 matrix).
func KeepKey(link transport.Link, c device.DriverConfig, o Options) *keepkey.Driver {
	prompt := c.Prompt
	return keepkey.New(link, keepkey.Options{
		Logger: o.logger().With("device", "keepkey"),
		OnButton: func(keepkeypb.ButtonRequestType) {
			if prompt != nil {
				prompt()
			}
		},
		PIN:         o.PIN,
		Passphrase:  o.Passphrase,
		Emulator:    c.Emulator,
		Timeout:     o.Timeout,
		LinkTimeout: o.LinkTimeout,
	})
}

// Trezor drives a Trezor-class device on link: c.Prompt hears every ButtonRequest.
func Trezor(link transport.Link, c device.DriverConfig, o Options) *trezor.Driver {
	prompt := c.Prompt
	return trezor.New(link, trezor.Options{
		Logger: o.logger().With("device", "trezor"),
		OnButton: func(trezorpb.ButtonRequestType) {
			if prompt != nil {
				prompt()
			}
		},
		PIN:         o.PIN,
		Passphrase:  o.Passphrase,
		Emulator:    c.Emulator,
		Timeout:     o.Timeout,
		LinkTimeout: o.LinkTimeout,
	})
}

// Ledger drives a Ledger-class device on link, opening the app a request needs: Speculos
// framing for an emulator (tcp:), Ledger HID framing for USB. c.Prompt hears every
// operation that puts up a screen; c.Reopen, when set, re-opens the link after a failed
// exchange.
func Ledger(link transport.Link, c device.DriverConfig, o Options) *ledger.Driver {
	opts := ledger.Options{
		Logger:      o.logger().With("device", "ledger"),
		OpenApp:     true,
		Emulator:    c.Emulator,
		OnScreen:    c.Prompt,
		Timeout:     o.Timeout,
		LinkTimeout: o.LinkTimeout,

		TestTokenKey: o.LedgerTestTokenKey && c.Emulator,
	}
	if c.Reopen != nil {
		reopen, em := c.Reopen, c.Emulator
		opts.Reopen = func(ctx context.Context) (transport.APDUExchanger, error) {
			l, err := reopen(ctx)
			if err != nil {
				return nil, err
			}
			return exchanger(l, em), nil
		}
	}
	return ledger.New(exchanger(link, c.Emulator), opts)
}

// exchanger frames APDUs for the link: Speculos framing for an emulator, HID otherwise.
func exchanger(link transport.Link, emulator bool) *transport.Exchanger {
	if emulator {
		return transport.NewSpeculosExchanger(link)
	}
	return transport.NewLedgerHIDExchanger(link)
}
