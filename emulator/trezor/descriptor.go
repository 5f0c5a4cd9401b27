package trezoremu

import (
	"fmt"
	"strings"

	"github.com/hwbridge/hwbridge/internal/hdpath"
	pb "github.com/hwbridge/hwbridge/internal/trezorpb"
)

// xpubDescriptor is PublicKey.descriptor as core (2.7.0 on) fills it
// (core/src/apps/bitcoin/get_public_key.py _xpub_descriptor): the script type's wrapper
// around [root fingerprint/path with h]xpub/<0;1>/*, with the BIP-380 checksum; nothing
// for other script types. The xpub always carries the coin's plain xpub magic.
func xpubDescriptor(t pb.InputScriptType, rootFP uint32, p hdpath.Path, xpub string) string {
	var format string
	switch t {
	case pb.InputScriptType_SPENDADDRESS:
		format = "pkh(%s)"
	case pb.InputScriptType_SPENDP2SHWITNESS:
		format = "sh(wpkh(%s))"
	case pb.InputScriptType_SPENDWITNESS:
		format = "wpkh(%s)"
	case pb.InputScriptType_SPENDTAPROOT:
		format = "tr(%s)"
	default:
		return ""
	}
	key := fmt.Sprintf("[%08x%s]%s/<0;1>/*", rootFP, strings.TrimPrefix(p.StringH(), "m"), xpub)
	desc := fmt.Sprintf(format, key)
	return desc + "#" + descriptorChecksum(desc)
}

// descriptorChecksum is BIP-380's checksum (the firmware's descriptor_checksum). Written
// here, not taken from chains/bitcoin.DescriptorChecksum: the emulator may not depend on the
// host side (internal/deptest), so that both cannot agree on a wrong encoding.
func descriptorChecksum(s string) string {
	const input = "0123456789()[],'/*abcdefgh@:$%{}IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~ijklmnopqrstuvwxyzABCDEFGH`#\"\\ "
	const charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
	polymod := func(c uint64, v int) uint64 {
		c0 := c >> 35
		c = (c&0x7ffffffff)<<5 ^ uint64(v)
		for i, g := range []uint64{0xf5dee51989, 0xa9fdca3312, 0x1bab10e32d, 0x3706b1677a, 0x644d626ffd} {
			if c0>>i&1 != 0 {
				c ^= g
			}
		}
		return c
	}
	c, cls, clsCount := uint64(1), 0, 0
	for _, ch := range s {
		pos := strings.IndexRune(input, ch)
		if pos < 0 {
			return ""
		}
		c = polymod(c, pos&31)
		cls = cls*3 + pos>>5
		if clsCount++; clsCount == 3 {
			c = polymod(c, cls)
			cls, clsCount = 0, 0
		}
	}
	if clsCount > 0 {
		c = polymod(c, cls)
	}
	for range 8 {
		c = polymod(c, 0)
	}
	c ^= 1
	out := make([]byte, 8)
	for j := range 8 {
		out[j] = charset[c>>(5*(7-j))&31]
	}
	return string(out)
}
