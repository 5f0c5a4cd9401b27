package bitbox02

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoDriverImports fixes the package graph (STYLE rule 12): the emulator and the driver
// must not share message flows, so nothing under device/ may be among our dependencies.
func TestNoDriverImports(t *testing.T) {
	out, err := exec.CommandContext(t.Context(), "go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/hwbridge/hwbridge/device") {
			t.Errorf("emulator/bitbox02 depends on %s: the emulator may share only transport framing with the driver", dep)
		}
	}
}
