package coldcard

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/hwbridge/hwbridge/transport"
)

func ncry(t *testing.T, d *Device, version uint32) *transport.ColdcardSession {
	t.Helper()
	priv, _ := btcec.NewPrivateKey()
	r, enc := d.Handle(append(binary.LittleEndian.AppendUint32([]byte("ncry"), version), transport.ColdcardPubKey64(priv.PubKey())...), false)
	if enc || string(r[:4]) != "mypb" {
		t.Fatalf("ncry v%d: %q", version, r)
	}
	key, err := transport.ColdcardSessionKey(priv, r[4:68])
	if err != nil {
		t.Fatal(err)
	}
	return transport.NewColdcardSession(key)
}

// USB_NCRY_V2 binds the session: requests in clear and a second ncry are framing errors
// (ckcc-protocol tests/test_usb_ncry.py); version 1 may be re-keyed at will.
func TestEncryptionVersions(t *testing.T) {
	d, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	ncry(t, d, 1)
	ncry(t, d, 1)
	if r, _ := d.Handle([]byte("vers"), false); string(r[:4]) != "asci" {
		t.Fatalf("vers in clear after v1: %q", r)
	}
	if r, _ := d.Handle([]byte("xpubm"), false); string(r) != "err_must encrypt" {
		t.Fatalf("xpub in clear: %q", r)
	}
	if r, _ := d.Handle(append(binary.LittleEndian.AppendUint32([]byte("ncry"), 3), make([]byte, 64)...), false); string(r) != "frambad ncry version" {
		t.Fatalf("ncry v3: %q", r)
	}
	s := ncry(t, d, 2)
	// the last request (ncry) was in clear, so is this framing error
	if r, enc := d.Handle([]byte("vers"), false); enc || string(r) != "frammust encrypt" {
		t.Fatalf("vers in clear after v2: %q", r)
	}
	r, enc := d.Handle(s.Seal([]byte("blkc")), true)
	if !enc || string(s.Open(r)) != "asciBTC" {
		t.Fatalf("blkc encrypted: %v", enc)
	}
	r, enc = d.Handle(s.Seal(append(binary.LittleEndian.AppendUint32([]byte("ncry"), 1), make([]byte, 64)...)), true)
	if got := string(s.Open(r)); !enc || got != "framcrypto already set up" {
		t.Fatalf("second ncry after v2: %q %v", got, enc)
	}
	// after an encrypted request, a framing error is encrypted too (stale encrypted_req)
	if r, enc := d.Handle([]byte("vers"), false); !enc || string(s.Open(r)) != "frammust encrypt" {
		t.Fatalf("vers in clear after an encrypted request: %q %v", r, enc)
	}
}

// Uploads must be 256-byte aligned and within the declared size; stxn needs the sha256 of
// what arrived.
func TestUploadChecks(t *testing.T) {
	d, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	up := func(off, total uint32, data []byte) string {
		r, _ := d.Handle(append(binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32([]byte("upld"), off), total), data...), false)
		return string(r)
	}
	data := make([]byte, 300)
	copy(data, "psbt\xff")
	if r := up(0, 300, data[:256]); r != "int1\x00\x00\x00\x00" {
		t.Fatalf("first block: %q", r)
	}
	if r := up(100, 300, data[100:]); r != "err_alignment" {
		t.Fatalf("unaligned: %q", r)
	}
	if r := up(256, 200, data[256:]); r != "err_long" {
		t.Fatalf("past the total: %q", r)
	}
	if r := up(256, 300, data[256:]); r != "int1\x00\x01\x00\x00" {
		t.Fatalf("second block: %q", r)
	}
	sum := sha256.Sum256(data)
	if r, _ := d.Handle([]byte("sha2"), false); string(r[4:]) != string(sum[:]) {
		t.Fatal("sha2 is not the upload's sha256")
	}
	bad := sum
	bad[0] ^= 1
	stxn := append(binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32([]byte("stxn"), 300), 0), bad[:]...)
	if r, _ := d.Handle(stxn, false); string(r) != "err_Checksum" {
		t.Fatalf("stxn with another hash: %q", r)
	}
	stxn = append(binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32([]byte("stxn"), 300), 0), sum[:]...)
	if r, _ := d.Handle(stxn, false); string(r) != "err_PSBT parse failed" {
		t.Fatalf("stxn of a broken psbt: %q", r)
	}
	if r, _ := d.Handle([]byte("stok"), false); string(r) != "err_No active request" {
		t.Fatalf("stok with nothing pending: %q", r)
	}
}
