// Package peers finds the third-party clients the tests drive the emulators with (node and
// pinned npm packages), the same way for every package: a missing peer fails the test when
// HWBRIDGE_REQUIRE_PEERS=1 (CI: scripts/test.sh) and skips it otherwise.
package peers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Require fails t under HWBRIDGE_REQUIRE_PEERS=1 and skips it otherwise.
func Require(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("HWBRIDGE_REQUIRE_PEERS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg + " (scripts/test.sh runs this test with its peers)")
}

// NPM finds node and the npm packages pinned by dir's package.json and package-lock.json:
// dir/node_modules, else the cache scripts/deps.sh fills,
// os.UserCacheDir()/hwbridge/<name>-<first 12 hex digits of sha256(package-lock.json)>,
// installing them there with `npm ci` (plus ciArgs) when absent. probe is a package whose
// presence says the install is there. It returns the NODE_PATH to use ("" when
// node_modules sits in dir).
func NPM(t testing.TB, dir, name, probe string, ciArgs ...string) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		Require(t, "node is not installed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", probe)); err == nil {
		return ""
	}
	lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	sum := sha256.Sum256(lock)
	cache := filepath.Join(base, "hwbridge", name+"-"+hex.EncodeToString(sum[:6]))
	if _, err := os.Stat(filepath.Join(cache, "node_modules", probe)); err == nil {
		return filepath.Join(cache, "node_modules")
	}
	if _, err := exec.LookPath("npm"); err != nil {
		Require(t, "npm is not installed: %v", err)
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	for file, b := range map[string][]byte{"package.json": pkg, "package-lock.json": lock} {
		if err := os.WriteFile(filepath.Join(cache, file), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", append([]string{"ci", "--no-audit", "--no-fund"}, ciArgs...)...)
	cmd.Dir = cache
	if out, err := cmd.CombinedOutput(); err != nil {
		Require(t, "npm ci for %s failed: %v\n%s", probe, err, out)
	}
	return filepath.Join(cache, "node_modules")
}
