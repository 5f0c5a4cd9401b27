package drivers_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/devicetest"
	"github.com/hwbridge/hwbridge/device/drivers"
	"github.com/hwbridge/hwbridge/emulator"
	ledgeremu "github.com/hwbridge/hwbridge/emulator/ledger"
	trezoremu "github.com/hwbridge/hwbridge/emulator/trezor"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/transport"
)

// Paths the hub serves; the links are the emulators' in-process pipes.
const (
	trezorPath = "udp:127.0.0.1:21324"
	ledgerPath = "tcp:127.0.0.1:9999"
)

// world is a hub wired as hwbridged wires it (drivers.Hub), serving one emulator of each
// family through in-process links.
type world struct {
	hub      *device.Hub
	faults   map[string]*emulator.Faults
	approver map[string]*emulator.Approver
}

func newWorld(t *testing.T, policy emulator.Policy) *world { return newWorldTB(t, policy) }

func newWorldTB(t testing.TB, policy emulator.Policy) *world {
	t.Helper()
	w := &world{faults: map[string]*emulator.Faults{}, approver: map[string]*emulator.Approver{}}
	for _, p := range []string{trezorPath, ledgerPath} {
		w.faults[p], w.approver[p] = new(emulator.Faults), emulator.NewApprover(policy)
	}
	tz := trezoremu.NewForTest(t, trezoremu.Options{Mnemonic: devicetest.Mnemonic, Approver: w.approver[trezorPath], Faults: w.faults[trezorPath]})
	lg := ledgeremu.NewForTest(t, ledgeremu.Config{Mnemonic: devicetest.Mnemonic, App: ledgeremu.AppBitcoinTest,
		Approver: w.approver[ledgerPath], Faults: w.faults[ledgerPath]})
	w.hub = device.NewHub(device.HubConfig{
		Drivers:   drivers.Hub(drivers.Options{}),
		Emulators: []string{trezorPath, ledgerPath},
		Open: func(ctx context.Context, path string) (transport.Link, error) {
			if path == trezorPath {
				return tz.Pipe(), nil
			}
			return lg.Pipe(), nil
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.hub.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return w
}

// address asks for a (not displayed) regtest address: a whole exchange on either family,
// never answered from the hub's cache.
func (w *world) address(ctx context.Context, path string, index uint32) (string, error) {
	var addr string
	err := w.hub.Do(ctx, path, "test", func(ctx context.Context, d device.Device) error {
		var err error
		addr, err = d.Address(ctx, device.AddressRequest{Chain: device.ChainBTC, Script: device.ScriptWPKH,
			Network: &chaincfg.RegressionNetParams, Path: hdpath.Path{84 + hdpath.Hardened, 1 + hdpath.Hardened, hdpath.Hardened, 0, index}})
		return err
	})
	return addr, err
}

// TestFaultThenNextCallWorks reproduces the link faults of issue 11 through the hub:
// after {"corrupt":1} the next call works (it failed "device disconnected" before); after
// {"drop":1} the call fails with device.ErrLinkLost at the link timeout instead of the
// 5-minute hub timeout, and the next call works; an injected disconnect costs one call.
func TestFaultThenNextCallWorks(t *testing.T) {
	for _, path := range []string{trezorPath, ledgerPath} {
		for _, fault := range []emulator.FaultSpec{{Corrupt: 1}, {Drop: 1}, {DisconnectAt: 1}} {
			t.Run(fmt.Sprintf("%s/%+v", path, fault), func(t *testing.T) {
				w := newWorld(t, emulator.PolicyAuto)
				ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
				defer cancel()
				want, err := w.address(ctx, path, 0)
				if err != nil {
					t.Fatal(err)
				}
				if err := w.faults[path].Apply(fault); err != nil {
					t.Fatal(err)
				}
				_, err = w.address(ctx, path, 0)
				switch {
				case err == nil:
					t.Fatal("the call under a fault succeeded")
				case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
					t.Fatalf("the call waited for the caller's deadline: %v", err)
				case fault.Drop > 0 && !errors.Is(err, device.ErrLinkLost):
					t.Fatalf("a lost reply: %v, want ErrLinkLost", err)
				case !errors.Is(err, device.ErrLinkLost) && !errors.Is(err, device.ErrProtocol) && !errors.Is(err, device.ErrDisconnected):
					t.Fatalf("error %v is none of link lost, protocol, disconnected", err)
				}
				t.Logf("faulted call: %v", err)
				got, err := w.address(ctx, path, 0)
				if err != nil {
					t.Fatalf("the next call: %v", err)
				}
				if got != want {
					t.Fatalf("address %s after the fault, %s before", got, want)
				}
			})
		}
	}
}

// TestLostReplyDoesNotHoldOthers: a caller queued behind an exchange whose reply was lost
// gets the device as soon as that exchange fails with ErrLinkLost, not at the hub timeout.
func TestLostReplyDoesNotHoldOthers(t *testing.T) {
	for _, path := range []string{trezorPath, ledgerPath} {
		t.Run(path, func(t *testing.T) {
			w := newWorld(t, emulator.PolicyAuto)
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			if _, err := w.address(ctx, path, 1); err != nil {
				t.Fatal(err)
			}
			w.faults[path].DropNext(1)
			first := make(chan error, 1)
			holding := make(chan struct{})
			go func() {
				first <- w.hub.Do(ctx, path, "first", func(ctx context.Context, d device.Device) error {
					close(holding)
					_, err := d.Address(ctx, device.AddressRequest{Chain: device.ChainBTC, Script: device.ScriptWPKH,
						Network: &chaincfg.RegressionNetParams, Path: hdpath.Path{84 + hdpath.Hardened, 1 + hdpath.Hardened, hdpath.Hardened, 0, 2}})
					return err
				})
			}()
			<-holding
			if _, err := w.address(ctx, path, 3); err != nil {
				t.Fatalf("the queued caller: %v", err)
			}
			if err := <-first; !errors.Is(err, device.ErrLinkLost) {
				t.Fatalf("the caller whose reply was lost: %v, want ErrLinkLost", err)
			}
		})
	}
}

// waitPrompt waits for the hub's "confirm on your device" event of label's call on path.
func waitPrompt(t *testing.T, ctx context.Context, events <-chan device.Event, path, label string) {
	t.Helper()
	for {
		select {
		case ev := <-events:
			if ev.Type == device.EventPrompt && ev.Path == path && ev.Label == label {
				return
			}
		case <-ctx.Done():
			t.Fatalf("no prompt event for %s on %s", label, path)
		}
	}
}

// TestCancelReleasesDevice: while a confirmation is on the screen (the hub announces it with
// a prompt event, for both families), cancelling the caller's context ends its call with
// context.Canceled and gives the device to the next caller.
func TestCancelReleasesDevice(t *testing.T) {
	for _, path := range []string{trezorPath, ledgerPath} {
		t.Run(path, func(t *testing.T) {
			w := newWorld(t, emulator.PolicyPrompt)
			events, stop := w.hub.Subscribe(16)
			defer stop()
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			if _, err := w.address(ctx, path, 0); err != nil { // no screen: never waits for a press
				t.Fatal(err)
			}
			actx, acancel := context.WithCancel(ctx)
			first := make(chan error, 1)
			go func() {
				first <- w.hub.Do(actx, path, "shown", func(ctx context.Context, d device.Device) error {
					_, err := d.Address(ctx, device.AddressRequest{Chain: device.ChainBTC, Script: device.ScriptWPKH, Display: true,
						Network: &chaincfg.RegressionNetParams, Path: hdpath.Path{84 + hdpath.Hardened, 1 + hdpath.Hardened, hdpath.Hardened, 0, 4}})
					return err
				})
			}()
			waitPrompt(t, ctx, events, path, "shown")
			for { // the screen is up on the emulator
				if _, ok := w.approver[path].Pending(); ok {
					break
				}
				select {
				case <-ctx.Done():
					t.Fatal("no screen came up")
				case <-time.After(5 * time.Millisecond):
				}
			}
			acancel()
			if err := <-first; !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled call: %v", err)
			}
			if path == ledgerPath {
				// A Ledger app answers nothing until its screen is dismissed, and the host
				// cannot take it down: the next caller waits for the person (announced again).
				next := make(chan error, 1)
				go func() {
					_, err := w.address(ctx, path, 5)
					next <- err
				}()
				waitPrompt(t, ctx, events, path, "test")
				if err := w.approver[path].Press(false); err != nil {
					t.Fatal(err)
				}
				if err := <-next; err != nil {
					t.Fatalf("the next caller: %v", err)
				}
				return
			}
			if _, err := w.address(ctx, path, 5); err != nil {
				t.Fatalf("the next caller: %v", err)
			}
		})
	}
}

// BenchmarkLostReply measures what a lost reply costs with the production link timeout:
// the call that loses it (device.ErrLinkLost) plus the next call, which re-syncs the link
// and succeeds. Run: go test -run - -bench LostReply -benchtime 3x ./device/drivers
func BenchmarkLostReply(b *testing.B) {
	for _, path := range []string{trezorPath, ledgerPath} {
		b.Run(path, func(b *testing.B) {
			w := newWorldTB(b, emulator.PolicyAuto)
			ctx := context.Background()
			if _, err := w.address(ctx, path, 0); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				w.faults[path].DropNext(1)
				if _, err := w.address(ctx, path, 0); !errors.Is(err, device.ErrLinkLost) {
					b.Fatalf("lost reply: %v", err)
				}
				if _, err := w.address(ctx, path, 0); err != nil {
					b.Fatalf("next call: %v", err)
				}
			}
		})
	}
}
