package main

import (
	"io"
	"runtime"
	"strings"
	"testing"
)

func TestVersionFlag(t *testing.T) {
	var out strings.Builder
	getenv := func(string) string { return t.TempDir() }
	if code := run(t.Context(), []string{"--version"}, &out, io.Discard, getenv); code != 0 || !strings.HasPrefix(out.String(), "hwbridged ") || !strings.Contains(out.String(), runtime.Version()) {
		t.Errorf("--version: exit %d, %q", code, out.String())
	}
}
