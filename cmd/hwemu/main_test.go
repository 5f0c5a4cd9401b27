package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hwbridge/hwbridge/transport"
)

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--approve", "maybe"},
		{"--trezor", "off", "--ledger", "off"},
		{"--trezor", "nonsense"},
		{"--bitbox02", "nonsense"},
		{"--control", "0.0.0.0:1234"},
		{"--ledger-app", "Monero"},
		{"--trezor-model", "Safe 7"},
		{"--qr", "/tmp/x", "--qr-network", "litecoin"},
		{"--mnemonic", "abandon abandon"},
		{"extra"},
	} {
		var errb strings.Builder
		if code := run(t.Context(), args, io.Discard, &errb); code != exitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, exitUsage, errb.String())
		}
	}
	if code := run(t.Context(), []string{"-h"}, io.Discard, io.Discard); code != exitOK {
		t.Errorf("-h: exit %d", code)
	}
	var out strings.Builder
	if code := run(t.Context(), []string{"--version"}, &out, io.Discard); code != exitOK || !strings.HasPrefix(out.String(), "hwemu ") || !strings.Contains(out.String(), runtime.Version()) {
		t.Errorf("--version: exit %d, %q", code, out.String())
	}
}

func TestServeAndStop(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--trezor", "127.0.0.1:0", "--ledger", "127.0.0.1:0", "--control", "127.0.0.1:0", "--approve", "reject"}, pw, io.Discard)
		pw.Close()
	}()
	lines := map[string]string{}
	sc := bufio.NewScanner(pr)
	for len(lines) < 3 && sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "trezor ready on udp:"):
			lines["trezor"] = strings.TrimPrefix(l, "trezor ready on udp:")
		case strings.HasPrefix(l, "ledger ready on tcp:"):
			lines["ledger"] = strings.TrimPrefix(l, "ledger ready on tcp:")
		case strings.HasPrefix(l, "control api on http://"):
			lines["control"] = strings.TrimPrefix(l, "control api on http://")
		default:
			t.Fatalf("unexpected line %q", l)
		}
	}
	go io.Copy(io.Discard, pr)
	if len(lines) != 3 {
		t.Fatalf("ready lines %v", lines)
	}
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	defer pcancel()
	if err := transport.PingUDP(pctx, lines["trezor"]); err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", lines["ledger"], 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	resp, err := http.Get("http://" + lines["control"] + "/health")
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		OK      bool     `json:"ok"`
		Devices []string `json:"devices"`
	}
	json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if !h.OK || strings.Join(h.Devices, ",") != "ledger,trezor" {
		t.Fatalf("health %+v", h)
	}
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

func TestPortInUse(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var errb strings.Builder
	if code := run(t.Context(), []string{"--trezor", pc.LocalAddr().String(), "--ledger", "off"}, io.Discard, &errb); code != exitError || !strings.Contains(errb.String(), "listen") {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}
