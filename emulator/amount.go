package emulator

import (
	"fmt"
	"strconv"
	"strings"
)

// FormatCoins shows an amount in satoshis as whole coins with the trailing zeros of the
// fraction dropped and the unit after it ("0.0001 BTC"), as the Trezor and KeepKey
// firmwares print amounts on their confirmation screens.
func FormatCoins(sat uint64, unit string) string {
	s := strconv.FormatUint(sat/1e8, 10)
	if frac := sat % 1e8; frac != 0 {
		s += "." + strings.TrimRight(fmt.Sprintf("%08d", frac), "0")
	}
	return s + " " + unit
}
