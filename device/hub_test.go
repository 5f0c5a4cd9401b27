package device

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/transport"
)

// fakeDevice counts calls and checks that exchanges never overlap.
type fakeDevice struct {
	active, maxActive atomic.Int32
	xpubs, features   atomic.Int32
	closed            atomic.Bool
	block             chan struct{} // SignMessage waits on it (or ctx)
	prompt            func()
}

func (f *fakeDevice) enter() func() {
	n := f.active.Add(1)
	for {
		m := f.maxActive.Load()
		if n <= m || f.maxActive.CompareAndSwap(m, n) {
			break
		}
	}
	return func() { f.active.Add(-1) }
}

func (f *fakeDevice) Features(ctx context.Context) (Features, error) {
	defer f.enter()()
	f.features.Add(1)
	return Features{Family: FamilyTrezor, Model: "T", Emulator: true}, nil
}
func (f *fakeDevice) Fingerprint(ctx context.Context) (Fingerprint, error) {
	defer f.enter()()
	return 0x73c5da0a, nil
}
func (f *fakeDevice) XPub(ctx context.Context, req XPubRequest) (string, error) {
	defer f.enter()()
	f.xpubs.Add(1)
	return "xpub-" + req.Path.String(), nil
}
func (f *fakeDevice) Address(ctx context.Context, req AddressRequest) (string, error) {
	defer f.enter()()
	return "addr", nil
}
func (f *fakeDevice) SignPSBT(ctx context.Context, p *psbt.Packet, net *chaincfg.Params) error {
	return errors.ErrUnsupported
}
func (f *fakeDevice) SignEthTx(ctx context.Context, path hdpath.Path, tx *types.Transaction, chainID *big.Int) (*types.Transaction, error) {
	return nil, errors.ErrUnsupported
}
func (f *fakeDevice) SignMessage(ctx context.Context, req MessageRequest) (MessageSignature, error) {
	defer f.enter()()
	if f.prompt != nil {
		f.prompt()
	}
	select {
	case <-f.block:
		return MessageSignature{Address: "addr"}, nil
	case <-ctx.Done():
		return MessageSignature{}, ctx.Err()
	}
}
func (f *fakeDevice) SignTypedHash(ctx context.Context, path hdpath.Path, d [32]byte, m []byte) ([]byte, error) {
	return nil, errors.ErrUnsupported
}
func (f *fakeDevice) Close() error { f.closed.Store(true); return nil }

// fakeWorld is a hub with fake links, drivers and USB.
type fakeWorld struct {
	mu      sync.Mutex
	usb     []transport.DeviceInfo
	enums   atomic.Int32
	opens   atomic.Int32
	devs    []*fakeDevice
	block   chan struct{}
	refuse  atomic.Bool // Open fails with ErrNoDevice
	inEnum  atomic.Bool
	hub     *Hub
	enumErr func() // called during Enumerate
}

func newWorld(t *testing.T, emulators ...string) *fakeWorld {
	w := &fakeWorld{block: make(chan struct{})}
	w.hub = NewHub(HubConfig{
		Drivers: map[string]Driver{transport.KindTrezor: func(link transport.Link, c DriverConfig) (Device, error) {
			d := &fakeDevice{block: w.block, prompt: c.Prompt}
			w.mu.Lock()
			w.devs = append(w.devs, d)
			w.mu.Unlock()
			return d, nil
		}},
		Emulators: emulators,
		USB: USBFunc(func(ctx context.Context) ([]transport.DeviceInfo, error) {
			w.enums.Add(1)
			if w.hub.inFlight.Load() != 0 {
				t.Error("enumeration ran during an exchange")
			}
			w.mu.Lock()
			defer w.mu.Unlock()
			return slices.Clone(w.usb), nil
		}),
		Open: func(ctx context.Context, path string) (transport.Link, error) {
			if w.refuse.Load() {
				return nil, transport.ErrNoDevice
			}
			w.opens.Add(1)
			a, b := net.Pipe()
			b.Close()
			return a, nil
		},
		PollInterval: time.Second,
		Timeout:      30 * time.Second,
	})
	return w
}

func (w *fakeWorld) setUSB(paths ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.usb = nil
	for _, p := range paths {
		w.usb = append(w.usb, transport.DeviceInfo{Path: p, Kind: transport.KindTrezor, Model: "trezor1"})
	}
}

const emu = "udp:127.0.0.1:21324"

func TestHubFIFOAndOneAtATime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, emu)
		ctx := t.Context()
		hold := make(chan struct{})
		started := make(chan struct{})
		go w.hub.Do(ctx, emu, "first", func(ctx context.Context, d Device) error {
			close(started)
			<-hold
			return nil
		})
		<-started
		var mu sync.Mutex
		var order []int
		var wg sync.WaitGroup
		for i := range 6 {
			wg.Go(func() {
				err := w.hub.Do(ctx, emu, "q", func(ctx context.Context, d Device) error {
					mu.Lock()
					order = append(order, i)
					mu.Unlock()
					_, err := d.Address(ctx, AddressRequest{})
					return err
				})
				if err != nil {
					t.Error(err)
				}
			})
			synctest.Wait() // goroutine i is queued before i+1 starts
		}
		// A waiter that gives up leaves the queue without taking a turn.
		cctx, cancel := context.WithCancel(ctx)
		gaveUp := make(chan error, 1)
		go func() {
			gaveUp <- w.hub.Do(cctx, emu, "gives up", func(context.Context, Device) error {
				t.Error("a cancelled waiter ran")
				return nil
			})
		}()
		synctest.Wait()
		cancel()
		if err := <-gaveUp; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled waiter: %v", err)
		}
		if err := w.hub.TryDo(ctx, emu, "try", func(context.Context, Device) error { return nil }); !errors.Is(err, ErrBusy) {
			t.Fatalf("TryDo on a busy device: %v", err)
		}
		close(hold)
		wg.Wait()
		if !slices.Equal(order, []int{0, 1, 2, 3, 4, 5}) {
			t.Fatalf("served in order %v", order)
		}
		if m := w.devs[0].maxActive.Load(); m != 1 {
			t.Fatalf("%d exchanges overlapped", m)
		}
		if n := w.opens.Load(); n != 1 {
			t.Fatalf("opened %d times", n)
		}
	})
}

func TestHubCancelAndTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, emu)
		// The caller cancels: the running exchange sees ctx end (the driver then cancels on
		// the device).
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			done <- w.hub.Do(ctx, emu, "x", func(ctx context.Context, d Device) error {
				_, err := d.SignMessage(ctx, MessageRequest{})
				return err
			})
		}()
		synctest.Wait()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancel: %v", err)
		}
		// No deadline from the caller: the hub's timeout ends the exchange.
		start := time.Now()
		err := w.hub.Do(t.Context(), emu, "x", func(ctx context.Context, d Device) error {
			_, err := d.SignMessage(ctx, MessageRequest{})
			return err
		})
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 30*time.Second {
			t.Fatalf("timeout: %v after %v", err, time.Since(start))
		}
	})
}

func TestHubCacheServedWhileBusy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, emu)
		ctx := t.Context()
		p, _ := hdpath.Parse("m/84'/0'/0'")
		x1, err := w.hub.XPub(ctx, emu, "a", XPubRequest{Path: p})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.hub.Features(ctx, emu); err != nil {
			t.Fatal(err)
		}
		// A confirmation is pending on the device.
		events, stop := w.hub.Subscribe(8)
		defer stop()
		go w.hub.Do(ctx, emu, "app/v1SignMessage", func(ctx context.Context, d Device) error {
			_, err := d.SignMessage(ctx, MessageRequest{})
			return err
		})
		synctest.Wait()
		if e := <-events; e.Type != EventPrompt || e.Label != "app/v1SignMessage" || e.Path != emu {
			t.Fatalf("prompt event %+v", e)
		}
		x2, err := w.hub.XPub(ctx, emu, "b", XPubRequest{Path: p})
		if err != nil || x2 != x1 {
			t.Fatalf("cached xpub: %q %v", x2, err)
		}
		devs := w.hub.Devices()
		if len(devs) != 1 || !devs[0].Busy || devs[0].Features == nil || devs[0].Features.Model != "T" {
			t.Fatalf("devices while busy: %+v", devs)
		}
		if _, err := w.hub.Features(ctx, emu); err != nil {
			t.Fatal(err)
		}
		d := w.devs[0]
		if d.xpubs.Load() != 1 || d.features.Load() != 1 {
			t.Fatalf("device asked %d xpubs, %d features", d.xpubs.Load(), d.features.Load())
		}
		close(w.block)
	})
}

func TestHubHotPlug(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t)
		ctx, cancel := context.WithCancel(t.Context())
		events, stop := w.hub.Subscribe(16)
		defer stop()
		done := make(chan error, 1)
		go func() { done <- w.hub.Run(ctx) }()
		synctest.Wait()
		if len(w.hub.Devices()) != 0 {
			t.Fatal("devices before any was plugged in")
		}
		w.setUSB("hid:/dev/hidraw3")
		time.Sleep(time.Second)
		synctest.Wait()
		if e := <-events; e.Type != EventAttached || e.Path != "hid:/dev/hidraw3" {
			t.Fatalf("event %+v", e)
		}
		devs := w.hub.Devices()
		if len(devs) != 1 || devs[0].Features == nil {
			t.Fatalf("after attach: %+v", devs)
		}
		if p, err := w.hub.Select(ctx, ""); err != nil || p != "hid:/dev/hidraw3" {
			t.Fatalf("select the only device: %q %v", p, err)
		}
		if p, err := w.hub.Select(ctx, "73c5da0a"); err != nil || p != "hid:/dev/hidraw3" {
			t.Fatalf("select by fingerprint: %q %v", p, err)
		}
		// No enumeration while an exchange runs.
		n := w.enums.Load()
		go w.hub.Do(ctx, "hid:/dev/hidraw3", "x", func(ctx context.Context, d Device) error {
			_, err := d.SignMessage(ctx, MessageRequest{})
			return err
		})
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if w.enums.Load() != n {
			t.Fatal("enumerated during an exchange")
		}
		if e := <-events; e.Type != EventPrompt {
			t.Fatalf("event %+v", e)
		}
		close(w.block)
		w.setUSB()
		time.Sleep(time.Second)
		synctest.Wait()
		if e := <-events; e.Type != EventDetached {
			t.Fatalf("event %+v", e)
		}
		if !w.devs[0].closed.Load() {
			t.Fatal("detached device not closed")
		}
		if _, err := w.hub.Select(ctx, "hid:/dev/hidraw3"); !errors.Is(err, ErrNoDevice) {
			t.Fatalf("select detached: %v", err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

func TestHubEmulatorDisconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, emu)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		events, stop := w.hub.Subscribe(16)
		defer stop()
		go w.hub.Run(ctx)
		synctest.Wait()
		if e := <-events; e.Type != EventAttached {
			t.Fatalf("event %+v", e)
		}
		w.refuse.Store(true)
		err := w.hub.Do(ctx, emu, "x", func(ctx context.Context, d Device) error {
			return &Error{Op: "sign", Family: FamilyTrezor, Kind: ErrDisconnected}
		})
		if !errors.Is(err, ErrDisconnected) {
			t.Fatalf("do: %v", err)
		}
		if e := <-events; e.Type != EventDetached {
			t.Fatalf("event %+v", e)
		}
		if len(w.hub.Devices()) != 0 || !w.devs[0].closed.Load() {
			t.Fatal("a lost emulator is still listed or open")
		}
		if err := w.hub.Do(ctx, emu, "x", func(context.Context, Device) error { return nil }); !errors.Is(err, transport.ErrNoDevice) {
			t.Fatalf("do while gone: %v", err)
		}
		w.refuse.Store(false)
		time.Sleep(time.Second)
		synctest.Wait()
		if e := <-events; e.Type != EventAttached {
			t.Fatalf("event %+v", e)
		}
		if w.opens.Load() != 2 {
			t.Fatalf("opens %d", w.opens.Load())
		}
	})
}

// TestHubNoUSBBuild: in a build without cgo, enumeration is unsupported; the hub says so in
// the no-device error (what to do), and says nothing of it when USB works.
func TestHubNoUSBBuild(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		hint bool
	}{
		{"no cgo", fmt.Errorf("transport: usb hid is unavailable in this build: %w", errors.ErrUnsupported), true},
		{"usb works, nothing attached", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHub(HubConfig{
				USB: USBFunc(func(context.Context) ([]transport.DeviceInfo, error) { return nil, tc.err }),
			})
			h.Scan(t.Context())
			_, err := h.Select(t.Context(), "")
			if !errors.Is(err, ErrNoDevice) {
				t.Fatalf("Select: %v, want ErrNoDevice", err)
			}
			if got := strings.Contains(err.Error(), "CGO_ENABLED=1"); got != tc.hint {
				t.Fatalf("error %q: cgo hint %v, want %v", err, got, tc.hint)
			}
		})
	}
}

// TestHubNoCgoRawUSB: a build without cgo has no HID, but on Linux enumeration still lists
// the raw-USB Trezors (usb: paths) along with the unsupported error: the hub serves them.
func TestHubNoCgoRawUSB(t *testing.T) {
	w := newWorld(t)
	noHID := fmt.Errorf("transport: usb hid is unavailable in this build: %w", errors.ErrUnsupported)
	w.hub.cfg.USB = USBFunc(func(context.Context) ([]transport.DeviceInfo, error) {
		return []transport.DeviceInfo{{Path: "usb:1-3.2", Kind: transport.KindTrezor}}, noHID
	})
	w.hub.Scan(t.Context())
	if p, err := w.hub.Select(t.Context(), ""); err != nil || p != "usb:1-3.2" {
		t.Fatalf("select: %q %v", p, err)
	}
	if w.opens.Load() != 1 {
		t.Fatalf("opens %d, want 1 (features read on attach)", w.opens.Load())
	}
}
