package keys

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// UnmarshalJSON decodes an auth object exactly as encoding/json's reflection would decode
// it into Auth (member names matched case-insensitively as bytes.EqualFold does, the last
// of duplicate members wins, unknown members and nulls ignored, strings unescaped with
// U+FFFD for invalid UTF-8 and lone surrogates, integers only in range); any input it
// would refuse is refused.
//
// Hand-written: the daemon decodes one per request, and reflection (cached field lookups
// in a sync.Map, the first calls that grow the request goroutine's stack) was ≈10% of a
// read call's CPU. encoding/json hands UnmarshalJSON only syntactically valid JSON (it
// checks the whole input first), which this parser relies on; FuzzAuthUnmarshal holds it
// to the reflection decoder.
func (a *Auth) UnmarshalJSON(b []byte) error {
	p := authParser{in: b}
	p.space()
	if bytes.HasPrefix(p.in[p.pos:], []byte("null")) {
		return nil
	}
	if p.pos >= len(p.in) || p.in[p.pos] != '{' {
		return errors.New("json: cannot unmarshal non-object into Go value of type keys.Auth")
	}
	p.pos++
	var typeErr error
	for {
		p.space()
		if p.in[p.pos] == '}' {
			break
		}
		if p.in[p.pos] == ',' {
			p.pos++
			p.space()
		}
		name := p.str()
		p.space()
		p.pos++ // :
		p.space()
		if err := a.member(&p, name); err != nil && typeErr == nil {
			typeErr = err
		}
	}
	return typeErr
}

// member decodes the value at p into the field named name, or skips it.
func (a *Auth) member(p *authParser, name []byte) error {
	var field string
	for _, f := range [...]string{"app", "key", "nonce", "ts", "mac"} {
		if bytes.EqualFold(name, []byte(f)) {
			field = f
			break
		}
	}
	c := p.in[p.pos]
	switch {
	case field == "" || c == 'n':
		p.skip()
		return nil
	case field == "app" || field == "nonce" || field == "mac":
		if c != '"' {
			p.skip()
			return fmt.Errorf("json: cannot unmarshal a non-string into Auth.%s", field)
		}
		s := string(p.str())
		switch field {
		case "app":
			a.App = s
		case "nonce":
			a.Nonce = s
		default:
			a.MAC = s
		}
		return nil
	}
	// key (int) or ts (int64)
	if c != '-' && (c < '0' || c > '9') {
		p.skip()
		return fmt.Errorf("json: cannot unmarshal a non-number into Auth.%s", field)
	}
	num := p.skip()
	bits := 64
	if field == "key" {
		bits = strconv.IntSize
	}
	n, err := strconv.ParseInt(string(num), 10, bits)
	if err != nil {
		return fmt.Errorf("json: cannot unmarshal number %s into Auth.%s", num, field)
	}
	if field == "key" {
		a.Key = int(n)
	} else {
		a.TS = n
	}
	return nil
}

// authParser walks valid JSON.
type authParser struct {
	in  []byte
	pos int
}

func (p *authParser) space() {
	for p.pos < len(p.in) && (p.in[p.pos] == ' ' || p.in[p.pos] == '\t' || p.in[p.pos] == '\n' || p.in[p.pos] == '\r') {
		p.pos++
	}
}

// skip passes over the value at p.pos and returns its bytes.
func (p *authParser) skip() []byte {
	start, depth := p.pos, 0
	for p.pos < len(p.in) {
		switch c := p.in[p.pos]; c {
		case '"':
			p.str()
			if depth == 0 {
				return p.in[start:p.pos]
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return p.in[start:p.pos]
			}
			depth--
			if depth == 0 {
				p.pos++
				return p.in[start:p.pos]
			}
		case ',':
			if depth == 0 {
				return p.in[start:p.pos]
			}
		case ' ', '\t', '\n', '\r':
			if depth == 0 {
				return p.in[start:p.pos]
			}
		}
		p.pos++
	}
	return p.in[start:p.pos]
}

// str decodes the string at p.pos (its opening quote) as encoding/json does.
func (p *authParser) str() []byte {
	p.pos++
	// Fast path: no escapes and only ASCII, the string is its bytes.
	for i := p.pos; i < len(p.in); i++ {
		if c := p.in[i]; c == '"' {
			out := p.in[p.pos:i]
			p.pos = i + 1
			return out
		} else if c == '\\' || c >= utf8.RuneSelf {
			break
		}
	}
	var out []byte
	for {
		i := p.pos
		for i < len(p.in) && p.in[i] != '"' && p.in[i] != '\\' && p.in[i] < utf8.RuneSelf {
			i++
		}
		out = append(out, p.in[p.pos:i]...)
		p.pos = i
		switch c := p.in[p.pos]; {
		case c == '"':
			p.pos++
			return out
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(p.in[p.pos:])
			if r == utf8.RuneError && size == 1 {
				out = utf8.AppendRune(out, utf8.RuneError)
			} else {
				out = append(out, p.in[p.pos:p.pos+size]...)
			}
			p.pos += size
			continue
		}
		p.pos++ // backslash
		c := p.in[p.pos]
		p.pos++
		switch c {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hex4(p.in[p.pos:])
			p.pos += 4
			if utf16.IsSurrogate(r) {
				// A valid pair is one code point; anything else is U+FFFD, and what follows
				// is read on its own.
				d := utf8.RuneError
				if len(p.in) >= p.pos+6 && p.in[p.pos] == '\\' && p.in[p.pos+1] == 'u' {
					if d = utf16.DecodeRune(r, hex4(p.in[p.pos+2:])); d != utf8.RuneError {
						p.pos += 6
					}
				}
				r = d
			}
			out = utf8.AppendRune(out, r)
		default: // " \ /
			out = append(out, c)
		}
	}
}

// hex4 reads the 4 hex digits at the start of b (valid JSON has them).
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}
