package external

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hwbridge/hwbridge/device/devicetest"
	"github.com/hwbridge/hwbridge/emulator"
	ledgeremu "github.com/hwbridge/hwbridge/emulator/ledger"
	trezoremu "github.com/hwbridge/hwbridge/emulator/trezor"
)

// TestExternalDevice runs the suite against the device HWBRIDGE_CONFORMANCE_DEVICE names
// (Speculos, the Trezor emulator, a device behind them). Without it — as in CI — it runs
// the same path against hwemu's devices served on loopback ports: the Ledger-class one on
// TCP with only the "Bitcoin Test" app reachable (as Speculos), the Trezor-class one on
// UDP answered through its debug link (one decision per ButtonRequest).
func TestExternalDevice(t *testing.T) {
	cfg, ok, err := FromEnv(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	if ok {
		Run(t, cfg)
		return
	}
	t.Run("ledger-bitcoin-test", func(t *testing.T) {
		addr := serveLedger(t, ledgeremu.AppBitcoinTest)
		rec := t.TempDir()
		cfg := mustEnv(t, map[string]string{EnvDevice: "tcp:" + addr, EnvApprover: "device", EnvRecord: rec})
		Run(t, cfg)
		// Every scenario left its transcript.
		files, _ := filepath.Glob(filepath.Join(rec, "*.apdus"))
		if len(files) < 5 {
			t.Errorf("%d transcripts recorded, want one per scenario", len(files))
		}
		for _, f := range files {
			b, _ := os.ReadFile(f)
			if !strings.HasPrefix(string(b), "=> b001000000\n<= ") {
				t.Errorf("%s does not start with get app and version: %.40q", f, b)
			}
		}
	})
	t.Run("ledger-ethereum", func(t *testing.T) {
		addr := serveLedger(t, ledgeremu.AppEthereum)
		Run(t, mustEnv(t, map[string]string{EnvDevice: "tcp:" + addr}))
	})
	t.Run("ledger-all-apps", func(t *testing.T) {
		addr := serveLedger(t, ledgeremu.AppBitcoin)
		Run(t, mustEnv(t, map[string]string{EnvDevice: "tcp:" + addr, EnvGroups: "all"}))
	})
	t.Run("trezor-debuglink", func(t *testing.T) {
		addr := serveTrezor(t)
		Run(t, mustEnv(t, map[string]string{EnvDevice: "udp:" + addr, EnvApprover: "trezor-debug"}))
	})
}

func mustEnv(t *testing.T, env map[string]string) Config {
	t.Helper()
	cfg, ok, err := FromEnv(func(k string) string { return env[k] })
	if err != nil || !ok {
		t.Fatalf("settings %v: %v", env, err)
	}
	return cfg
}

func TestFromEnv(t *testing.T) {
	tests := []struct {
		env  map[string]string
		ok   bool
		want string // error text, "" for none
	}{
		{map[string]string{}, false, ""},
		{map[string]string{EnvDevice: "tcp:127.0.0.1:9999"}, true, ""},
		{map[string]string{EnvDevice: "udp:127.0.0.1:21324", EnvApprover: "trezor-debug"}, true, ""},
		{map[string]string{EnvDevice: "udp:127.0.0.1:21324", EnvApprover: "trezor-debug:udp:127.0.0.1:21325"}, true, ""},
		{map[string]string{EnvDevice: "tcp:127.0.0.1:9999", EnvApprover: "speculos:http://127.0.0.1:5000", EnvGroups: "bitcoin-test,ethereum"}, true, ""},
		{map[string]string{EnvDevice: "hid:/dev/hidraw0"}, true, "use tcp:HOST:PORT"},
		{map[string]string{EnvDevice: "9999"}, true, "use tcp:HOST:PORT"},
		{map[string]string{EnvDevice: "tcp:127.0.0.1:9999", EnvApprover: "trezor-debug"}, true, "does not go with"},
		{map[string]string{EnvDevice: "udp:127.0.0.1:21324", EnvApprover: "speculos:http://x"}, true, "does not go with"},
		{map[string]string{EnvDevice: "tcp:127.0.0.1:9999", EnvApprover: "robot"}, true, "use device, speculos:URL"},
		{map[string]string{EnvDevice: "tcp:127.0.0.1:9999", EnvGroups: "monero"}, true, "unknown group"},
	}
	for _, tt := range tests {
		_, ok, err := FromEnv(func(k string) string { return tt.env[k] })
		switch {
		case ok != tt.ok:
			t.Errorf("%v: ok %v", tt.env, ok)
		case tt.want == "" && err != nil:
			t.Errorf("%v: %v", tt.env, err)
		case tt.want != "" && (!errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%v: err %v, want ErrConfig saying %q", tt.env, err, tt.want)
		}
	}
	if g := mustEnv(t, map[string]string{EnvDevice: "tcp:h:1", EnvGroups: "all"}).Groups; len(g) != 3 {
		t.Errorf("all: %v", g)
	}
	if a := debugAddr("127.0.0.1:21324"); a != "127.0.0.1:21325" {
		t.Errorf("debug link of 21324: %s", a)
	}
}

// serveLedger serves a Ledger-class emulator with app open on a loopback TCP port. The
// emulator approves by itself and has blind signing on, as the suite expects.
func serveLedger(t *testing.T, app string) string {
	t.Helper()
	emu, err := ledgeremu.New(ledgeremu.Config{Mnemonic: devicetest.Mnemonic, App: app, BlindSigning: true})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- emu.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		_ = emu.Close()
	})
	return ln.Addr().String()
}

// serveTrezor serves a Trezor-class emulator that waits for a DebugLink decision on every
// confirmation.
func serveTrezor(t *testing.T) string {
	t.Helper()
	emu, err := trezoremu.New(trezoremu.Options{Mnemonic: devicetest.Mnemonic, Approver: emulator.NewApprover(emulator.PolicyPrompt)})
	if err != nil {
		t.Fatal(err)
	}
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
			t.Errorf("serve: %v", err)
		}
		_ = emu.Close()
	})
	return srv.Addr().String()
}
