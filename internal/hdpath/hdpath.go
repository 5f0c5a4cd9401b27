// Package hdpath parses and prints BIP-32 derivation paths ("m/84'/0'/0'/0/5").
//
// Written by hand: hdkeychain has no path parser, and go-ethereum's accounts.ParseDerivationPath
// silently roots relative paths at m/44'/60'/0'/0, which is wrong for Bitcoin.
package hdpath

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Hardened is the BIP-32 hardened-index offset.
const Hardened uint32 = 0x80000000

// MaxDepth caps path length; BIP-32 allows 255 levels, no wallet uses more than a few.
const MaxDepth = 255

// ErrSyntax is wrapped by every parse error.
var ErrSyntax = errors.New("hdpath: invalid derivation path")

// Path is a list of child indexes from the master key.
type Path []uint32

// Parse reads "m/84'/0'/0'/0/0". Hardened steps take ', h or H. The leading "m" is optional;
// "m" alone is the master key.
func Parse(s string) (Path, error) {
	t := strings.TrimSpace(s)
	if t == "m" || t == "M" || t == "" {
		if t == "" {
			return nil, fmt.Errorf("%w: empty (use m/84'/0'/0'/0/0 or similar)", ErrSyntax)
		}
		return Path{}, nil
	}
	t = strings.TrimPrefix(strings.TrimPrefix(t, "m/"), "M/")
	parts := strings.Split(t, "/")
	if len(parts) > MaxDepth {
		return nil, fmt.Errorf("%w: %q has %d levels (max %d)", ErrSyntax, s, len(parts), MaxDepth)
	}
	p := make(Path, 0, len(parts))
	for _, part := range parts {
		hard := false
		if n := len(part); n > 0 && (part[n-1] == '\'' || part[n-1] == 'h' || part[n-1] == 'H') {
			hard, part = true, part[:n-1]
		}
		if part == "" || part[0] == '+' || part[0] == '-' {
			return nil, fmt.Errorf("%w: %q: bad step %q (use m/84'/0'/0'/0/0)", ErrSyntax, s, part)
		}
		v, err := strconv.ParseUint(part, 10, 32)
		if err != nil || uint32(v) >= Hardened {
			return nil, fmt.Errorf("%w: %q: step %q is not an index below 2^31", ErrSyntax, s, part)
		}
		if hard {
			v += uint64(Hardened)
		}
		p = append(p, uint32(v))
	}
	return p, nil
}

// MustParse is Parse for constants in code and tests; it panics on a bad path.
func MustParse(s string) Path {
	p, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return p
}

// String prints the path with ' for hardened steps.
func (p Path) String() string { return p.format("'") }

// StringH prints the path with h for hardened steps (safe in shells and JSON).
func (p Path) StringH() string { return p.format("h") }

func (p Path) format(mark string) string {
	var b strings.Builder
	b.WriteString("m")
	for _, v := range p {
		b.WriteByte('/')
		if v >= Hardened {
			b.WriteString(strconv.FormatUint(uint64(v-Hardened), 10))
			b.WriteString(mark)
		} else {
			b.WriteString(strconv.FormatUint(uint64(v), 10))
		}
	}
	return b.String()
}

// Child returns a copy of p extended by the given steps.
func (p Path) Child(steps ...uint32) Path {
	out := make(Path, 0, len(p)+len(steps))
	return append(append(out, p...), steps...)
}
