//go:build linux

package benchenv

import (
	"strings"
	"testing"
)

func TestFSNamesProc(t *testing.T) {
	// /proc is procfs on every Linux: not in the table, so its magic number is named.
	tests := []struct {
		dir  string
		want func(string) bool
	}{
		{"/proc", func(s string) bool { return s == "fs-0x9fa0" }},
		{"/does/not/exist", func(s string) bool { return s == "unknown" }},
		{t.TempDir(), func(s string) bool { return s != "unknown" && !strings.HasPrefix(s, "fs-0x9fa0") }},
	}
	for _, tt := range tests {
		if got := FS(tt.dir); !tt.want(got) {
			t.Errorf("FS(%s) = %q", tt.dir, got)
		}
	}
}
