package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hwbridge/hwbridge/device/devicetest"
	bitbox02emu "github.com/hwbridge/hwbridge/emulator/bitbox02"
)

// hwbridge --device bitbox02:HOST:PORT: the first command prints the pairing code the
// device shows and stores the pairing beside the config file; the next pairs no more.
func TestBitBox02CLI(t *testing.T) {
	emu := bitbox02emu.NewForTest(t, bitbox02emu.Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go emu.Serve(t.Context(), ln)
	cfg := t.TempDir()
	env := map[string]string{"XDG_CONFIG_HOME": cfg, "HWBRIDGE_DEVICE": "bitbox02:" + ln.Addr().String()}
	r := cli(t, "", env, "address", "--chain", "btc", "--display")
	if r.code != exitOK || !strings.Contains(r.stdout, devicetest.VectorAddr84) {
		t.Fatalf("address: %d %q %q", r.code, r.stdout, r.stderr)
	}
	var code string
	for _, e := range emu.Approver().Transcript() {
		if e.Title == "Pairing code" {
			code = e.Lines[0]
		}
	}
	if code == "" || !strings.Contains(r.stderr, code) {
		t.Fatalf("the device showed %q, hwbridge printed %q", code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(cfg, "hwbridge", "bitbox02-noise.json")); err != nil {
		t.Fatalf("pairing store: %v", err)
	}
	r = cli(t, "", env, "address", "--chain", "eth")
	if r.code != exitOK || !strings.Contains(r.stdout, devicetest.VectorETHAddr) || strings.Contains(r.stderr, "pairing") {
		t.Fatalf("second command: %d %q %q", r.code, r.stdout, r.stderr)
	}
}
