package keys

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newStore(t *testing.T, c *clock) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "apps.json")
	s, err := Open(path, Options{Now: c.now, PairTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return s, path
}

// pair runs a pairing request and approves it.
func pair(t *testing.T, s *Store, req PairRequest, scopes []Scope) (App, string) {
	t.Helper()
	type res struct {
		app App
		key string
		err error
	}
	done := make(chan res, 1)
	go func() {
		a, k, err := s.Pair(context.Background(), req)
		done <- res{a, k, err}
	}()
	var id string
	for id == "" {
		for _, a := range s.List() {
			if a.Status == StatusPending && a.Name == req.Name {
				id = a.ID
			}
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := s.Approve(id, scopes); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.app, r.key
}

func TestPairApproveAndStoreOnlyHashes(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	s, path := newStore(t, c)
	app, key := pair(t, s, PairRequest{Name: "wallet", Scopes: []Scope{ScopeRead, ScopeSign}, Limits: Limits{Chains: []string{"btc"}}}, []Scope{ScopeRead})
	if app.Status != StatusApproved || !app.Has(ScopeRead) || app.Has(ScopeSign) {
		t.Fatalf("app %+v", app)
	}
	if !app.AllowsChain("btc") || app.AllowsChain("eth") {
		t.Fatal("chain limits not kept")
	}
	pk, err := ParseKey(key)
	if err != nil || pk.App != app.ID || pk.Version != 1 {
		t.Fatalf("key %q: %+v %v", key, pk, err)
	}
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), strings.Split(key, ".")[3]) {
		t.Fatal("the key's secret is on disk")
	}
	if !strings.Contains(string(b), hashKey(key)) {
		t.Fatal("the key's hash is not on disk")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("apps file mode %v", fi.Mode())
	}

	// After a restart the daemon needs a login before it can check MACs.
	s2, err := Open(path, Options{Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s2.secret(app.ID, 1); !errors.Is(err, ErrLoginRequired) {
		t.Fatalf("secret before login: %v", err)
	}
	if _, err := s2.Login(key[:len(key)-2] + "AA"); !errors.Is(err, ErrBadKey) {
		t.Fatalf("login with a wrong key: %v", err)
	}
	if _, err := s2.Login(key); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s2.secret(app.ID, 1); err != nil {
		t.Fatal(err)
	}
}

func TestDenyAndTimeout(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	s, _ := newStore(t, c)
	a, err := s.Request(PairRequest{Name: "x", Scopes: []Scope{ScopeRead}})
	if err != nil {
		t.Fatal(err)
	}
	go s.Deny(a.ID)
	if _, err := s.Wait(context.Background(), a.ID); !errors.Is(err, ErrDenied) {
		t.Fatalf("wait: %v", err)
	}
	a, _ = s.Request(PairRequest{Name: "y", Scopes: []Scope{ScopeRead}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Wait(ctx, a.ID); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait: %v", err)
	}
	if _, err := s.Get(a.ID); !errors.Is(err, ErrUnknownApp) {
		t.Fatal("an abandoned request stayed")
	}
	for _, bad := range []PairRequest{{Name: "", Scopes: []Scope{ScopeRead}}, {Name: "a"}, {Name: "a", Scopes: []Scope{"root"}},
		{Name: "a", Scopes: []Scope{ScopeRead}, Limits: Limits{Chains: []string{"doge"}}}} {
		if _, err := s.Request(bad); err == nil {
			t.Errorf("request %+v accepted", bad)
		}
	}
}

func TestRotateOverlapAndRevoke(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	s, _ := newStore(t, c)
	app, k1 := pair(t, s, PairRequest{Name: "w", Scopes: []Scope{ScopeRead}}, nil)
	k2, _, err := s.Rotate(app.ID, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	p1, _ := ParseKey(k1)
	p2, _ := ParseKey(k2)
	if p2.Version != 2 {
		t.Fatalf("rotated version %d", p2.Version)
	}
	for _, v := range []int{1, 2} {
		if _, _, err := s.secret(app.ID, v); err != nil {
			t.Fatalf("key %d during overlap: %v", v, err)
		}
	}
	c.add(10 * time.Minute)
	if _, _, err := s.secret(app.ID, p1.Version); !errors.Is(err, ErrKeyExpired) {
		t.Fatalf("old key after overlap: %v", err)
	}
	if _, _, err := s.secret(app.ID, p2.Version); err != nil {
		t.Fatalf("new key after overlap: %v", err)
	}
	if err := s.Revoke(app.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.secret(app.ID, p2.Version); !errors.Is(err, ErrRevoked) {
		t.Fatalf("after revoke: %v", err)
	}
	if _, err := s.Login(k2); !errors.Is(err, ErrRevoked) {
		t.Fatalf("login after revoke: %v", err)
	}
}

func TestEnsure(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	s, path := newStore(t, c)
	k1, err := s.Ensure("cli", "hwbridge CLI", AllScopes)
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := Open(path, Options{Now: c.now})
	k2, err := s2.Ensure("cli", "hwbridge CLI", AllScopes)
	if err != nil || k1 == k2 {
		t.Fatalf("second ensure: %v", err)
	}
	if _, err := s2.Login(k1); !errors.Is(err, ErrKeyExpired) {
		t.Fatalf("the previous CLI key: %v", err)
	}
	b, _ := json.Marshal(s2.List())
	if strings.Count(string(b), `"version"`) != 2 {
		t.Fatalf("keys kept: %s", b)
	}
}

// TestStoreBounds: a rotation overlap above MaxRotateOverlap is refused (30 days exactly is
// taken), and at most MaxPending pairing requests wait at once.
func TestStoreBounds(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	s, _ := newStore(t, c)
	app, _ := pair(t, s, PairRequest{Name: "w", Scopes: []Scope{ScopeRead}}, nil)
	for _, ov := range []time.Duration{MaxRotateOverlap + time.Second, -time.Second, time.Duration(999999999) * time.Second} {
		if _, _, err := s.Rotate(app.ID, ov); err == nil || !strings.Contains(err.Error(), "outside") {
			t.Errorf("overlap %s: %v", ov, err)
		}
	}
	if _, got, err := s.Rotate(app.ID, MaxRotateOverlap); err != nil || !got.Keys[0].Expires.Equal(c.now().Add(MaxRotateOverlap)) {
		t.Fatalf("30 days: %v %+v", err, got.Keys)
	}
	for i := range MaxPending {
		if _, err := s.Request(PairRequest{Name: "p", Scopes: []Scope{ScopeRead}}); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if _, err := s.Request(PairRequest{Name: "p", Scopes: []Scope{ScopeRead}}); err == nil || !strings.Contains(err.Error(), "already wait") {
		t.Fatalf("request %d: %v", MaxPending+1, err)
	}
}
