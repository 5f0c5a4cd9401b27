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
	"io"
	"slices"
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
	m := hmac.New(sha256.New, key)
	m.Write(MACInput(method, c, nonce, ts))
	return hex.EncodeToString(m.Sum(nil)), nil
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
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var out bytes.Buffer
	if err := canonValue(dec, &out, 0); err != nil {
		return nil, fmt.Errorf("params: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("params: trailing data after the JSON value")
	}
	return out.Bytes(), nil
}

func canonValue(dec *json.Decoder, out *bytes.Buffer, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("nested deeper than %d", maxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '[':
			out.WriteByte('[')
			for i := 0; dec.More(); i++ {
				if i > 0 {
					out.WriteByte(',')
				}
				if err := canonValue(dec, out, depth+1); err != nil {
					return err
				}
			}
			out.WriteByte(']')
		case '{':
			type member struct {
				name string
				val  []byte
			}
			var ms []member
			for dec.More() {
				nt, err := dec.Token()
				if err != nil {
					return err
				}
				name, ok := nt.(string)
				if !ok {
					return errors.New("object member name is not a string")
				}
				var v bytes.Buffer
				if err := canonValue(dec, &v, depth+1); err != nil {
					return err
				}
				ms = append(ms, member{name, v.Bytes()})
			}
			slices.SortFunc(ms, func(a, b member) int { return bytes.Compare([]byte(a.name), []byte(b.name)) })
			out.WriteByte('{')
			for i, m := range ms {
				if i > 0 {
					if ms[i-1].name == m.name {
						return fmt.Errorf("duplicate member %q", m.name)
					}
					out.WriteByte(',')
				}
				canonString(out, m.name)
				out.WriteByte(':')
				out.Write(m.val)
			}
			out.WriteByte('}')
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return err
		}
	case string:
		canonString(out, t)
	case json.Number:
		out.WriteString(t.String())
	case bool:
		out.WriteString(strconv.FormatBool(t))
	case nil:
		out.WriteString("null")
	}
	return nil
}

func canonString(out *bytes.Buffer, s string) {
	const hexd = "0123456789abcdef"
	out.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			out.WriteByte('\\')
			out.WriteByte(c)
		case c == '\b':
			out.WriteString(`\b`)
		case c == '\f':
			out.WriteString(`\f`)
		case c == '\n':
			out.WriteString(`\n`)
		case c == '\r':
			out.WriteString(`\r`)
		case c == '\t':
			out.WriteString(`\t`)
		case c < 0x20:
			out.WriteString(`\u00`)
			out.WriteByte(hexd[c>>4])
			out.WriteByte(hexd[c&0xf])
		default:
			out.WriteByte(c)
		}
	}
	out.WriteByte('"')
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
	want, err := MAC(secret, method, params, a.Nonce, a.TS)
	if err != nil {
		return App{}, fmt.Errorf("%w: %w", ErrAuth, err)
	}
	got, err := hex.DecodeString(a.MAC)
	wantB, _ := hex.DecodeString(want)
	if err != nil || !hmac.Equal(got, wantB) {
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
