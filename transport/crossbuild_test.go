package transport

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestCrossBuild compiles the whole module for macOS and Windows, as a user there would get
// it from go install without a C cross-compiler: cgo off, so no HID, and no raw USB (which
// is Linux only): the programs still build, and say "no USB in this build" at run time
// (ErrNoRawUSB, errors.ErrUnsupported). The build cache makes repeated runs cheap; a cold
// cache costs minutes (go-ethereum and btcd compiled for two more platforms).
func TestCrossBuild(t *testing.T) {
	for _, target := range []struct{ goos, goarch string }{{"darwin", "arm64"}, {"windows", "amd64"}} {
		cmd := exec.Command("go", "build", "./...")
		cmd.Dir = ".." // the module root
		cmd.Env = append(os.Environ(), "GOOS="+target.goos, "GOARCH="+target.goarch, "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("GOOS=%s GOARCH=%s go build ./...: %v\n%s", target.goos, target.goarch, err, strings.TrimSpace(string(out)))
		}
	}
}
