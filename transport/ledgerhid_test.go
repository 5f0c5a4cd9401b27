package transport

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pad returns s (hex) zero padded to one 64-byte report.
func pad(t testing.TB, s string) []byte {
	t.Helper()
	b := mustHex(t, s)
	return append(b, make([]byte, LedgerHIDPacketSize-len(b))...)
}

// Golden reports laid out by hand from the framing table in ledger.md §1.2.
func TestLedgerHIDGolden(t *testing.T) {
	// geth's ETH GET_ADDRESS for m/44'/60'/0'/0/0: E0 02 00 00 15, 5 path steps.
	getAddr := "e002000015 05 8000002c 8000003c 80000000 00000000 00000000"
	// B0 01 GET_APP_AND_VERSION, as ledgerjs sends it (Lc always present).
	appVer := "b001000000"
	// A 258-byte reply: 256 data bytes + 9000 takes 1 + ceil((258-57)/59) = 5 reports.
	long := bytes.Repeat([]byte{0xa5}, 256)
	long = append(long, 0x90, 0x00)

	tests := []struct {
		name    string
		channel uint16
		payload []byte
		want    [][]byte
	}{
		{"get address", 0x0101, mustHex(t, getAddr), [][]byte{pad(t, "0101 05 0000 001a"+getAddr)}},
		{"app and version", 0x0101, mustHex(t, appVer), [][]byte{pad(t, "0101 05 0000 0005"+appVer)}},
		{"random channel", 0x00ab, mustHex(t, "9000"), [][]byte{pad(t, "00ab 05 0000 0002 9000")}},
		{"empty", 0x0101, nil, [][]byte{pad(t, "0101 05 0000 0000")}},
		{"long reply", 0x0101, long, [][]byte{
			pad(t, "0101 05 0000 0102"+strings.Repeat("a5", 57)),
			pad(t, "0101 05 0001"+strings.Repeat("a5", 59)),
			pad(t, "0101 05 0002"+strings.Repeat("a5", 59)),
			pad(t, "0101 05 0003"+strings.Repeat("a5", 59)),
			pad(t, "0101 05 0004"+strings.Repeat("a5", 256-57-3*59)+"9000"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkts, err := LedgerHIDPackets(tt.channel, tt.payload)
			if err != nil {
				t.Fatal(err)
			}
			if len(pkts) != len(tt.want) {
				t.Fatalf("%d packets, want %d", len(pkts), len(tt.want))
			}
			for i := range pkts {
				if !bytes.Equal(pkts[i], tt.want[i]) {
					t.Fatalf("packet %d\n got %x\nwant %x", i, pkts[i], tt.want[i])
				}
			}
			got, err := ReadLedgerHID(&packetReader{pkts: pkts}, tt.channel)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.payload) {
				t.Fatalf("read back %x, want %x", got, tt.payload)
			}
		})
	}
}

func TestLedgerHIDRoundTripSizes(t *testing.T) {
	for _, n := range []int{1, 56, 57, 58, 116, 117, 260, 1000, LedgerMaxResponse} {
		payload := make([]byte, n)
		for i := range payload {
			payload[i] = byte(i*13 + 7)
		}
		pkts, err := LedgerHIDPackets(LedgerDefaultChannel, payload)
		if err != nil {
			t.Fatal(n, err)
		}
		want := 1
		if n > 57 {
			want += (n - 57 + 58) / 59
		}
		if len(pkts) != want {
			t.Fatalf("%d bytes: %d packets, want %d", n, len(pkts), want)
		}
		got, err := ReadLedgerHID(&packetReader{pkts: pkts}, LedgerDefaultChannel)
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("%d bytes: round trip: %v", n, err)
		}
	}
	if _, err := LedgerHIDPackets(1, make([]byte, LedgerMaxResponse+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized payload: %v", err)
	}
}

// The device side reads on the host's channel and replies on it.
func TestLedgerHIDCommandEchoesChannel(t *testing.T) {
	apdu := mustHex(t, "e1050000 00")
	pkts, _ := LedgerHIDPackets(0xbeef, apdu)
	got, ch, err := ReadLedgerHIDCommand(&packetReader{pkts: pkts})
	if err != nil || ch != 0xbeef || !bytes.Equal(got, apdu) {
		t.Fatalf("got %x on %#x: %v", got, ch, err)
	}
	var out bytes.Buffer
	if err := WriteLedgerHID(&out, ch, mustHex(t, "f5acc2fd9000")); err != nil {
		t.Fatal(err)
	}
	if want := pad(t, "beef 05 0000 0006 f5acc2fd9000"); !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("reply %x", out.Bytes())
	}
	big, _ := LedgerHIDPackets(0x0101, make([]byte, LedgerMaxCommand+1))
	if _, _, err := ReadLedgerHIDCommand(&packetReader{pkts: big}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized command: %v", err)
	}
}

func TestLedgerHIDReadErrors(t *testing.T) {
	good, _ := LedgerHIDPackets(LedgerDefaultChannel, make([]byte, 100)) // 2 packets
	bad := func(i int, f func(p []byte)) []byte {
		p := bytes.Clone(good[i])
		f(p)
		return p
	}
	tests := []struct {
		name string
		pkts [][]byte
		want error
	}{
		{"short report", [][]byte{good[0][:63]}, ErrShortPacket},
		{"long report", [][]byte{append(bytes.Clone(good[0]), 0)}, ErrShortPacket},
		{"other channel", [][]byte{bad(0, func(p []byte) { p[1] = 0x02 })}, ErrBadChannel},
		{"other channel mid message", [][]byte{good[0], bad(1, func(p []byte) { p[0] = 0x02 })}, ErrBadChannel},
		{"bad tag", [][]byte{bad(0, func(p []byte) { p[2] = 0x02 })}, ErrBadTag},
		{"first not 0", [][]byte{good[1]}, ErrBadSequence},
		{"skipped packet", [][]byte{good[0], bad(1, func(p []byte) { p[4] = 2 })}, ErrBadSequence},
		{"repeated packet", [][]byte{good[0], good[0]}, ErrBadSequence},
		{"truncated", [][]byte{good[0]}, ErrTruncated},
		{"no packet", nil, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadLedgerHID(&packetReader{pkts: tt.pkts}, LedgerDefaultChannel)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("declared too large", func(t *testing.T) {
		r := &LedgerHIDReader{Max: 100}
		p := bad(0, func(p []byte) { p[5], p[6] = 0, 101 })
		if _, err := r.Add(p); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("err = %v", err)
		}
	})
}

// After an error the reader starts over cleanly, and a device-side reader follows whatever
// channel the next message uses.
func TestLedgerHIDReaderReset(t *testing.T) {
	var r LedgerHIDReader
	long, _ := LedgerHIDPackets(0x1111, make([]byte, 100))
	short, _ := LedgerHIDPackets(0x2222, []byte{1, 2, 3})
	if done, err := r.Add(long[0]); done || err != nil || !r.Pending() {
		t.Fatal(done, err)
	}
	if _, err := r.Add(short[0]); !errors.Is(err, ErrBadChannel) {
		t.Fatalf("interleaved channel: %v", err)
	}
	if r.Pending() {
		t.Fatal("still pending after error")
	}
	done, err := r.Add(short[0])
	if !done || err != nil || r.Channel() != 0x2222 || !bytes.Equal(r.Message(), []byte{1, 2, 3}) {
		t.Fatalf("after reset: %v %v %#x %x", done, err, r.Channel(), r.Message())
	}
}

// FuzzLedgerHID decodes arbitrary report streams on the device side (any channel); whatever
// decodes must re-encode to the same reports and decode again on the host side.
func FuzzLedgerHID(f *testing.F) {
	for _, s := range []string{
		"e002000015058000002c8000003c800000000000000000000000", // ETH get address
		"b001000000",                             // app and version
		"e004000046",                             // ETH sign header
		"0107426974636f696e05322e342e3601029000", // B0 01 reply "Bitcoin" 2.4.6
		"9000",
	} {
		pkts, _ := LedgerHIDPackets(LedgerDefaultChannel, mustHex(f, s))
		f.Add(bytes.Join(pkts, nil))
	}
	long, _ := LedgerHIDPackets(0x0101, bytes.Repeat([]byte{0x5a}, 200))
	f.Add(bytes.Join(long, nil))
	f.Fuzz(func(t *testing.T, stream []byte) {
		var pkts [][]byte
		for len(stream) >= LedgerHIDPacketSize {
			pkts = append(pkts, stream[:LedgerHIDPacketSize])
			stream = stream[LedgerHIDPacketSize:]
		}
		if len(stream) > 0 {
			pkts = append(pkts, stream)
		}
		var rd LedgerHIDReader
		msg, err := readLedgerHID(&packetReader{pkts: pkts}, &rd)
		if err != nil {
			return
		}
		ch := rd.Channel()
		again, err := LedgerHIDPackets(ch, msg)
		if err != nil {
			t.Fatal(err)
		}
		// Headers re-encode identically (padding in the input may differ from zeros).
		for i := range again {
			h := ledgerHeader
			if i == 0 {
				h = ledgerFirstHeader
			}
			if !bytes.Equal(again[i][:h], pkts[i][:h]) {
				t.Fatalf("packet %d header re-encodes differently:\n%x\n%x", i, again[i][:h], pkts[i][:h])
			}
		}
		msg2, err := ReadLedgerHID(&packetReader{pkts: again}, ch)
		if err != nil || !bytes.Equal(msg, msg2) {
			t.Fatalf("round trip: %v %x %x", err, msg, msg2)
		}
	})
}

func BenchmarkLedgerHIDFraming(b *testing.B) {
	apdu := make([]byte, LedgerMaxCommand) // 5-byte header + 255 data bytes
	b.SetBytes(int64(len(apdu)))
	for b.Loop() {
		pkts, err := LedgerHIDPackets(LedgerDefaultChannel, apdu)
		if err != nil {
			b.Fatal(err)
		}
		rd := NewLedgerHIDReader(LedgerDefaultChannel)
		for _, p := range pkts {
			if _, err := rd.Add(p); err != nil {
				b.Fatal(err)
			}
		}
		if len(rd.Message()) != len(apdu) {
			b.Fatal("short")
		}
	}
}
