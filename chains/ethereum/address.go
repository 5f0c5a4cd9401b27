package ethereum

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/ethereum/go-ethereum/common"
)

// ParseAddress parses a 0x-prefixed, 40-hex-digit address. An address in one case (all
// lower or all upper) carries no checksum and is accepted; a mixed-case address must carry
// a valid EIP-55 checksum. The zero address is refused: value sent there is burned.
func ParseAddress(s string) (common.Address, error) {
	a, err := parseAddress(s)
	if err != nil {
		return common.Address{}, err
	}
	if a == (common.Address{}) {
		return common.Address{}, fmt.Errorf("%w: %s is the zero address (anything sent there is lost)", ErrInvalidAddress, s)
	}
	return a, nil
}

func parseAddress(s string) (common.Address, error) {
	if len(s) > 2*common.AddressLength+2 || !strings.HasPrefix(s, "0x") && !strings.HasPrefix(s, "0X") {
		return common.Address{}, fmt.Errorf("%w: %q: want 0x followed by 40 hex digits", ErrInvalidAddress, clip(s))
	}
	digits := s[2:]
	if len(digits) != 2*common.AddressLength {
		return common.Address{}, fmt.Errorf("%w: %q has %d hex digits, want 40", ErrInvalidAddress, s, len(digits))
	}
	raw, err := hex.DecodeString(digits)
	if err != nil {
		return common.Address{}, fmt.Errorf("%w: %q is not hexadecimal", ErrInvalidAddress, s)
	}
	a := common.BytesToAddress(raw)
	if digits != strings.ToLower(digits) && digits != strings.ToUpper(digits) && a.Hex()[2:] != digits {
		return common.Address{}, fmt.Errorf("%w: %s fails its EIP-55 checksum (did you mean %s? check where you copied it from)", ErrInvalidAddress, s, a.Hex())
	}
	return a, nil
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
