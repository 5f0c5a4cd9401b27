package bitcoin

import (
	"errors"
	"fmt"
	"strings"
)

// Descriptor checksums (BIP-380, "Checksum"): a BCH code over the descriptor's characters,
// eight characters from the bech32 alphabet after '#'.

const (
	descInputCharset    = "0123456789()[],'/*abcdefgh@:$%{}IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~ijklmnopqrstuvwxyzABCDEFGH`#\"\\ "
	descChecksumCharset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
)

var descGenerator = [5]uint64{0xf5dee51989, 0xa9fdca3312, 0x1bab10e32d, 0x3706b1677a, 0x644d626ffd}

func descPolymod(symbols []uint64) uint64 {
	chk := uint64(1)
	for _, v := range symbols {
		top := chk >> 35
		chk = (chk&0x7ffffffff)<<5 ^ v
		for i := 0; i < 5; i++ {
			if (top>>i)&1 == 1 {
				chk ^= descGenerator[i]
			}
		}
	}
	return chk
}

// DescriptorChecksum returns the 8-character checksum of a descriptor (without '#').
func DescriptorChecksum(desc string) (string, error) {
	var symbols, groups []uint64
	for _, c := range desc {
		v := strings.IndexRune(descInputCharset, c)
		if v < 0 {
			return "", fmt.Errorf("%w: character %q is not allowed in a descriptor", ErrDescriptor, c)
		}
		symbols = append(symbols, uint64(v&31))
		groups = append(groups, uint64(v>>5))
		if len(groups) == 3 {
			symbols = append(symbols, groups[0]*9+groups[1]*3+groups[2])
			groups = groups[:0]
		}
	}
	switch len(groups) {
	case 1:
		symbols = append(symbols, groups[0])
	case 2:
		symbols = append(symbols, groups[0]*3+groups[1])
	}
	symbols = append(symbols, make([]uint64, 8)...)
	chk := descPolymod(symbols) ^ 1
	out := make([]byte, 8)
	for i := range out {
		out[i] = descChecksumCharset[(chk>>(5*(7-i)))&31]
	}
	return string(out), nil
}

// ErrChecksum is wrapped (with ErrDescriptor) when a descriptor's "#checksum" is not its
// BIP-380 checksum.
var ErrChecksum = errors.New("descriptor checksum mismatch")

// splitChecksum checks and strips a "#checksum" suffix. A descriptor without one is
// accepted only when required is false.
func splitChecksum(s string, required bool) (string, error) {
	body, sum, has := strings.Cut(s, "#")
	if !has {
		if required {
			return "", fmt.Errorf("%w: missing checksum", ErrDescriptor)
		}
		if _, err := DescriptorChecksum(body); err != nil {
			return "", err
		}
		return body, nil
	}
	if len(sum) != 8 {
		return "", fmt.Errorf("%w: checksum %q is not 8 characters", ErrDescriptor, sum)
	}
	want, err := DescriptorChecksum(body)
	if err != nil {
		return "", err
	}
	if sum != want {
		return "", fmt.Errorf("%w: %w: %s does not match (the descriptor was mistyped or altered)", ErrDescriptor, ErrChecksum, sum)
	}
	return body, nil
}
