package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hwbridge/hwbridge/emulator"
)

// TestBuiltBinaryErrorTable runs the built hwbridge binary over one table of error kinds ×
// paths (direct, through hwbridged) × chains: the exit code and the --json error code
// (one JSON object on stdout) are the same on both paths and both chains.
func TestBuiltBinaryErrorTable(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "hwbridge")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/hwbridge/hwbridge/cmd/hwbridge").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	rejectEmu := startEmu(t, emulator.PolicyReject)
	dc := startInProcessDaemon(t, emulator.PolicyReject)
	paths := []struct {
		name string
		args []string
		env  []string
	}{
		{"direct", []string{"--direct", "--device", rejectEmu}, nil},
		{"daemon", []string{"--socket", dc.Socket}, []string{"HWBRIDGE_KEY=" + dc.Key}},
	}
	const node = "http://127.0.0.1:1"
	rows := []struct {
		name  string
		chain string
		args  []string
		exit  int
		code  string
	}{
		{"bad address", "btc", []string{"btc", "send", "--to", "notanaddr", "--amount", "0.1", "--rpc", node, "--network", "regtest", "--yes"}, exitUsage, "usage"},
		{"bad address", "eth", []string{"eth", "send", "--to", "0xnope", "--value", "1", "--rpc", node, "--yes"}, exitUsage, "usage"},
		{"hostile amount", "btc", []string{"btc", "send", "--to", "bcrt1q0nksdvthl405et39h9u8p80ytumeyr5qxtfywm", "--amount", "184467440737.09651616", "--rpc", node, "--network", "regtest", "--yes"}, exitUsage, "usage"},
		{"hostile amount", "eth", []string{"eth", "send", "--to", "0x709de45f37920E8087B435Ae9304C82E9794C732", "--value", "-1", "--rpc", node, "--yes"}, exitUsage, "usage"},
		{"rejected on the device", "btc", []string{"btc", "sign-message", "hi", "--path", "m/84'/0'/0'/0/0"}, exitRejected, "user_rejected"},
		{"rejected on the device", "eth", []string{"eth", "sign-message", "hi"}, exitRejected, "user_rejected"},
		{"unknown command", "-", []string{"adress"}, exitUsage, "usage"},
	}
	for _, p := range paths {
		for _, r := range rows {
			t.Run(p.name+"/"+r.chain+"/"+r.name, func(t *testing.T) {
				cmd := exec.Command(bin, append(append([]string{"--json"}, p.args...), r.args...)...)
				home := t.TempDir()
				cmd.Env = append([]string{"HOME=" + home, "XDG_RUNTIME_DIR=" + home, "PATH=" + os.Getenv("PATH")}, p.env...)
				out, err := cmd.Output()
				code := 0
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					code = ee.ExitCode()
				} else if err != nil {
					t.Fatal(err)
				}
				var got struct {
					Error struct {
						Code string
						Exit int
					}
				}
				if jerr := json.Unmarshal(out, &got); jerr != nil || code != r.exit || got.Error.Code != r.code || got.Error.Exit != r.exit {
					t.Errorf("exit %d, stdout %s (%v); want exit %d, code %q", code, strings.TrimSpace(string(out)), jerr, r.exit, r.code)
				}
			})
		}
	}
}
