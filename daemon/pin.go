package daemon

// PIN entry through hwbridged, with HWI's promptpin/sendpin semantics: promptpin makes a
// locked Trezor show its PIN matrix (a GetPublicKey that needs the PIN, as HWI's
// prompt_pin), and the request waits in hwbridged, holding the device, until sendpin gives
// the positions the person reads off the matrix (or pinWait passes). HWI relies on the
// device staying in PIN entry between two processes; hwbridged keeps the request itself.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/hwbridge/hwbridge/daemon/keys"
	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// pinWait is how long a prompted PIN matrix waits for sendpin.
const pinWait = 3 * time.Minute

// pinPrompt is one PIN matrix waiting for sendpin.
type pinPrompt struct {
	pin   chan string   // sendpin's positions (buffered, one)
	asked chan struct{} // closed when the device asked for the PIN
	done  chan struct{} // closed when the request ended; err is set before
	err   error
}

type pinPrompts struct {
	mu sync.Mutex
	m  map[string]*pinPrompt // by device path
}

// PromptPINResult says whether the device now shows its PIN matrix.
type PromptPINResult struct {
	Prompted bool   `json:"prompted"` // false: the device did not ask (it is unlocked)
	Path     string `json:"path"`
}

// V1PromptPin makes a locked device show its PIN matrix; sendpin answers it.
func (a *API) V1PromptPin(ctx context.Context, auth keys.Auth, raw json.RawMessage) (*PromptPINResult, error) {
	ctx, done := a.d.conns.bind(ctx)
	defer done()
	var p DeviceParams
	c, err := a.d.begin(ctx, "v1PromptPin", auth, raw, &p)
	if err != nil {
		return nil, toRPC(err)
	}
	var res PromptPINResult
	err = func() error {
		path, err := c.device(ctx, p.Device)
		if err != nil {
			return err
		}
		res.Path = path
		pp, fresh := a.d.pinPrompts.start(path)
		if fresh {
			go a.d.runPINPrompt(c, path, pp)
		}
		select {
		case <-pp.asked:
			res.Prompted = true
			return nil
		case <-pp.done:
			if pp.err == nil {
				return nil // unlocked already: nothing to prompt
			}
			return pp.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}()
	if err := c.finish("prompt for the pin", err); err != nil {
		return nil, err
	}
	return &res, nil
}

func (s *pinPrompts) start(path string) (*pinPrompt, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]*pinPrompt{}
	}
	if pp, ok := s.m[path]; ok {
		return pp, false
	}
	pp := &pinPrompt{pin: make(chan string, 1), asked: make(chan struct{}), done: make(chan struct{})}
	s.m[path] = pp
	return pp, true
}

func (s *pinPrompts) get(path string) (*pinPrompt, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pp, ok := s.m[path]
	return pp, ok
}

func (s *pinPrompts) end(path string, pp *pinPrompt) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[path] == pp {
		delete(s.m, path)
	}
}

// runPINPrompt holds the device with a request that needs the PIN until sendpin (or
// pinWait, or shutdown).
func (d *Daemon) runPINPrompt(c *call, path string, pp *pinPrompt) {
	ctx, cancel := context.WithTimeout(d.ctx, pinWait)
	defer cancel()
	var once sync.Once
	ask := func(ctx context.Context) (string, error) {
		once.Do(func() { close(pp.asked) })
		select {
		case pin := <-pp.pin:
			return pin, nil
		case <-ctx.Done():
			return "", fmt.Errorf("no sendpin within %s", pinWait)
		}
	}
	err := d.cfg.Hub.Do(ctx, path, c.label(), func(ctx context.Context, dev device.Device) error {
		_, err := dev.XPub(device.WithPIN(ctx, ask), device.XPubRequest{Path: hdpath.Path{44 + hdpath.Hardened, 1 + hdpath.Hardened, hdpath.Hardened}, Network: &chaincfg.TestNet3Params})
		if errors.Is(err, device.ErrLocked) {
			// The PIN may have been right and the device then asked for a passphrase
			// (v1Unlock gives it): what sendpin answers is whether the PIN unlocked it.
			if f, ferr := dev.Features(ctx); ferr == nil && f.Unlocked {
				return nil
			}
		}
		return err
	})
	d.forgetKeys(path) // Features.unlocked changed
	pp.err = err
	d.pinPrompts.end(path, pp)
	close(pp.done)
}

// SendPINParams are the PIN matrix positions for a prompted device.
type SendPINParams struct {
	Device string `json:"device,omitempty"`
	PIN    string `json:"pin"`
}

// SendPINResult says whether the device took the PIN.
type SendPINResult struct {
	Unlocked bool `json:"unlocked"`
}

// ErrNoPINPrompt is returned by v1SendPin when no promptpin waits on the device.
var ErrNoPINPrompt = errors.New("no pin prompt")

// V1SendPin answers the PIN matrix promptpin put up; a wrong PIN answers unlocked false.
func (a *API) V1SendPin(ctx context.Context, auth keys.Auth, raw json.RawMessage) (*SendPINResult, error) {
	ctx, done := a.d.conns.bind(ctx)
	defer done()
	var p SendPINParams
	c, err := a.d.begin(ctx, "v1SendPin", auth, raw, &p)
	if err != nil {
		return nil, toRPC(err)
	}
	var res SendPINResult
	err = func() error {
		if p.PIN == "" || len(p.PIN) > 50 || strings.Trim(p.PIN, "123456789") != "" {
			return fmt.Errorf("%w: a pin is 1-50 matrix positions 1-9", device.ErrInvalidInput)
		}
		path, err := c.device(ctx, p.Device)
		if err != nil {
			return err
		}
		pp, ok := a.d.pinPrompts.get(path)
		if !ok {
			return fmt.Errorf("%w: %w: the device shows no pin matrix from hwbridged: run promptpin first", device.ErrInvalidInput, ErrNoPINPrompt)
		}
		select {
		case pp.pin <- p.PIN:
		default:
			return fmt.Errorf("%w: a pin was sent already", device.ErrBusy)
		}
		select {
		case <-pp.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		switch {
		case pp.err == nil:
			res.Unlocked = true
		case errors.Is(pp.err, device.ErrLocked):
			res.Unlocked = false // a wrong pin
		default:
			return pp.err
		}
		return nil
	}()
	if err := c.finish("send the pin (not recorded)", err); err != nil {
		return nil, err
	}
	return &res, nil
}
