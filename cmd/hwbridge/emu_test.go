package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/devicetest"
	"github.com/hwbridge/hwbridge/device/trezor"
	"github.com/hwbridge/hwbridge/emulator"
	trezoremu "github.com/hwbridge/hwbridge/emulator/trezor"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// startEmu serves a Trezor-class emulator on a free loopback UDP port and returns its path.
func startEmu(t *testing.T, policy emulator.Policy) string {
	t.Helper()
	return serveTrezor(t, trezoremu.Options{Approver: emulator.NewApprover(policy)})
}

// golden compares got with testdata/name (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n got: %q\nwant: %q", name, got, want)
	}
}

// spendFile writes a PSBT spending the test mnemonic's outputs of the given types.
func spendFile(t *testing.T, path string, net *chaincfg.Params, inputs ...device.ScriptType) (string, *psbt.Packet) {
	t.Helper()
	emu, err := trezoremu.New(trezoremu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	d := trezor.New(emu.Pipe(), trezor.Options{})
	defer d.Close()
	p := devicetest.NewSpend(t, t.Context(), d, net, inputs, devicetest.SpendOptions{})
	b64, err := p.B64Encode()
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), path)
	if err := os.WriteFile(f, []byte(b64+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f, p
}

// TestCommandsOnEmulator runs every command against the emulator over UDP; outputs that
// are deterministic (RFC 6979 signatures, derived keys) are golden files.
func TestCommandsOnEmulator(t *testing.T) {
	path := startEmu(t, emulator.PolicyAuto)
	wpkhPSBT, _ := spendFile(t, "wpkh.psbt", &chaincfg.MainNetParams, device.ScriptWPKH, device.ScriptPKH)
	tests := []struct {
		name   string
		args   []string
		stdin  string
		golden string
	}{
		{"devices", []string{"devices"}, "", "devices.txt"},
		{"devices json", []string{"--json", "devices"}, "", "devices.json"},
		{"device info", []string{"device", "info"}, "", "device-info.txt"},
		{"device info json", []string{"--json", "device", "info"}, "", "device-info.json"},
		{"xpub", []string{"xpub", "m/84'/0'/0'"}, "", "xpub.txt"},
		{"xpub testnet json", []string{"xpub", "m/84h/1h/0h", "--network", "testnet", "--json"}, "", "xpub-testnet.json"},
		{"address wpkh", []string{"address", "--chain", "btc"}, "", "address-wpkh.txt"},
		{"address tr display", []string{"address", "--type", "tr", "--display"}, "", "address-tr.txt"},
		{"address sh-wpkh testnet change", []string{"address", "--type", "sh-wpkh", "--network", "testnet", "--change", "--index", "2", "--json"}, "", "address-sh-wpkh-testnet.json"},
		{"address pkh regtest", []string{"address", "--type", "pkh", "--network", "regtest", "--account", "1"}, "", "address-pkh-regtest.txt"},
		{"address eth", []string{"address", "--chain", "eth", "--index", "1", "--json"}, "", "address-eth.json"},
		{"btc sign-message", []string{"btc", "sign-message", "hello hwbridge", "--path", "m/84'/0'/0'/0/0"}, "", "btc-sign-message.txt"},
		{"btc sign-message pkh json", []string{"--json", "btc", "sign-message", "--path", "m/44'/0'/0'/0/0", "hello hwbridge"}, "", "btc-sign-message-pkh.json"},
		{"eth sign-message", []string{"eth", "sign-message", "hello hwbridge"}, "", "eth-sign-message.txt"},
		{"eth sign-message json", []string{"eth", "sign-message", "hello hwbridge", "--index", "2", "--json"}, "", "eth-sign-message.json"},
		{"btc sign-psbt", []string{"btc", "sign-psbt", wpkhPSBT}, "", "sign-psbt.txt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cli(t, tt.stdin, nil, append([]string{"--device", path}, tt.args...)...)
			if r.code != exitOK {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			golden(t, tt.golden, strings.ReplaceAll(r.stdout, path, "udp:EMULATOR"))
		})
	}
}

// TestSignPSBTOnEmulator: a PSBT with every script type, read from stdin, comes back
// signed so that it finalizes and its scripts execute; HWBRIDGE_DEVICE names the device.
func TestSignPSBTOnEmulator(t *testing.T) {
	path := startEmu(t, emulator.PolicyAuto)
	file, _ := spendFile(t, "mixed.psbt", &chaincfg.TestNet3Params, device.ScriptPKH, device.ScriptSHWPKH, device.ScriptWPKH, device.ScriptTR)
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	r := cli(t, string(raw), map[string]string{"HWBRIDGE_DEVICE": path}, "btc", "sign-psbt", "-", "--network", "testnet", "--json")
	if r.code != exitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	var out struct {
		PSBT  string `json:"psbt"`
		Added int    `json:"signatures_added"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatal(err)
	}
	if out.Added != 4 {
		t.Errorf("%d signatures added, want 4", out.Added)
	}
	p, err := psbt.NewFromRawBytes(strings.NewReader(out.PSBT), true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := devicetest.FinalizeAndExecute(p); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.stderr, "confirm on your Trezor") {
		t.Errorf("stderr %q does not tell the user to confirm", r.stderr)
	}
}

func TestErrorsOnEmulator(t *testing.T) {
	auto := startEmu(t, emulator.PolicyAuto)
	reject := startEmu(t, emulator.PolicyReject)
	mainnet, _ := spendFile(t, "main.psbt", &chaincfg.MainNetParams, device.ScriptWPKH)
	tests := []struct {
		name string
		dev  string
		args []string
		code int
		want string // in stderr
	}{
		{"rejected message", reject, []string{"btc", "sign-message", "no", "--path", "m/84'/0'/0'/0/0"}, exitRejected, "rejected on the device"},
		{"rejected psbt", reject, []string{"btc", "sign-psbt", mainnet}, exitRejected, "rejected on the device"},
		{"rejected address", reject, []string{"address", "--display"}, exitRejected, "rejected on the device"},
		{"rejected eth message", reject, []string{"eth", "sign-message", "no"}, exitRejected, "rejected on the device"},
		{"psbt for another network", auto, []string{"btc", "sign-psbt", mainnet, "--network", "testnet"}, exitUsage, "--network"},
		{"taproot message", auto, []string{"btc", "sign-message", "x", "--path", "m/86'/0'/0'/0/0", "--type", "tr"}, exitError, "taproot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cli(t, "", nil, append([]string{"--device", tt.dev}, tt.args...)...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q: want exit %d mentioning %q", r.code, r.stderr, tt.code, tt.want)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q on failure", r.stdout)
			}
		})
	}
	t.Run("rejected json", func(t *testing.T) {
		r := cli(t, "", nil, "--device", reject, "--json", "eth", "sign-message", "no")
		var got struct{ Error struct{ Code string } }
		if r.code != exitRejected || json.Unmarshal([]byte(r.stdout), &got) != nil || got.Error.Code != "user_rejected" {
			t.Errorf("exit %d, stdout %q", r.code, r.stdout)
		}
	})
}

// TestDevicesNamedOnly: an emulator is listed only when named.
func TestDevicesNamedOnly(t *testing.T) {
	startEmu(t, emulator.PolicyAuto)
	r := cli(t, "", nil, "devices")
	if r.code != exitOK || bytes.Contains([]byte(r.stdout), []byte("udp:")) {
		t.Errorf("exit %d, stdout %q: an unnamed emulator was listed", r.code, r.stdout)
	}
}
