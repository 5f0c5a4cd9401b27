package transport

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"testing"
)

// packetReader returns one packet per Read, like a HID report or a UDP datagram.
type packetReader struct{ pkts [][]byte }

func (p *packetReader) Read(b []byte) (int, error) {
	if len(p.pkts) == 0 {
		return 0, io.EOF
	}
	n := copy(b, p.pkts[0])
	p.pkts = p.pkts[1:]
	return n, nil
}

func TestV1Packets(t *testing.T) {
	tests := []struct {
		name    string
		bodyLen int
		packets int
	}{
		{"empty", 0, 1},
		{"one full", 55, 1},
		{"one more", 56, 2},
		{"two full", 55 + 63, 2},
		{"three", 55 + 63 + 1, 3},
		{"eth chunk", 1024 + 8, 17},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := make([]byte, tt.bodyLen)
			for i := range body {
				body[i] = byte(i*7 + 1)
			}
			pkts, err := V1Packets(0x1234, body)
			if err != nil {
				t.Fatal(err)
			}
			if len(pkts) != tt.packets {
				t.Fatalf("%d packets, want %d", len(pkts), tt.packets)
			}
			typ, got, err := ReadV1(&packetReader{pkts: pkts})
			if err != nil {
				t.Fatal(err)
			}
			if typ != 0x1234 || !bytes.Equal(got, body) {
				t.Fatalf("round trip: type %x body %x", typ, got)
			}
		})
	}
}

// The Initialize and Ping packets trezorctl 0.12.4 sends (trezor.md §14).
func TestV1CapturedPackets(t *testing.T) {
	want := "3f2323000000000000" + string(bytes.Repeat([]byte("00"), 55))
	pkts, _ := V1Packets(0, nil)
	if got := hex.EncodeToString(pkts[0]); got != want {
		t.Fatalf("Initialize packet\n got %s\nwant %s", got, want)
	}
	body, _ := hex.DecodeString("0a0568656c6c6f")
	pkts, _ = V1Packets(1, body)
	want = "3f2323000100000007" + "0a0568656c6c6f" + string(bytes.Repeat([]byte("00"), 48))
	if got := hex.EncodeToString(pkts[0]); got != want {
		t.Fatalf("Ping packet\n got %s\nwant %s", got, want)
	}
}

func TestV1ReadErrors(t *testing.T) {
	good, _ := V1Packets(3, make([]byte, 100))
	bad := func(f func(p []byte)) []byte {
		p := bytes.Clone(good[0])
		f(p)
		return p
	}
	tests := []struct {
		name string
		pkts [][]byte
		want error
	}{
		{"bad magic", [][]byte{bad(func(p []byte) { p[0] = 'x' })}, ErrBadMagic},
		{"bad header", [][]byte{bad(func(p []byte) { p[1] = '!' })}, ErrBadMagic},
		{"short", [][]byte{good[0][:40]}, ErrShortPacket},
		{"too large", [][]byte{bad(func(p []byte) { p[5] = 0xff })}, ErrTooLarge},
		{"truncated", [][]byte{good[0]}, ErrTruncated},
		{"bad continuation", [][]byte{good[0], bytes.Repeat([]byte{'x'}, 64)}, ErrBadMagic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ReadV1(&packetReader{pkts: tt.pkts})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestV1ReaderReset(t *testing.T) {
	var r V1Reader
	long, _ := V1Packets(9, make([]byte, 200))
	short, _ := V1Packets(1, []byte{1, 2, 3})
	if done, err := r.Add(long[0]); done || err != nil {
		t.Fatal(done, err)
	}
	r.Reset()
	done, err := r.Add(short[0])
	if !done || err != nil {
		t.Fatal(done, err)
	}
	if typ, body := r.Message(); typ != 1 || !bytes.Equal(body, []byte{1, 2, 3}) {
		t.Fatal(typ, body)
	}
	if _, err := r.Add(long[1]); !errors.Is(err, ErrUnexpectedV1) {
		t.Fatalf("continuation without start: %v", err)
	}
}

// FuzzV1 decodes arbitrary packet streams; whatever decodes must re-encode and decode to the
// same message.
func FuzzV1(f *testing.F) {
	for _, n := range []int{0, 7, 55, 56, 200} {
		pkts, _ := V1Packets(uint16(n), bytes.Repeat([]byte{0xab}, n))
		f.Add(bytes.Join(pkts, nil))
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		var pkts [][]byte
		for len(stream) >= V1PacketSize {
			pkts = append(pkts, stream[:V1PacketSize])
			stream = stream[V1PacketSize:]
		}
		if len(stream) > 0 {
			pkts = append(pkts, stream)
		}
		typ, body, err := ReadV1(&packetReader{pkts: pkts})
		if err != nil {
			return
		}
		again, err := V1Packets(typ, body)
		if err != nil {
			t.Fatal(err)
		}
		typ2, body2, err := ReadV1(&packetReader{pkts: again})
		if err != nil || typ2 != typ || !bytes.Equal(body, body2) {
			t.Fatalf("round trip: %v %x %x", err, body, body2)
		}
	})
}
