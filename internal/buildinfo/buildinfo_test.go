package buildinfo

import (
	"runtime"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	tests := []struct {
		in   Info
		want string
	}{
		{Info{Program: "hwbridge", Version: "v0.1.0", Commit: "1eaf737d3c1a5e0f", Go: "go1.26.8", Platform: "linux/amd64"},
			"hwbridge v0.1.0 (commit 1eaf737d3c1a) go1.26.8 linux/amd64"},
		{Info{Program: "hwemu", Version: "(devel)", Commit: "abc", Modified: true, Go: "go1.26.8", Platform: "darwin/arm64"},
			"hwemu (devel) (commit abc, modified) go1.26.8 darwin/arm64"},
		{Info{Program: "hwbridged", Version: "(devel)", Go: "go1.26.8", Platform: "linux/amd64"},
			"hwbridged (devel) go1.26.8 linux/amd64"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}

func TestRead(t *testing.T) {
	i := Read("x")
	if i.Program != "x" || i.Go != runtime.Version() || !strings.Contains(i.Platform, "/") || i.Version == "" {
		t.Fatalf("%+v", i)
	}
}
