package keys

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Auth is the first positional parameter of every authenticated call (see ../doc.go).
type Auth struct {
	App   string `json:"app"`   // app id
	Key   int    `json:"key"`   // key version
	Nonce string `json:"nonce"` // 16 to 64 characters of [A-Za-z0-9_-], fresh per request
	TS    int64  `json:"ts"`    // the client's clock, unix milliseconds
	MAC   string `json:"mac"`   // lower-case hex HMAC-SHA256(key string, MACInput(...))
}

// Replay errors.
var (
	ErrBadMAC = errors.New("request MAC does not verify: sign method, params, nonce and ts with the app key")
	ErrStale  = errors.New("request timestamp is outside the accepted window: check the clock and sign each request when sending it")
	ErrReplay = errors.New("request nonce was already used: use a fresh nonce for every request")
	ErrAuth   = errors.New("request has no valid auth object")
	// ErrTooMany: this app sent more requests than the daemon remembers nonces for.
	ErrTooMany = errors.New("too many requests from this app")
)

// Limits of the canonical encoding.
const (
	MaxParams     = 4 << 20 // bytes of one request's params
	maxDepth      = 64
	minNonce      = 16
	maxNonce      = 64
	DefaultWindow = 60 * time.Second
	// MaxNoncesPerApp bounds the nonces remembered for one app (each for twice the window):
	// an app that sends faster than MaxNoncesPerApp per 2×window is refused ("slow down")
	// while other apps go on; 1<<18 is about 2,000 requests per second with the default
	// window, and at most ~30 MB of memory per app.
	MaxNoncesPerApp = 1 << 18
)

// macDomain starts every MAC input.
const macDomain = "hwbridge-v1"

// MACInput is the byte string a request's MAC covers:
//
//	"hwbridge-v1" LF method LF canonical(params) LF nonce LF decimal(ts)
func MACInput(method string, canonicalParams []byte, nonce string, ts int64) []byte {
	var b bytes.Buffer
	b.WriteString(macDomain)
	b.WriteByte('\n')
	b.WriteString(method)
	b.WriteByte('\n')
	b.Write(canonicalParams)
	b.WriteByte('\n')
	b.WriteString(nonce)
	b.WriteByte('\n')
	b.WriteString(strconv.FormatInt(ts, 10))
	return b.Bytes()
}

// MAC computes the hex MAC of a request with the key string.
func MAC(key []byte, method string, params json.RawMessage, nonce string, ts int64) (string, error) {
	c, err := Canonical(params)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(macSum(key, method, c, nonce, ts)), nil
}

// macSum is HMAC-SHA256(key, MACInput(...)), written into the MAC piece by piece.
func macSum(key []byte, method string, canonicalParams []byte, nonce string, ts int64) []byte {
	m := hmac.New(sha256.New, key)
	var b [64]byte
	m.Write(append(append(append(b[:0], macDomain+"\n"...), method...), '\n'))
	m.Write(canonicalParams)
	m.Write(strconv.AppendInt(append(append(append(b[:0], '\n'), nonce...), '\n'), ts, 10))
	return m.Sum(b[:0])
}

// Sign makes the auth object for one request (the client side).
func Sign(key string, method string, params json.RawMessage, now time.Time) (Auth, error) {
	pk, err := ParseKey(key)
	if err != nil {
		return Auth{}, err
	}
	var n [16]byte
	_, _ = rand.Read(n[:])
	a := Auth{App: pk.App, Key: pk.Version, Nonce: hex.EncodeToString(n[:]), TS: now.UnixMilli()}
	a.MAC, err = MAC(pk.Secret, method, params, a.Nonce, a.TS)
	return a, err
}

// Canonical re-encodes a JSON value in the canonical form of ../doc.go: no insignificant
// white space; object members sorted by the bytes of their UTF-8 names (duplicate names
// refused); strings with only '"', '\\' and control characters escaped (\b \f \n \r \t, the
// rest as \u00xx, lower-case hex), everything else as raw UTF-8; numbers exactly as written;
// an empty input is the value null.
//
// Hand-written single-pass parser (canon.go): it runs twice per request (the client signs,
// the daemon checks), and encoding/json's Decoder.Token, which it replaced, allocated per
// token and was a fifth of a read call's CPU through the daemon. FuzzCanonicalReference
// checks it against that Token-based reference, input for input.
func Canonical(raw []byte) ([]byte, error) {
	if len(raw) > MaxParams {
		return nil, fmt.Errorf("params are %d bytes, over the %d limit", len(raw), MaxParams)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return []byte("null"), nil
	}
	if !utf8.Valid(raw) {
		return nil, errors.New("params are not valid UTF-8")
	}
	p := canonParsers.Get().(*canonParser)
	defer p.release()
	p.in, p.pos, p.out = raw, 0, make([]byte, 0, len(raw))
	p.space()
	if err := p.value(0); err != nil {
		return nil, fmt.Errorf("params: %w", err)
	}
	if p.space(); p.pos < len(p.in) {
		return nil, errors.New("params: trailing data after the JSON value")
	}
	return p.out, nil
}

// Verifier checks authenticated requests: the app's key, the MAC, the timestamp window and
// the nonce. Safe for concurrent use.
type Verifier struct {
	store  *Store
	window time.Duration
	now    func() time.Time
	start  time.Time

	maxNonces int // per app (MaxNoncesPerApp)

	mu   sync.Mutex
	seen map[string]map[string]time.Time // app → nonce → when it may be forgotten
}

// NewVerifier checks requests against store with a ±window timestamp window (DefaultWindow
// if 0). Requests stamped before the verifier was made are refused too, so that a request
// captured before a daemon restart (whose nonce the new process never saw) cannot be
// replayed after it.
func NewVerifier(store *Store, window time.Duration, now func() time.Time) *Verifier {
	if window <= 0 {
		window = DefaultWindow
	}
	if now == nil {
		now = time.Now
	}
	return &Verifier{store: store, window: window, now: now, start: now().Truncate(time.Millisecond),
		maxNonces: MaxNoncesPerApp, seen: map[string]map[string]time.Time{}}
}

func validNonce(n string) bool {
	if len(n) < minNonce || len(n) > maxNonce {
		return false
	}
	for _, c := range []byte(n) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Check authenticates one request for method with its raw params (the JSON value after
// the auth object). It returns the app on success.
func (v *Verifier) Check(method string, params json.RawMessage, a Auth) (App, error) {
	if a.App == "" || a.Key < 1 || a.MAC == "" {
		return App{}, ErrAuth
	}
	if !validNonce(a.Nonce) {
		return App{}, fmt.Errorf("%w: nonce must have %d to %d characters of A-Z a-z 0-9 _ -", ErrAuth, minNonce, maxNonce)
	}
	app, secret, err := v.store.secret(a.App, a.Key)
	if err != nil {
		return App{}, err
	}
	c, err := Canonical(params)
	if err != nil {
		return App{}, fmt.Errorf("%w: %w", ErrAuth, err)
	}
	want := macSum(secret, method, c, a.Nonce, a.TS)
	var gotB [sha256.Size]byte
	got, err := hex.AppendDecode(gotB[:0], []byte(a.MAC))
	if err != nil || !hmac.Equal(got, want) {
		return App{}, ErrBadMAC
	}
	now := v.now()
	ts := time.UnixMilli(a.TS)
	if ts.Before(now.Add(-v.window)) || ts.After(now.Add(v.window)) {
		return App{}, fmt.Errorf("%w (±%s; request %s, daemon %s)", ErrStale, v.window, ts.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if ts.Before(v.start) {
		return App{}, fmt.Errorf("%w (stamped before the daemon started)", ErrStale)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	seen := v.seen[a.App]
	if seen == nil {
		seen = map[string]time.Time{}
		v.seen[a.App] = seen
	}
	if until, ok := seen[a.Nonce]; ok && now.Before(until) {
		return App{}, ErrReplay
	}
	if len(seen) >= v.maxNonces/2 {
		for k, until := range seen {
			if !now.Before(until) {
				delete(seen, k)
			}
		}
		if len(seen) >= v.maxNonces {
			return App{}, fmt.Errorf("%w: app %s sent more than %d requests within %s; slow down", ErrTooMany, a.App, v.maxNonces, 2*v.window)
		}
	}
	// Remember the nonce until its timestamp leaves the window.
	seen[a.Nonce] = ts.Add(v.window + time.Millisecond)
	return app, nil
}
