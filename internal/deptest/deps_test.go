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

func under(pkg, prefix string) bool { return pkg == prefix || strings.HasPrefix(pkg, prefix+"/") }
