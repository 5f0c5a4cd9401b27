package transport

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"testing/iotest"
)

// countingWriter records each Write separately, to check one frame = one write.
type countingWriter struct{ writes [][]byte }

func (c *countingWriter) Write(b []byte) (int, error) {
	c.writes = append(c.writes, bytes.Clone(b))
	return len(b), nil
}

func TestSpeculosGolden(t *testing.T) {
	var w countingWriter
	if err := WriteSpeculosAPDU(&w, mustHex(t, "b001000000")); err != nil {
		t.Fatal(err)
	}
	// Reply of the dashboard to B0 01 (ledger.md §4): name BOLOS, version 2.2.3, data of
	// 13 bytes; the length header excludes the status word.
	data := mustHex(t, "0105424f4c4f5305322e322e33")
	if err := WriteSpeculosResponse(&w, data, 0x9000); err != nil {
		t.Fatal(err)
	}
	if err := WriteSpeculosResponse(&w, nil, 0x6985); err != nil {
		t.Fatal(err)
	}
	want := [][]byte{
		mustHex(t, "00000005 b001000000"),
		mustHex(t, "0000000d 0105424f4c4f5305322e322e33 9000"),
		mustHex(t, "00000000 6985"),
	}
	if len(w.writes) != len(want) {
		t.Fatalf("%d writes, want %d (one per frame)", len(w.writes), len(want))
	}
	for i := range want {
		if !bytes.Equal(w.writes[i], want[i]) {
			t.Fatalf("frame %d\n got %x\nwant %x", i, w.writes[i], want[i])
		}
	}
	stream := bytes.NewReader(bytes.Join(w.writes, nil))
	apdu, err := ReadSpeculosAPDU(stream)
	if err != nil || !bytes.Equal(apdu, mustHex(t, "b001000000")) {
		t.Fatalf("apdu %x: %v", apdu, err)
	}
	// Byte-at-a-time reads exercise io.ReadFull across TCP segment boundaries.
	one := iotest.OneByteReader(stream)
	resp, err := ReadSpeculosResponse(one)
	if err != nil || !bytes.Equal(resp, append(bytes.Clone(data), 0x90, 0x00)) {
		t.Fatalf("reply %x: %v", resp, err)
	}
	resp, err = ReadSpeculosResponse(one)
	if err != nil || !bytes.Equal(resp, mustHex(t, "6985")) {
		t.Fatalf("reply %x: %v", resp, err)
	}
	if _, err := ReadSpeculosResponse(one); !errors.Is(err, io.EOF) || errors.Is(err, ErrTruncated) {
		t.Fatalf("clean end of stream: %v", err)
	}
}

func TestSpeculosErrors(t *testing.T) {
	tests := []struct {
		name  string
		read  func(io.Reader) ([]byte, error)
		input string
		want  error
	}{
		{"apdu: empty stream", ReadSpeculosAPDU, "", io.EOF},
		{"apdu: short header", ReadSpeculosAPDU, "0000", ErrTruncated},
		{"apdu: short body", ReadSpeculosAPDU, "00000005 b00100", ErrTruncated},
		{"apdu: header only", ReadSpeculosAPDU, "00000005", ErrTruncated},
		{"apdu: too large", ReadSpeculosAPDU, "00000105", ErrTooLarge},
		{"apdu: huge", ReadSpeculosAPDU, "ffffffff", ErrTooLarge},
		{"reply: empty stream", ReadSpeculosResponse, "", io.EOF},
		{"reply: short header", ReadSpeculosResponse, "000000", ErrTruncated},
		{"reply: missing sw", ReadSpeculosResponse, "00000002 abcd", ErrTruncated},
		{"reply: half sw", ReadSpeculosResponse, "00000002 abcd 90", ErrTruncated},
		{"reply: too large", ReadSpeculosResponse, "0000fffe", ErrTooLarge},
		{"reply: huge", ReadSpeculosResponse, "80000000", ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.read(bytes.NewReader(mustHex(t, tt.input)))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	var w countingWriter
	if err := WriteSpeculosAPDU(&w, make([]byte, SpeculosMaxAPDU+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized apdu: %v", err)
	}
	if err := WriteSpeculosResponse(&w, make([]byte, SpeculosMaxResponse-1), 0x9000); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized reply: %v", err)
	}
	if len(w.writes) != 0 {
		t.Fatal("oversized frames were written")
	}
	// The largest allowed reply round-trips.
	if err := WriteSpeculosResponse(&w, make([]byte, SpeculosMaxResponse-2), 0x9000); err != nil {
		t.Fatal(err)
	}
	if r, err := ReadSpeculosResponse(bytes.NewReader(w.writes[0])); err != nil || len(r) != SpeculosMaxResponse {
		t.Fatalf("max reply: %d %v", len(r), err)
	}
}

// A host and a device exchange over a real TCP connection on loopback.
func TestSpeculosOverTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		for {
			apdu, err := ReadSpeculosAPDU(c)
			if errors.Is(err, io.EOF) {
				served <- nil
				return
			}
			if err != nil {
				served <- err
				return
			}
			// Echo the data back after the 5-byte header, status 9000.
			if err := WriteSpeculosResponse(c, apdu[5:], 0x9000); err != nil {
				served <- err
				return
			}
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 100, 255} {
		apdu := append([]byte{0xe0, 0x02, 0, 0, byte(n)}, bytes.Repeat([]byte{byte(n)}, n)...)
		if err := WriteSpeculosAPDU(c, apdu); err != nil {
			t.Fatal(err)
		}
		resp, err := ReadSpeculosResponse(c)
		if err != nil {
			t.Fatal(err)
		}
		if want := append(bytes.Clone(apdu[5:]), 0x90, 0x00); !bytes.Equal(resp, want) {
			t.Fatalf("n=%d: got %x", n, resp)
		}
	}
	c.Close()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}

var speculosSeeds = []string{
	"b001000000",
	"e105000000",
	"e002000015058000002c8000003c800000000000000000000000",
	"f801000000",
}

// FuzzSpeculosAPDU decodes arbitrary command streams (the device side); whatever decodes
// must re-encode to the same bytes.
func FuzzSpeculosAPDU(f *testing.F) {
	for _, s := range speculosSeeds {
		var w countingWriter
		_ = WriteSpeculosAPDU(&w, mustHex(f, s))
		f.Add(w.writes[0])
	}
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		apdu, err := ReadSpeculosAPDU(bytes.NewReader(in))
		if err != nil {
			return
		}
		var w countingWriter
		if err := WriteSpeculosAPDU(&w, apdu); err != nil {
			t.Fatal(err)
		}
		if len(w.writes) != 1 || !bytes.Equal(w.writes[0], in[:4+len(apdu)]) {
			t.Fatalf("re-encoded %x from %x", w.writes, in)
		}
		again, err := ReadSpeculosAPDU(bytes.NewReader(w.writes[0]))
		if err != nil || !bytes.Equal(again, apdu) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// FuzzSpeculosResponse decodes arbitrary reply streams (the host side); whatever decodes
// must re-encode, in one write, to the same bytes.
func FuzzSpeculosResponse(f *testing.F) {
	for _, r := range []struct {
		data string
		sw   uint16
	}{
		{"f5acc2fd", 0x9000},
		{"0107426974636f696e05322e342e360102", 0x9000},
		{"", 0x6985},
		{"", 0x5515},
		{"4000" + "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", 0xe000},
	} {
		var w countingWriter
		_ = WriteSpeculosResponse(&w, mustHex(f, r.data), r.sw)
		f.Add(w.writes[0])
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		resp, err := ReadSpeculosResponse(bytes.NewReader(in))
		if err != nil {
			return
		}
		if len(resp) < 2 {
			t.Fatalf("reply without status word: %x", resp)
		}
		var w countingWriter
		data, sw := resp[:len(resp)-2], uint16(resp[len(resp)-2])<<8|uint16(resp[len(resp)-1])
		if err := WriteSpeculosResponse(&w, data, sw); err != nil {
			t.Fatal(err)
		}
		if len(w.writes) != 1 || !bytes.Equal(w.writes[0], in[:4+len(resp)]) {
			t.Fatalf("re-encoded %x from %x", w.writes, in)
		}
	})
}
