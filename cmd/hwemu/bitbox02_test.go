package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/bitbox02"
	hwdrivers "github.com/hwbridge/hwbridge/device/drivers"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/transport"
)

// hwemu --bitbox02 serves the persona on TCP; the production driver wiring pairs with it
// (the code reaches DriverConfig.PairingCode) and the control API's transcript shows the
// pairing screen and the address.
func TestBitBox02Persona(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--trezor", "off", "--ledger", "off", "--bitbox02", "127.0.0.1:0", "--control", "127.0.0.1:0"}, pw, io.Discard)
		pw.Close()
	}()
	lines := map[string]string{}
	sc := bufio.NewScanner(pr)
	for len(lines) < 2 && sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "bitbox02 ready on bitbox02:"):
			lines["bitbox02"] = strings.TrimPrefix(l, "bitbox02 ready on ")
		case strings.HasPrefix(l, "control api on http://"):
			lines["control"] = strings.TrimPrefix(l, "control api on http://")
		default:
			t.Fatalf("unexpected line %q", l)
		}
	}
	go io.Copy(io.Discard, pr)
	octx, ocancel := context.WithTimeout(ctx, time.Minute)
	defer ocancel()
	link, err := transport.Open(octx, lines["bitbox02"])
	if err != nil {
		t.Fatal(err)
	}
	var code string
	d := device.Verify(hwdrivers.BitBox02(link, device.DriverConfig{Emulator: true, PairingCode: func(c string) { code = c }},
		hwdrivers.Options{BitBox02Store: &bitbox02.MemStore{}}))
	defer d.Close()
	addr, err := d.Address(octx, device.AddressRequest{Chain: device.ChainBTC, Path: hdpath.MustParse("m/84'/0'/0'/0/0"), Script: device.ScriptWPKH, Display: true})
	if err != nil || addr != "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu" {
		t.Fatalf("address %s, %v", addr, err)
	}
	if code == "" {
		t.Fatal("no pairing code reached the host")
	}
	resp, err := http.Get("http://" + lines["control"] + "/transcript?device=bitbox02")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var tr []struct {
		Title string   `json:"title"`
		Lines []string `json:"lines"`
	}
	if err := json.Unmarshal(body, &tr); err != nil {
		t.Fatalf("transcript %s: %v", body, err)
	}
	var screens []string
	for _, e := range tr {
		screens = append(screens, e.Title+": "+strings.Join(e.Lines, " | "))
	}
	want := []string{"Pairing code: " + code, "Receive address: " + addr}
	if strings.Join(screens, "\n") != strings.Join(want, "\n") {
		t.Fatalf("transcript:\n%s\nwant:\n%s", strings.Join(screens, "\n"), strings.Join(want, "\n"))
	}
	cancel()
	select {
	case c := <-done:
		if c != exitOK {
			t.Fatalf("exit %d", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("hwemu did not stop")
	}
}
