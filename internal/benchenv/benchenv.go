// Package benchenv names the setup a benchmark ran on, so that its figures say what they
// measured: the filesystem under a directory (fsync costs ~30× more on a disk than on
// tmpfs) and the machine's CPU count.
package benchenv

import (
	"os"
	"runtime"
	"testing"
)

// FS names the filesystem holding dir ("ext4", "tmpfs", "xfs", "btrfs", "overlay", …;
// "fs-0x…" for one this package does not know, "unknown" where it cannot be asked).
func FS(dir string) string { return fsName(dir) }

// TempFS is FS of the directory benchmarks put their files in (TMPDIR, else /tmp).
func TempFS() string { return FS(os.TempDir()) }

// Report logs the setup once per benchmark (shown with -v and in failures) and returns the
// filesystem name for the benchmark's own name.
func Report(b *testing.B, what string) string {
	b.Helper()
	fs := TempFS()
	b.Logf("setup: %s; TMPDIR=%s on %s; GOMAXPROCS=%d", what, os.TempDir(), fs, runtime.GOMAXPROCS(0))
	return fs
}
