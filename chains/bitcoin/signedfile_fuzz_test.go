package bitcoin_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"testing"

	"github.com/btcsuite/btcd/wire"

	"github.com/hwbridge/hwbridge/chains/bitcoin"
	hwpsbt "github.com/hwbridge/hwbridge/psbt"
)

// FuzzDecodeSigned: whatever file a user imports, DecodeSigned fails cleanly or gives a PSBT
// or transaction that, written back in another encoding, decodes to the same bytes and the
// same plan id.
func FuzzDecodeSigned(f *testing.F) {
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(&wire.TxIn{SignatureScript: []byte{1, 2}, Witness: wire.TxWitness{{3}, {4, 5}}, Sequence: 1})
	tx.AddTxOut(wire.NewTxOut(1000, []byte{0x51}))
	var b bytes.Buffer
	if err := tx.Serialize(&b); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes())
	f.Add([]byte(hex.EncodeToString(b.Bytes()) + "\n"))
	f.Add([]byte(base64.StdEncoding.EncodeToString(b.Bytes())))
	f.Add([]byte("cHNidP8BAA=="))
	f.Add([]byte("70736274ff01000a0200000000000000000000"))
	f.Add([]byte("psbt\xff\x01\x00"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := bitcoin.DecodeSigned(raw)
		if err != nil {
			return
		}
		if (s.PSBT == nil) == (s.Tx == nil) {
			t.Fatalf("decoded %+v: want exactly one of a PSBT and a transaction", s)
		}
		var first []byte
		var again *bitcoin.Signed
		if s.PSBT != nil {
			if first, err = hwpsbt.Encode(s.PSBT); err != nil {
				return // btcd accepts some packets it cannot write back
			}
			again, err = bitcoin.DecodeSigned([]byte(base64.StdEncoding.EncodeToString(first)))
		} else {
			var buf bytes.Buffer
			if err := s.Tx.Serialize(&buf); err != nil {
				t.Fatal(err)
			}
			first = buf.Bytes()
			again, err = bitcoin.DecodeSigned([]byte(hex.EncodeToString(first)))
		}
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if again.PlanID() != s.PlanID() {
			t.Fatalf("plan id %s, then %s", s.PlanID(), again.PlanID())
		}
		var second []byte
		if again.PSBT != nil {
			second, err = hwpsbt.Encode(again.PSBT)
		} else {
			var buf bytes.Buffer
			err = again.Tx.Serialize(&buf)
			second = buf.Bytes()
		}
		if err != nil || !bytes.Equal(first, second) {
			t.Fatalf("round trip differs: %v", err)
		}
	})
}
