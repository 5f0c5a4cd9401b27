// Package buildinfo says which build of a program is running: the module version, the
// commit and whether the tree was modified (as the go command stamps them), the Go version
// and the platform. Bug reports and compatibility checks start from it.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Info describes one build.
type Info struct {
	Program  string `json:"program"`
	Version  string `json:"version"`          // module version, "(devel)" when unstamped
	Commit   string `json:"commit,omitempty"` // vcs.revision
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

// Read returns the running binary's build information.
func Read(program string) Info {
	i := Info{Program: program, Version: "(devel)", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return i
	}
	if bi.Main.Version != "" {
		i.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			i.Commit = s.Value
		case "vcs.modified":
			i.Modified = s.Value == "true"
		}
	}
	return i
}

// String is the one line programs print for --version:
// "hwbridge v0.1.0 (commit 1eaf737d3c1a, modified) go1.26.8 linux/amd64".
func (i Info) String() string {
	s := i.Program + " " + i.Version
	if i.Commit != "" {
		c := i.Commit[:min(12, len(i.Commit))]
		if i.Modified {
			c += ", modified"
		}
		s += " (commit " + c + ")"
	}
	return fmt.Sprintf("%s %s %s", s, i.Go, i.Platform)
}
