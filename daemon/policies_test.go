package daemon

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hwbridge/hwbridge/device"
)

// TestPolicyStore: registrations are kept per device fingerprint in policies.json (0600),
// survive a reopen, are added once, and are forgotten per fingerprint or all at once.
func TestPolicyStore(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, PoliciesFile)
	s, err := openPolicies(path)
	if err != nil {
		t.Fatal(err)
	}
	pol := device.WalletPolicy{Name: "Cold", Template: "wsh(sortedmulti(1,@0/**,@1/**))", Keys: []string{"[73c5da0a/48'/1'/0'/2']tpubA", "[1a0f5425/48'/1'/0'/2']tpubB"}}
	other := device.WalletPolicy{Name: "Other", Template: "wpkh(@0/**)", Keys: []string{"[73c5da0a/84'/1'/101']tpubC"}}
	a, b := device.Fingerprint(0x73c5da0a), device.Fingerprint(0xf5acc2fd)
	w := device.RegisteredWallet{Policy: pol, HMAC: [32]byte{1, 2, 3}}
	if n, err := s.add(a, []device.RegisteredWallet{w, w}, testWalletID); err != nil || n != 1 {
		t.Fatalf("add: %d, %v", n, err)
	}
	if n, err := s.add(a, []device.RegisteredWallet{w}, testWalletID); err != nil || n != 0 {
		t.Fatalf("add again: %d, %v", n, err)
	}
	if _, err := s.add(b, []device.RegisteredWallet{{Policy: pol, HMAC: [32]byte{9}}, {Policy: other, HMAC: [32]byte{8}}}, testWalletID); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file: %v %v", fi, err)
	}
	s, err = openPolicies(path)
	if err != nil {
		t.Fatal(err)
	}
	if h, ok := s.lookup(a, pol); !ok || h != w.HMAC {
		t.Fatalf("lookup a: %x %v", h, ok)
	}
	if h, ok := s.lookup(b, pol); !ok || h != [32]byte{9} {
		t.Fatalf("lookup b: %x %v (registrations are per device)", h, ok)
	}
	if _, ok := s.lookup(a, other); ok {
		t.Fatal("a policy registered on b found for a")
	}
	if n, err := s.forget(b.String()); err != nil || n != 2 || len(s.wallets(b)) != 0 || len(s.wallets(a)) != 1 {
		t.Fatalf("forget b: %d %v", n, err)
	}
	if n, err := ForgetPolicies(dir, ""); err != nil || n != 1 {
		t.Fatalf("ForgetPolicies: %d %v", n, err)
	}
	if s, err = openPolicies(path); err != nil || len(s.all()) != 0 {
		t.Fatalf("after forgetting all: %v %v", s.all(), err)
	}
	if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := openPolicies(path); err == nil {
		t.Fatal("a corrupt policies.json opened")
	}
}

// testWalletID stands for a device's wallet id in the store's tests.
func testWalletID(p device.WalletPolicy) [32]byte {
	return sha256.Sum256([]byte(p.Name + "\x00" + p.Template + "\x00" + strings.Join(p.Keys, ",")))
}
