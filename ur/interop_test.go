package ur

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"

	"github.com/hwbridge/hwbridge/internal/peers"
)

// jsPeer runs testdata/js/interop.js with the pinned @ngraveio/bc-ur and
// @keystonehq/bc-ur-registry-btc.
type jsPeer struct {
	t        *testing.T
	nodePath string
	script   string
}

func newJSPeer(t *testing.T) *jsPeer {
	t.Helper()
	dir, err := filepath.Abs("testdata/js")
	if err != nil {
		t.Fatal(err)
	}
	return &jsPeer{t: t, nodePath: peers.NPM(t, dir, "ur-js", "@keystonehq/bc-ur-registry-btc"), script: filepath.Join(dir, "interop.js")}
}

func (p *jsPeer) run(stdin string, args ...string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{p.script}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	if p.nodePath != "" {
		cmd.Env = append(os.Environ(), "NODE_PATH="+p.nodePath)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		p.t.Fatalf("node interop.js %s: %v\n%s%s", args[0], err, out, stderr.Bytes())
	}
	return string(out)
}

// lossy shuffles parts and drops every third one.
func lossy(parts []string, seed uint64) []string {
	rng := rand.New(rand.NewPCG(seed, 7))
	ps := slices.Clone(parts)
	rng.Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
	var out []string
	for i, p := range ps {
		if i%3 != 1 {
			out = append(out, p)
		}
	}
	return out
}

func fakePSBT(n int, seed string) []byte {
	return append([]byte("psbt\xff"), makeMessage(n, seed)...)
}

// TestInteropNPM: the npm libraries decode our parts and we decode theirs, shuffled and with
// a third of them lost; the same message gives the same parts on both sides; crypto-account
// both ways.
func TestInteropNPM(t *testing.T) {
	js := newJSPeer(t)

	t.Run("same parts", func(t *testing.T) {
		msg := makeMessageUR(t, 700) // UR.fromBuffer wraps the message in a CBOR byte string as makeMessageUR does
		theirs := strings.Fields(js.run("", "encode-bytes", hex.EncodeToString(makeMessage(700, "Wolf")), "60", "30"))
		e, err := NewEncoder(msg, 60)
		if err != nil {
			t.Fatal(err)
		}
		if ours := e.Parts(30); !slices.Equal(ours, theirs) {
			t.Fatalf("parts differ:\nours   %q\ntheirs %q", ours[:3], theirs[:3])
		}
	})

	for i, size := range []int{40, 900, 5000} {
		psbt := fakePSBT(size, fmt.Sprint("psbt-", i))
		t.Run(fmt.Sprintf("ours to theirs %d", size), func(t *testing.T) {
			e, err := NewEncoder(PSBT(psbt), 150)
			if err != nil {
				t.Fatal(err)
			}
			parts := lossy(e.Parts(3*e.SeqLen()+3), uint64(i))
			var res struct {
				Type string `json:"type"`
				PSBT string `json:"psbt"`
			}
			if err := json.Unmarshal([]byte(js.run(strings.Join(parts, "\n"), "decode")), &res); err != nil {
				t.Fatal(err)
			}
			if res.Type != TypeCryptoPSBT || res.PSBT != hex.EncodeToString(psbt) {
				t.Fatalf("they decoded %s %.40s…", res.Type, res.PSBT)
			}
		})
		t.Run(fmt.Sprintf("theirs to ours %d", size), func(t *testing.T) {
			n := 3*((size+20)/150+1) + 3
			parts := lossy(strings.Fields(js.run("", "encode-psbt", hex.EncodeToString(psbt), "150", fmt.Sprint(n))), uint64(i+10))
			d := NewDecoder()
			for _, p := range parts {
				if err := d.Receive(p); err != nil {
					t.Fatal(err)
				}
			}
			u, err := d.Result()
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodePSBT(u)
			if err != nil || !bytes.Equal(got, psbt) {
				t.Fatalf("%v", err)
			}
		})
	}

	t.Run("account", func(t *testing.T) {
		master, err := hdkeychain.NewMaster(bytes.Repeat([]byte{7}, 32), &chaincfg.TestNet3Params)
		if err != nil {
			t.Fatal(err)
		}
		mfp := fingerprint(t, master)
		type spec struct {
			Scripts []uint64 `json:"scripts"`
			Key     string   `json:"key"`
			Chain   string   `json:"chain"`
			Path    [][2]any `json:"path"`
			Parent  string   `json:"parent"`
			Testnet bool     `json:"testnet"`
		}
		var acct Account
		var specs []spec
		var xpubs []string
		acct.MasterFingerprint = mfp
		for _, o := range []struct {
			scripts []uint64
			purpose uint32
		}{{[]uint64{TagWPKH}, 84}, {[]uint64{TagSH, TagWPKH}, 49}, {[]uint64{TagPKH}, 44}} {
			path := []uint32{o.purpose | Hardened, 1 | Hardened, Hardened}
			k, parent := master, master
			for _, i := range path {
				parent = k
				if k, err = k.Derive(i); err != nil {
					t.Fatal(err)
				}
			}
			pub, err := k.Neuter()
			if err != nil {
				t.Fatal(err)
			}
			xpubs = append(xpubs, pub.String())
			ec, _ := pub.ECPubKey()
			hk := &HDKey{KeyData: ec.SerializeCompressed(), ChainCode: pub.ChainCode(), Origin: &Keypath{Path: path, Depth: 3}, ParentFingerprint: fingerprint(t, parent), Testnet: true}
			acct.Outputs = append(acct.Outputs, Output{Scripts: o.scripts, Key: hk})
			var pp [][2]any
			for _, i := range path {
				pp = append(pp, [2]any{i &^ Hardened, i&Hardened != 0})
			}
			specs = append(specs, spec{o.scripts, hex.EncodeToString(hk.KeyData), hex.EncodeToString(hk.ChainCode), pp, fmt.Sprintf("%08x", hk.ParentFingerprint), true})
		}
		// ours to theirs
		var res struct {
			Type    string `json:"type"`
			MFP     string `json:"mfp"`
			Outputs []struct {
				Scripts []uint64 `json:"scripts"`
				XPub    string   `json:"xpub"`
				Path    string   `json:"path"`
			} `json:"outputs"`
		}
		if err := json.Unmarshal([]byte(js.run(AccountUR(&acct).String()+"\n", "decode")), &res); err != nil {
			t.Fatal(err)
		}
		if res.Type != TypeCryptoAccount || res.MFP != fmt.Sprintf("%08x", mfp) || len(res.Outputs) != 3 {
			t.Fatalf("%+v", res)
		}
		for i, o := range res.Outputs {
			if !slices.Equal(o.Scripts, acct.Outputs[i].Scripts) || !sameKey(t, o.XPub, xpubs[i]) {
				t.Errorf("output %d: they read %v %s, want %v %s", i, o.Scripts, o.XPub, acct.Outputs[i].Scripts, xpubs[i])
			}
		}
		// theirs to ours
		in, _ := json.Marshal(map[string]any{"mfp": fmt.Sprintf("%08x", mfp), "outputs": specs})
		u, err := Parse(strings.TrimSpace(js.run("", "encode-account", string(in))))
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeAccount(u)
		if err != nil {
			t.Fatal(err)
		}
		if got.MasterFingerprint != mfp || len(got.Outputs) != 3 {
			t.Fatalf("%+v", got)
		}
		for i, o := range got.Outputs {
			w := acct.Outputs[i]
			if !slices.Equal(o.Scripts, w.Scripts) || !bytes.Equal(o.Key.KeyData, w.Key.KeyData) || !bytes.Equal(o.Key.ChainCode, w.Key.ChainCode) ||
				!slices.Equal(o.Key.Origin.Path, w.Key.Origin.Path) || o.Key.ParentFingerprint != w.Key.ParentFingerprint || !o.Key.Testnet {
				t.Errorf("output %d: %+v", i, o.Key)
			}
		}
	})
}

func fingerprint(t *testing.T, k *hdkeychain.ExtendedKey) uint32 {
	pub, err := k.ECPubKey()
	if err != nil {
		t.Fatal(err)
	}
	return binary.BigEndian.Uint32(btcutil.Hash160(pub.SerializeCompressed())[:4])
}

// sameKey compares two serialized extended keys but for their version bytes (Keystone's
// getBip32Key writes xpub whatever the network).
func sameKey(t *testing.T, a, b string) bool {
	ka, err1 := hdkeychain.NewKeyFromString(a)
	kb, err2 := hdkeychain.NewKeyFromString(b)
	if err1 != nil || err2 != nil {
		t.Fatalf("%v %v", err1, err2)
	}
	return ka.Depth() == kb.Depth() && ka.ChildIndex() == kb.ChildIndex() && bytes.Equal(ka.ChainCode(), kb.ChainCode()) &&
		ka.ParentFingerprint() == kb.ParentFingerprint() && fingerprint(t, ka) == fingerprint(t, kb)
}
