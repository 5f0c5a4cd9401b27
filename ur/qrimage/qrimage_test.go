package qrimage

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hwbridge/hwbridge/ur"
)

// TestPNGSizes: parts of every fragment length from 10 to 400 bytes draw as QR codes that
// read back (go-qrcode alone draws some that ZXing refuses; code retries those).
func TestPNGSizes(t *testing.T) {
	psbt := append([]byte("psbt\xff"), bytes.Repeat([]byte{0xa5, 0x17, 0x00}, 300)...)
	for fl := 10; fl <= 400; fl += 13 {
		e, err := ur.NewEncoder(ur.PSBT(psbt), fl)
		if err != nil {
			t.Fatal(err)
		}
		part := e.NextPart()
		img, err := PNG(part, 3)
		if err != nil {
			t.Fatalf("fragment %d: %v", fl, err)
		}
		if text, err := Decode(bytes.NewReader(img)); err != nil || text != strings.ToUpper(part) {
			t.Fatalf("fragment %d: %v", fl, err)
		}
	}
}

// TestPNGRoundTrip: every part of a multi-part PSBT UR drawn as a PNG reads back as the same
// UR (upper-cased), and the parts decode to the PSBT.
func TestPNGRoundTrip(t *testing.T) {
	psbt := append([]byte("psbt\xff"), bytes.Repeat([]byte{0xa5, 0x17, 0x00}, 150)...)
	e, err := ur.NewEncoder(ur.PSBT(psbt), 0)
	if err != nil {
		t.Fatal(err)
	}
	d := ur.NewDecoder()
	for _, part := range e.Parts(e.SeqLen()) {
		img, err := PNG(part, 4)
		if err != nil {
			t.Fatal(err)
		}
		if !IsImage(img) {
			t.Fatal("not a PNG")
		}
		text, err := Decode(bytes.NewReader(img))
		if err != nil {
			t.Fatal(err)
		}
		if text != strings.ToUpper(part) {
			t.Fatalf("read %q, want %q", text, part)
		}
		if err := d.Receive(text); err != nil {
			t.Fatal(err)
		}
	}
	u, err := d.Result()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ur.DecodePSBT(u); err != nil || !bytes.Equal(got, psbt) {
		t.Fatalf("%v", err)
	}
	term, err := Terminal(e.NextPart())
	if err != nil || strings.Count(term, "\n") < 20 {
		t.Fatalf("terminal QR: %v\n%s", err, term)
	}
}

func TestDecodeRefuses(t *testing.T) {
	if _, err := Decode(strings.NewReader("not an image")); err == nil {
		t.Fatal("text decoded as an image")
	}
	blank, err := PNG("x", 4)
	if err != nil {
		t.Fatal(err)
	}
	// a QR code cut in half
	if _, err := Decode(bytes.NewReader(blank[:len(blank)/2])); err == nil {
		t.Fatal("a truncated PNG decoded")
	}
}

// FuzzDecode: any bytes are read as an image or refused, without panicking.
func FuzzDecode(f *testing.F) {
	img, _ := PNG("UR:BYTES/AEADAOLAZMJENDEOTI", 2)
	f.Add(img)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Decode(bytes.NewReader(b))
	})
}
