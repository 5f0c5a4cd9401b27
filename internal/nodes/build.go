// Package nodes builds and runs the real chain nodes the integration tests talk to: btcd in
// regtest and geth in dev mode, from the versions pinned in tools/go.mod, on loopback ports
// in a temporary directory. A bare machine needs nothing but Go: the first build takes a few
// minutes (geth), later ones come from the Go build cache.
package nodes

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// Tool import paths, as pinned by tools/go.mod.
const (
	BtcdPackage   = "github.com/btcsuite/btcd"
	BtcctlPackage = "github.com/btcsuite/btcd/cmd/btcctl"
	GethPackage   = "github.com/ethereum/go-ethereum/cmd/geth"
)

var buildMu sync.Mutex

// Binary returns the path of a pinned tool, building it into the user cache directory when
// it is missing or older than tools/go.sum. Concurrent test processes may build the same
// binary; each writes to a temporary name and renames, so readers never see a partial file.
func Binary(ctx context.Context, pkg string) (string, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	toolsDir, err := toolsModule()
	if err != nil {
		return "", err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "hwbridge-nodes", "bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("nodes: %w", err)
	}
	bin := filepath.Join(dir, filepath.Base(pkg))
	sum, err := os.Stat(filepath.Join(toolsDir, "go.sum"))
	if err != nil {
		return "", fmt.Errorf("nodes: %w", err)
	}
	if st, err := os.Stat(bin); err == nil && st.ModTime().After(sum.ModTime()) {
		return bin, nil
	}
	tmp := fmt.Sprintf("%s.tmp%d", bin, os.Getpid())
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", tmp, pkg)
	cmd.Dir = toolsDir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("nodes: build %s: %w\n%s", pkg, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", fmt.Errorf("nodes: %w", err)
	}
	return bin, nil
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
