package ur

import (
	"bytes"
	"hash/crc32"
	"testing"
)

// FuzzBytewords: any text decodes or is refused; what decodes re-encodes to the same
// bytes.
func FuzzBytewords(f *testing.F) {
	f.Add("aeadaolazmjendeoti", uint8(2))
	f.Add("able acid also lava zoom jade need echo taxi", uint8(0))
	f.Add("able-acid-also-lava-zoom-jade-need-echo-taxi", uint8(1))
	f.Fuzz(func(t *testing.T, s string, style uint8) {
		st := Style(style % 3)
		b, err := DecodeBytewords(st, s)
		if err != nil {
			return
		}
		back, err := DecodeBytewords(st, EncodeBytewords(st, b))
		if err != nil || string(back) != string(b) {
			t.Fatalf("round trip: %x %v", back, err)
		}
	})
}

// FuzzURParts: any sequence of texts fed to a Decoder is accepted or refused without
// panicking, and a completed UR is consistent.
func FuzzURParts(f *testing.F) {
	e, _ := NewEncoder(UR{Type: "bytes", CBOR: makeMessage(120, "Wolf")}, 30)
	ps := e.Parts(8)
	f.Add(ps[0], ps[3], ps[6])
	f.Add("ur:bytes/hdeymejtswhhylkepmykhhtsytsnoyoyaxaedsuttydmmhhpktpmsrjtgwdpfnsboxgwlbaawzuefywkdplrsrjynbvygabwjldapfcsdwkbrkch", "", "")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		d := NewDecoder()
		for _, s := range []string{a, b, c} {
			_ = d.Receive(s)
		}
		if d.Done() {
			if u, err := d.Result(); err == nil && !validType(u.Type) {
				t.Fatalf("type %q", u.Type)
			}
		}
		if u, err := Parse(a); err == nil {
			if back, err := Parse(u.String()); err != nil || string(back.CBOR) != string(u.CBOR) {
				t.Fatalf("single-part round trip: %v", err)
			}
		}
	})
}

// FuzzFountainPart: any CBOR either is a consistent part or is refused; a decoder fed any
// three parts never panics or reports a message of the wrong length or checksum.
func FuzzFountainPart(f *testing.F) {
	e, _ := NewFountainEncoder(makeMessage(256, "Wolf"), 30, 10, 0)
	var ps [][]byte
	for range 12 {
		ps = append(ps, e.NextPart().CBOR())
	}
	f.Add(ps[0], ps[10], ps[11])
	f.Add(ps[3], ps[3], ps[9])
	f.Fuzz(func(t *testing.T, a, b, c []byte) {
		d := NewFountainDecoder()
		var first *Part
		for _, raw := range [][]byte{a, b, c} {
			p, err := ParsePart(raw)
			if err != nil {
				continue
			}
			if first == nil {
				first = p
			}
			_ = d.Receive(p)
		}
		if msg, err := d.Result(); err == nil && msg != nil && (len(msg) != int(first.MessageLen) || crc32.ChecksumIEEE(msg) != first.Checksum) {
			t.Fatalf("a message of %d bytes that does not match its parts' header", len(msg))
		}
	})
}

// FuzzFountainLosses: a message of any length sent in parts, any of which are lost (mask),
// decodes to exactly that message or stays incomplete; never to other bytes.
func FuzzFountainLosses(f *testing.F) {
	f.Add(uint16(300), uint8(20), []byte{0xff, 0x0f, 0xf0, 0xaa})
	f.Add(uint16(5), uint8(1), []byte{0x01})
	f.Fuzz(func(t *testing.T, n uint16, frag uint8, mask []byte) {
		msg := makeMessage(int(n%4000)+1, "loss")
		e, err := NewFountainEncoder(msg, int(frag%200)+10, 10, 0)
		if err != nil {
			t.Fatal(err)
		}
		d := NewFountainDecoder()
		for i := 0; i < 8*len(mask) && !d.Done(); i++ {
			p := e.NextPart()
			if mask[i/8]&(1<<(i%8)) == 0 {
				continue
			}
			if err := d.Receive(p); err != nil {
				t.Fatal(err)
			}
		}
		got, err := d.Result()
		if err != nil {
			t.Fatal(err)
		}
		if got != nil && !bytes.Equal(got, msg) {
			t.Fatalf("decoded other bytes")
		}
	})
}

// FuzzRegistry: any CBOR given as crypto-psbt, crypto-hdkey, crypto-output or
// crypto-account decodes or is refused; decoded accounts re-encode and decode the same.
func FuzzRegistry(f *testing.F) {
	v := loadAccountVector(f)
	u, _ := Parse(v.UR)
	f.Add(u.CBOR)
	f.Add(PSBT([]byte("psbt\xff\x00")).CBOR)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = DecodePSBT(UR{Type: TypeCryptoPSBT, CBOR: b})
		_, _ = DecodeHDKey(UR{Type: TypeCryptoHDKey, CBOR: b})
		_, _ = DecodeOutput(UR{Type: TypeCryptoOutput, CBOR: b})
		a, err := DecodeAccount(UR{Type: TypeCryptoAccount, CBOR: b})
		if err != nil {
			return
		}
		back, err := DecodeAccount(AccountUR(a))
		if err != nil || len(back.Outputs) != len(a.Outputs) || back.MasterFingerprint != a.MasterFingerprint {
			t.Fatalf("account round trip: %v", err)
		}
	})
}
