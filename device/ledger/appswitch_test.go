package ledger_test

import (
	"bytes"
	"context"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

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

// TestEthRefusalCause: the Ethereum app's 0x6A80 on a transaction with data is reported by
// its cause, on the emulator that answers as app-ethereum 1.22.0: call data the ERC-20
// parser refuses (ledger.ErrInvalidERC20Data, blind signing on or off), blind signing
// off (ledger.ErrBlindSigningDisabled), and nothing else claims blind signing.
func TestEthRefusalCause(t *testing.T) {
	to := common.HexToAddress("0x1d1c328764a41bda0492b66baa30c4a339ff85ef")
	malformed := bytes.Repeat([]byte{0xa9, 0x05, 0x9c, 0xbb}, 375)
	transfer := append([]byte{0xa9, 0x05, 0x9c, 0xbb}, make([]byte, 64)...)
	call := bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 20)
	tests := []struct {
		name  string
		blind bool
		value int64
		data  []byte
		want  error // nil: signed
	}{
		{"malformed-blind-on", true, 0, malformed, ledger.ErrInvalidERC20Data},
		{"malformed-blind-off", false, 0, malformed, ledger.ErrInvalidERC20Data},
		{"transfer-with-ether", true, 1, transfer, ledger.ErrInvalidERC20Data},
		{"transfer-blind-on", true, 0, transfer, nil},
		{"transfer-blind-off", false, 0, transfer, ledger.ErrBlindSigningDisabled},
		{"call-blind-off", false, 0, call, ledger.ErrBlindSigningDisabled},
		{"call-blind-on", true, 0, call, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu := newEmu(t, ledgeremu.Config{App: ledgeremu.AppEthereum, BlindSigning: tt.blind})
			d := pipeDriver(t, emu, ledger.Options{})
			tx := types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(1), GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2), Gas: 90000, To: &to, Value: big.NewInt(tt.value), Data: tt.data})
			_, err := d.SignEthTx(t.Context(), hdpath.MustParse("m/44'/60'/0'/0/0"), tx, big.NewInt(1))
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != nil && (!errors.Is(err, tt.want) || !errors.Is(err, device.ErrInvalidInput)):
				t.Fatalf("err %v, want %v and device.ErrInvalidInput", err, tt.want)
			case tt.want == ledger.ErrInvalidERC20Data && errors.Is(err, ledger.ErrBlindSigningDisabled):
				t.Fatalf("malformed erc-20 data reported as blind signing: %v", err)
			}
		})
	}
}
