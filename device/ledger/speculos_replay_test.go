package ledger_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/devicetest"
	"github.com/hwbridge/hwbridge/device/ledger"
)

// transcript is one recorded scenario: commands and the replies the firmware gave.
type transcript struct {
	steps [][2][]byte
}

func loadTranscript(t testing.TB, path string) transcript {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var tr transcript
	var cmd []byte
	for i, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		switch {
		case strings.HasPrefix(l, "//"):
		case strings.HasPrefix(l, "=> "):
			if cmd, err = hex.DecodeString(l[3:]); err != nil {
				t.Fatalf("%s:%d: %v", path, i+1, err)
			}
		case strings.HasPrefix(l, "<= ") && cmd != nil:
			resp, err := hex.DecodeString(l[3:])
			if err != nil {
				t.Fatalf("%s:%d: %v", path, i+1, err)
			}
			tr.steps = append(tr.steps, [2][]byte{cmd, resp})
			cmd = nil
		default:
			t.Fatalf("%s:%d: %q", path, i+1, l)
		}
	}
	return tr
}

// replayer answers with a transcript's replies. In order, every command must be the next
// recorded one; unordered, it takes the first unused step with the same command (the
// concurrent scenario, whose operations raced).
type replayer struct {
	mu        sync.Mutex
	tr        transcript
	used      []bool
	next      int
	unordered bool
	err       error
}

func (r *replayer) Exchange(_ context.Context, apdu []byte) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.used == nil {
		r.used = make([]bool, len(r.tr.steps))
	}
	for i := r.next; i < len(r.tr.steps); i++ {
		if r.used[i] {
			continue
		}
		if bytes.Equal(r.tr.steps[i][0], apdu) {
			r.used[i] = true
			if !r.unordered {
				r.next = i + 1
			}
			return r.tr.steps[i][1], nil
		}
		if !r.unordered {
			break
		}
	}
	// Raced operations may each ask which app is open (B0 01) more often than the recorded
	// run did; the question has no effect on the device, so a recorded answer serves again.
	if r.unordered && bytes.HasPrefix(apdu, []byte{0xb0, 0x01}) {
		for i, st := range r.tr.steps {
			if r.used[i] && bytes.Equal(st[0], apdu) {
				return st[1], nil
			}
		}
	}
	if r.err == nil {
		r.err = fmt.Errorf("command %x is not the recorded one (step %d of %d)", apdu, r.next, len(r.tr.steps))
	}
	return nil, r.err
}

func (r *replayer) unusedSteps() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for i, st := range r.tr.steps {
		if r.unordered && bytes.HasPrefix(st[0], []byte{0xb0, 0x01}) {
			continue // how often raced operations ask which app is open varies
		}
		if r.used == nil || !r.used[i] {
			n++
		}
	}
	return n
}

// TestSpeculosReplay replays the suite's exchanges with the real apps (app-bitcoin-new
// 2.4.6 "Bitcoin Test" and app-ethereum 1.22.0 on a Speculos Nano X, testdata/speculos)
// against the driver: each scenario runs again, every command the driver sends must be the
// recorded one, and the recorded replies must satisfy the scenario (signatures verified,
// addresses and xpubs equal to the vectors, the malformed ERC-20 data refused).
func TestSpeculosReplay(t *testing.T) {
	for _, tc := range []struct {
		dir   string
		group devicetest.Group
	}{
		{"bitcoin-test", devicetest.GroupBitcoinTest},
		{"ethereum", devicetest.GroupEthereum},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			open := func(t *testing.T) device.Device {
				name := t.Name()[strings.LastIndex(t.Name(), "/")+1:]
				path := filepath.Join("testdata", "speculos", tc.dir, name+".apdus")
				r := &replayer{tr: loadTranscript(t, path), unordered: name == "Concurrent"}
				t.Cleanup(func() {
					if r.err != nil {
						t.Errorf("%s: %v", path, r.err)
					}
					if n := r.unusedSteps(); n != 0 {
						t.Errorf("%s: %d recorded exchanges left unused", path, n)
					}
				})
				return noDomainOnly{device.Verify(ledger.New(r, ledger.Options{Emulator: true}))}
			}
			devicetest.Run(t, open, devicetest.Capabilities{
				Taproot: true, EIP1559: true, Multisig: true, RefusesMalformedERC20: true,
				Groups: []devicetest.Group{tc.group},
			})
		})
	}
}
