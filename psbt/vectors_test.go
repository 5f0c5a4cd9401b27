package psbt

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/btcsuite/btcd/wire"
)

type vector struct {
	Case   string `json:"case"`
	Hex    string `json:"hex"`
	Base64 string `json:"base64"`
}

func loadVectors(t testing.TB, name string) []vector {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "vectors", "bip174", name))
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) == 0 {
		t.Fatalf("%s: no vectors", name)
	}
	return vs
}

func TestBIP174Invalid(t *testing.T) {
	for _, v := range loadVectors(t, "invalid.json") {
		t.Run(v.Case, func(t *testing.T) {
			for _, form := range []string{v.Hex, v.Base64} {
				_, err := Decode([]byte(form))
				if err == nil {
					t.Fatalf("accepted an invalid psbt")
				}
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("error %v does not wrap ErrMalformed", err)
				}
			}
		})
	}
}

func TestBIP174Valid(t *testing.T) {
	for _, v := range loadVectors(t, "valid.json") {
		t.Run(v.Case, func(t *testing.T) {
			bin, err := hex.DecodeString(v.Hex)
			if err != nil {
				t.Fatal(err)
			}
			p, err := Decode([]byte(v.Base64))
			if err != nil {
				t.Fatalf("base64: %v", err)
			}
			p2, err := Decode(bin)
			if err != nil {
				t.Fatalf("binary: %v", err)
			}
			out, err := Encode(p)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, bin) {
				t.Fatalf("round trip differs:\n got %x\nwant %x", out, bin)
			}
			if p.UnsignedTx.TxHash() != p2.UnsignedTx.TxHash() {
				t.Fatal("base64 and binary forms decode differently")
			}
			if _, err := Describe(p, nil); err != nil {
				t.Fatalf("describe: %v", err)
			}
		})
	}
}

func TestBIP174SignerChecks(t *testing.T) {
	for _, v := range loadVectors(t, "signer_fail.json") {
		t.Run(v.Case, func(t *testing.T) {
			p, err := Decode([]byte(v.Hex))
			if err != nil {
				t.Fatalf("these parse; the signer refuses them: %v", err)
			}
			if err := CheckInputScripts(p); !errors.Is(err, ErrMismatch) {
				t.Fatalf("CheckInputScripts = %v, want ErrMismatch", err)
			}
		})
	}
}

type workflow struct {
	Creator, Updater, UpdaterSighashAll, Signer1, Signer2, Combined, Finalized, ExtractedTx string
	UnknownA, UnknownB, UnknownCombined                                                     string
}

func loadWorkflow(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "vectors", "bip174", "workflow.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func mustDecode(t *testing.T, h string) []byte {
	t.Helper()
	b, err := hex.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The BIP's role walk-through: combining the two signers' PSBTs gives the combined PSBT,
// finalizing that gives the finalized PSBT, and extracting gives the network transaction.
func TestBIP174Workflow(t *testing.T) {
	w := loadWorkflow(t)
	// "combined" is not in btcd's canonical order (btcd writes partial signatures sorted by
	// key), so it is compared after decoding below rather than byte for byte here.
	for _, k := range []string{"creator", "updater", "updater_sighash_all", "signer1", "signer2", "finalized"} {
		p, err := Decode([]byte(w[k]))
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		out, err := Encode(p)
		if err != nil || !bytes.Equal(out, mustDecode(t, w[k])) {
			t.Fatalf("%s: round trip differs (%v)", k, err)
		}
	}
	s1, _ := Decode([]byte(w["signer1"]))
	s2, _ := Decode([]byte(w["signer2"]))
	c, err := Combine(s1, s2)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	wantC, err := Decode([]byte(w["combined"]))
	if err != nil {
		t.Fatal(err)
	}
	wantB, _ := Encode(wantC)
	if !bytes.Equal(got, wantB) {
		t.Fatalf("combine:\n got %x\nwant %x", got, wantB)
	}
	if err := Finalize(c); err != nil {
		t.Fatal(err)
	}
	got, _ = Encode(c)
	if !bytes.Equal(got, mustDecode(t, w["finalized"])) {
		t.Fatalf("finalize:\n got %x\nwant %s", got, w["finalized"])
	}
	// The BIP's inputs carry non_witness_utxo/witness_utxo, so Extract can run the script
	// engine over the result.
	tx, err := Extract(c)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tx.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(buf.Bytes()) != w["extracted_tx"] {
		t.Fatalf("extract:\n got %x\nwant %s", buf.Bytes(), w["extracted_tx"])
	}
	var want wire.MsgTx
	if err := want.Deserialize(bytes.NewReader(mustDecode(t, w["extracted_tx"]))); err != nil {
		t.Fatal(err)
	}

	ua, _ := Decode([]byte(w["unknown_a"]))
	ub, _ := Decode([]byte(w["unknown_b"]))
	uc, err := Combine(ua, ub)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = Encode(uc)
	if !bytes.Equal(got, mustDecode(t, w["unknown_combined"])) {
		t.Fatalf("combine unknowns:\n got %x\nwant %s", got, w["unknown_combined"])
	}
}

func TestCombineRefusesConflicts(t *testing.T) {
	w := loadWorkflow(t)
	a, _ := Decode([]byte(w["signer1"]))
	other, _ := Decode([]byte(w["unknown_a"]))
	if _, err := Combine(a, other); !errors.Is(err, ErrMismatch) {
		t.Fatalf("combining different transactions: %v", err)
	}
	b, _ := Decode([]byte(w["signer1"]))
	b.Inputs[0].PartialSigs[0].Signature = append([]byte{}, b.Inputs[0].PartialSigs[0].Signature...)
	b.Inputs[0].PartialSigs[0].Signature[10] ^= 1
	if _, err := Combine(a, b); !errors.Is(err, ErrMismatch) {
		t.Fatalf("combining different signatures for one key: %v", err)
	}
}

func TestDecodeRefuses(t *testing.T) {
	for name, in := range map[string][]byte{
		"empty":      nil,
		"space":      []byte("  \n"),
		"not base64": []byte("hello!"),
		"magic only": []byte("psbt\xff"),
		"bad hex":    []byte("70736274ffzz"),
		"huge":       make([]byte, 2*MaxSize+1),
	} {
		if _, err := Decode(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

// FuzzDecode: whatever Decode accepts re-encodes, decodes again and re-encodes to the same
// bytes; nothing panics.
func FuzzDecode(f *testing.F) {
	for _, name := range []string{"valid.json", "invalid.json", "signer_fail.json"} {
		for _, v := range loadVectors(f, name) {
			b, _ := hex.DecodeString(v.Hex)
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := Decode(in)
		if err != nil {
			return
		}
		_, _ = Describe(p, nil)
		b1, err := Encode(p)
		if err != nil {
			return // btcd refuses to serialize some parsed packets (e.g. empty fields)
		}
		p2, err := DecodeBinary(b1)
		if err != nil {
			t.Fatalf("re-encoded psbt does not decode: %v\n%x", err, b1)
		}
		b2, err := Encode(p2)
		if err != nil || !bytes.Equal(b1, b2) {
			t.Fatalf("second round trip differs (%v)", err)
		}
	})
}
