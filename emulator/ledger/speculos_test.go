package ledgeremu

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hwbridge/hwbridge/emulator"
)

// suiteMnemonic is the conformance suite's seed, which the Speculos recordings used.
const suiteMnemonic = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"

// recorded is one command sent to the real app and its reply.
type recorded struct {
	line      int
	cmd, resp []byte
}

func loadRecording(t *testing.T, path string) []recorded {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []recorded
	var cur recorded
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "=> "):
			cur = recorded{line: n}
			cur.cmd, err = hex.DecodeString(l[3:])
		case strings.HasPrefix(l, "<= "):
			cur.resp, err = hex.DecodeString(l[3:])
			out = append(out, cur)
		}
		if err != nil {
			t.Fatalf("%s:%d: %v", path, n, err)
		}
	}
	return out
}

// knownDifference explains where hwemu's answer may differ from the firmware's, or "".
func knownDifference(app string, cmd, got, want []byte) string {
	switch {
	case bytes.HasPrefix(cmd, []byte{0xb0, 0x01}) && len(got) == len(want) && len(got) > 3 &&
		bytes.Equal(got[:len(got)-3], want[:len(want)-3]) && bytes.Equal(got[len(got)-2:], want[len(want)-2:]):
		return "the flags byte of get app and version is the OS's os_flags(): Speculos answers 0, hwemu 0x02 (signed MCU code, as on a device)"
	case bytes.HasPrefix(cmd, []byte{0xb0, 0x01}):
		if app == AppEthereum {
			return "hwemu's Ethereum app reports version 1.17.0 (it lacks 1.22.0's EIP-7702 signing), the recording 1.22.0"
		}
	case bytes.HasPrefix(cmd, []byte{0xe0, 0x06}):
		return "hwemu's Ethereum app reports version 1.17.0 in its configuration, the recording 1.22.0"
	case bytes.HasPrefix(cmd, []byte{0xf8, 0x01}) && len(got) > 2 && len(want) > 2 &&
		got[0] == 0x10 && want[0] == 0x10 && len(got) == len(want) && bytes.Equal(got[:len(got)-66], want[:len(want)-66]):
		return "a BIP-340 signature: the app signs with random aux data (Speculos' --deterministic-rng), hwemu with its own; both verify (checked by device/ledger TestSpeculosReplay and the suite)"
	}
	return ""
}

// divergences are scenarios where hwemu's client commands leave the firmware's order at a
// known exchange, and why. The exchanges before it must match; the test fails if the
// divergence moves (update this note when hwemu follows the app further).
var divergences = map[string]struct {
	at  int
	why string
}{
	"bitcoin-test/SignPSBT": {65, "SIGN_PSBT: hwemu follows the app through the policy, the first input's key scan " +
		"(BIP-32 derivations read as met), its outpoint, UTXO and the key re-read for its script; then the app goes on to " +
		"the next input and reads sequences only while signing, where it reads the inputs and outputs from the host again " +
		"to compute each sighash, while hwemu reads an input's sequence with the input and signs from what it read " +
		"(the signatures it yields are checked by device/ledger TestSpeculosReplay and by the suite against hwemu)"},
}

// TestSpeculosTranscripts sends hwemu the commands the real apps answered in the
// Speculos recordings (device/ledger/testdata/speculos: app-bitcoin-new 2.4.6 "Bitcoin
// Test", app-ethereum 1.22.0 on a Nano X) and checks that it answers them as the firmware
// did, byte for byte, but for the differences knownDifference names. The Bitcoin app's
// client commands (which preimage, proof or index it asks for, in which order) are thus
// pinned to the real app's.
func TestSpeculosTranscripts(t *testing.T) {
	root := filepath.Join("..", "..", "device", "ledger", "testdata", "speculos")
	for _, tc := range []struct{ dir, app string }{{"bitcoin-test", AppBitcoinTest}, {"ethereum", AppEthereum}} {
		files, err := filepath.Glob(filepath.Join(root, tc.dir, "*.apdus"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no recordings (%v)", tc.dir, err)
		}
		for _, file := range files {
			name := strings.TrimSuffix(filepath.Base(file), ".apdus")
			if name == "Concurrent" {
				continue // goroutines raced: the order of its commands is not the device's
			}
			t.Run(tc.dir+"/"+name, func(t *testing.T) {
				d := newDevice(t, Config{Mnemonic: suiteMnemonic, App: tc.app, BlindSigning: true, Approver: emulator.NewApprover(emulator.PolicyAuto)})
				c := newTestClient(t, d)
				known := map[string]int{}
				for i, r := range loadRecording(t, file) {
					got, err := c.ex.Exchange(t.Context(), r.cmd)
					if err != nil {
						t.Fatalf("exchange %d (line %d, %x): %v", i, r.line, r.cmd[:min(5, len(r.cmd))], err)
					}
					if bytes.Equal(got, r.resp) {
						continue
					}
					if why := knownDifference(tc.app, r.cmd, got, r.resp); why != "" {
						known[why]++
						continue
					}
					if dv, ok := divergences[tc.dir+"/"+name]; ok && dv.at == i {
						t.Logf("exchange %d: hwemu leaves the firmware's order here, as known: %s", i, dv.why)
						return
					}
					t.Fatalf("exchange %d (line %d): command %x…\n hwemu    %s\n firmware %s", i, r.line, r.cmd[:min(8, len(r.cmd))], short(got), short(r.resp))
				}
				if dv, ok := divergences[tc.dir+"/"+name]; ok {
					t.Errorf("hwemu follows the firmware past exchange %d now: update divergences (%s)", dv.at, dv.why)
				}
				for why, n := range known {
					t.Logf("%d replies differ as known: %s", n, why)
				}
			})
		}
	}
}

func short(b []byte) string {
	if len(b) > 80 {
		return fmt.Sprintf("%x…%x (%d bytes)", b[:60], b[len(b)-4:], len(b))
	}
	return hex.EncodeToString(b)
}
