package ur

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
	"slices"
)

// xoshiro is the xoshiro256** 1.0 generator (Blackman and Vigna) seeded as UR does: the
// SHA-256 digest of a seed, read as four big-endian 64-bit words.
type xoshiro [4]uint64

func newXoshiro(seed []byte) *xoshiro {
	d := sha256.Sum256(seed)
	var x xoshiro
	for i := range x {
		x[i] = binary.BigEndian.Uint64(d[8*i:])
	}
	return &x
}

func (s *xoshiro) next() uint64 {
	r := bits.RotateLeft64(s[1]*5, 7) * 9
	t := s[1] << 17
	s[2] ^= s[0]
	s[3] ^= s[1]
	s[1] ^= s[2]
	s[0] ^= s[3]
	s[2] ^= t
	s[3] = bits.RotateLeft64(s[3], 45)
	return r
}

// nextDouble is next()/2^64 in float64, rounded as the reference's double conversion.
func (s *xoshiro) nextDouble() float64 { return float64(s.next()) / 18446744073709551616.0 }

// nextInt is a number in [low, high].
func (s *xoshiro) nextInt(low, high uint64) uint64 {
	return uint64(s.nextDouble()*float64(high-low+1)) + low
}

func (s *xoshiro) nextData(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(s.nextInt(0, 255))
	}
	return b
}

// sampler is Vose's alias method with the index order the UR reference uses (BCR-2020-005's
// fountain degree distribution depends on it bit for bit).
type sampler struct {
	probs   []float64
	aliases []int
}

func newSampler(weights []float64) *sampler {
	n := len(weights)
	sum := 0.0
	for _, w := range weights {
		sum += w
	}
	p := make([]float64, n)
	for i, w := range weights {
		p[i] = w * float64(n) / sum
	}
	var small, large []int
	for i := n - 1; i >= 0; i-- {
		if p[i] < 1 {
			small = append(small, i)
		} else {
			large = append(large, i)
		}
	}
	s := &sampler{probs: make([]float64, n), aliases: make([]int, n)}
	for len(small) > 0 && len(large) > 0 {
		a := small[len(small)-1]
		small = small[:len(small)-1]
		g := large[len(large)-1]
		large = large[:len(large)-1]
		s.probs[a] = p[a]
		s.aliases[a] = g
		p[g] += p[a] - 1
		if p[g] < 1 {
			small = append(small, g)
		} else {
			large = append(large, g)
		}
	}
	for _, i := range large {
		s.probs[i] = 1
	}
	for _, i := range small { // only through rounding
		s.probs[i] = 1
	}
	return s
}

func (s *sampler) next(rng *xoshiro) int {
	r1, r2 := rng.nextDouble(), rng.nextDouble()
	i := int(float64(len(s.probs)) * r1)
	if r2 < s.probs[i] {
		return i
	}
	return s.aliases[i]
}

// chooseDegree picks how many fragments a part mixes: degree d with probability ∝ 1/d.
func chooseDegree(seqLen int, rng *xoshiro) int {
	w := make([]float64, seqLen)
	for i := range w {
		w[i] = 1 / float64(i+1)
	}
	return newSampler(w).next(rng) + 1
}

// shuffled is the reference's Fisher–Yates variant: draw an index, remove it, repeat.
func shuffled(items []int, rng *xoshiro) []int {
	rem := append([]int(nil), items...)
	out := make([]int, 0, len(items))
	for len(rem) > 0 {
		i := int(rng.nextInt(0, uint64(len(rem)-1)))
		out = append(out, rem[i])
		rem = append(rem[:i], rem[i+1:]...)
	}
	return out
}

// chooseFragments is the set of fragment indexes part seqNum mixes, sorted: the first
// seqLen parts are the fragments themselves, later ones a random mix seeded by the sequence
// number and the message's checksum.
func chooseFragments(seqNum uint32, seqLen int, checksum uint32) []int {
	if int64(seqNum) <= int64(seqLen) {
		return []int{int(seqNum) - 1}
	}
	var seed [8]byte
	binary.BigEndian.PutUint32(seed[:], seqNum)
	binary.BigEndian.PutUint32(seed[4:], checksum)
	rng := newXoshiro(seed[:])
	degree := chooseDegree(seqLen, rng)
	idx := make([]int, seqLen)
	for i := range idx {
		idx[i] = i
	}
	return sortedInts(shuffled(idx, rng)[:degree])
}

func sortedInts(a []int) []int {
	out := slices.Clone(a)
	slices.Sort(out)
	return out
}
