package ledger

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Vectors of /work/shared/protocols/ledger.md §8.1 and §5.3 (abandon×11 about).
const (
	vecXPub84     = "xpub6CatWdiZiodmUeTDp8LT5or8nmbKNcuyvz7WyksVFkKB4RHwCD3XyuvPEbvqAQY3rAPshWcMLoP2fMFMKHPJ4ZeZXYVUhLv1VMrjPC7PW6V"
	vecWPKHPolicy = "02000bc8974a0d8bdd29024b2ddb7a7fe8df1d9801b270f4e6c1e7e1011ae39e7c9b0001fac4ff3981317caa5a3a3d56d7401a7c97e9cdf03f8a77038b7a10a9dde46244"
	vecWPKHID     = "ad9de30bf97a12adf70b45ece3890a8f1861c317f478ab3a80acdb59902252d4"
)

func TestDefaultPolicyVector(t *testing.T) {
	pol, err := DefaultPolicy(84, 0x73c5da0a, hdpath.MustParse("m/84'/0'/0'"), vecXPub84)
	if err != nil {
		t.Fatal(err)
	}
	if want := "[73c5da0a/84'/0'/0']" + vecXPub84; pol.Keys[0] != want {
		t.Errorf("key %s, want %s", pol.Keys[0], want)
	}
	if got := hex.EncodeToString(SerializePolicy(pol)); got != vecWPKHPolicy {
		t.Errorf("serialized %s\nwant       %s", got, vecWPKHPolicy)
	}
	if id := PolicyID(pol); hex.EncodeToString(id[:]) != vecWPKHID {
		t.Errorf("wallet id %x, want %s", id, vecWPKHID)
	}
	if _, err := DefaultPolicy(48, 1, nil, vecXPub84); err == nil {
		t.Error("default policy for purpose 48")
	}
}

func TestMerkleCheckValue(t *testing.T) {
	// The keys root of a minimal PSBTv2 global map (keys 02,03,04,05,fb).
	var keys [][32]byte
	for _, k := range []byte{0x02, 0x03, 0x04, 0x05, 0xfb} {
		keys = append(keys, leafHash([]byte{k}))
	}
	root := newMerkleTree(keys).Root()
	if got := hex.EncodeToString(root[:]); got != "519b38dae74447b72151f354cb138ca3591a5ff8ac813289b18a004e31321620" {
		t.Errorf("keys root %s", got)
	}
}

func TestMerkleTree(t *testing.T) {
	if newMerkleTree(nil).Root() != [32]byte{} {
		t.Error("empty root is not zero")
	}
	one := leafHash([]byte("a"))
	if newMerkleTree([][32]byte{one}).Root() != one {
		t.Error("one-leaf root is not the leaf")
	}
	for n := 1; n <= 40; n++ {
		var leaves [][32]byte
		for i := range n {
			leaves = append(leaves, leafHash([]byte{byte(i), byte(n)}))
		}
		tr := newMerkleTree(leaves)
		// The root by the spec's recursive definition.
		var root func(l [][32]byte) [32]byte
		root = func(l [][32]byte) [32]byte {
			if len(l) == 1 {
				return l[0]
			}
			k := splitPoint(len(l))
			return nodeHash(root(l[:k]), root(l[k:]))
		}
		if tr.Root() != root(leaves) {
			t.Fatalf("n=%d: root differs", n)
		}
		for i := range n {
			p, ok := tr.Proof(i)
			if !ok || !verifyProof(tr.Root(), leaves[i], n, i, p) {
				t.Fatalf("n=%d i=%d: proof does not verify", n, i)
			}
			if n > 1 && verifyProof(tr.Root(), leaves[(i+1)%n], n, i, p) {
				t.Fatalf("n=%d i=%d: proof verifies another leaf", n, i)
			}
		}
		if _, ok := tr.Proof(n); ok {
			t.Fatalf("n=%d: proof past the end", n)
		}
	}
	if splitPoint(2) != 1 || splitPoint(3) != 2 || splitPoint(4) != 2 || splitPoint(5) != 4 || splitPoint(9) != 8 {
		t.Error("split point is not the largest power of two below n")
	}
}

func TestKeyInfo(t *testing.T) {
	got := KeyInfo(device.Fingerprint(0xF5ACC2FD), hdpath.MustParse("m/48'/1'/0'/2'"), "tpubX")
	if got != "[f5acc2fd/48'/1'/0'/2']tpubX" {
		t.Errorf("key info %s", got)
	}
}

func TestCommandEncoding(t *testing.T) {
	eth := hdpath.MustParse("m/44'/60'/0'/0/0")
	pb, err := encodePath(eth)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cmd  command
		want string
	}{
		{"get app and version", command{cla: claOS, ins: insAppInfo}, "b001000000"},
		{"eth app configuration", command{cla: claETH, ins: insEthConfig}, "e006000000"},
		{"eth address silent", command{cla: claETH, ins: insEthAddress, data: pb}, "e002000015058000002c8000003c800000000000000000000000"},
		{"eth address display", command{cla: claETH, ins: insEthAddress, p1: p1EthDisplay, data: pb}, "e002010015058000002c8000003c800000000000000000000000"},
		{"btc fingerprint", btcCommand(insFingerprint, nil), "e105000100"},
		{"btc xpub", btcCommand(insGetXPub, append([]byte{0}, mustPath(t, "m/44'/1'/0'")...)), "e10000010e00038000002c8000000180000000"},
		{"open app", command{cla: claDashboard, ins: insOpenApp, data: []byte("Bitcoin Test")}, "e0d800000c" + hex.EncodeToString([]byte("Bitcoin Test"))},
	}
	for _, tt := range tests {
		got, err := tt.cmd.encode()
		if err != nil {
			t.Fatal(err)
		}
		if hex.EncodeToString(got) != tt.want {
			t.Errorf("%s: %x, want %s", tt.name, got, tt.want)
		}
	}
	if _, err := (command{data: make([]byte, 256)}).encode(); err == nil {
		t.Error("256 data bytes encoded")
	}
	if _, err := encodePath(make(hdpath.Path, 11)); err == nil {
		t.Error("11-step path encoded")
	}
}

func mustPath(t *testing.T, s string) []byte {
	b, err := encodePath(hdpath.MustParse(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseAppInfo(t *testing.T) {
	tests := []struct {
		hex  string
		want appInfo
		ok   bool
	}{
		{"0105424f4c4f5305322e322e33", appInfo{Name: "BOLOS", Version: "2.2.3"}, true},
		{"0105424f4c4f5305322e322e330102", appInfo{Name: "BOLOS", Version: "2.2.3", Flags: []byte{2}}, true},
		{"010c426974636f696e205465737405322e342e360100", appInfo{Name: "Bitcoin Test", Version: "2.4.6", Flags: []byte{0}}, true},
		{"0205424f4c4f5305322e322e33", appInfo{}, false},
		{"0105424f4c4f", appInfo{}, false},
		{"", appInfo{}, false},
	}
	for _, tt := range tests {
		b, _ := hex.DecodeString(tt.hex)
		got, err := parseAppInfo(b)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err %v", tt.hex, err)
			continue
		}
		if tt.ok && (got.Name != tt.want.Name || got.Version != tt.want.Version || !bytes.Equal(got.Flags, tt.want.Flags)) {
			t.Errorf("%s: %+v, want %+v", tt.hex, got, tt.want)
		}
	}
}

func TestParseVersion(t *testing.T) {
	for _, tt := range []struct {
		v    string
		want [3]int
		ok   bool
	}{{"2.4.6", [3]int{2, 4, 6}, true}, {"1.23.0-dev", [3]int{1, 23, 0}, true}, {"2.1", [3]int{}, false}, {"x.1.2", [3]int{}, false}} {
		got, ok := parseVersion(tt.v)
		if ok != tt.ok || got != tt.want {
			t.Errorf("%s: %v %v", tt.v, got, ok)
		}
	}
	if !versionLess([3]int{2, 0, 9}, minBitcoinVersion) || versionLess([3]int{2, 1, 0}, minBitcoinVersion) {
		t.Error("version order")
	}
}
