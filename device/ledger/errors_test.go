package ledger

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/transport"
)

func TestStatusWords(t *testing.T) {
	tests := []struct {
		sw   uint16
		kind error
	}{
		{0x6985, device.ErrUserRejected},
		{0x5501, device.ErrUserRejected},
		{0x5515, device.ErrLocked},
		{0x6982, device.ErrLocked},
		{0x6B0C, device.ErrLocked},
		{0x6E00, device.ErrWrongApp},
		{0x6E01, device.ErrWrongApp},
		{0x6D00, device.ErrWrongApp},
		{0x6511, device.ErrWrongApp},
		{0x6A80, device.ErrInvalidInput},
		{0x6A82, device.ErrInvalidInput},
		{0xB008, device.ErrInvalidInput},
		{0x6501, errors.ErrUnsupported},
		{0x6F00, device.ErrProtocol},
		{0xB007, device.ErrProtocol},
	}
	for _, tt := range tests {
		err := statusError("op", AppBitcoin, tt.sw, nil)
		if !errors.Is(err, tt.kind) {
			t.Errorf("0x%04X: %v, want %v", tt.sw, err, tt.kind)
		}
		var de *device.Error
		if !errors.As(err, &de) || de.Code != int(tt.sw) || de.Family != device.FamilyLedger {
			t.Errorf("0x%04X: raw status word not kept: %#v", tt.sw, err)
		}
	}
	err := statusError(opSignPSBT, AppBitcoin, 0x6A80, []byte{0x00, 0x07})
	if !strings.Contains(err.Error(), "segwit input lacks witness_utxo") {
		t.Errorf("extended error code not explained: %v", err)
	}
}

func TestWrongApp(t *testing.T) {
	tests := []struct {
		open string
		call func(d *Driver) error
		want string
	}{
		{AppEthereum, func(d *Driver) error {
			_, err := d.XPub(t.Context(), device.XPubRequest{Path: hdpath.MustParse("m/84'/0'/0'")})
			return err
		}, "open the Bitcoin app on your Ledger"},
		{AppBitcoin, func(d *Driver) error {
			_, err := d.XPub(t.Context(), device.XPubRequest{Path: hdpath.MustParse("m/84'/1'/0'"), Network: &chaincfg.RegressionNetParams})
			return err
		}, "open the Bitcoin Test app on your Ledger"},
		{AppBitcoin, func(d *Driver) error {
			_, err := d.Address(t.Context(), device.AddressRequest{Chain: device.ChainETH, Path: ethPath})
			return err
		}, "open the Ethereum app on your Ledger"},
		{dashboardName, func(d *Driver) error {
			_, err := d.Fingerprint(t.Context())
			return err
		}, "open the Bitcoin app on your Ledger and retry (the dashboard is showing)"},
	}
	for _, tt := range tests {
		f := &scripted{app: tt.open}
		err := tt.call(New(f, Options{}))
		if !errors.Is(err, device.ErrWrongApp) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s open: %v, want ErrWrongApp saying %q", tt.open, err, tt.want)
		}
	}
}

func TestOpenApp(t *testing.T) {
	handle := func(apdu []byte) ([]byte, uint16) {
		if apdu[0] == claBTC && apdu[1] == insFingerprint {
			return []byte{0x73, 0xc5, 0xda, 0x0a}, swOK
		}
		return nil, swINSNotSupported
	}
	f := &scripted{app: AppBitcoin, canQuit: true, handle: handle}
	d := New(f, Options{OpenApp: true})
	_, err := d.Address(device.WithAppSwitch(t.Context()), device.AddressRequest{Chain: device.ChainETH, Path: ethPath})
	// The scripted Ethereum app answers nothing useful; the switch itself is checked.
	if !errors.Is(err, device.ErrWrongApp) && err != nil {
		t.Logf("after the switch: %v", err)
	}
	want := []string{"b0010000", "b0a70000", "b0010000", "e0d80000", "b0010000", "e0020000"}
	if got := f.headers(); !slices.Equal(got, want) {
		t.Errorf("apdus %v, want %v", got, want)
	}
	if f.app != AppEthereum {
		t.Errorf("open app %s", f.app)
	}
	// An app that cannot quit: wrong app with the name.
	f2 := &scripted{app: AppEthereum}
	_, err = New(f2, Options{OpenApp: true}).XPub(device.WithAppSwitch(t.Context()), device.XPubRequest{Path: hdpath.MustParse("m/84'/0'/0'")})
	if !errors.Is(err, device.ErrWrongApp) || !strings.Contains(err.Error(), "open the Bitcoin app") {
		t.Errorf("app that cannot quit: %v", err)
	}
	// From the dashboard, when the call allows it.
	f3 := &scripted{app: dashboardName, handle: handle}
	x, err := New(f3, Options{OpenApp: true}).XPub(device.WithAppSwitch(t.Context()), device.XPubRequest{Path: hdpath.MustParse("m/84'/0'/0'")})
	if !slices.Contains(f3.headers(), "e0d80000") || f3.app != AppBitcoin {
		t.Errorf("xpub from the dashboard did not open the app: %v %s %v", f3.headers(), x, err)
	}
}

// TestReadOnlyNeverSwitches: lookups (features, fingerprint, xpubs and addresses without a
// context from device.WithAppSwitch) never quit the open app nor open another, even with
// Options.OpenApp; they fail with ErrWrongApp naming the app to open.
func TestReadOnlyNeverSwitches(t *testing.T) {
	handle := func(apdu []byte) ([]byte, uint16) { return nil, swINSNotSupported }
	tests := []struct {
		name string
		open string
		call func(ctx context.Context, d *Driver) error
		want string
	}{
		{"fingerprint", AppEthereum, func(ctx context.Context, d *Driver) error { _, err := d.Fingerprint(ctx); return err }, "open the Bitcoin app"},
		{"fingerprint-dashboard", dashboardName, func(ctx context.Context, d *Driver) error { _, err := d.Fingerprint(ctx); return err }, "open the Bitcoin app"},
		{"xpub", AppEthereum, func(ctx context.Context, d *Driver) error {
			_, err := d.XPub(ctx, device.XPubRequest{Path: hdpath.MustParse("m/84'/0'/0'")})
			return err
		}, "open the Bitcoin app"},
		{"xpub-testnet", AppBitcoin, func(ctx context.Context, d *Driver) error {
			_, err := d.XPub(ctx, device.XPubRequest{Path: hdpath.MustParse("m/84'/1'/0'"), Network: &chaincfg.RegressionNetParams})
			return err
		}, "open the Bitcoin Test app"},
		{"eth-address", AppBitcoin, func(ctx context.Context, d *Driver) error {
			_, err := d.Address(ctx, device.AddressRequest{Chain: device.ChainETH, Path: ethPath})
			return err
		}, "open the Ethereum app"},
		{"features", AppEthereum, func(ctx context.Context, d *Driver) error { _, err := d.Features(ctx); return err }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &scripted{app: tt.open, canQuit: true, handle: handle}
			err := tt.call(t.Context(), New(f, Options{OpenApp: true}))
			if tt.want == "" && err != nil || tt.want != "" && (!errors.Is(err, device.ErrWrongApp) || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("err %v, want ErrWrongApp saying %q", err, tt.want)
			}
			for _, h := range f.headers() {
				if h == "b0a70000" || h == "e0d80000" {
					t.Errorf("sent %s (apdus %v)", h, f.headers())
				}
			}
			if f.app != tt.open {
				t.Errorf("the open app changed from %s to %s", tt.open, f.app)
			}
		})
	}
}

func TestLocked(t *testing.T) {
	f := &scripted{app: AppBitcoin, locked: true}
	d := New(f, Options{})
	_, err := d.Fingerprint(t.Context())
	var de *device.Error
	if !errors.Is(err, device.ErrLocked) || !errors.As(err, &de) || de.Code != 0x5515 {
		t.Errorf("locked: %v", err)
	}
	feat, err := d.Features(t.Context())
	if err != nil || feat.Unlocked {
		t.Errorf("features of a locked device: %+v %v", feat, err)
	}
}

func TestRejectAndDisconnect(t *testing.T) {
	f := &scripted{app: AppBitcoin, handle: func([]byte) ([]byte, uint16) { return nil, swDeny }}
	d := New(f, Options{})
	_, err := d.XPub(t.Context(), device.XPubRequest{Path: hdpath.MustParse("m/84'/0'/0'"), Display: true})
	if !errors.Is(err, device.ErrUserRejected) {
		t.Errorf("reject: %v", err)
	}
	f.failure = fmt.Errorf("transport: exchange: %w: %w", transport.ErrClosed, io.EOF)
	_, err = d.XPub(t.Context(), device.XPubRequest{Path: hdpath.MustParse("m/84'/0'/0'")})
	if !errors.Is(err, device.ErrDisconnected) {
		t.Errorf("disconnect: %v", err)
	}
}

func TestClientHandler(t *testing.T) {
	h := newClientHandler()
	long := make([]byte, 600)
	for i := range long {
		long[i] = byte(i)
	}
	h.addPreimage(long)
	hash := sha256Of(long)
	resp, err := h.execute(append([]byte{ccGetPreimage, 0}, hash[:]...))
	if err != nil {
		t.Fatal(err)
	}
	// varint 600 = fd 58 02; b = 255-3-1 = 251.
	if resp[0] != 0xfd || resp[3] != 251 || len(resp) != 4+251 {
		t.Fatalf("preimage answer %x", resp[:8])
	}
	got := append([]byte{}, resp[4:]...)
	for len(h.queue) > 0 {
		more, err := h.execute([]byte{ccGetMoreElements})
		if err != nil {
			t.Fatal(err)
		}
		if more[1] != 1 || int(more[0]) > 253 {
			t.Fatalf("more elements header %x", more[:2])
		}
		got = append(got, more[2:]...)
	}
	if string(got) != string(long) {
		t.Fatal("preimage does not reassemble")
	}
	if _, err := h.execute([]byte{ccGetMoreElements}); err == nil {
		t.Error("GET_MORE_ELEMENTS with an empty queue answered")
	}
	// A 20-leaf tree: proofs of 5 hashes fit; a 100-leaf tree's 7 need GET_MORE_ELEMENTS.
	var els [][]byte
	for i := range 100 {
		els = append(els, []byte{byte(i)})
	}
	tr := h.addList(els)
	root := tr.Root()
	req := append(append([]byte{ccGetLeafProof}, root[:]...), 100, 77)
	resp, err = h.execute(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp[32] != 7 || resp[33] != 6 || len(h.queue) != 1 {
		t.Fatalf("proof answer: len %d, in reply %d, queued %d", resp[32], resp[33], len(h.queue))
	}
	leaf := leafHash([]byte{77})
	idx, err := h.execute(append(append([]byte{ccGetLeafIndex}, root[:]...), leaf[:]...))
	if err != nil || idx[0] != 1 || idx[1] != 77 {
		t.Fatalf("leaf index %x %v", idx, err)
	}
	if _, err := h.execute(req); err == nil {
		t.Error("leaf proof answered while elements are queued")
	}
	for _, bad := range [][]byte{{}, {0x99}, {ccGetPreimage, 1}, {ccGetLeafProof, 1, 2}, {ccGetLeafIndex, 1}} {
		if _, err := h.execute(bad); !errors.Is(err, device.ErrProtocol) {
			t.Errorf("request %x: %v", bad, err)
		}
	}
}

func sha256Of(b []byte) [32]byte { return sha256.Sum256(b) }
