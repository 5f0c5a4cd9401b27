package keys

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// canonParser is Canonical's parser: a recursive descent over valid UTF-8 that accepts
// exactly the JSON grammar (RFC 8259: white space is space, tab, LF and CR) and writes the
// canonical form to out. It decodes strings as encoding/json does: an escaped surrogate
// that is not half of a valid pair becomes U+FFFD.
type canonParser struct {
	in  []byte
	pos int
	out []byte
	// Scratch shared by nested objects: names holds decoded member names, ms the members
	// of the objects being parsed (a stack: an object uses ms[base:]), tmp the sorted
	// object while it is assembled.
	names []byte
	ms    []canonMember
	tmp   []byte
}

// canonMember is one object member: its decoded name names[n0:n1] and its canonical value
// out[v0:v1].
type canonMember struct{ n0, n1, v0, v1 int }

// canonParsers keeps parsers for their scratch buffers.
var canonParsers = sync.Pool{New: func() any { return new(canonParser) }}

// release returns p to canonParsers, keeping scratch of a bounded size only.
func (p *canonParser) release() {
	p.in, p.out = nil, nil
	if cap(p.names) > 64<<10 || cap(p.tmp) > 64<<10 || cap(p.ms) > 1024 {
		return
	}
	p.names, p.ms, p.tmp = p.names[:0], p.ms[:0], p.tmp[:0]
	canonParsers.Put(p)
}

var errCanonEOF = errors.New("unexpected end of JSON input")

func (p *canonParser) space() {
	for p.pos < len(p.in) {
		switch p.in[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *canonParser) syntax(what string) error {
	if p.pos >= len(p.in) {
		return errCanonEOF
	}
	return fmt.Errorf("invalid character %q %s (offset %d)", p.in[p.pos], what, p.pos)
}

// value parses one value at p.pos (white space before it already skipped); depth counts
// the containers around it.
func (p *canonParser) value(depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("nested deeper than %d", maxDepth)
	}
	if p.pos >= len(p.in) {
		return errCanonEOF
	}
	switch c := p.in[p.pos]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		s0 := len(p.names)
		if err := p.str(); err != nil {
			return err
		}
		p.out = appendCanonString(p.out, p.names[s0:])
		p.names = p.names[:s0]
		return nil
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	}
	return p.syntax("looking for beginning of value")
}

func (p *canonParser) literal(lit string) error {
	if !bytes.HasPrefix(p.in[p.pos:], []byte(lit)) {
		for i := 0; i < len(lit); i++ {
			if p.pos+i >= len(p.in) {
				return errCanonEOF
			}
			if p.in[p.pos+i] != lit[i] {
				p.pos += i
				return p.syntax("in literal " + lit)
			}
		}
	}
	p.pos += len(lit)
	p.out = append(p.out, lit...)
	return nil
}

// number copies a number as written after checking its grammar:
// -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
func (p *canonParser) number() error {
	start := p.pos
	digits := func() int {
		n := 0
		for p.pos < len(p.in) && p.in[p.pos] >= '0' && p.in[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	if p.in[p.pos] == '-' {
		p.pos++
	}
	switch {
	case p.pos >= len(p.in):
		return errCanonEOF
	case p.in[p.pos] == '0':
		p.pos++
	case p.in[p.pos] >= '1' && p.in[p.pos] <= '9':
		digits()
	default:
		return p.syntax("in numeric literal")
	}
	if p.pos < len(p.in) && p.in[p.pos] == '.' {
		p.pos++
		if digits() == 0 {
			return p.syntax("after decimal point in numeric literal")
		}
	}
	if p.pos < len(p.in) && (p.in[p.pos] == 'e' || p.in[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.in) && (p.in[p.pos] == '+' || p.in[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			return p.syntax("in exponent of numeric literal")
		}
	}
	p.out = append(p.out, p.in[start:p.pos]...)
	return nil
}

func (p *canonParser) array(depth int) error {
	p.pos++ // [
	p.out = append(p.out, '[')
	p.space()
	if p.pos < len(p.in) && p.in[p.pos] == ']' {
		p.pos++
		p.out = append(p.out, ']')
		return nil
	}
	for {
		if err := p.value(depth + 1); err != nil {
			return err
		}
		p.space()
		if p.pos >= len(p.in) {
			return errCanonEOF
		}
		switch p.in[p.pos] {
		case ',':
			p.pos++
			p.out = append(p.out, ',')
			p.space()
		case ']':
			p.pos++
			p.out = append(p.out, ']')
			return nil
		default:
			return p.syntax("after array element")
		}
	}
}

func (p *canonParser) object(depth int) error {
	p.pos++ // {
	start, base, n0 := len(p.out), len(p.ms), len(p.names)
	err := p.members(depth)
	if err == nil {
		err = p.sortMembers(start, base)
	}
	p.ms, p.names = p.ms[:base], p.names[:n0]
	return err
}

// members parses an object's members after its '{' up to and including its '}', noting
// each in p.ms with its value in p.out.
func (p *canonParser) members(depth int) error {
	p.space()
	if p.pos < len(p.in) && p.in[p.pos] == '}' {
		p.pos++
		return nil
	}
	for {
		if p.pos >= len(p.in) {
			return errCanonEOF
		}
		if p.in[p.pos] != '"' {
			return p.syntax("looking for beginning of object key string")
		}
		m := canonMember{n0: len(p.names)}
		if err := p.str(); err != nil {
			return err
		}
		m.n1 = len(p.names)
		p.space()
		if p.pos >= len(p.in) {
			return errCanonEOF
		}
		if p.in[p.pos] != ':' {
			return p.syntax("after object key")
		}
		p.pos++
		p.space()
		m.v0 = len(p.out)
		if err := p.value(depth + 1); err != nil {
			return err
		}
		m.v1 = len(p.out)
		p.ms = append(p.ms, m)
		p.space()
		if p.pos >= len(p.in) {
			return errCanonEOF
		}
		switch p.in[p.pos] {
		case ',':
			p.pos++
			p.space()
			continue
		case '}':
			p.pos++
		default:
			return p.syntax("after object key:value pair")
		}
		return nil
	}
}

// sortMembers replaces the object's members, written from out[start:], with its canonical
// form: members sorted by name, names unique.
func (p *canonParser) sortMembers(start, base int) error {
	ms := p.ms[base:]
	name := func(m canonMember) []byte { return p.names[m.n0:m.n1] }
	slices.SortFunc(ms, func(a, b canonMember) int { return bytes.Compare(name(a), name(b)) })
	t := append(p.tmp[:0], '{')
	for i, m := range ms {
		if i > 0 {
			if bytes.Equal(name(ms[i-1]), name(m)) {
				return fmt.Errorf("duplicate member %q", name(m))
			}
			t = append(t, ',')
		}
		t = appendCanonString(t, name(m))
		t = append(t, ':')
		t = append(t, p.out[m.v0:m.v1]...)
	}
	t = append(t, '}')
	p.out = append(p.out[:start], t...)
	p.tmp = t
	return nil
}

// str decodes the string at p.pos (its opening quote) onto p.names.
func (p *canonParser) str() error {
	p.pos++ // "
	for {
		// Copy the run up to the next quote, backslash or control character.
		i := p.pos
		for i < len(p.in) && p.in[i] != '"' && p.in[i] != '\\' && p.in[i] >= 0x20 {
			i++
		}
		p.names = append(p.names, p.in[p.pos:i]...)
		p.pos = i
		if p.pos >= len(p.in) {
			return errCanonEOF
		}
		switch c := p.in[p.pos]; {
		case c == '"':
			p.pos++
			return nil
		case c < 0x20:
			return p.syntax("in string literal")
		}
		// An escape.
		p.pos++
		if p.pos >= len(p.in) {
			return errCanonEOF
		}
		switch c := p.in[p.pos]; c {
		case '"', '\\', '/':
			p.names = append(p.names, c)
			p.pos++
		case 'b':
			p.names = append(p.names, '\b')
			p.pos++
		case 'f':
			p.names = append(p.names, '\f')
			p.pos++
		case 'n':
			p.names = append(p.names, '\n')
			p.pos++
		case 'r':
			p.names = append(p.names, '\r')
			p.pos++
		case 't':
			p.names = append(p.names, '\t')
			p.pos++
		case 'u':
			p.pos++
			r, err := p.hex4()
			if err != nil {
				return err
			}
			if utf16.IsSurrogate(r) {
				// As encoding/json: a valid pair is one code point; anything else is U+FFFD
				// and what follows is read on its own.
				if p.pos+1 < len(p.in) && p.in[p.pos] == '\\' && p.in[p.pos+1] == 'u' {
					save := p.pos
					p.pos += 2
					r2, err := p.hex4()
					if err != nil {
						return err
					}
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r = d
					} else {
						r = utf8.RuneError
						p.pos = save
					}
				} else {
					r = utf8.RuneError
				}
			}
			p.names = utf8.AppendRune(p.names, r)
		default:
			return p.syntax("in string escape code")
		}
	}
}

func (p *canonParser) hex4() (rune, error) {
	var r rune
	for range 4 {
		if p.pos >= len(p.in) {
			return 0, errCanonEOF
		}
		c := p.in[p.pos]
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, p.syntax("in \\u hexadecimal character escape")
		}
		r = r<<4 | rune(c)
		p.pos++
	}
	return r, nil
}

// appendCanonString appends the canonical JSON string of the UTF-8 bytes s.
func appendCanonString(out, s []byte) []byte {
	const hexd = "0123456789abcdef"
	out = append(out, '"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			out = append(out, '\\', c)
		case c == '\b':
			out = append(out, `\b`...)
		case c == '\f':
			out = append(out, `\f`...)
		case c == '\n':
			out = append(out, `\n`...)
		case c == '\r':
			out = append(out, `\r`...)
		case c == '\t':
			out = append(out, `\t`...)
		case c < 0x20:
			out = append(out, '\\', 'u', '0', '0', hexd[c>>4], hexd[c&0xf])
		default:
			out = append(out, c)
		}
	}
	return append(out, '"')
}
