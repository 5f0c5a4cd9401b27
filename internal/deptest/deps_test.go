// Package deptest fixes the package graph of ../shared/design.md with a negative-dependency
// test (STYLE rule 12): the emulator and the drivers may share only framing codecs and wire
// message types, transport imports no other project package, and so on.
package deptest

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/hwbridge/hwbridge/"

// rules: packages matching a prefix must not depend on the listed prefixes, with why.
var rules = []struct {
	pkg, banned, why string
}{
	{"emulator", "device", "the emulator and the drivers must be written independently; a shared flow would let both agree on a wrong protocol"},
	{"transport", "device", "transport carries bytes and knows nothing of devices"},
	{"transport", "emulator", "transport carries bytes and knows nothing of devices"},
	{"transport", "chains", "transport carries bytes only"},
	{"transport", "psbt", "transport carries bytes only"},
	{"psbt", "device", "psbt is pure data; devices sign through the device interface"},
	{"psbt", "chains", "psbt is below chains"},
	{"device", "emulator", "drivers must work on real devices; emulators are only named by path"},
	{"device", "daemon", "the daemon sits above devices"},
	{"device", "cmd", "cmd is wiring only"},
	{"chains", "emulator", "chain code must work with any device"},
	{"chains", "daemon", "the daemon sits above chains"},
	{"daemon", "emulator", "the daemon never picks an emulator itself; cmd wiring names it"},
	{"daemon", "device/ledger", "use cases reach devices through the device interface (and small interfaces of their own over device types); a driver's package is wiring's to name (device/drivers)"},
	{"daemon", "device/trezor", "use cases reach devices through the device interface (and small interfaces of their own over device types); a driver's package is wiring's to name (device/drivers)"},
	{"daemon", "device/keepkey", "use cases reach devices through the device interface (and small interfaces of their own over device types); a driver's package is wiring's to name (device/drivers)"},
	{"daemon", "device/coldcard", "use cases reach devices through the device interface (and small interfaces of their own over device types); a driver's package is wiring's to name (device/drivers)"},
	{"daemon", "device/bitbox02", "use cases reach devices through the device interface (and small interfaces of their own over device types); a driver's package is wiring's to name (device/drivers)"},
	{"hwi", "device/ledger", "use cases reach devices through the device interface (and small interfaces of their own over device types); a driver's package is wiring's to name (device/drivers)"},
	{"hwi", "device/trezor", "use cases reach devices through the device interface (and small interfaces of their own over device types); a driver's package is wiring's to name (device/drivers)"},
	{"hwi", "device/keepkey", "use cases reach devices through the device interface (and small interfaces of their own over device types); a driver's package is wiring's to name (device/drivers)"},
	{"hwi", "device/coldcard", "use cases reach devices through the device interface (and small interfaces of their own over device types); a driver's package is wiring's to name (device/drivers)"},
	{"hwi", "device/bitbox02", "use cases reach devices through the device interface (and small interfaces of their own over device types); a driver's package is wiring's to name (device/drivers)"},
	{"chains", "device/ledger", "use cases reach devices through the device interface (and small interfaces of their own over device types); a driver's package is wiring's to name (device/drivers)"},
	{"chains", "device/trezor", "use cases reach devices through the device interface (and small interfaces of their own over device types); a driver's package is wiring's to name (device/drivers)"},
	{"chains", "device/keepkey", "use cases reach devices through the device interface (and small interfaces of their own over device types); a driver's package is wiring's to name (device/drivers)"},
	{"chains", "device/coldcard", "use cases reach devices through the device interface (and small interfaces of their own over device types); a driver's package is wiring's to name (device/drivers)"},
	{"chains", "device/bitbox02", "use cases reach devices through the device interface (and small interfaces of their own over device types); a driver's package is wiring's to name (device/drivers)"},
}

func TestPackageGraph(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps=false", "-f", `{{.ImportPath}} {{join .Deps " "}}`, module+"...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		pkg := strings.TrimPrefix(fields[0], module)
		for _, r := range rules {
			if !under(pkg, r.pkg) {
				continue
			}
			checked++
			for _, dep := range fields[1:] {
				if !strings.HasPrefix(dep, module) {
					continue
				}
				if d := strings.TrimPrefix(dep, module); under(d, r.banned) {
					t.Errorf("%s imports %s: %s", pkg, d, r.why)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no package matched any rule: the module path or layout changed")
	}
}

// heavyDeps are third-party packages cmd/hwbridge must not link, with why: `hwbridge demo`
// must cold-build and run in under two minutes, and go-ethereum's node, eth and p2p services
// (with the pebble databases and zstd's C sources under them) cost about a minute and a half
// of that on their own. internal/devchain/ethdev builds its chain from core and rpc instead.
var heavyDeps = []struct {
	pkg    string
	prefix bool // pkg and everything under it
	why    string
}{
	{"github.com/cockroachdb/pebble", true, "pebble v1 and v2 are go-ethereum's on-disk database; the dev chain is in memory"},
	{"github.com/DataDog/zstd", true, "cgo zstd compiles C sources on a cold build"},
	{"github.com/ethereum/go-ethereum/node", false, "go-ethereum's node pulls p2p, pebble and the eth service"},
	{"github.com/ethereum/go-ethereum/p2p", false, "a dev chain has no peers"},
	{"github.com/ethereum/go-ethereum/eth", false, "go-ethereum's eth service pulls the downloader, pebble and p2p"},
}

func TestNoHeavyDeps(t *testing.T) {
	for _, cmd := range []string{"cmd/hwbridge"} {
		out, err := exec.Command("go", "list", "-deps", module+cmd).CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 10 {
			t.Fatalf("go list -deps %s listed %d packages: the layout changed", cmd, len(deps))
		}
		for _, d := range deps {
			for _, h := range heavyDeps {
				if d == h.pkg || (h.prefix && strings.HasPrefix(d, h.pkg+"/")) {
					t.Errorf("%s depends on %s: %s", cmd, d, h.why)
				}
			}
		}
	}
}

func under(pkg, prefix string) bool { return pkg == prefix || strings.HasPrefix(pkg, prefix+"/") }
