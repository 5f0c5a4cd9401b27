package device

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/hwbridge/hwbridge/transport"
)

// Hub defaults.
const (
	DefaultPollInterval = time.Second     // hot-plug polling
	DefaultHubTimeout   = 5 * time.Minute // one exchange, user confirmation included
	attachProbeTimeout  = 5 * time.Second // reading features of a newly attached device
)

// Driver opens a device of one family on an open link.
type Driver func(link transport.Link, c DriverConfig) (Device, error)

// DriverConfig is what the hub tells a driver about the device it opens.
type DriverConfig struct {
	// Emulator: the path named an emulator (udp: or tcp:).
	Emulator bool
	// Prompt is to be called whenever the device waits for the person (a Trezor
	// ButtonRequest, a Ledger confirmation screen): the hub sends EventPrompt.
	Prompt func()
	// PairingCode is to be called when a device shows a pairing code for the person to
	// compare with the host's copy before confirming (BitBox02): the hub sends
	// EventPairing carrying the code.
	PairingCode func(code string)
	// Reopen opens a fresh link to the same device, for a driver that re-opens its link
	// after a failed exchange (the Ledger driver's Options.Reopen). The driver closes the
	// link it replaces.
	Reopen func(ctx context.Context) (transport.Link, error)
}

// USB lists the wallets on USB; transport.Enumerate fits (wrap it in USBFunc).
type USB interface {
	Enumerate(ctx context.Context) ([]transport.DeviceInfo, error)
}

// USBFunc adapts a function to USB.
type USBFunc func(ctx context.Context) ([]transport.DeviceInfo, error)

// Enumerate calls f.
func (f USBFunc) Enumerate(ctx context.Context) ([]transport.DeviceInfo, error) { return f(ctx) }

// HubConfig configures a Hub. Drivers is required; the rest has defaults.
type HubConfig struct {
	// Drivers opens each family, keyed by transport.KindTrezor / transport.KindLedger.
	Drivers map[string]Driver
	// Emulators are endpoints to serve (udp:HOST:PORT speaks the Trezor emulator protocol,
	// tcp:HOST:PORT the Speculos APDU protocol). They are never found by themselves.
	Emulators []string
	// USB enumerates wallets on USB; nil serves emulators only.
	USB USB
	// Open opens a link; nil means transport.Open.
	Open func(ctx context.Context, path string) (transport.Link, error)
	// PollInterval between hot-plug scans (DefaultPollInterval if 0).
	PollInterval time.Duration
	// Timeout bounds one exchange when the caller's context has no deadline.
	Timeout time.Duration
	Logger  *slog.Logger
}

// EventType says what happened to a device.
type EventType string

const (
	EventAttached EventType = "attached"
	EventDetached EventType = "detached"
	EventPrompt   EventType = "prompt" // the device waits for the user: confirm on your device
	// EventPairing: the device shows a pairing code (Event.Code) and waits for the person
	// to confirm it matches (BitBox02, once per host).
	EventPairing EventType = "pairing"
)

// Event is a hot-plug or prompt notification.
type Event struct {
	Type  EventType `json:"type"`
	Path  string    `json:"path"`
	Label string    `json:"label,omitempty"` // for prompts: who holds the device (see Do)
	Code  string    `json:"code,omitempty"`  // for pairing: the code the device shows
	Time  time.Time `json:"time"`
}

// Info describes a device the hub serves. Features and Fingerprint are cached values (nil
// and empty until read).
type Info struct {
	Path        string    `json:"path"`
	Kind        string    `json:"kind"`
	Model       string    `json:"model,omitempty"`
	Emulator    bool      `json:"emulator"`
	Busy        bool      `json:"busy"`
	Features    *Features `json:"features,omitempty"`
	Fingerprint string    `json:"fingerprint,omitempty"`
}

// Hub owns the devices: it finds them (USB enumeration with hot-plug polling, configured
// emulator endpoints), opens each once, and lets one conversation at a time reach each
// device through a fair (FIFO) queue. Features, fingerprints and xpubs it has read are
// served from its cache without waiting, also while an exchange is pending.
//
// Lock order: Hub.mu, then slot.mu; neither is held while a device is talked to. A slot's
// queue (fifo) is taken before its device is used and never while holding Hub.mu.
type Hub struct {
	cfg HubConfig
	log *slog.Logger

	inFlight atomic.Int32 // exchanges running, on any device: enumeration waits for 0
	noUSB    atomic.Bool  // USB enumeration is unsupported in this build (no cgo)

	mu     sync.Mutex
	slots  map[string]*slot
	subs   map[int]chan Event
	nextID int
}

// slot is one device path.
type slot struct {
	path     string
	kind     string
	model    string
	emulator bool
	q        fifo

	mu       sync.Mutex // guards the fields below
	present  bool
	dev      Device // open device, or nil
	label    string // who holds the queue
	features *Features
	fp       *Fingerprint
	xpubs    map[string]string
}

// NewHub returns a hub; call Run to start finding devices.
func NewHub(cfg HubConfig) *Hub {
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultHubTimeout
	}
	if cfg.Open == nil {
		cfg.Open = transport.Open
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Hub{cfg: cfg, log: log, slots: map[string]*slot{}, subs: map[int]chan Event{}}
	for _, e := range cfg.Emulators {
		kind := transport.KindTrezor
		if strings.HasPrefix(e, transport.SchemeTCP+":") {
			kind = transport.KindLedger
		}
		if strings.HasPrefix(e, transport.SchemeBitBox02+":") {
			kind = transport.KindBitBox02
		}
		if strings.HasPrefix(e, transport.SchemeUnix+":") {
			kind = transport.KindColdcard
		}
		if strings.HasPrefix(e, transport.SchemeKeepKey+":") {
			kind = transport.KindKeepKey
		}
		h.slots[e] = &slot{path: e, kind: kind, emulator: true}
	}
	return h
}

// Run scans for devices every PollInterval until ctx ends, then closes every open device.
func (h *Hub) Run(ctx context.Context) error {
	t := time.NewTicker(h.cfg.PollInterval)
	defer t.Stop()
	defer h.closeAll()
	for {
		h.Scan(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (h *Hub) closeAll() {
	h.mu.Lock()
	slots := slices.Collect(maps.Values(h.slots))
	h.mu.Unlock()
	for _, s := range slots {
		s.mu.Lock()
		if s.dev != nil {
			_ = s.dev.Close()
			s.dev = nil
		}
		s.mu.Unlock()
	}
}

// Scan looks for attached and detached devices once: USB enumeration (skipped while any
// exchange is in flight: the cached list stands) and a probe of each absent emulator
// endpoint.
func (h *Hub) Scan(ctx context.Context) {
	if h.cfg.USB != nil && h.inFlight.Load() == 0 {
		h.scanUSB(ctx)
	}
	h.mu.Lock()
	var absent []*slot
	for _, s := range h.slots {
		if s.emulator {
			s.mu.Lock()
			if !s.present {
				absent = append(absent, s)
			}
			s.mu.Unlock()
		}
	}
	h.mu.Unlock()
	for _, s := range absent {
		if ctx.Err() != nil {
			return
		}
		if !s.q.tryLock() {
			continue
		}
		err := h.openLocked(ctx, s)
		s.q.unlock()
		if err == nil {
			h.attached(ctx, s)
		}
	}
}

func (h *Hub) scanUSB(ctx context.Context) {
	infos, err := h.cfg.USB.Enumerate(ctx)
	if err != nil {
		switch {
		case errors.Is(err, errors.ErrUnsupported):
			if !h.noUSB.Swap(true) {
				h.log.Warn("this build cannot reach USB HID wallets (built without cgo): only --emulator endpoints and raw-USB Trezors (Linux) are served; reinstall with CGO_ENABLED=1 and a C compiler", "err", err)
			}
			// Without HID, enumeration still lists what raw USB found (transport.Enumerate).
		case ctx.Err() == nil:
			h.log.Warn("usb enumeration failed", "err", err)
			return
		default:
			return
		}
	}
	seen := map[string]bool{}
	var added []*slot
	h.mu.Lock()
	for _, in := range infos {
		if in.Unsupported != nil || h.cfg.Drivers[in.Kind] == nil {
			continue
		}
		seen[in.Path] = true
		s := h.slots[in.Path]
		if s == nil {
			s = &slot{path: in.Path, kind: in.Kind, model: in.Model}
			h.slots[in.Path] = s
		}
		s.mu.Lock()
		if !s.present {
			s.present = true
			added = append(added, s)
		}
		s.mu.Unlock()
	}
	var gone []*slot
	for p, s := range h.slots {
		if s.emulator || seen[p] {
			continue
		}
		gone = append(gone, s)
		delete(h.slots, p)
	}
	h.mu.Unlock()
	for _, s := range gone {
		s.mu.Lock()
		if s.dev != nil {
			_ = s.dev.Close()
			s.dev = nil
		}
		s.present = false
		s.mu.Unlock()
		h.emit(Event{Type: EventDetached, Path: s.path})
	}
	for _, s := range added {
		h.attached(ctx, s)
	}
}

// attached announces a device and reads its features into the cache if it is free.
func (h *Hub) attached(ctx context.Context, s *slot) {
	h.log.Info("device attached", "path", s.path, "kind", s.kind)
	h.emit(Event{Type: EventAttached, Path: s.path})
	pctx, cancel := context.WithTimeout(ctx, attachProbeTimeout)
	defer cancel()
	err := h.do(pctx, s, "hub", false, func(ctx context.Context, d Device) error {
		_, err := h.features(ctx, s, d)
		return err
	})
	if err != nil {
		h.log.Info("could not read features of an attached device", "path", s.path, "err", err)
	}
}

// openLocked opens s's device if needed; s.q must be held.
func (h *Hub) openLocked(ctx context.Context, s *slot) error {
	s.mu.Lock()
	if s.dev != nil {
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	drv := h.cfg.Drivers[s.kind]
	if drv == nil {
		return fmt.Errorf("%s: this hwbridged has no %s driver: %w", s.path, s.kind, errors.ErrUnsupported)
	}
	link, err := h.cfg.Open(ctx, s.path)
	if err != nil {
		return err
	}
	path := s.path
	dev, err := drv(link, DriverConfig{
		Emulator: s.emulator,
		Prompt: func() {
			s.mu.Lock()
			label := s.label
			s.mu.Unlock()
			h.emit(Event{Type: EventPrompt, Path: path, Label: label})
		},
		PairingCode: func(code string) {
			s.mu.Lock()
			label := s.label
			s.mu.Unlock()
			// Not a secret: the code is for the person to compare with the device's screen.
			// The hub opens a device when it first sees it, so hwbridged's log (as well as
			// the event) is where a person running it finds the code.
			h.log.Info("the device shows a pairing code: compare it and confirm on the device", "path", path, "code", strings.ReplaceAll(code, "\n", " "))
			h.emit(Event{Type: EventPairing, Path: path, Label: label, Code: code})
		},
		Reopen: func(ctx context.Context) (transport.Link, error) { return h.cfg.Open(ctx, path) },
	})
	if err != nil {
		_ = link.Close()
		return err
	}
	s.mu.Lock()
	s.dev, s.present = dev, true
	s.mu.Unlock()
	return nil
}

// Subscribe returns a channel of events with room for buf; events a slow subscriber has no
// room for are dropped. Call the returned func to stop.
func (h *Hub) Subscribe(buf int) (<-chan Event, func()) {
	ch := make(chan Event, buf)
	h.mu.Lock()
	id := h.nextID
	h.nextID++
	h.subs[id] = ch
	h.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			h.mu.Lock()
			delete(h.subs, id)
			h.mu.Unlock()
		})
	}
}

func (h *Hub) emit(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ch := range h.subs {
		select {
		case ch <- e:
		default:
			h.log.Warn("event subscriber too slow, event dropped", "type", e.Type, "path", e.Path)
		}
	}
}

// Devices lists the present devices from the cache; it never waits for a device.
func (h *Hub) Devices() []Info {
	h.mu.Lock()
	slots := slices.Collect(maps.Values(h.slots))
	h.mu.Unlock()
	var out []Info
	for _, s := range slots {
		s.mu.Lock()
		if s.present {
			in := Info{Path: s.path, Kind: s.kind, Model: s.model, Emulator: s.emulator, Busy: s.q.held()}
			if s.features != nil {
				f := *s.features
				in.Features = &f
				if in.Model == "" {
					in.Model = f.Model
				}
			}
			if s.fp != nil {
				in.Fingerprint = s.fp.String()
			}
			out = append(out, in)
		}
		s.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.Path, b.Path) })
	return out
}

func (h *Hub) slot(path string) (*slot, error) {
	h.mu.Lock()
	s := h.slots[path]
	h.mu.Unlock()
	if s == nil {
		return nil, fmt.Errorf("%s is not served by this hwbridged (hwbridge devices lists what is; emulators are served only when named with hwbridged --emulator): %w", path, ErrNoDevice)
	}
	s.mu.Lock()
	present := s.present || s.emulator
	s.mu.Unlock()
	if !present {
		return nil, fmt.Errorf("%s was unplugged: %w", path, ErrNoDevice)
	}
	return s, nil
}

// Select resolves a device selector: a path, a master fingerprint (8 hex digits), or ""
// for the only present device.
func (h *Hub) Select(ctx context.Context, sel string) (string, error) {
	if strings.Contains(sel, ":") {
		if _, err := h.slot(sel); err != nil {
			return "", err
		}
		return sel, nil
	}
	devs := h.Devices()
	if sel == "" {
		switch len(devs) {
		case 0:
			hint := ""
			if h.noUSB.Load() {
				hint = "; this hwbridged was built without cgo and cannot reach USB wallets: reinstall it with CGO_ENABLED=1 and a C compiler"
			}
			return "", fmt.Errorf("hwbridged sees no device (connect one, or start hwbridged with --emulator udp:127.0.0.1:21324%s): %w", hint, ErrNoDevice)
		case 1:
			return devs[0].Path, nil
		}
		return "", fmt.Errorf("%d devices are attached: %w", len(devs), ErrSeveralDevices)
	}
	for _, d := range devs {
		fp, err := h.Fingerprint(ctx, d.Path)
		if err == nil && strings.EqualFold(fp.String(), sel) {
			return d.Path, nil
		}
	}
	return "", fmt.Errorf("no device served by hwbridged has master fingerprint %s: %w", sel, ErrNoDevice)
}

// Do runs fn with the device at path, alone: callers queue in FIFO order, one exchange at a
// time per device. label names the holder in prompt events. Cancelling ctx gives up the
// place in the queue, or cancels the running exchange on the device (the driver sends its
// cancel when ctx ends). An exchange has the hub's Timeout unless ctx ends sooner. A device
// that disconnects is closed and reopened on the next call.
func (h *Hub) Do(ctx context.Context, path, label string, fn func(ctx context.Context, d Device) error) error {
	s, err := h.slot(path)
	if err != nil {
		return err
	}
	return h.do(ctx, s, label, true, fn)
}

// TryDo is Do, but fails with ErrBusy at once when the device is in use.
func (h *Hub) TryDo(ctx context.Context, path, label string, fn func(ctx context.Context, d Device) error) error {
	s, err := h.slot(path)
	if err != nil {
		return err
	}
	return h.do(ctx, s, label, false, fn)
}

func (h *Hub) do(ctx context.Context, s *slot, label string, wait bool, fn func(ctx context.Context, d Device) error) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.cfg.Timeout)
		defer cancel()
	}
	if wait {
		if err := s.q.lock(ctx); err != nil {
			return fmt.Errorf("waiting for %s: %w", s.path, err)
		}
	} else if !s.q.tryLock() {
		return fmt.Errorf("%s: %w", s.path, ErrBusy)
	}
	defer s.q.unlock()
	h.inFlight.Add(1)
	defer h.inFlight.Add(-1)
	if err := h.openLocked(ctx, s); err != nil {
		h.lost(s, err)
		return err
	}
	s.mu.Lock()
	dev := s.dev
	s.label = label
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.label = ""
		s.mu.Unlock()
	}()
	err := fn(ctx, dev)
	if err != nil {
		h.lost(s, err)
	}
	return err
}

// lost closes s's device after a disconnect (or a failed open) so that the next call opens
// it afresh, and tells subscribers when an emulator went away.
func (h *Hub) lost(s *slot, err error) {
	if !errors.Is(err, ErrDisconnected) && !errors.Is(err, transport.ErrClosed) && !errors.Is(err, ErrNoDevice) &&
		!errors.Is(err, transport.ErrNoDevice) {
		return
	}
	s.mu.Lock()
	if s.dev != nil {
		_ = s.dev.Close()
		s.dev = nil
	}
	was := s.present
	s.present = false
	s.features, s.fp = nil, nil
	s.mu.Unlock()
	if was {
		h.log.Info("device lost", "path", s.path, "err", err)
		h.emit(Event{Type: EventDetached, Path: s.path})
	}
}

// ForgetKeys drops what the hub cached of the keys of the device at path (features,
// fingerprint, xpubs): they changed, as when a passphrase session begins or ends.
func (h *Hub) ForgetKeys(path string) {
	s, err := h.slot(path)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.features, s.fp, s.xpubs = nil, nil, nil
	s.mu.Unlock()
}

// Features returns the cached features of the device at path, reading them once.
func (h *Hub) Features(ctx context.Context, path string) (Features, error) {
	s, err := h.slot(path)
	if err != nil {
		return Features{}, err
	}
	s.mu.Lock()
	f := s.features
	s.mu.Unlock()
	if f != nil {
		return *f, nil
	}
	var out Features
	err = h.do(ctx, s, "hub", true, func(ctx context.Context, d Device) error {
		var err error
		out, err = h.features(ctx, s, d)
		return err
	})
	return out, err
}

// features reads and caches; s.q is held.
func (h *Hub) features(ctx context.Context, s *slot, d Device) (Features, error) {
	f, err := d.Features(ctx)
	if err != nil {
		return f, err
	}
	s.mu.Lock()
	s.features = &f
	s.mu.Unlock()
	return f, nil
}

// Fingerprint returns the cached master fingerprint of the device at path, reading it once.
func (h *Hub) Fingerprint(ctx context.Context, path string) (Fingerprint, error) {
	s, err := h.slot(path)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	fp := s.fp
	s.mu.Unlock()
	if fp != nil {
		return *fp, nil
	}
	var out Fingerprint
	err = h.do(ctx, s, "hub", true, func(ctx context.Context, d Device) error {
		var err error
		if out, err = d.Fingerprint(ctx); err == nil {
			s.mu.Lock()
			s.fp = &out
			s.mu.Unlock()
		}
		return err
	})
	return out, err
}

// XPub returns an extended public key, from the cache when it was read before (requests
// that display the key on the device always go to the device).
func (h *Hub) XPub(ctx context.Context, path, label string, req XPubRequest) (string, error) {
	s, err := h.slot(path)
	if err != nil {
		return "", err
	}
	net := req.Network
	if net == nil {
		net = &chaincfg.MainNetParams
	}
	key := req.Path.String() + "|" + net.Name
	if !req.Display {
		s.mu.Lock()
		x, ok := s.xpubs[key]
		s.mu.Unlock()
		if ok {
			return x, nil
		}
	}
	var out string
	err = h.do(ctx, s, label, true, func(ctx context.Context, d Device) error {
		var err error
		if out, err = d.XPub(ctx, req); err == nil {
			s.mu.Lock()
			if s.xpubs == nil {
				s.xpubs = map[string]string{}
			}
			s.xpubs[key] = out
			s.mu.Unlock()
		}
		return err
	})
	return out, err
}

// fifo is a lock handed to waiters in arrival order.
type fifo struct {
	mu      sync.Mutex
	busy    bool
	waiters []chan struct{}
}

func (f *fifo) held() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.busy
}

func (f *fifo) tryLock() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.busy {
		return false
	}
	f.busy = true
	return true
}

func (f *fifo) lock(ctx context.Context) error {
	f.mu.Lock()
	if !f.busy {
		f.busy = true
		f.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	f.waiters = append(f.waiters, ch)
	f.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		f.mu.Lock()
		if i := slices.Index(f.waiters, ch); i >= 0 {
			f.waiters = slices.Delete(f.waiters, i, i+1)
			f.mu.Unlock()
			return ctx.Err()
		}
		f.mu.Unlock()
		f.unlock() // handed over as ctx ended: pass it on
		return ctx.Err()
	}
}

func (f *fifo) unlock() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.waiters) > 0 {
		ch := f.waiters[0]
		f.waiters = f.waiters[1:]
		close(ch) // busy stays true: ownership passes
		return
	}
	f.busy = false
}
