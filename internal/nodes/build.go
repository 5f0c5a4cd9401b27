//go:build unix

// Package nodes builds and runs the real chain nodes the integration tests talk to: btcd in
// regtest and geth in dev mode, from the versions pinned in tools/go.mod, on loopback ports
// in a temporary directory. A bare machine needs Go and gcc (scripts/deps.sh): the first
// build takes a few minutes (geth); scripts/test.sh builds both before go test (cmd/buildnodes,
// with progress), and the test binaries find them in the shared, version-keyed cache. Unix only
// (process groups, flock): the package is left out of windows builds.
package nodes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Tool import paths, as pinned by tools/go.mod.
const (
	BtcdPackage   = "github.com/btcsuite/btcd"
	BtcctlPackage = "github.com/btcsuite/btcd/cmd/btcctl"
	GethPackage   = "github.com/ethereum/go-ethereum/cmd/geth"
)

var buildMu sync.Mutex

// CacheDir is where Binary keeps the pinned tools: the user cache directory (else the temp
// directory) + hwbridge-nodes/<key>, the key a hash of tools/go.mod, tools/go.sum and the Go
// version. A new pin or toolchain gets a new directory; an old one is never mistaken for it.
func CacheDir() (string, error) {
	toolsDir, err := toolsModule()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(toolsDir, f))
		if err != nil {
			return "", fmt.Errorf("nodes: %w", err)
		}
		h.Write(b)
	}
	h.Write([]byte(runtime.Version()))
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	return filepath.Join(cache, "hwbridge-nodes", hex.EncodeToString(h.Sum(nil))[:16]), nil
}

// Binary returns the path of a pinned tool, building it into CacheDir when it is missing.
// Test binaries (go test runs several packages at once) and scripts/test.sh's build step
// share the cache: a build holds an flock on CacheDir/build.lock, so one process builds
// and the others wait for it and reuse the result.
func Binary(ctx context.Context, pkg string) (string, error) { return Build(ctx, pkg, nil) }

// progressEvery is how often Build reports a build or a wait that is still running.
const progressEvery = 15 * time.Second

// Build is Binary that reports progress on w (nil: silent): when it waits for another
// process's build, when it starts building, every 15 s while that runs, and when it ends.
func Build(ctx context.Context, pkg string, w io.Writer) (string, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	say := func(format string, args ...any) {
		if w != nil {
			fmt.Fprintf(w, "nodes: "+format+"\n", args...)
		}
	}
	toolsDir, err := toolsModule()
	if err != nil {
		return "", err
	}
	dir, err := CacheDir()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("nodes: %w", err)
	}
	name := filepath.Base(pkg)
	bin := filepath.Join(dir, name)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	unlock, err := lockFile(ctx, filepath.Join(dir, "build.lock"), func(waited time.Duration) {
		say("waiting for another process building in %s (%s so far)", dir, waited.Round(time.Second))
	})
	if err != nil {
		return "", fmt.Errorf("nodes: build %s: %w", name, err)
	}
	defer unlock()
	if _, err := os.Stat(bin); err == nil { // built while we waited
		say("%s: built by another process", name)
		return bin, nil
	}
	say("building %s from tools/go.mod into %s (cold: geth takes about 2.5 min and 1 GB of memory on 2 cores; btcd about 30 s)", name, dir)
	start := time.Now()
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				say("still building %s: %s", name, time.Since(start).Round(time.Second))
			}
		}
	}()
	tmp := fmt.Sprintf("%s.tmp%d", bin, os.Getpid())
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", tmp, pkg)
	cmd.Dir = toolsDir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	close(done)
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("nodes: build %s: %w\n%s", pkg, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", fmt.Errorf("nodes: %w", err)
	}
	say("built %s in %s", name, time.Since(start).Round(time.Second))
	return bin, nil
}

// lockFile takes an exclusive flock on path, polling until ctx ends (flock itself cannot
// time out); waiting is called every progressEvery while it waits.
func lockFile(ctx context.Context, path string, waiting func(time.Duration)) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	start, next := time.Now(), progressEvery
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if d := time.Since(start); d >= next {
			waiting(d)
			next += progressEvery
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for another build (lock %s): %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// toolsModule finds tools/go.mod from this source file's location.
func toolsModule() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("nodes: cannot locate source")
	}
	dir := filepath.Join(filepath.Dir(file), "..", "..", "tools")
	if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err != nil || !strings.Contains(string(b), "hwbridge/tools") {
		return "", fmt.Errorf("nodes: tools module not found at %s", dir)
	}
	return dir, nil
}
