package nodes

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBinaryBtcd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bin, err := Binary(ctx, BtcdPackage)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, bin, "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "0.26.2") {
		t.Fatalf("btcd --version: %v %s", err, out)
	}
}

// TestLockFileExcludes: a second holder waits for the first; a wait ends with its context.
func TestLockFileExcludes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "build.lock")
	unlock, err := lockFile(t.Context(), path, func(time.Duration) {})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := lockFile(ctx, path, func(time.Duration) {}); !errors.Is(err, context.Canceled) {
		t.Fatalf("second lock while held: %v", err)
	}
	unlock()
	unlock2, err := lockFile(t.Context(), path, func(time.Duration) {})
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	unlock2()
}

// TestCacheDirKeyedByVersion: the cache directory names the pinned versions' hash.
func TestCacheDirKeyedByVersion(t *testing.T) {
	dir, err := CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(filepath.Dir(dir)) != "hwbridge-nodes" || len(filepath.Base(dir)) != 16 {
		t.Fatalf("cache dir %s", dir)
	}
}
