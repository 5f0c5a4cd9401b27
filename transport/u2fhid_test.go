package transport

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"testing"
)

// The layouts below are the FIDO U2F HID packet structure worked by hand: channel
// 0xEEEEEEEE, command 0x55 is not a real command but shows where each byte goes; the
// second case crosses into one continuation packet.
func TestU2FPacketsLayout(t *testing.T) {
	const cid = 0xEEEEEEEE
	one, err := U2FPackets(cid, 0xd5, []byte{1, 2, 3, 4})
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 64)
	copy(want, []byte{0xEE, 0xEE, 0xEE, 0xEE, 0xd5, 0x00, 0x04, 1, 2, 3, 4})
	if len(one) != 1 || !bytes.Equal(one[0], want) {
		t.Fatalf("single packet:\n got %x\nwant %x", one, want)
	}

	payload := make([]byte, 65)
	for i := range payload {
		payload[i] = byte(i)
	}
	two, err := U2FPackets(cid, 0xd5, payload)
	if err != nil {
		t.Fatal(err)
	}
	w0 := make([]byte, 64)
	copy(w0, []byte{0xEE, 0xEE, 0xEE, 0xEE, 0xd5, 0x00, 0x41})
	copy(w0[7:], payload[:57])
	w1 := make([]byte, 64)
	copy(w1, []byte{0xEE, 0xEE, 0xEE, 0xEE, 0x00})
	copy(w1[5:], payload[57:])
	if len(two) != 2 || !bytes.Equal(two[0], w0) || !bytes.Equal(two[1], w1) {
		t.Fatalf("two packets:\n got %x\nwant %x %x", two, w0, w1)
	}
}

func TestU2FPacketCounts(t *testing.T) {
	for _, tc := range []struct{ n, pkts int }{{0, 1}, {57, 1}, {58, 2}, {57 + 59, 2}, {57 + 59 + 1, 3}, {U2FMaxMessageSize, 129}} {
		p, err := U2FPackets(U2FBitBox02CID, U2FCmdBitBox02, make([]byte, tc.n))
		if err != nil || len(p) != tc.pkts {
			t.Errorf("%d bytes: %d packets, %v; want %d", tc.n, len(p), err, tc.pkts)
		}
	}
	if _, err := U2FPackets(U2FBitBox02CID, U2FCmdBitBox02, make([]byte, U2FMaxMessageSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized: %v", err)
	}
	if _, err := U2FPackets(U2FBitBox02CID, 0x41, nil); !errors.Is(err, ErrU2FCommand) {
		t.Fatalf("command without the high bit: %v", err)
	}
}

func TestU2FRoundTripStream(t *testing.T) {
	msg := bytes.Repeat([]byte("bitbox02"), 300)
	var stream bytes.Buffer
	if err := WriteU2F(&stream, U2FBitBox02CID, U2FCmdBitBox02, msg); err != nil {
		t.Fatal(err)
	}
	if stream.Len()%U2FPacketSize != 0 {
		t.Fatalf("stream of %d bytes is not whole packets", stream.Len())
	}
	got, err := ReadU2F(&stream, U2FBitBox02CID, U2FCmdBitBox02)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("round trip: %v", err)
	}
}

func TestU2FReaderErrors(t *testing.T) {
	pkts, _ := U2FPackets(U2FBitBox02CID, U2FCmdBitBox02, make([]byte, 200))
	for _, tc := range []struct {
		name   string
		stream [][]byte
		want   error
	}{
		{"short", [][]byte{pkts[0][:63]}, io.ErrUnexpectedEOF},
		{"other channel", [][]byte{mut(pkts[0], 0, 0x01)}, ErrU2FChannel},
		{"other command", [][]byte{mut(pkts[0], 4, U2FCmdError)}, ErrU2FCommand},
		{"continuation first", [][]byte{pkts[1]}, ErrU2FCommand},
		{"skipped sequence", [][]byte{pkts[0], pkts[2]}, ErrU2FSequence},
		{"cut off", [][]byte{pkts[0], pkts[1]}, ErrTruncated},
		{"too long", [][]byte{mut(mut(pkts[0], 5, 0xff), 6, 0xff)}, ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadU2F(bytes.NewReader(bytes.Join(tc.stream, nil)), U2FBitBox02CID, U2FCmdBitBox02)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func mut(p []byte, i int, b byte) []byte {
	q := bytes.Clone(p)
	q[i] = b
	return q
}

// FuzzU2F decodes arbitrary streams; whatever decodes must re-encode to packets that decode
// to the same message.
func FuzzU2F(f *testing.F) {
	for _, n := range []int{0, 4, 57, 58, 300} {
		pkts, _ := U2FPackets(U2FBitBox02CID, U2FCmdBitBox02, bytes.Repeat([]byte{0xab}, n))
		f.Add(bytes.Join(pkts, nil))
	}
	seed, _ := hex.DecodeString("ff00ff00c1000169")
	f.Add(append(seed, make([]byte, 56)...))
	f.Fuzz(func(t *testing.T, stream []byte) {
		msg, err := ReadU2F(bytes.NewReader(stream), U2FBitBox02CID, U2FCmdBitBox02)
		if err != nil {
			return
		}
		var again bytes.Buffer
		if err := WriteU2F(&again, U2FBitBox02CID, U2FCmdBitBox02, msg); err != nil {
			t.Fatal(err)
		}
		msg2, err := ReadU2F(&again, U2FBitBox02CID, U2FCmdBitBox02)
		if err != nil || !bytes.Equal(msg, msg2) {
			t.Fatalf("round trip: %v %x %x", err, msg, msg2)
		}
	})
}
