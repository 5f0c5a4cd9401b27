package coldcard

import (
	"encoding/binary"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/transport"
)

// FuzzHandle: any request, in clear or encrypted under an established session, gets a reply
// that starts with a 4-byte signature; nothing panics.
func FuzzHandle(f *testing.F) {
	upld := binary.LittleEndian.AppendUint32([]byte("upld"), 0)
	upld = binary.LittleEndian.AppendUint32(upld, 60)
	upld = append(upld, []byte("psbt\xff\x01\x00")...)
	smsg := binary.LittleEndian.AppendUint32([]byte("smsg"), 7)
	smsg = binary.LittleEndian.AppendUint32(smsg, 1)
	smsg = binary.LittleEndian.AppendUint32(smsg, 2)
	smsg = append(smsg, "mhi"...)
	for _, s := range [][]byte{
		[]byte("vers"), []byte("blkc"), []byte("xpubm/84'/0'/0'"), []byte("show\x07\x00\x00\x00m/84h/0h/0h/0/0"),
		upld, []byte("sha2"), []byte("stxn"), []byte("stok"), smsg, []byte("smok"), []byte("dwld\x00\x00\x00\x00\x10\x00\x00\x00\x01\x00\x00\x00"),
		[]byte("ncry\x03\x00\x00\x00"), []byte("mitm"), []byte("ping12"),
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	w, err := emulator.NewWallet(emulator.DefaultMnemonic, "")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, msg []byte, encrypted bool) {
		if len(msg) < 4 {
			return
		}
		d, err := newDevice(w, Options{Chain: "XTN", Approver: emulator.NewApprover(emulator.PolicyReject)})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		var host *transport.ColdcardSession
		if encrypted {
			priv, _ := btcec.NewPrivateKey()
			r, _ := d.Handle(append(binary.LittleEndian.AppendUint32([]byte("ncry"), 1), transport.ColdcardPubKey64(priv.PubKey())...), false)
			key, err := transport.ColdcardSessionKey(priv, r[4:68])
			if err != nil {
				t.Fatal(err)
			}
			host = transport.NewColdcardSession(key)
			msg = host.Seal(msg)
		}
		r, enc := d.Handle(msg, encrypted)
		if enc {
			r = host.Open(r)
		}
		if len(r) < 4 {
			t.Fatalf("reply %q", r)
		}
	})
}

// FuzzParseTx: the PSBT reader behind stxn takes any upload.
func FuzzParseTx(f *testing.F) {
	f.Add([]byte("psbt\xff\x00"))
	f.Add([]byte("psbt\xff\x01\x00\x0a\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	w, err := emulator.NewWallet(emulator.DefaultMnemonic, "")
	if err != nil {
		f.Fatal(err)
	}
	d, _ := New(Options{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		tx, err := parseTx(raw, w, d.net)
		if err != nil {
			return
		}
		_ = tx.screen("XTN")
		_, _ = tx.sign(w, true)
	})
}
