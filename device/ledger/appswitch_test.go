package ledger_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/ledger"
	ledgeremu "github.com/hwbridge/hwbridge/emulator/ledger"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/transport"
)

// recorder passes APDUs to the emulator and keeps their headers.
type recorder struct {
	ex transport.APDUExchanger
	mu sync.Mutex
	hs []string
}

func (r *recorder) Exchange(ctx context.Context, apdu []byte) ([]byte, error) {
	r.mu.Lock()
	if len(apdu) >= 2 {
		r.hs = append(r.hs, string([]byte{"0123456789abcdef"[apdu[0]>>4], "0123456789abcdef"[apdu[0]&15], "0123456789abcdef"[apdu[1]>>4], "0123456789abcdef"[apdu[1]&15]}))
	}
	r.mu.Unlock()
	return r.ex.Exchange(ctx, apdu)
}

// switches counts QUIT_APP (B0 A7) and OPEN_APP (E0 D8) sent so far.
func (r *recorder) switches() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, h := range r.hs {
		if h == "b0a7" || h == "e0d8" {
			n++
		}
	}
	return n
}

// TestEmulatorReadOnlyKeepsApp: on the Ledger-class emulator, what `hwbridge devices`,
// fingerprint lookups and `hwi getdescriptors` ask (features, fingerprint, xpubs,
// addresses without display) never sends QUIT_APP or OPEN_APP, whichever app is open,
// even with Options.OpenApp; a call that needs another app says which one to open. Calls
// made with device.WithAppSwitch do switch.
func TestEmulatorReadOnlyKeepsApp(t *testing.T) {
	regtest := &chaincfg.RegressionNetParams
	readOnly := []struct {
		name string
		call func(ctx context.Context, d *ledger.Driver) error
	}{
		{"features", func(ctx context.Context, d *ledger.Driver) error { _, err := d.Features(ctx); return err }},
		{"fingerprint", func(ctx context.Context, d *ledger.Driver) error { _, err := d.Fingerprint(ctx); return err }},
		{"xpub-mainnet", func(ctx context.Context, d *ledger.Driver) error {
			_, err := d.XPub(ctx, device.XPubRequest{Path: hdpath.MustParse("m/84'/0'/0'")})
			return err
		}},
		{"xpub-regtest", func(ctx context.Context, d *ledger.Driver) error {
			_, err := d.XPub(ctx, device.XPubRequest{Path: hdpath.MustParse("m/86'/1'/0'"), Network: regtest})
			return err
		}},
		{"address-regtest", func(ctx context.Context, d *ledger.Driver) error {
			_, err := d.Address(ctx, device.AddressRequest{Chain: device.ChainBTC, Script: device.ScriptWPKH, Path: hdpath.MustParse("m/84'/1'/0'/0/0"), Network: regtest})
			return err
		}},
		{"eth-address", func(ctx context.Context, d *ledger.Driver) error {
			_, err := d.Address(ctx, device.AddressRequest{Chain: device.ChainETH, Path: hdpath.MustParse("m/44'/60'/0'/0/0")})
			return err
		}},
	}
	for _, app := range []string{ledgeremu.AppBitcoin, ledgeremu.AppBitcoinTest, ledgeremu.AppEthereum, "BOLOS"} {
		for _, tt := range readOnly {
			t.Run(app+"/"+tt.name, func(t *testing.T) {
				emu := newEmu(t, ledgeremu.Config{App: app})
				rec := &recorder{ex: transport.NewSpeculosExchanger(emu.Pipe())}
				d := ledger.New(rec, ledger.Options{OpenApp: true, Emulator: true})
				t.Cleanup(func() { _ = d.Close() })
				err := tt.call(t.Context(), d)
				if n := rec.switches(); n != 0 {
					t.Errorf("%d app switches sent (apdus %v)", n, rec.hs)
				}
				if want := app; emu.App() != want && !(app == "BOLOS" && emu.App() == "") {
					t.Errorf("open app changed from %q to %q", app, emu.App())
				}
				if err != nil && (!errors.Is(err, device.ErrWrongApp) || !strings.Contains(err.Error(), "open the ")) {
					t.Errorf("err %v, want nil or ErrWrongApp naming the app to open", err)
				}
			})
		}
	}
	t.Run("allowed", func(t *testing.T) {
		emu := newEmu(t, ledgeremu.Config{App: ledgeremu.AppEthereum})
		rec := &recorder{ex: transport.NewSpeculosExchanger(emu.Pipe())}
		d := ledger.New(rec, ledger.Options{OpenApp: true, Emulator: true})
		t.Cleanup(func() { _ = d.Close() })
		ctx := device.WithAppSwitch(t.Context())
		if _, err := d.Address(ctx, device.AddressRequest{Chain: device.ChainBTC, Script: device.ScriptWPKH, Path: hdpath.MustParse("m/84'/0'/0'/0/0"), Display: true}); err != nil {
			t.Fatal(err)
		}
		if rec.switches() != 2 || emu.App() != ledgeremu.AppBitcoin {
			t.Errorf("display with WithAppSwitch: %d switches, app %s", rec.switches(), emu.App())
		}
		// Without OpenApp (a single-app Speculos) even an allowed call does not switch.
		d2 := ledger.New(rec, ledger.Options{Emulator: true})
		_, err := d2.Address(ctx, device.AddressRequest{Chain: device.ChainETH, Path: hdpath.MustParse("m/44'/60'/0'/0/0")})
		if !errors.Is(err, device.ErrWrongApp) || rec.switches() != 2 {
			t.Errorf("without OpenApp: %v, %d switches", err, rec.switches())
		}
	})
}
