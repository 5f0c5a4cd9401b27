package bitcoin

import (
	"testing"

	"github.com/btcsuite/btcd/chaincfg"
)

// FuzzParseDescriptor: whatever parses prints (public keys, checksum) to a descriptor that
// parses to the same print, and gives an address at position 0 or an ErrDescriptor.
func FuzzParseDescriptor(f *testing.F) {
	for _, s := range []string{
		"wpkh([73c5da0a/84h/1h/0h]tpubDC8msFGeGuwnKG9Upg7DM2b4DaRqg3CUZa5g8v2SRQ6K4NSkxUgd7HsL2XVWbVm39yBA4LAxysQAm397zwQSQoQgewGiYZqrA9DsP4zbQ1M/0/*)",
		"tr([73c5da0a/86h/1h/0h/0/0]0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798)#00000000",
		"wsh(sortedmulti(1,[73c5da0a/48h/1h/0h/2h]tpubDFH9dgzveyD8zTbPUFuLrGmCydNvxehyNdUXKJAQN8x4aZ4j6UZqGfnqFrD4NqyaTVGKbvEW54tsvPTK2UoSbCC1PJY8iCNiwTL3RWZEheQ/<0;1>/*,[1a0f5425/48h/1h/0h/2h]tpubDF23ETNjCC283QmYZtJp26GqHkSa6Yw6vPqp3UkMsPCvBzRC4dMQzE1U3WwKsFsx3apUkQA4JHQDSmcC3N1yhE2gF1aKJA1CiVtNyA9Rv4H/<0;1>/*))",
		"sh(multi(2,0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798,02c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5))",
		"sh(wpkh([00000000]02))", "pkh(", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDescriptor(s)
		if err != nil {
			return
		}
		printed := d.String()
		again, err := ParseDescriptor(printed)
		if err != nil || again.String() != printed {
			t.Fatalf("%q prints as %q, which parses to %v (%v)", s, printed, again, err)
		}
		_, _ = d.Address(0, 0, &chaincfg.RegressionNetParams)
	})
}
