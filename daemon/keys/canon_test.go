package keys

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// canonicalReference is Canonical as it was first written, on encoding/json's Decoder.Token
// (UseNumber): the oracle that FuzzCanonicalReference holds the hand-written parser to.
func canonicalReference(raw []byte) ([]byte, error) {
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
	if err := refValue(dec, &out, 0); err != nil {
		return nil, fmt.Errorf("params: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("params: trailing data after the JSON value")
	}
	return out.Bytes(), nil
}

func refValue(dec *json.Decoder, out *bytes.Buffer, depth int) error {
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
				if err := refValue(dec, out, depth+1); err != nil {
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
				if err := refValue(dec, &v, depth+1); err != nil {
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
				refString(out, m.name)
				out.WriteByte(':')
				out.Write(m.val)
			}
			out.WriteByte('}')
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return err
		}
	case string:
		refString(out, t)
	case json.Number:
		out.WriteString(t.String())
	case bool:
		out.WriteString(strconv.FormatBool(t))
	case nil:
		out.WriteString("null")
	}
	return nil
}

func refString(out *bytes.Buffer, s string) {
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

// FuzzCanonicalReference: Canonical accepts exactly what the Token-based reference accepts
// and writes the same bytes (the MAC input must not change under a client).
func FuzzCanonicalReference(f *testing.F) {
	for _, s := range []string{`{"b":1,"a":[true,false,null]}`, `"\u00e9\n"`, `[1.5e3,-0,{"x":{}}]`, `{"a":"<&>"}`,
		`"\ud800\udc00\ud800x\udc00\ud800\u0041"`, `{"a":1,"\u0061":2}`, `[01]`, `1 2`, `[1,]`, `{"a" 1}`, ` \u00a0`,
		`-`, `1.`, `1e+`, `-0.0e-0`, `tru`, `nul`, `"\u00zz"`, "\"\x01\"", `[[[[]]]]`, `{"":{"":""}}`, `"\/"`} {
		f.Add([]byte(s))
	}
	f.Add(bytes.Repeat([]byte("["), 70))
	f.Add(append(bytes.Repeat([]byte("["), 65), bytes.Repeat([]byte("]"), 65)...))
	f.Add(append(bytes.Repeat([]byte("["), 66), bytes.Repeat([]byte("]"), 66)...))
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := Canonical(in)
		want, rerr := canonicalReference(in)
		if (err == nil) != (rerr == nil) || !bytes.Equal(got, want) {
			t.Fatalf("Canonical(%q) = %q, %v; the reference gives %q, %v", in, got, err, want, rerr)
		}
	})
}

// TestCanonicalDepth: 64 containers around a value are allowed, 65 are not (as the
// reference).
func TestCanonicalDepth(t *testing.T) {
	nest := func(n int, inner string) []byte {
		return []byte(strings.Repeat("[", n) + inner + strings.Repeat("]", n))
	}
	for _, tt := range []struct {
		in []byte
		ok bool
	}{{nest(64, "1"), true}, {nest(65, "1"), false}, {nest(65, ""), true}, {nest(66, ""), false}} {
		_, err := Canonical(tt.in)
		_, rerr := canonicalReference(tt.in)
		if (err == nil) != tt.ok || (rerr == nil) != tt.ok {
			t.Errorf("depth %d: %v (reference %v), want ok=%v", bytes.Count(tt.in, []byte("[")), err, rerr, tt.ok)
		}
	}
}

// BenchmarkCanonical: a v1SignMessage request's params, as the Go client marshals them.
func BenchmarkCanonical(b *testing.B) {
	raw := []byte(`{"device":"udp:127.0.0.1:21324","chain":"btc","path":"m/84'/0'/0'/0/0","message":"hwbridge 42"}`)
	b.Run("handwritten", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Canonical(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reference", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := canonicalReference(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}
