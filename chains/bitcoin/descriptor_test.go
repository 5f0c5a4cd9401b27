package bitcoin

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil/base58"
	"github.com/btcsuite/btcd/chaincfg"
)

type descVector struct {
	Descriptor string   `json:"descriptor"`
	Scripts    []string `json:"scripts"`
	Note       string   `json:"note"`
}

func loadDescVectors(t *testing.T) map[string]struct{ Valid, Invalid []descVector } {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "vectors", "bip380", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]struct{ Valid, Invalid []descVector }
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestBIP380Checksums(t *testing.T) {
	vs := loadDescVectors(t)["0380"].Valid
	n := 0
	for _, v := range vs {
		if !strings.HasPrefix(v.Descriptor, "raw(") {
			continue
		}
		n++
		body, err := splitChecksum(v.Descriptor, false)
		ok := v.Note == "Valid checksum" || v.Note == "No checksum"
		if ok != (err == nil) {
			t.Errorf("%s (%s): err %v", v.Descriptor, v.Note, err)
		}
		if err == nil && body != "raw(deadbeef)" {
			t.Errorf("%s: body %q", v.Descriptor, body)
		}
	}
	if n != 8 {
		t.Fatalf("%d checksum vectors, want 8", n)
	}
	if sum, _ := DescriptorChecksum("raw(deadbeef)"); sum != "89f8spxm" {
		t.Fatalf("checksum %s", sum)
	}
}

func TestBIP380KeyExpressions(t *testing.T) {
	vs := loadDescVectors(t)["0380"]
	for _, v := range vs.Valid {
		if strings.HasPrefix(v.Descriptor, "raw(") {
			continue
		}
		_, err := parseKey(v.Descriptor, false)
		// hwbridge is watch-only: hardened steps after a public key need a private key.
		if strings.HasSuffix(v.Descriptor, "*h") || strings.HasPrefix(strings.TrimLeft(v.Descriptor, "[deadbf0h/12]"), "xpub") && strings.Contains(v.Descriptor, "/3h") {
			if err == nil || !strings.Contains(err.Error(), "hardened") {
				t.Errorf("%s: %v, want the hardened wildcard refused", v.Note, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %s: %v", v.Note, v.Descriptor, err)
		}
	}
	for _, v := range vs.Invalid {
		if _, err := parseKey(v.Descriptor, false); !errors.Is(err, ErrDescriptor) {
			t.Errorf("%s: %s: accepted (%v)", v.Note, v.Descriptor, err)
		}
	}
}

// supported says whether a vector uses only the descriptor subset hwbridge implements.
func supported(d string) bool {
	for _, p := range []string{"pkh(", "wpkh(", "sh(wpkh(", "wsh(multi(", "wsh(sortedmulti(", "sh(wsh(multi(", "sh(wsh(sortedmulti(", "sh(multi(", "sh(sortedmulti("} {
		if strings.HasPrefix(d, p) {
			return true
		}
	}
	return strings.HasPrefix(d, "tr(") && !strings.Contains(d, ",")
}

func TestBIP38xScripts(t *testing.T) {
	all := loadDescVectors(t)
	ran := 0
	for _, bip := range []string{"0381", "0382", "0383", "0386"} {
		for _, v := range all[bip].Valid {
			if !supported(v.Descriptor) {
				if _, err := ParseDescriptor(v.Descriptor); err == nil {
					t.Errorf("bip-%s: %s: parsed a descriptor outside the supported subset", bip, v.Descriptor)
				}
				continue
			}
			d, err := ParseDescriptor(v.Descriptor)
			if strings.Contains(v.Descriptor, "*'") || strings.Contains(v.Descriptor, "*h") {
				if err == nil {
					t.Errorf("%s: hardened wildcard accepted", v.Descriptor)
				}
				continue
			}
			if err != nil {
				t.Errorf("bip-%s: %s: %v", bip, v.Descriptor, err)
				continue
			}
			for i, want := range v.Scripts {
				s, err := d.Derive(0, uint32(i))
				if err != nil {
					t.Fatalf("%s #%d: %v", v.Descriptor, i, err)
				}
				if got := hex.EncodeToString(s.PkScript); got != want {
					t.Errorf("bip-%s %s #%d:\n got %s\nwant %s", bip, v.Descriptor, i, got, want)
				}
			}
			// The public form parses back to the same scripts.
			d2, err := ParseDescriptor(d.String())
			if err != nil {
				t.Fatalf("%s: reparse %s: %v", v.Descriptor, d.String(), err)
			}
			a, _ := d.Derive(0, 0)
			b, _ := d2.Derive(0, 0)
			if hex.EncodeToString(a.PkScript) != hex.EncodeToString(b.PkScript) {
				t.Errorf("%s: reparsed descriptor derives differently", v.Descriptor)
			}
			ran++
		}
		for _, v := range all[bip].Invalid {
			if _, err := ParseDescriptor(v.Descriptor); err == nil {
				t.Errorf("bip-%s: %s (%s): accepted", bip, v.Descriptor, v.Note)
			}
		}
	}
	if ran < 15 {
		t.Fatalf("only %d vectors ran", ran)
	}
}

func zpubToXpub(t *testing.T, z string) string {
	t.Helper()
	b, ver, err := base58.CheckDecode(z)
	if err != nil {
		t.Fatal(err)
	}
	// CheckDecode splits off the first byte as the version; the BIP-32 version is 4 bytes.
	full := append([]byte{ver}, b...)
	copy(full[:4], chaincfg.MainNetParams.HDPublicKeyID[:])
	return base58.CheckEncode(full[1:], full[0])
}

func TestBIP84And86Addresses(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "vectors", "bip84_86.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vs map[string]struct {
		ZPub, XPub, Path string
		Receive, Change  []string
	}
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	for name, v := range vs {
		xpub, kind := v.XPub, "tr"
		if v.ZPub != "" {
			xpub, kind = zpubToXpub(t, v.ZPub), "wpkh"
		}
		d, err := ParseDescriptor(kind + "([73c5da0a/" + v.Path + "]" + xpub + "/<0;1>/*)")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for branch, addrs := range [][]string{v.Receive, v.Change} {
			for i, want := range addrs {
				a, err := d.Address(uint32(branch), uint32(i), &chaincfg.MainNetParams)
				if err != nil {
					t.Fatal(err)
				}
				if a.EncodeAddress() != want {
					t.Errorf("%s %d/%d: %s, want %s", name, branch, i, a, want)
				}
			}
		}
		// Derivations name the key the way devices do, and OwnsScript accepts them.
		s, _ := d.Derive(1, 0)
		b32, tap := s.PSBTDerivations(d.Kind)
		if err := d.OwnsScript(s.PkScript, b32, tap); err != nil {
			t.Errorf("%s: OwnsScript of its own change: %v", name, err)
		}
		other, _ := d.Derive(0, 1)
		if err := d.OwnsScript(other.PkScript, b32, tap); err == nil {
			t.Errorf("%s: OwnsScript accepted a script for another derivation", name)
		}
		if !strings.Contains(d.String(), "#") {
			t.Errorf("no checksum in %s", d)
		}
	}
}

func TestDecodeAddressNetwork(t *testing.T) {
	if _, err := DecodeAddress("bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", &chaincfg.RegressionNetParams); !errors.Is(err, ErrAddress) {
		t.Fatalf("mainnet address on regtest: %v", err)
	}
	if _, err := DecodeAddress("bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", &chaincfg.MainNetParams); err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeAddress("tb1q6rz28mcfaxtmd6v789l9rrlrusdprr9pqcpvkl", &chaincfg.RegressionNetParams); !errors.Is(err, ErrAddress) {
		t.Fatalf("testnet bech32 on regtest: %v", err)
	}
}
