package ur

import (
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
// parts never panics or reports a message of the wrong length.
func FuzzFountainPart(f *testing.F) {
	e, _ := NewFountainEncoder(makeMessage(256, "Wolf"), 30, 10, 0)
	for range 12 {
		f.Add(e.NextPart().CBOR())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePart(b)
		if err != nil {
			return
		}
		d := NewFountainDecoder()
		_ = d.Receive(p)
		if msg, err := d.Result(); err == nil && msg != nil && len(msg) != int(p.MessageLen) {
			t.Fatalf("message of %d bytes, header says %d", len(msg), p.MessageLen)
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
