package ur

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

type accountVector struct {
	Mnemonic          string `json:"mnemonic"`
	MasterFingerprint uint32 `json:"master_fingerprint"`
	CBORHex           string `json:"cbor_hex"`
	UR                string `json:"ur"`
}

func loadAccountVector(t testing.TB) *accountVector {
	b, err := os.ReadFile("testdata/bcr-2020-015-account.json")
	if err != nil {
		t.Fatal(err)
	}
	var v accountVector
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return &v
}

// TestAccountVector reads BCR-2020-015's crypto-account and writes it back byte for byte.
func TestAccountVector(t *testing.T) {
	v := loadAccountVector(t)
	u, err := Parse(v.UR)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.EqualFold(hex.EncodeToString(u.CBOR), v.CBORHex) {
		t.Fatalf("UR body %x", u.CBOR)
	}
	a, err := DecodeAccount(u)
	if err != nil {
		t.Fatal(err)
	}
	if a.MasterFingerprint != v.MasterFingerprint || len(a.Outputs) != 7 {
		t.Fatalf("%+v", a)
	}
	want := [][]uint64{{TagPKH}, {TagSH, TagWPKH}, {TagWPKH}, {TagSH}, {TagSH, TagWSH}, {TagWSH}, {TagTR}}
	paths := []string{"44h/0h/0h", "49h/0h/0h", "84h/0h/0h", "45h", "48h/0h/0h/1h", "48h/0h/0h/2h", "86h/0h/0h"}
	for i, o := range a.Outputs {
		if !slices.Equal(o.Scripts, want[i]) || pathString(o.Key.Origin.Path) != paths[i] {
			t.Errorf("output %d: %v %s", i, o.Scripts, pathString(o.Key.Origin.Path))
		}
	}
	if got := AccountUR(a); got.String() != v.UR {
		t.Fatalf("re-encoded:\n%s\nwant\n%s", got, v.UR)
	}
}

func pathString(p []uint32) string {
	var s []string
	for _, i := range p {
		x := strconv.FormatUint(uint64(i&^Hardened), 10)
		if i&Hardened != 0 {
			x += "h"
		}
		s = append(s, x)
	}
	return strings.Join(s, "/")
}

func TestPSBTRoundTrip(t *testing.T) {
	psbt := append([]byte("psbt\xff"), make([]byte, 600)...)
	u := PSBT(psbt)
	if u.Type != TypeCryptoPSBT || u.CBOR[0] != 0x59 { // bstr, two-byte length
		t.Fatalf("%s %x", u.Type, u.CBOR[:3])
	}
	e, err := NewEncoder(u, 100)
	if err != nil {
		t.Fatal(err)
	}
	d := NewDecoder()
	for _, p := range e.Parts(e.SeqLen()) {
		if err := d.Receive(strings.ToUpper(p)); err != nil { // QR codes carry URs upper-cased
			t.Fatal(err)
		}
	}
	got, err := d.Result()
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodePSBT(got)
	if err != nil || !slices.Equal(back, psbt) {
		t.Fatalf("%v", err)
	}
	if _, err := DecodePSBT(UR{Type: "bytes", CBOR: u.CBOR}); !errors.Is(err, ErrRegistry) {
		t.Fatalf("bytes accepted as a PSBT: %v", err)
	}
	if _, err := DecodePSBT(UR{Type: TypePSBT, CBOR: []byte{0x01}}); !errors.Is(err, ErrRegistry) {
		t.Fatalf("an integer accepted as a PSBT: %v", err)
	}
}

// TestPSBTVector is BCR-2020-006's crypto-psbt test vector (testdata/README.md).
func TestPSBTVector(t *testing.T) {
	b, err := os.ReadFile("testdata/bcr-2020-006-crypto-psbt.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		PSBT string `json:"psbt_hex"`
		CBOR string `json:"cbor_hex"`
		UR   string `json:"ur"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	psbt, _ := hex.DecodeString(v.PSBT)
	u := PSBT(psbt)
	if !strings.EqualFold(hex.EncodeToString(u.CBOR), v.CBOR) {
		t.Fatalf("CBOR %x", u.CBOR)
	}
	if u.String() != v.UR {
		t.Fatalf("UR\n%s\nwant\n%s", u, v.UR)
	}
	back, err := Parse(strings.ToUpper(v.UR))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecodePSBT(back); err != nil || !slices.Equal(got, psbt) {
		t.Fatalf("%v", err)
	}
}
