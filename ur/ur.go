package ur

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrUR: the text is not a UR (scheme, type, path or sequence malformed).
var ErrUR = errors.New("invalid UR")

// MaxPartLen is the longest UR text a decoder reads (a QR code holds at most 4296
// alphanumeric characters).
const MaxPartLen = 8 << 10

// UR is a uniform resource: a registered type and its CBOR.
type UR struct {
	Type string
	CBOR []byte
}

// validType: lower-case letters, digits and hyphens (BCR-2020-005).
func validType(t string) bool {
	if t == "" {
		return false
	}
	for _, c := range t {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// String is the single-part UR: ur:TYPE/BYTEWORDS.
func (u UR) String() string {
	return "ur:" + u.Type + "/" + EncodeBytewords(Minimal, u.CBOR)
}

// Encoder yields the parts of a UR: the single-part UR again and again when it fits in one
// fragment, else fountain-coded parts ur:TYPE/SEQ-LEN/BYTEWORDS without end.
type Encoder struct {
	ur UR
	f  *FountainEncoder
}

// NewEncoder encodes u in fragments of at most maxFragmentLen bytes of CBOR
// (DefaultMaxFragmentLen when 0).
func NewEncoder(u UR, maxFragmentLen int) (*Encoder, error) {
	if !validType(u.Type) {
		return nil, fmt.Errorf("%w: type %q", ErrUR, u.Type)
	}
	if maxFragmentLen == 0 {
		maxFragmentLen = DefaultMaxFragmentLen
	}
	f, err := NewFountainEncoder(u.CBOR, maxFragmentLen, min(DefaultMinFragmentLen, maxFragmentLen), 0)
	if err != nil {
		return nil, err
	}
	return &Encoder{ur: u, f: f}, nil
}

// SeqLen is the number of fragments (1: a single-part UR).
func (e *Encoder) SeqLen() int { return e.f.SeqLen() }

// NextPart is the next UR text.
func (e *Encoder) NextPart() string {
	p := e.f.NextPart()
	if e.f.SeqLen() == 1 {
		return e.ur.String()
	}
	return fmt.Sprintf("ur:%s/%d-%d/%s", e.ur.Type, p.SeqNum, p.SeqLen, EncodeBytewords(Minimal, p.CBOR()))
}

// Parts is the first n parts.
func (e *Encoder) Parts(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = e.NextPart()
	}
	return out
}

// parse splits a UR into its type and path components (lower-cased).
func parse(s string) (string, []string, error) {
	if len(s) > MaxPartLen {
		return "", nil, fmt.Errorf("%w: %d characters (at most %d)", ErrUR, len(s), MaxPartLen)
	}
	s = strings.ToLower(strings.TrimSpace(s))
	rest, ok := strings.CutPrefix(s, "ur:")
	if !ok {
		return "", nil, fmt.Errorf("%w: no ur: scheme", ErrUR)
	}
	comps := strings.Split(rest, "/")
	if len(comps) < 2 || len(comps) > 3 {
		return "", nil, fmt.Errorf("%w: want ur:TYPE/BODY or ur:TYPE/SEQ-LEN/BODY", ErrUR)
	}
	if !validType(comps[0]) {
		return "", nil, fmt.Errorf("%w: type %q", ErrUR, comps[0])
	}
	return comps[0], comps[1:], nil
}

// Parse reads a single-part UR.
func Parse(s string) (UR, error) {
	typ, comps, err := parse(s)
	if err != nil {
		return UR{}, err
	}
	if len(comps) != 1 {
		return UR{}, fmt.Errorf("%w: a part of a multi-part UR: collect all its parts with a Decoder", ErrUR)
	}
	b, err := DecodeBytewords(Minimal, comps[0])
	if err != nil {
		return UR{}, fmt.Errorf("%w: %w", ErrUR, err)
	}
	return UR{Type: typ, CBOR: b}, nil
}

// parseSeq reads SEQ-LEN.
func parseSeq(s string) (uint32, uint32, error) {
	a, b, ok := strings.Cut(s, "-")
	n, err1 := strconv.ParseUint(a, 10, 32)
	l, err2 := strconv.ParseUint(b, 10, 32)
	if !ok || err1 != nil || err2 != nil || n < 1 || l < 1 {
		return 0, 0, fmt.Errorf("%w: sequence %q", ErrUR, s)
	}
	return uint32(n), uint32(l), nil
}

// Decoder collects the parts of one UR in any order, with losses and repeats.
type Decoder struct {
	typ    string
	f      *FountainDecoder
	result *UR
	err    error
}

// NewDecoder is an empty decoder.
func NewDecoder() *Decoder { return &Decoder{f: NewFountainDecoder()} }

// Receive adds one part (a single-part UR completes the decoder at once). A malformed part,
// or one of another UR type or message, is refused with an error and leaves the decoder as
// it was.
func (d *Decoder) Receive(s string) error {
	if d.Done() {
		return nil
	}
	typ, comps, err := parse(s)
	if err != nil {
		return err
	}
	if d.typ != "" && typ != d.typ {
		return fmt.Errorf("%w: a %s part among %s parts", ErrPart, typ, d.typ)
	}
	if len(comps) == 1 {
		u, err := Parse(s)
		if err != nil {
			return err
		}
		d.typ, d.result = typ, &u
		return nil
	}
	n, l, err := parseSeq(comps[0])
	if err != nil {
		return err
	}
	b, err := DecodeBytewords(Minimal, comps[1])
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPart, err)
	}
	p, err := ParsePart(b)
	if err != nil {
		return err
	}
	if p.SeqNum != n || p.SeqLen != l {
		return fmt.Errorf("%w: the text says part %d-%d, its body %d-%d", ErrPart, n, l, p.SeqNum, p.SeqLen)
	}
	if err := d.f.Receive(p); err != nil {
		return err
	}
	d.typ = typ
	if msg, err := d.f.Result(); err != nil {
		d.err = err
	} else if msg != nil {
		d.result = &UR{Type: typ, CBOR: msg}
	}
	return nil
}

// Done says whether the UR is complete (or failed its checksum).
func (d *Decoder) Done() bool { return d.result != nil || d.err != nil }

// Result is the UR once Done.
func (d *Decoder) Result() (UR, error) {
	switch {
	case d.err != nil:
		return UR{}, d.err
	case d.result == nil:
		have, want := d.f.Progress()
		return UR{}, fmt.Errorf("%w: incomplete: %d of %d fragments recovered from %d parts; scan more parts", ErrPart, have, want, d.f.Received())
	}
	return *d.result, nil
}

// Progress is how many fragments are recovered and how many the message has (1, 1 once
// a single-part UR or the whole message is in).
func (d *Decoder) Progress() (have, want int) {
	if d.result != nil {
		return 1, 1
	}
	return d.f.Progress()
}
