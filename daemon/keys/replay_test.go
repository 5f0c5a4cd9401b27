package keys

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestCanonical(t *testing.T) {
	tests := []struct{ in, want string }{
		{``, `null`},
		{` null `, `null`},
		{`{"b":1,"a":[true,false,null]}`, `{"a":[true,false,null],"b":1}`},
		{"{\n  \"z\" : { \"y\":2, \"x\":1 },\n \"A\":\"\" }", `{"A":"","z":{"x":1,"y":2}}`},
		{`{"n":1.50,"e":1E+3,"m":-0}`, `{"e":1E+3,"m":-0,"n":1.50}`}, // numbers as written
		{`"\u0041\u00e9\ud83d\ude00"`, `"Aé😀"`},                      // escapes decoded, raw UTF-8 out
		{`"a\"b\\c\/d\n\t\r\b\f\u0001\u001f"`, `"a\"b\\c/d\n\t\r\b\f\u0001\u001f"`},
		{`"<&>"`, `"<&>"`}, // no HTML escaping
		{`{"é":1,"z":2,"Z":3}`, `{"Z":3,"z":2,"é":1}`},
		{`[]`, `[]`},
		{`{}`, `{}`},
	}
	for _, tt := range tests {
		got, err := Canonical([]byte(tt.in))
		if err != nil || string(got) != tt.want {
			t.Errorf("Canonical(%s) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{`{"a":1,"a":2}`, `{"a":1} x`, `{`, `[1,]`, "\"\xff\"", `{"a":}`} {
		if got, err := Canonical([]byte(bad)); err == nil {
			t.Errorf("Canonical(%q) = %s, want an error", bad, got)
		}
	}
}

// TestMACVector pins the MAC input and value: a client in another language must produce
// exactly these (the value was checked with Python's hmac module).
func TestMACVector(t *testing.T) {
	key := "hwbk1.0a1b2c3d4e.1.AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
	params := json.RawMessage(`{ "path": "m/84'/0'/0'", "network": "regtest" }`)
	c, _ := Canonical(params)
	in := MACInput("hwbridge_v1Xpub", c, "00112233445566778899aabbccddeeff", 1800000000123)
	wantIn := "hwbridge-v1\nhwbridge_v1Xpub\n{\"network\":\"regtest\",\"path\":\"m/84'/0'/0'\"}\n00112233445566778899aabbccddeeff\n1800000000123"
	if string(in) != wantIn {
		t.Fatalf("MAC input %q", in)
	}
	mac, err := MAC([]byte(key), "hwbridge_v1Xpub", params, "00112233445566778899aabbccddeeff", 1800000000123)
	if err != nil {
		t.Fatal(err)
	}
	const want = "99b3fa0ee0d62e205e8ec9888a3ead2cc8c1adeb953ac2e53bc898053a714c3f"
	if mac != want {
		t.Logf("MAC = %s (update the vector only if the documented encoding changed)", mac)
		t.Fatal("MAC vector changed")
	}
}

func TestVerifier(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	s, _ := newStore(t, c)
	app, key := pair(t, s, PairRequest{Name: "w", Scopes: []Scope{ScopeRead}}, nil)
	v := NewVerifier(s, time.Minute, c.now)
	params := json.RawMessage(`{"path":"m/84'/0'/0'"}`)
	method := "hwbridge_v1Xpub"
	c.add(time.Second)

	good, _ := Sign(key, method, params, c.now())
	if got, err := v.Check(method, params, good); err != nil || got.ID != app.ID {
		t.Fatalf("good request: %v", err)
	}
	// The same request again.
	if _, err := v.Check(method, params, good); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: %v", err)
	}
	// Whitespace and member order do not matter.
	a, _ := Sign(key, method, params, c.now())
	if _, err := v.Check(method, json.RawMessage(" {\n\"path\" : \"m/84'/0'/0'\"}"), a); err != nil {
		t.Fatalf("re-spaced params: %v", err)
	}

	tests := []struct {
		name   string
		mutate func(a *Auth, method *string, params *json.RawMessage)
		want   error
	}{
		{"other params", func(a *Auth, m *string, p *json.RawMessage) { *p = json.RawMessage(`{"path":"m/84'/0'/1'"}`) }, ErrBadMAC},
		{"other method", func(a *Auth, m *string, p *json.RawMessage) { *m = "hwbridge_v1SignPsbt" }, ErrBadMAC},
		{"other nonce", func(a *Auth, m *string, p *json.RawMessage) { a.Nonce = "ffffffffffffffffffffffffffffffff" }, ErrBadMAC},
		{"other ts", func(a *Auth, m *string, p *json.RawMessage) { a.TS++ }, ErrBadMAC},
		{"bad mac hex", func(a *Auth, m *string, p *json.RawMessage) { a.MAC = "zz" }, ErrBadMAC},
		{"short nonce", func(a *Auth, m *string, p *json.RawMessage) { a.Nonce = "abc" }, ErrAuth},
		{"no app", func(a *Auth, m *string, p *json.RawMessage) { a.App = "" }, ErrAuth},
		{"unknown app", func(a *Auth, m *string, p *json.RawMessage) { a.App = "ffffffffff" }, ErrUnknownApp},
		{"unknown key version", func(a *Auth, m *string, p *json.RawMessage) { a.Key = 7 }, ErrKeyExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := Sign(key, method, params, c.now())
			m, p := method, params
			tt.mutate(&a, &m, &p)
			if _, err := v.Check(m, p, a); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}

	for _, skew := range []time.Duration{-61 * time.Second, 61 * time.Second} {
		a, _ := Sign(key, method, params, c.now().Add(skew))
		if _, err := v.Check(method, params, a); !errors.Is(err, ErrStale) {
			t.Errorf("skew %v: %v", skew, err)
		}
	}
	// Stamped before the verifier started (a request captured before a restart).
	a, _ = Sign(key, method, params, c.now().Add(-2*time.Second))
	if _, err := v.Check(method, params, a); !errors.Is(err, ErrStale) {
		t.Errorf("before start: %v", err)
	}
	// A nonce is remembered while its timestamp is in the window, then the timestamp
	// check alone refuses the request.
	c.add(2 * time.Minute)
	if _, err := v.Check(method, params, good); !errors.Is(err, ErrStale) {
		t.Fatalf("old replay: %v", err)
	}
	s.Revoke(app.ID)
	a, _ = Sign(key, method, params, c.now())
	if _, err := v.Check(method, params, a); !errors.Is(err, ErrRevoked) {
		t.Fatalf("revoked: %v", err)
	}
}

func FuzzCanonical(f *testing.F) {
	for _, s := range []string{`{"b":1,"a":[true,false,null]}`, `"\u00e9\n"`, `[1.5e3,-0,{"x":{}}]`, `{"a":"<&>"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := Canonical(in)
		if err != nil {
			return
		}
		if !json.Valid(c) {
			t.Fatalf("canonical form %q is not JSON", c)
		}
		c2, err := Canonical(c)
		if err != nil || string(c2) != string(c) {
			t.Fatalf("not idempotent: %q -> %q (%v)", c, c2, err)
		}
	})
}

// TestNoncesPerApp: an app that fills its nonce memory is told to slow down; another app
// goes on, and the first one recovers once its nonces leave the window.
func TestNoncesPerApp(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	s, _ := newStore(t, c)
	_, greedy := pair(t, s, PairRequest{Name: "greedy", Scopes: []Scope{ScopeRead}}, nil)
	_, other := pair(t, s, PairRequest{Name: "other", Scopes: []Scope{ScopeRead}}, nil)
	v := NewVerifier(s, time.Minute, c.now)
	v.maxNonces = 64
	c.add(time.Second)
	method, params := "hwbridge_v1Devices", json.RawMessage(`{}`)
	check := func(key string) error {
		a, err := Sign(key, method, params, c.now())
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Check(method, params, a)
		return err
	}
	for i := range 64 {
		if err := check(greedy); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if err := check(greedy); !errors.Is(err, ErrTooMany) {
		t.Fatalf("65th request: %v", err)
	}
	for i := range 64 {
		if err := check(other); err != nil {
			t.Fatalf("other app, request %d: %v", i, err)
		}
	}
	c.add(2*time.Minute + time.Second)
	if err := check(greedy); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}
