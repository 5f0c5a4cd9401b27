package daemon

// A Trezor's passphrase session, kept by hwbridged: HWI starts a new device session on every
// call, so a passphrase-protected Trezor asks for the passphrase every time. hwbridged holds
// the device link, and the Trezor driver resumes its session (Initialize with session_id)
// on every call, so the passphrase given once with v1Unlock (hwbridge hwi -p, hwbridge
// unlock) serves every later call until the device is unplugged, locks or ends the session,
// or v1Forget resets it. hwbridged never stores the passphrase: it is handed to the device
// in the unlock call's context only, and the device keeps it for its session.

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/hwbridge/hwbridge/daemon/keys"
	"github.com/hwbridge/hwbridge/device"
)

// sessionDevice is a driver whose device session can be restarted (device/trezor).
type sessionDevice interface {
	ResetSession()
}

// keyForgetter is a hub that caches keys (device.Hub).
type keyForgetter interface {
	ForgetKeys(path string)
}

func (d *Daemon) forgetKeys(path string) {
	if h, ok := d.cfg.Hub.(keyForgetter); ok {
		h.ForgetKeys(path)
	}
}

// UnlockParams gives a device its passphrase for a new session.
type UnlockParams struct {
	Device     string `json:"device,omitempty"`
	Passphrase string `json:"passphrase"`
}

// UnlockResult is the wallet the session opens.
type UnlockResult struct {
	Fingerprint string `json:"fingerprint"`
	Path        string `json:"path"`
}

// maxPassphrase is the longest passphrase a Trezor takes (bytes).
const maxPassphrase = 50

// V1Unlock starts a new session on a passphrase-protected device with the passphrase
// given, and answers the fingerprint of the wallet it opens. The session lasts until
// the device is unplugged or locks, or v1Forget.
func (a *API) V1Unlock(ctx context.Context, auth keys.Auth, raw json.RawMessage) (*UnlockResult, error) {
	ctx, done := a.d.conns.bind(ctx)
	defer done()
	var p UnlockParams
	c, err := a.d.begin(ctx, "v1Unlock", auth, raw, &p)
	if err != nil {
		return nil, toRPC(err)
	}
	var res UnlockResult
	err = func() error {
		if len(p.Passphrase) > maxPassphrase {
			return fmt.Errorf("%w: a passphrase of more than %d bytes", device.ErrInvalidInput, maxPassphrase)
		}
		path, err := c.device(ctx, p.Device)
		if err != nil {
			return err
		}
		defer a.d.forgetKeys(path)
		return c.do(ctx, path, func(ctx context.Context, dev device.Device) error {
			sd, ok := device.Inner(dev).(sessionDevice)
			if !ok {
				return fmt.Errorf("%w: this device takes no passphrase from the host (a Ledger's passphrase is set on the device)", device.ErrInvalidInput)
			}
			sd.ResetSession()
			a.d.forgetKeys(path)
			fp, err := dev.Fingerprint(device.WithPassphrase(ctx, p.Passphrase))
			if err != nil {
				return err
			}
			res = UnlockResult{Fingerprint: fp.String(), Path: path}
			return nil
		})
	}()
	if err := c.finish("unlock with a passphrase (not recorded)", err); err != nil {
		return nil, err
	}
	return &res, nil
}

// forgetSessions resets the passphrase sessions of the devices with fingerprint fp ("" for
// every device) and reports how many.
func (d *Daemon) forgetSessions(ctx context.Context, fp string) int {
	n := 0
	for _, in := range d.cfg.Hub.Devices() {
		if fp != "" && in.Fingerprint != fp {
			continue
		}
		err := d.cfg.Hub.Do(ctx, in.Path, "forget", func(ctx context.Context, dev device.Device) error {
			if sd, ok := device.Inner(dev).(sessionDevice); ok {
				sd.ResetSession()
				n++
			}
			return nil
		})
		if err != nil {
			d.log.Info("session not reset", "path", in.Path, "err", err)
		}
		d.forgetKeys(in.Path)
	}
	return n
}
