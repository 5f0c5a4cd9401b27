package hwi

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hwbridge/hwbridge/chains/bitcoin"
	"github.com/hwbridge/hwbridge/device"
)

func TestDescChecksum(t *testing.T) {
	tests := []struct{ desc, sum string }{
		{"raw(deadbeef)", "89f8spxm"}, // BIP-380
	}
	for _, tc := range tests {
		got, err := bitcoin.DescriptorChecksum(tc.desc)
		if err != nil || got != tc.sum {
			t.Errorf("bitcoin.DescriptorChecksum(%q) = %q, %v; want %q", tc.desc, got, err, tc.sum)
		}
	}
	if _, err := bitcoin.DescriptorChecksum("pkh(\x01)"); err == nil {
		t.Error("control character accepted")
	}
}

func TestShellSplit(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{`signtx cHNidP8BAH==`, []string{"signtx", "cHNidP8BAH=="}, false},
		{`signtx "cHNi dP8="`, []string{"signtx", "cHNi dP8="}, false},
		{`a 'b c' d\ e "f\"g"`, []string{"a", "b c", "d e", `f"g`}, false},
		{`  x   y  `, []string{"x", "y"}, false},
		{`"unterminated`, nil, true},
		{`'unterminated`, nil, true},
		{`""`, []string{""}, false},
	}
	for _, tc := range tests {
		got, err := shellSplit(tc.in)
		if (err != nil) != tc.err || fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("shellSplit(%q) = %q, %v; want %q (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func FuzzShellSplit(f *testing.F) {
	for _, s := range []string{`signtx "abc"`, `a 'b' c\ d`, `"x\"y"`, `'`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := shellSplit(s)
		if err != nil {
			return
		}
		// Round trip: single-quoting each word and splitting again gives the same words.
		var quoted []string
		for _, w := range words {
			quoted = append(quoted, "'"+strings.ReplaceAll(w, "'", `'\''`)+"'")
		}
		again, err := shellSplit(strings.Join(quoted, " "))
		if err != nil || fmt.Sprint(again) != fmt.Sprint(words) {
			t.Fatalf("%q: words %q, after quoting %q (%v)", s, words, again, err)
		}
	})
}

// FuzzParseHWIPath: whatever parses prints back (as m/…h) to the same path.
func FuzzParseHWIPath(f *testing.F) {
	for _, s := range []string{"m/44h/1h/0h/0/3", "m/0'/1/-2", "84H/0", "m", "", "m/", "m/2147483648", "f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePath(s)
		if err != nil {
			return
		}
		again, err := parsePath(p.StringH())
		if err != nil || fmt.Sprint(again) != fmt.Sprint(p) {
			t.Fatalf("%q: %v prints as m%s, which parses to %v (%v)", s, p, strings.TrimPrefix(p.StringH(), "m"), again, err)
		}
	})
}

// TestHWIModelNames: Ledger names by USB product as HWI's LEDGER_MODEL_IDS, the tcp emulator
// as HWI's simulator (product 0x1000, a Nano S).
func TestHWIModelNames(t *testing.T) {
	ledgerF := device.Features{Family: device.FamilyLedger, Model: "ledger"}
	tests := []struct {
		f    device.Features
		c    Candidate
		want string
	}{
		{ledgerF, Candidate{Path: "hid:/dev/hidraw3", Model: "nanos"}, "ledger_nano_s"},
		{ledgerF, Candidate{Path: "hid:/dev/hidraw3", Model: "nanox"}, "ledger_nano_x"},
		{ledgerF, Candidate{Path: "hid:/dev/hidraw3", Model: "nanosp"}, "ledger_nano_s_plus"},
		{ledgerF, Candidate{Path: "hid:/dev/hidraw3", Model: "stax"}, "ledger_stax"},
		{ledgerF, Candidate{Path: "hid:/dev/hidraw3", Model: "flex"}, "ledger_flex"},
		{ledgerF, Candidate{Path: "hid:/dev/hidraw3", Model: "apex"}, "ledger_nano_gen5"},
		{ledgerF, Candidate{Path: "tcp:127.0.0.1:9999"}, "ledger_nano_s_simulator"},
		{ledgerF, Candidate{Path: "tcp:127.0.0.1:40000"}, "ledger_nano_s_simulator"},
		{device.Features{Family: device.FamilyTrezor, Model: "Safe 3"}, Candidate{Path: "hid:/dev/hidraw1"}, "trezor_safe 3"},
		{device.Features{Family: device.FamilyTrezor, Model: "1"}, Candidate{Path: "udp:127.0.0.1:21324"}, "trezor_1_simulator"},
		{device.Features{Family: device.FamilyColdcard, Model: "Mk4", Emulator: true}, Candidate{Path: "unix:/tmp/ckcc-simulator.sock"}, "coldcard_simulator"},
		{device.Features{Family: device.FamilyColdcard, Model: "Q"}, Candidate{Path: "hid:/dev/hidraw4"}, "coldcard"},
		{device.Features{Family: device.FamilyKeepKey, Model: "K1-14AM"}, Candidate{Path: "udp:127.0.0.1:11044"}, "keepkey_simulator"},
		{device.Features{Family: device.FamilyKeepKey, Model: "K1-14AM"}, Candidate{Path: "hid:/dev/hidraw5"}, "keepkey"},
		{device.Features{Family: device.FamilyBitBox02, Model: "bitbox02", Emulator: true}, Candidate{Path: "bitbox02:127.0.0.1:15423"}, "bitbox02_multi"},
		{device.Features{Family: device.FamilyBitBox02, Model: "bitbox02-btconly"}, Candidate{Path: "hid:/dev/hidraw6"}, "bitbox02_btconly"},
	}
	for _, tc := range tests {
		if got := model(tc.f, tc.c); got != tc.want {
			t.Errorf("model(%s, %+v) = %q, want %q", tc.f.Model, tc.c, got, tc.want)
		}
	}
}
