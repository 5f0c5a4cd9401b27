// Package keys holds hwbridged's paired apps and their keys, and checks requests signed with
// them (replay.go).
//
// # Pairing
//
// An app asks to pair with a name, the scopes it wants (read, sign, broadcast, admin) and
// optional limits (chains, devices). The request waits (Pair blocks) until the user approves
// it with `hwbridge apps approve ID` or denies it; on approval the app receives its key, once.
// The store keeps only SHA-256 hashes of keys, each with a version, a creation time and an
// optional expiry.
//
// # Keys
//
// A key is the string "hwbk1." + app id + "." + version + "." + 43 characters of base64url
// (32 random bytes). It names its app and version, so a client needs nothing else. Several
// keys of one app may be valid at once: Rotate issues version n+1 and makes the older keys
// expire after an overlap window; Revoke ends the app and all its keys at once.
//
// Because only hashes are on disk, the daemon learns a key's secret when it issues it or when
// the app logs in with it (Login) after a daemon restart; it keeps secrets in memory only,
// to check request MACs (see replay.go and ../doc.go).
//
// # Errors
//
// ErrUnknownApp, ErrNotApproved, ErrRevoked, ErrKeyExpired, ErrLoginRequired, ErrBadMAC,
// ErrStale, ErrReplay, ErrDenied, ErrScope (errors.Is).
package keys

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hwbridge/hwbridge/daemon/audit"
)

// Scope is a permission an app holds.
type Scope string

const (
	ScopeRead      Scope = "read"      // devices, xpubs, addresses
	ScopeSign      Scope = "sign"      // PSBTs, transactions, messages, typed data
	ScopeBroadcast Scope = "broadcast" // send to a chain (sign-and-broadcast needs sign too)
	ScopeAdmin     Scope = "admin"     // approve, rotate and revoke apps
)

// AllScopes in a stable order.
var AllScopes = []Scope{ScopeRead, ScopeSign, ScopeBroadcast, ScopeAdmin}

// ParseScopes parses "read,sign".
func ParseScopes(s string) ([]Scope, error) {
	var out []Scope
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !slices.Contains(AllScopes, Scope(f)) {
			return nil, fmt.Errorf("unknown scope %q (use read, sign, broadcast, admin)", f)
		}
		if !slices.Contains(out, Scope(f)) {
			out = append(out, Scope(f))
		}
	}
	return out, nil
}

// Status of an app.
type Status string

const (
	StatusPending  Status = "pending"
	StatusApproved Status = "approved"
	StatusRevoked  Status = "revoked"
)

// Key is one stored key: its hash, never the key.
type Key struct {
	Version int       `json:"version"`
	Hash    string    `json:"hash"` // hex SHA-256 of the key string
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires,omitzero"` // zero: until rotated or revoked
}

// Limits narrow what an app may reach; empty means any.
type Limits struct {
	Chains  []string `json:"chains,omitempty"`  // "btc", "eth"
	Devices []string `json:"devices,omitempty"` // device paths or master fingerprints
}

// App is one paired (or pairing) app.
type App struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Scopes  []Scope   `json:"scopes"`
	Limits  Limits    `json:"limits"`
	Status  Status    `json:"status"`
	Created time.Time `json:"created"`
	Changed time.Time `json:"changed"`
	Keys    []Key     `json:"keys"`
}

// Has reports whether the app holds scope s.
func (a *App) Has(s Scope) bool { return slices.Contains(a.Scopes, s) }

// AllowsChain reports whether the app may use chain c.
func (a *App) AllowsChain(c string) bool {
	return len(a.Limits.Chains) == 0 || slices.Contains(a.Limits.Chains, c)
}

// AllowsDevice reports whether the app may use the device with this path or fingerprint.
func (a *App) AllowsDevice(path, fingerprint string) bool {
	if len(a.Limits.Devices) == 0 {
		return true
	}
	return slices.ContainsFunc(a.Limits.Devices, func(d string) bool {
		return d == path || (fingerprint != "" && strings.EqualFold(d, fingerprint))
	})
}

// Sentinel errors.
var (
	ErrUnknownApp    = errors.New("unknown app: pair first (the user approves with hwbridge apps approve)")
	ErrNotApproved   = errors.New("app is not approved yet: the user approves it with hwbridge apps approve")
	ErrRevoked       = errors.New("app was revoked: pair again")
	ErrKeyExpired    = errors.New("app key expired (it was rotated): use the newer key")
	ErrLoginRequired = errors.New("the daemon does not hold this key since it restarted: log in with the key (hwbridge_v1Login), then retry")
	ErrBadKey        = errors.New("app key is not valid")
	ErrDenied        = errors.New("pairing was denied by the user")
	ErrPairTimeout   = errors.New("pairing was not approved in time: ask again and approve with hwbridge apps approve")
	ErrScope         = errors.New("the app's key does not allow this")
)

// KeyPrefix starts every key string.
const KeyPrefix = "hwbk1"

// Bounds of the store.
const (
	// MaxRotateOverlap is the longest an old key may keep working after a rotation.
	MaxRotateOverlap = 30 * 24 * time.Hour
	// MaxPending is how many pairing requests may wait for the user at once.
	MaxPending = 16
)

// ParsedKey is a key string's parts.
type ParsedKey struct {
	App     string
	Version int
	Secret  []byte // the whole key string, the HMAC key
}

// ParseKey splits a key string.
func ParseKey(s string) (ParsedKey, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 4 || parts[0] != KeyPrefix || parts[1] == "" {
		return ParsedKey{}, fmt.Errorf("%w: want %s.APP.VERSION.SECRET", ErrBadKey, KeyPrefix)
	}
	v, err := strconv.Atoi(parts[2])
	if err != nil || v < 1 {
		return ParsedKey{}, fmt.Errorf("%w: bad version", ErrBadKey)
	}
	if b, err := base64.RawURLEncoding.DecodeString(parts[3]); err != nil || len(b) != 32 {
		return ParsedKey{}, fmt.Errorf("%w: bad secret", ErrBadKey)
	}
	return ParsedKey{App: parts[1], Version: v, Secret: []byte(s)}, nil
}

func hashKey(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func newKey(app string, version int) string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s.%s.%d.%s", KeyPrefix, app, version, base64.RawURLEncoding.EncodeToString(b[:]))
}

func newID() string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// PairRequest is what an app asks for.
type PairRequest struct {
	Name   string  `json:"name"`
	Scopes []Scope `json:"scopes"`
	Limits Limits  `json:"limits"`
}

// Options configure a Store.
type Options struct {
	Now         func() time.Time // time.Now if nil
	PairTimeout time.Duration    // how long Pair waits for the user (5 minutes if 0)
}

// Store holds the apps of one data directory. Safe for concurrent use.
type Store struct {
	path string
	opts Options

	mu      sync.Mutex
	apps    map[string]*App
	secrets map[string][]byte // app/version → key string, in memory only
	waiters map[string]chan pairResult
}

type pairResult struct {
	key string
	err error
}

type file struct {
	Version int    `json:"version"`
	Apps    []*App `json:"apps"`
}

// Open loads (or starts) the store at path.
func Open(path string, opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.PairTimeout <= 0 {
		opts.PairTimeout = 5 * time.Minute
	}
	s := &Store{path: path, opts: opts, apps: map[string]*App{}, secrets: map[string][]byte{},
		waiters: map[string]chan pairResult{}}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("keys: %w", err)
	default:
		var f file
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("keys: %s is damaged: %w", path, err)
		}
		for _, a := range f.Apps {
			if a.Status == StatusPending {
				continue // its requester went away with the daemon that took the request
			}
			s.apps[a.ID] = a
		}
	}
	return s, nil
}

// save writes the store; mu must be held.
func (s *Store) save() error {
	f := file{Version: 1}
	for _, a := range s.apps {
		f.Apps = append(f.Apps, a)
	}
	slices.SortFunc(f.Apps, func(a, b *App) int { return strings.Compare(a.ID, b.ID) })
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := audit.WriteFileAtomic(s.path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("keys: save %s: %w", s.path, err)
	}
	return nil
}

func clone(a *App) App {
	c := *a
	c.Scopes = slices.Clone(a.Scopes)
	c.Keys = slices.Clone(a.Keys)
	c.Limits.Chains = slices.Clone(a.Limits.Chains)
	c.Limits.Devices = slices.Clone(a.Limits.Devices)
	return c
}

// List returns every app, sorted by id.
func (s *Store) List() []App {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]App, 0, len(s.apps))
	for _, a := range s.apps {
		out = append(out, clone(a))
	}
	slices.SortFunc(out, func(a, b App) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Get returns one app.
func (s *Store) Get(id string) (App, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[id]
	if a == nil {
		return App{}, fmt.Errorf("%w: %q", ErrUnknownApp, id)
	}
	return clone(a), nil
}

// Request registers a pairing request and returns the pending app. Wait blocks for the
// user's decision. (Pair does both.)
func (s *Store) Request(req PairRequest) (App, error) {
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" || len(req.Name) > 64 {
		return App{}, errors.New("pair: name the app (1 to 64 characters)")
	}
	if len(req.Scopes) == 0 {
		return App{}, errors.New("pair: ask for at least one scope (read, sign, broadcast, admin)")
	}
	for _, sc := range req.Scopes {
		if !slices.Contains(AllScopes, sc) {
			return App{}, fmt.Errorf("pair: unknown scope %q (use read, sign, broadcast, admin)", sc)
		}
	}
	for _, c := range req.Limits.Chains {
		if c != "btc" && c != "eth" {
			return App{}, fmt.Errorf("pair: unknown chain %q in limits (use btc, eth)", c)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pending := 0
	for _, a := range s.apps {
		if a.Status == StatusPending {
			pending++
		}
	}
	if pending >= MaxPending {
		return App{}, fmt.Errorf("pair: %d pairing requests already wait for the user: approve or deny them first (hwbridge apps list)", pending)
	}
	now := s.opts.Now().UTC()
	id := newID()
	a := &App{ID: id, Name: req.Name, Scopes: slices.Clone(req.Scopes), Limits: req.Limits, Status: StatusPending,
		Created: now, Changed: now}
	s.apps[id] = a
	s.waiters[id] = make(chan pairResult, 1)
	if err := s.save(); err != nil {
		delete(s.apps, id)
		delete(s.waiters, id)
		return App{}, err
	}
	return clone(a), nil
}

// Wait blocks until the pending app id is approved (returning its key, once), denied, or the
// pairing times out or ctx ends; then the pending request is dropped.
func (s *Store) Wait(ctx context.Context, id string) (string, error) {
	s.mu.Lock()
	ch := s.waiters[id]
	s.mu.Unlock()
	if ch == nil {
		return "", fmt.Errorf("%w: no pairing request %q is waiting", ErrUnknownApp, id)
	}
	t := time.NewTimer(s.opts.PairTimeout)
	defer t.Stop()
	var res pairResult
	select {
	case res = <-ch:
	case <-ctx.Done():
		res.err = fmt.Errorf("pair: %w", ctx.Err())
	case <-t.C:
		res.err = ErrPairTimeout
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if res.err != nil {
		select {
		case r := <-ch: // decided just as the wait ended: the decision stands
			res = r
		default:
		}
	}
	delete(s.waiters, id)
	if res.err != nil {
		if a := s.apps[id]; a != nil && a.Status == StatusPending {
			delete(s.apps, id)
			_ = s.save()
		}
	}
	return res.key, res.err
}

// Pair is Request then Wait.
func (s *Store) Pair(ctx context.Context, req PairRequest) (App, string, error) {
	a, err := s.Request(req)
	if err != nil {
		return App{}, "", err
	}
	key, err := s.Wait(ctx, a.ID)
	if err != nil {
		return a, "", err
	}
	got, err := s.Get(a.ID)
	return got, key, err
}

// Approve approves a pending app, optionally narrowing its scopes, and hands its first key
// to the waiting requester.
func (s *Store) Approve(id string, scopes []Scope) (App, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[id]
	if a == nil {
		return App{}, fmt.Errorf("%w: %q (hwbridge apps list shows pending requests)", ErrUnknownApp, id)
	}
	if a.Status != StatusPending {
		return App{}, fmt.Errorf("app %s is %s, not pending", id, a.Status)
	}
	ch := s.waiters[id]
	if ch == nil {
		return App{}, fmt.Errorf("app %s: its pairing request is no longer waiting: ask the app to pair again", id)
	}
	if len(scopes) > 0 {
		for _, sc := range scopes {
			if !a.Has(sc) {
				return App{}, fmt.Errorf("approve: the app did not ask for scope %q", sc)
			}
		}
		a.Scopes = slices.Clone(scopes)
	}
	now := s.opts.Now().UTC()
	key := newKey(id, 1)
	a.Keys = []Key{{Version: 1, Hash: hashKey(key), Created: now}}
	a.Status, a.Changed = StatusApproved, now
	if err := s.save(); err != nil {
		a.Status, a.Keys = StatusPending, nil
		return App{}, err
	}
	s.secrets[secretID(id, 1)] = []byte(key)
	ch <- pairResult{key: key} // Wait takes it and drops the waiter
	return clone(a), nil
}

// Deny refuses a pending app.
func (s *Store) Deny(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[id]
	if a == nil || a.Status != StatusPending {
		return fmt.Errorf("%w: no pending app %q", ErrUnknownApp, id)
	}
	delete(s.apps, id)
	if ch := s.waiters[id]; ch != nil {
		ch <- pairResult{err: ErrDenied}
	}
	return s.save()
}

// Rotate issues a new key for an approved app and makes its older keys expire after
// overlap (0: at once). It returns the new key, to be shown once.
func (s *Store) Rotate(id string, overlap time.Duration) (string, App, error) {
	if overlap < 0 || overlap > MaxRotateOverlap {
		return "", App{}, fmt.Errorf("rotate: an overlap of %s is outside 0 to %s: pick a shorter one", overlap, MaxRotateOverlap)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[id]
	if a == nil {
		return "", App{}, fmt.Errorf("%w: %q", ErrUnknownApp, id)
	}
	if a.Status != StatusApproved {
		return "", App{}, fmt.Errorf("app %s is %s: only approved apps rotate keys", id, a.Status)
	}
	now := s.opts.Now().UTC()
	v := 1
	for _, k := range a.Keys {
		v = max(v, k.Version+1)
	}
	old := slices.Clone(a.Keys)
	until := now.Add(overlap)
	var keep []Key
	for _, k := range a.Keys {
		if !k.Expires.IsZero() && !k.Expires.After(now) {
			delete(s.secrets, secretID(id, k.Version)) // long expired: drop it
			continue
		}
		if k.Expires.IsZero() || k.Expires.After(until) {
			k.Expires = until
		}
		keep = append(keep, k)
	}
	key := newKey(id, v)
	a.Keys = append(keep, Key{Version: v, Hash: hashKey(key), Created: now})
	a.Changed = now
	if err := s.save(); err != nil {
		a.Keys = old
		return "", App{}, err
	}
	s.secrets[secretID(id, v)] = []byte(key)
	return key, clone(a), nil
}

// Revoke ends an app and all its keys at once.
func (s *Store) Revoke(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[id]
	if a == nil {
		return fmt.Errorf("%w: %q", ErrUnknownApp, id)
	}
	if a.Status == StatusPending {
		if ch := s.waiters[id]; ch != nil {
			ch <- pairResult{err: ErrDenied}
		}
	}
	for _, k := range a.Keys {
		delete(s.secrets, secretID(id, k.Version))
	}
	a.Status, a.Keys, a.Changed = StatusRevoked, nil, s.opts.Now().UTC()
	return s.save()
}

// Ensure makes an approved app with a fixed id, name and scopes exist and gives it a fresh
// key, dropping its older ones (the daemon's own CLI key, written to the data directory on
// every start).
func (s *Store) Ensure(id, name string, scopes []Scope) (string, error) {
	s.mu.Lock()
	a := s.apps[id]
	now := s.opts.Now().UTC()
	if a == nil || a.Status != StatusApproved {
		a = &App{ID: id, Name: name, Status: StatusApproved, Created: now}
		s.apps[id] = a
	}
	a.Scopes, a.Changed = slices.Clone(scopes), now
	s.mu.Unlock()
	key, _, err := s.Rotate(id, 0)
	return key, err
}

// Login checks a key against its stored hash and keeps it in memory for MAC checks.
func (s *Store) Login(key string) (App, error) {
	pk, err := ParseKey(key)
	if err != nil {
		return App{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, k, err := s.lookup(pk.App, pk.Version)
	if err != nil {
		return App{}, err
	}
	if subtle.ConstantTimeCompare([]byte(hashKey(key)), []byte(k.Hash)) != 1 {
		return App{}, ErrBadKey
	}
	s.secrets[secretID(pk.App, pk.Version)] = []byte(key)
	return clone(a), nil
}

// lookup finds an app's valid key version; mu must be held.
func (s *Store) lookup(id string, version int) (*App, Key, error) {
	a := s.apps[id]
	switch {
	case a == nil:
		return nil, Key{}, fmt.Errorf("%w: %q", ErrUnknownApp, id)
	case a.Status == StatusRevoked:
		return nil, Key{}, ErrRevoked
	case a.Status != StatusApproved:
		return nil, Key{}, ErrNotApproved
	}
	i := slices.IndexFunc(a.Keys, func(k Key) bool { return k.Version == version })
	if i < 0 {
		return nil, Key{}, fmt.Errorf("%w: app %s has no key version %d", ErrKeyExpired, id, version)
	}
	k := a.Keys[i]
	if !k.Expires.IsZero() && !s.opts.Now().Before(k.Expires) {
		return nil, Key{}, fmt.Errorf("%w (version %d expired %s)", ErrKeyExpired, version, k.Expires.Format(time.RFC3339))
	}
	return a, k, nil
}

// secret returns the in-memory key for a valid app key version.
func (s *Store) secret(id string, version int) (App, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, _, err := s.lookup(id, version)
	if err != nil {
		return App{}, nil, err
	}
	sec := s.secrets[secretID(id, version)]
	if sec == nil {
		return App{}, nil, ErrLoginRequired
	}
	return clone(a), sec, nil
}

func secretID(id string, v int) string { return id + "/" + strconv.Itoa(v) }
