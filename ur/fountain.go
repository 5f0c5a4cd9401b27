package ur

import (
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/fxamacker/cbor/v2"
)

// Limits on what a decoder accepts from outside, so that a hostile part cannot make it
// allocate or compute without bound.
const (
	// MaxMessageLen is the largest message (the CBOR a multi-part UR carries) reassembled.
	MaxMessageLen = 8 << 20
	// MaxSeqLen is the most fragments a message may be cut into.
	MaxSeqLen = 10_000
)

var (
	// ErrPart: a fountain part is malformed or disagrees with the parts received before it.
	ErrPart = errors.New("invalid UR part")
	// ErrChecksum: the reassembled message does not match the checksum its parts carry.
	ErrChecksum = errors.New("UR message checksum mismatch")
)

// Part is one fountain-coded part: the message's length and CRC-32, how many fragments it
// was cut into, and this part's XOR of the fragments chooseFragments(SeqNum) names.
// Its CBOR is [seqNum, seqLen, messageLen, checksum, data].
type Part struct {
	_          struct{} `cbor:",toarray"`
	SeqNum     uint32
	SeqLen     uint32
	MessageLen uint32
	Checksum   uint32
	Data       []byte
}

var (
	encMode = func() cbor.EncMode {
		m, err := cbor.CoreDetEncOptions().EncMode()
		if err != nil {
			panic(err)
		}
		return m
	}()
	decMode = func() cbor.DecMode {
		m, err := cbor.DecOptions{
			DupMapKey:        cbor.DupMapKeyEnforcedAPF,
			IndefLength:      cbor.IndefLengthForbidden,
			MaxNestedLevels:  16,
			MaxArrayElements: 4096,
			MaxMapPairs:      64,
		}.DecMode()
		if err != nil {
			panic(err)
		}
		return m
	}()
)

// CBOR is the part's CBOR encoding.
func (p *Part) CBOR() []byte {
	b, err := encMode.Marshal(p)
	if err != nil {
		panic(err) // a fixed struct of integers and bytes always encodes
	}
	return b
}

// ParsePart decodes a part's CBOR and checks it is self-consistent.
func ParsePart(b []byte) (*Part, error) {
	var p Part
	if err := decMode.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPart, err)
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	return &p, nil
}

func (p *Part) check() error {
	switch {
	case p.SeqNum < 1 || p.SeqLen < 1:
		return fmt.Errorf("%w: sequence %d-%d", ErrPart, p.SeqNum, p.SeqLen)
	case p.MessageLen < 1 || p.MessageLen > MaxMessageLen:
		return fmt.Errorf("%w: message length %d (at most %d)", ErrPart, p.MessageLen, MaxMessageLen)
	case p.SeqLen > MaxSeqLen:
		return fmt.Errorf("%w: %d fragments (at most %d)", ErrPart, p.SeqLen, MaxSeqLen)
	case len(p.Data) == 0 || int64(len(p.Data))*int64(p.SeqLen) < int64(p.MessageLen) ||
		int64(len(p.Data))*int64(p.SeqLen-1) >= int64(p.MessageLen):
		return fmt.Errorf("%w: %d fragments of %d bytes do not make a %d-byte message", ErrPart, p.SeqLen, len(p.Data), p.MessageLen)
	}
	return nil
}

// String is the reference implementation's description of a part (its test vectors).
func (p *Part) String() string {
	return fmt.Sprintf("seqNum:%d, seqLen:%d, messageLen:%d, checksum:%d, data:%x", p.SeqNum, p.SeqLen, p.MessageLen, p.Checksum, p.Data)
}

// fragmentLen is the reference's nominal fragment length: the smallest count of equal
// fragments, each at least minLen bytes, that fit in maxLen.
func fragmentLen(messageLen, minLen, maxLen int) int {
	n := messageLen
	for count := 1; count <= messageLen/minLen; count++ {
		n = int(math.Ceil(float64(messageLen) / float64(count)))
		if n <= maxLen {
			break
		}
	}
	return n
}

// partition cuts message into fragments of n bytes, the last one zero-padded.
func partition(message []byte, n int) [][]byte {
	var out [][]byte
	for len(message) > 0 {
		f := make([]byte, n)
		k := copy(f, message)
		message = message[k:]
		out = append(out, f)
	}
	return out
}

// FountainEncoder yields an endless stream of parts of one message: the first SeqLen ones
// are its fragments in order, the rest random mixes of them (any SeqLen-or-so of which
// usually suffice).
type FountainEncoder struct {
	messageLen int
	checksum   uint32
	fragments  [][]byte
	seqNum     uint32
}

// Default fragment sizes: small enough for a QR code a phone or a SafePal's camera reads
// reliably (version ~10 with bytewords in alphanumeric mode), as wallets commonly use.
const (
	DefaultMaxFragmentLen = 200
	DefaultMinFragmentLen = 10
)

// NewFountainEncoder cuts message into fragments of at most maxFragmentLen bytes (and, when
// it can, at least minFragmentLen); the first part is firstSeqNum+1.
func NewFountainEncoder(message []byte, maxFragmentLen, minFragmentLen int, firstSeqNum uint32) (*FountainEncoder, error) {
	switch {
	case len(message) == 0 || len(message) > MaxMessageLen:
		return nil, fmt.Errorf("ur: a message of %d bytes (1 to %d)", len(message), MaxMessageLen)
	case minFragmentLen < 1 || maxFragmentLen < minFragmentLen:
		return nil, fmt.Errorf("ur: fragment length %d..%d", minFragmentLen, maxFragmentLen)
	}
	n := fragmentLen(len(message), minFragmentLen, maxFragmentLen)
	e := &FountainEncoder{messageLen: len(message), checksum: crc32.ChecksumIEEE(message), fragments: partition(message, n), seqNum: firstSeqNum}
	if len(e.fragments) > MaxSeqLen {
		return nil, fmt.Errorf("ur: %d fragments is more than %d: raise the fragment length", len(e.fragments), MaxSeqLen)
	}
	return e, nil
}

// SeqLen is the number of fragments.
func (e *FountainEncoder) SeqLen() int { return len(e.fragments) }

// NextPart is the next part of the stream.
func (e *FountainEncoder) NextPart() *Part {
	e.seqNum++ // wraps at 2^32 as the reference's does
	mixed := make([]byte, len(e.fragments[0]))
	for _, i := range chooseFragments(e.seqNum, len(e.fragments), e.checksum) {
		xorInto(mixed, e.fragments[i])
	}
	return &Part{SeqNum: e.seqNum, SeqLen: uint32(len(e.fragments)), MessageLen: uint32(e.messageLen), Checksum: e.checksum, Data: mixed}
}

func xorInto(dst, src []byte) {
	for i := range dst {
		dst[i] ^= src[i]
	}
}

// decPart is a received part reduced to the fragments it still mixes.
type decPart struct {
	idx  []int // sorted
	data []byte
}

func (p decPart) key() string {
	var sb strings.Builder
	for _, i := range p.idx {
		sb.WriteString(strconv.Itoa(i))
		sb.WriteByte(',')
	}
	return sb.String()
}

// FountainDecoder reassembles a message from its parts in any order, with any of them
// missing, as long as enough arrive: pure fragments are kept, mixed parts are reduced by
// every fragment known (XOR) until they too become pure.
type FountainDecoder struct {
	first    *Part
	simple   map[int][]byte
	mixed    map[string]decPart
	queue    []decPart
	received int
	result   []byte
	err      error
}

// NewFountainDecoder is an empty decoder.
func NewFountainDecoder() *FountainDecoder {
	return &FountainDecoder{simple: map[int][]byte{}, mixed: map[string]decPart{}}
}

// Receive adds a part. A part of another message (other length, checksum or fragment
// count) is refused with ErrPart; parts after completion are ignored.
func (d *FountainDecoder) Receive(p *Part) error {
	if d.Done() {
		return nil
	}
	if err := p.check(); err != nil {
		return err
	}
	if d.first == nil {
		d.first = &Part{SeqLen: p.SeqLen, MessageLen: p.MessageLen, Checksum: p.Checksum, Data: make([]byte, len(p.Data))}
	} else if f := d.first; p.SeqLen != f.SeqLen || p.MessageLen != f.MessageLen || p.Checksum != f.Checksum || len(p.Data) != len(f.Data) {
		return fmt.Errorf("%w: part %d belongs to another message (%d bytes in %d fragments, checksum %08x; this one is %d bytes in %d, checksum %08x)",
			ErrPart, p.SeqNum, p.MessageLen, p.SeqLen, p.Checksum, f.MessageLen, f.SeqLen, f.Checksum)
	}
	d.queue = append(d.queue, decPart{idx: chooseFragments(p.SeqNum, int(p.SeqLen), p.Checksum), data: slices.Clone(p.Data)})
	for !d.Done() && len(d.queue) > 0 {
		q := d.queue[0]
		d.queue = d.queue[1:]
		if len(q.idx) == 1 {
			d.simplePart(q)
		} else {
			d.mixedPart(q)
		}
	}
	d.received++
	return nil
}

// reduce is a with b's fragments taken out when b's are a proper subset of a's.
func reduce(a, b decPart) decPart {
	if len(b.idx) >= len(a.idx) {
		return a
	}
	for _, i := range b.idx {
		if _, ok := slices.BinarySearch(a.idx, i); !ok {
			return a
		}
	}
	var idx []int
	for _, i := range a.idx {
		if _, ok := slices.BinarySearch(b.idx, i); !ok {
			idx = append(idx, i)
		}
	}
	data := slices.Clone(a.data)
	xorInto(data, b.data)
	return decPart{idx: idx, data: data}
}

func (d *FountainDecoder) simplePart(p decPart) {
	i := p.idx[0]
	if _, ok := d.simple[i]; ok {
		return
	}
	d.simple[i] = p.data
	if len(d.simple) == int(d.first.SeqLen) {
		msg := make([]byte, 0, int(d.first.SeqLen)*len(d.first.Data))
		for k := 0; k < int(d.first.SeqLen); k++ {
			msg = append(msg, d.simple[k]...)
		}
		msg = msg[:d.first.MessageLen]
		if crc32.ChecksumIEEE(msg) != d.first.Checksum {
			d.err = ErrChecksum
			return
		}
		d.result = msg
		return
	}
	d.reduceMixedBy(p)
}

func (d *FountainDecoder) reduceMixedBy(p decPart) {
	next := make(map[string]decPart, len(d.mixed))
	for _, m := range d.mixed {
		r := reduce(m, p)
		if len(r.idx) == 1 {
			d.queue = append(d.queue, r)
		} else {
			next[r.key()] = r
		}
	}
	d.mixed = next
}

func (d *FountainDecoder) mixedPart(p decPart) {
	if _, dup := d.mixed[p.key()]; dup {
		return
	}
	for _, i := range p.idx {
		if f, ok := d.simple[i]; ok && len(p.idx) > 1 {
			p = reduce(p, decPart{idx: []int{i}, data: f})
		}
	}
	for _, m := range d.mixed {
		p = reduce(p, m)
	}
	if len(p.idx) == 1 {
		d.queue = append(d.queue, p)
		return
	}
	d.reduceMixedBy(p)
	d.mixed[p.key()] = p
}

// Done says whether the message was reassembled or failed its checksum.
func (d *FountainDecoder) Done() bool { return d.result != nil || d.err != nil }

// Result is the message, or ErrChecksum; nil, nil before Done.
func (d *FountainDecoder) Result() ([]byte, error) { return d.result, d.err }

// Progress is how many distinct fragments are known and how many the message has (0, 0
// before the first part).
func (d *FountainDecoder) Progress() (have, want int) {
	if d.first == nil {
		return 0, 0
	}
	return len(d.simple), int(d.first.SeqLen)
}

// Received is the number of parts accepted.
func (d *FountainDecoder) Received() int { return d.received }
