package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/devicetest"
	"github.com/hwbridge/hwbridge/device/drivers"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/transport"
)

// TestKeepKey: hwemu --keepkey serves the KeepKey persona alone, and the production wiring
// (a keepkey: path, the hub's driver table) reaches it.
func TestKeepKey(t *testing.T) {
	var errb strings.Builder
	if code := run(t.Context(), []string{"--trezor", "off", "--ledger", "off", "--keepkey", "nonsense"}, io.Discard, &errb); code != exitUsage {
		t.Errorf("--keepkey nonsense: exit %d, want %d (%s)", code, exitUsage, errb.String())
	}
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--trezor", "off", "--ledger", "off", "--keepkey", "127.0.0.1:0"}, pw, io.Discard)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "keepkey ready on keepkey:") {
		t.Fatalf("ready line %q", sc.Text())
	}
	path := strings.TrimPrefix(sc.Text(), "keepkey ready on ")
	go io.Copy(io.Discard, pr)

	octx, ocancel := context.WithTimeout(ctx, 10*time.Second)
	defer ocancel()
	link, err := transport.Open(octx, path)
	if err != nil {
		t.Fatal(err)
	}
	open := drivers.Hub(drivers.Options{})[transport.KindKeepKey]
	d, err := open(link, device.DriverConfig{Emulator: true})
	if err != nil {
		t.Fatal(err)
	}
	f, err := d.Features(octx)
	if err != nil || f.Family != device.FamilyKeepKey || !f.Emulator || f.Model != "K1-14AM" {
		t.Fatalf("features %+v, %v", f, err)
	}
	a, err := d.Address(octx, device.AddressRequest{Chain: device.ChainBTC, Path: hdpath.MustParse("m/84'/0'/0'/0/0"), Script: device.ScriptWPKH})
	if err != nil || a != devicetest.VectorAddr84 {
		t.Fatalf("address %s, %v; want %s", a, err, devicetest.VectorAddr84)
	}
	d.Close()
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("exit %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("hwemu did not stop")
	}
}
