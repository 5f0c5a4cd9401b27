package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/devicetest"
	"github.com/hwbridge/hwbridge/device/keepkey"
	keepkeyemu "github.com/hwbridge/hwbridge/emulator/keepkey"
)

// serveKeepKey serves the KeepKey persona on a free loopback UDP port until the test ends
// and returns its --device path (keepkey:HOST:PORT).
func serveKeepKey(t *testing.T) (string, *keepkeyemu.Device) {
	t.Helper()
	emu := keepkeyemu.NewForTest(t, keepkeyemu.Options{})
	srv, err := emu.ListenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("keepkey emulator: %v", err)
		}
	})
	return "keepkey:" + srv.Addr().String(), emu
}

// TestKeepKeyCommands: the CLI reaches a KeepKey by a keepkey: path (the KeepKey driver,
// wrapped in signature verification), and says plainly what KeepKey lacks.
func TestKeepKeyCommands(t *testing.T) {
	path, emu := serveKeepKey(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"address", "--chain", "btc"}, devicetest.VectorAddr84},
		{[]string{"address", "--type", "pkh", "--display"}, devicetest.VectorAddr44},
		{[]string{"address", "--chain", "eth"}, devicetest.VectorETHAddr},
		{[]string{"xpub", "m/84'/0'/0'"}, "xpub6CatWdiZiodmUeTDp8LT5or8nmbKNcuyvz7WyksVFkKB4RHwCD3XyuvPEbvqAQY3rAPshWcMLoP2fMFMKHPJ4ZeZXYVUhLv1VMrjPC7PW6V"},
		{[]string{"--json", "device", "info"}, `"family": "keepkey"`},
	} {
		r := cli(t, "", nil, append([]string{"--device", path}, tt.args...)...)
		if r.code != exitOK || !strings.Contains(r.stdout, tt.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %q", tt.args, r.code, r.stdout, r.stderr, tt.want)
		}
	}
	r := cli(t, "", nil, "--device", path, "address", "--type", "tr")
	if r.code == exitOK || !strings.Contains(r.stderr, "taproot") {
		t.Errorf("taproot address: exit %d, stderr %q", r.code, r.stderr)
	}

	// A PSBT of the three single-key types, signed through the CLI.
	d := keepkey.New(emu.Pipe(), keepkey.Options{})
	p := devicetest.NewSpend(t, t.Context(), d, &chaincfg.MainNetParams, []device.ScriptType{device.ScriptPKH, device.ScriptSHWPKH, device.ScriptWPKH}, devicetest.SpendOptions{})
	d.Close()
	b64, err := p.B64Encode()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "kk.psbt")
	if err := os.WriteFile(file, []byte(b64+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = cli(t, "", nil, "--device", path, "btc", "sign-psbt", file, "--json")
	if r.code != exitOK {
		t.Fatalf("sign-psbt: exit %d, stderr %q", r.code, r.stderr)
	}
	var out struct {
		PSBT  string `json:"psbt"`
		Added int    `json:"signatures_added"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Added != 3 {
		t.Fatalf("sign-psbt output %q: %v", r.stdout, err)
	}
	signed, err := psbt.NewFromRawBytes(strings.NewReader(out.PSBT), true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := devicetest.FinalizeAndExecute(signed); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.stderr, "KeepKey") {
		t.Errorf("stderr %q does not tell the user to confirm on the KeepKey", r.stderr)
	}
}
