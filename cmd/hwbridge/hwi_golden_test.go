package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/wire"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/ledger"
	"github.com/hwbridge/hwbridge/device/trezor"
	"github.com/hwbridge/hwbridge/emulator"
	ledgeremu "github.com/hwbridge/hwbridge/emulator/ledger"
	trezoremu "github.com/hwbridge/hwbridge/emulator/trezor"
	"github.com/hwbridge/hwbridge/hwi"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/transport"
)

// hwiGolden is testdata/hwi/golden.json: HWI's answers taken from HWI's source, tests and
// documentation.
type hwiGolden struct {
	Seeds map[string]string `json:"seeds"`
	Cases []struct {
		Name     string   `json:"name"`
		Families []string `json:"families"`
		Seed     string   `json:"seed"`
		PIN      string   `json:"pin"` // the Trezor emulator's PIN (it starts locked)
		Args     []string `json:"args"`
		Want     any      `json:"want"`
		Code     float64  `json:"code"`  // when set without want: only the code is HWI's
		Usage    bool     `json:"usage"` // a usage error (exit status 2)
	} `json:"cases"`
}

// hwiEmulated is one in-process emulator behind its driver, at HWI's emulator address.
type hwiEmulated struct {
	path     string
	dev      device.Device
	approver *emulator.Approver
}

// newHWIEmulated starts the family's emulator with the seed; a Ledger has the app of the
// chain open (Bitcoin on main, Bitcoin Test otherwise), a Trezor is the Model T persona.
func newHWIEmulated(t *testing.T, family, mnemonic, chain string, model trezoremu.Model) hwiEmulated {
	return newHWIEmulatedPIN(t, family, mnemonic, chain, model, "")
}

func newHWIEmulatedPIN(t *testing.T, family, mnemonic, chain string, model trezoremu.Model, pin string) hwiEmulated {
	t.Helper()
	approver := emulator.NewApprover(emulator.PolicyAuto)
	switch family {
	case "trezor":
		tz, err := trezoremu.New(trezoremu.Options{Model: model, Mnemonic: mnemonic, PIN: pin, Label: "hwi golden", Approver: approver})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tz.Close() })
		drv := device.Verify(trezor.New(tz.Pipe(), trezor.Options{Emulator: true}))
		t.Cleanup(func() { drv.Close() })
		return hwiEmulated{path: hwi.TrezorEmulatorPath, dev: drv, approver: approver}
	case "ledger":
		app := ledgeremu.AppBitcoinTest
		if chain == "main" {
			app = ledgeremu.AppBitcoin
		}
		lg, err := ledgeremu.New(ledgeremu.Config{Mnemonic: mnemonic, App: app, Approver: approver})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { lg.Close() })
		drv := device.Verify(ledger.New(transport.NewSpeculosExchanger(lg.Pipe()), ledger.Options{Emulator: true}))
		t.Cleanup(func() { drv.Close() })
		return hwiEmulated{path: hwi.LedgerEmulatorPath, dev: drv, approver: approver}
	}
	t.Fatalf("family %q", family)
	return hwiEmulated{}
}

func chainArg(args []string) string {
	if i := slices.Index(args, "--chain"); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return "main"
}

// fillChecksums replaces a "#CHECKSUM" ending with the descriptor's BIP-380 checksum.
func fillChecksums(t *testing.T, v any) any {
	switch x := v.(type) {
	case string:
		if body, ok := strings.CutSuffix(x, "#CHECKSUM"); ok {
			d, err := addChecksum(body)
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
	case []any:
		for i := range x {
			x[i] = fillChecksums(t, x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = fillChecksums(t, x[k])
		}
	}
	return v
}

// TestHWIGolden runs every case of testdata/hwi/golden.json on each emulated family named,
// as HWI's tests call it (-t TYPE -d PATH), and compares the JSON with HWI's answer.
func TestHWIGolden(t *testing.T) {
	raw, err := os.ReadFile("testdata/hwi/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g hwiGolden
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	for _, tc := range g.Cases {
		for _, fam := range tc.Families {
			t.Run(fam+"/"+tc.Name, func(t *testing.T) {
				mnemonic, ok := g.Seeds[tc.Seed]
				if !ok {
					t.Fatalf("seed %q not in the golden file", tc.Seed)
				}
				em := newHWIEmulatedPIN(t, fam, mnemonic, chainArg(tc.Args), trezoremu.ModelT, tc.PIN)
				args := tc.Args
				if !slices.Contains(args, "enumerate") {
					args = append([]string{"-t", fam, "-d", em.path}, args...)
				}
				got, err := hwiRun(t, map[string]device.Device{em.path: em.dev}, "", args...)
				var ue *usageError
				if errors.As(err, &ue) != tc.Usage {
					t.Fatalf("run error %v; usage error wanted: %v", err, tc.Usage)
				}
				if tc.Want == nil {
					m, _ := got.(map[string]any)
					if m["code"] != tc.Code || m["error"] == "" {
						t.Fatalf("answer %v; want HWI's code %v", got, tc.Code)
					}
					return
				}
				want := fillChecksums(t, tc.Want)
				if !reflect.DeepEqual(got, want) {
					gb, _ := json.Marshal(got)
					wb, _ := json.Marshal(want)
					t.Fatalf("answer\n got %s\nwant %s", gb, wb)
				}
			})
		}
	}
}

// TestHWITrezorPersonaModels: HWI names a Trezor "trezor_" + Features.model in lower case,
// with "_simulator" on a udp: path (hwilib/devices/trezor.py enumerate).
func TestHWITrezorPersonaModels(t *testing.T) {
	for model, want := range map[trezoremu.Model]string{
		trezoremu.ModelOne:   "trezor_1_simulator",
		trezoremu.ModelT:     "trezor_t_simulator",
		trezoremu.ModelSafe3: "trezor_safe 3_simulator",
		trezoremu.ModelSafe5: "trezor_safe 5_simulator",
	} {
		t.Run(string(model), func(t *testing.T) {
			em := newHWIEmulated(t, "trezor", emulator.DefaultMnemonic, "regtest", model)
			v, err := hwiRun(t, map[string]device.Device{em.path: em.dev}, "", "--emulators", "enumerate")
			if err != nil {
				t.Fatal(err)
			}
			list, _ := v.([]any)
			if len(list) != 1 || list[0].(map[string]any)["model"] != want {
				t.Fatalf("enumerate %v; want one %s", v, want)
			}
		})
	}
}

// TestHWIEnumerateNothing: HWI answers [] when no device is reachable, --emulators or not;
// an emulator that answers at HWI's address is listed once.
func TestHWIEnumerateNothing(t *testing.T) {
	for _, args := range [][]string{{"enumerate"}, {"--emulators", "enumerate"}} {
		v, err := hwiRun(t, map[string]device.Device{}, "", args...)
		if err != nil || fmt.Sprint(v) != "[]" {
			t.Errorf("%v: %v, %v; want []", args, v, err)
		}
	}
	em := newHWIEmulated(t, "ledger", emulator.DefaultMnemonic, "regtest", "")
	v, err := hwiRun(t, map[string]device.Device{em.path: em.dev}, "", "--emulators", "-d", em.path, "--chain", "regtest", "enumerate")
	if list, _ := v.([]any); err != nil || len(list) != 1 {
		t.Fatalf("--emulators with the Ledger emulator up: %v, %v", v, err)
	}
}

// TestHWIEnumerateLedgerOtherApp: HWI leaves out a Ledger that is not in the Bitcoin app
// (hwilib/devices/ledger.py enumerate, UnknownDeviceError: continue).
func TestHWIEnumerateLedgerOtherApp(t *testing.T) {
	lg, err := ledgeremu.New(ledgeremu.Config{App: ledgeremu.AppEthereum})
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	drv := device.Verify(ledger.New(transport.NewSpeculosExchanger(lg.Pipe()), ledger.Options{Emulator: true}))
	defer drv.Close()
	v, err := hwiRun(t, map[string]device.Device{hwi.LedgerEmulatorPath: drv}, "", "--chain", "regtest", "enumerate")
	if err != nil || fmt.Sprint(v) != "[]" {
		t.Fatalf("enumerate with the Ledger in the Ethereum app: %v, %v; want []", v, err)
	}
}

// TestHWISignMessageVerifies: signmessage's signature is Bitcoin Core's signed-message
// format for the key at the path (HWI's TestSignMessage checks it with verifymessage): a
// compressed-key P2PKH header and a public key recovered equal to the key at the path.
func TestHWISignMessageVerifies(t *testing.T) {
	const msg, path = "Message signing test", "m/44h/1h/0h/0/0"
	wantPub := mustPub(t, newKeyDevice(t), hdpath.Path{44 + hdpath.Hardened, 1 + hdpath.Hardened, hdpath.Hardened, 0, 0})
	var buf strings.Builder
	_ = wire.WriteVarString(&stringWriter{&buf}, 0, "Bitcoin Signed Message:\n")
	_ = wire.WriteVarString(&stringWriter{&buf}, 0, msg)
	first := sha256.Sum256([]byte(buf.String()))
	hash := sha256.Sum256(first[:])
	for _, fam := range []string{"trezor", "ledger"} {
		t.Run(fam, func(t *testing.T) {
			em := newHWIEmulated(t, fam, emulator.DefaultMnemonic, "test", trezoremu.ModelT)
			v, err := hwiRun(t, map[string]device.Device{em.path: em.dev}, "", "--chain", "test", "-d", em.path, "signmessage", msg, path)
			if err != nil {
				t.Fatal(err)
			}
			sig, err := base64.StdEncoding.DecodeString(fmt.Sprint(v.(map[string]any)["signature"]))
			if err != nil || len(sig) != 65 || sig[0] < 31 || sig[0] > 34 {
				t.Fatalf("signature %v: %v", v, err)
			}
			pub, compressed, err := ecdsa.RecoverCompact(sig, hash[:])
			if err != nil || !compressed || string(pub.SerializeCompressed()) != string(wantPub) {
				t.Fatalf("signature does not recover the key at %s (%v)", path, err)
			}
		})
	}
}

type stringWriter struct{ b *strings.Builder }

func (w *stringWriter) Write(p []byte) (int, error) { return w.b.Write(p) }

// TestHWIRefusalCodes: a refusal on the device is HWI's -14 on a Trezor (ActionCanceled)
// and -13 on a Ledger, whose client lets the app's deny error through unmapped.
func TestHWIRefusalCodes(t *testing.T) {
	for fam, want := range map[string]float64{"trezor": hwi.CodeActionCanceled, "ledger": hwi.CodeUnknownError} {
		t.Run(fam, func(t *testing.T) {
			em := newHWIEmulated(t, fam, emulator.DefaultMnemonic, "test", trezoremu.ModelT)
			if err := em.approver.SetPolicy(emulator.PolicyReject); err != nil {
				t.Fatal(err)
			}
			v, err := hwiRun(t, map[string]device.Device{em.path: em.dev}, "", "--chain", "test", "-d", em.path, "signmessage", "no", "m/44h/1h/0h/0/0")
			if err != nil || v.(map[string]any)["code"] != want {
				t.Fatalf("refused signmessage: %v, %v; want code %v", v, err, want)
			}
		})
	}
}

// TestHWIInstallUdevRules: installudevrules points at hwbridge's own installer instead of
// writing system files from a signer command.
func TestHWIInstallUdevRules(t *testing.T) {
	v, err := hwiRun(t, map[string]device.Device{}, "", "installudevrules")
	m, _ := v.(map[string]any)
	if err != nil || m["code"] != float64(hwi.CodeUnavailableAction) || !strings.Contains(fmt.Sprint(m["error"]), "udev install") {
		t.Fatalf("installudevrules: %v, %v", v, err)
	}
}
