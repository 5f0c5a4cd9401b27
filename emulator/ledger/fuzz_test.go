package ledgeremu

// Round-trip fuzz targets for every decoder of host bytes: decode, re-encode, decode again
// and compare (STYLE rule 8). Seeds come from the vectors used in the other tests.

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/ethereum/go-ethereum/rlp"
)

func FuzzParseAPDU(f *testing.F) {
	for _, s := range []string{"b001000000", "e1050001", "e100000116000580000054800000008000000000000000000000000", "f80100000100", "e0d8000008426974636f696e"} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAPDU(b)
		if err != nil {
			return
		}
		enc, err := a.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		b2, err := ParseAPDU(enc)
		if err != nil || a.CLA != b2.CLA || a.INS != b2.INS || a.P1 != b2.P1 || a.P2 != b2.P2 || !bytes.Equal(a.Data, b2.Data) {
			t.Fatalf("round trip %x → %x: %v", b, enc, err)
		}
	})
}

func FuzzVarint(f *testing.F) {
	for _, s := range []string{"00", "fc", "fdfd00", "fe00000100", "ff0000000001000000"} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, _, err := readVarint(b)
		if err != nil {
			return
		}
		enc := appendVarint(nil, v)
		v2, n2, err := readVarint(enc)
		if err != nil || v2 != v || n2 != len(enc) {
			t.Fatalf("varint %d: %x", v, enc)
		}
	})
}

// encodePolicyHeader is the serialization parseSerializedPolicy reads.
func encodePolicyHeader(p *walletPolicy) []byte {
	out := []byte{p.version, byte(len(p.name))}
	out = append(out, p.name...)
	out = appendVarint(out, uint64(p.tmplLen))
	if p.version == 1 {
		out = append(out, p.template...)
	} else {
		out = append(out, p.tmplHash[:]...)
	}
	out = appendVarint(out, uint64(p.nKeys))
	return append(out, p.keysRoot[:]...)
}

func FuzzSerializedPolicy(f *testing.F) {
	f.Add(unhex(f, "02000bc8974a0d8bdd29024b2ddb7a7fe8df1d9801b270f4e6c1e7e1011ae39e7c9b0001fac4ff3981317caa5a3a3d56d7401a7c97e9cdf03f8a77038b7a10a9dde46244"))
	f.Add(testPolicy{name: "Cold 2of3", template: "wsh(sortedmulti(2,@0/**,@1/**,@2/**))", keys: []string{"a", "b", "c"}}.serialize())
	f.Add(append(append([]byte{1, 4}, "name"...), append([]byte{7}, "pkh(@0)"...)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseSerializedPolicy(b)
		if err != nil {
			return
		}
		enc := encodePolicyHeader(p)
		p2, err := parseSerializedPolicy(enc)
		if err != nil {
			t.Fatalf("re-parse %x: %v", enc, err)
		}
		if p.id != sha256Array(b) || !reflect.DeepEqual(withoutID(p), withoutID(p2)) {
			t.Fatalf("round trip %+v != %+v", p, p2)
		}
	})
}

func sha256Array(b []byte) [32]byte {
	var out [32]byte
	copy(out[:], sha256Sum(b))
	return out
}

func withoutID(p *walletPolicy) walletPolicy {
	q := *p
	q.id = [32]byte{}
	return q
}

func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"wpkh(@0/**)", "tr(@0/**)", "pkh(@0/<2;3>/*)", "sh(wpkh(@0/**))", "wsh(sortedmulti(2,@0/**,@1/**,@2/**))",
		"sh(wsh(multi(1,@0/<0;1>/*,@1/**)))", "sh(multi(2,@0,@1))", "tr(@0/**,pk(@1/**))"} {
		f.Add(s, s == "sh(multi(2,@0,@1))")
	}
	f.Fuzz(func(t *testing.T, s string, v1 bool) {
		version := byte(2)
		if v1 {
			version = 1
		}
		n, err := parseTemplate(s, version)
		if err != nil {
			return
		}
		out := n.format(v1)
		n2, err := parseTemplate(out, version)
		if err != nil || !reflect.DeepEqual(n, n2) {
			t.Fatalf("%q → %q: %v", s, out, err)
		}
	})
}

// formatKeyInfo prints key information the way the app expects it.
func formatKeyInfo(k keyInfo, version byte) string {
	var b strings.Builder
	if k.hasOrigin {
		b.WriteString("[" + hex.EncodeToString(binary.BigEndian.AppendUint32(nil, k.fpr)))
		for _, s := range k.origin {
			b.WriteString("/" + strconv.FormatUint(uint64(s&^hardened), 10))
			if s >= hardened {
				b.WriteString("'")
			}
		}
		b.WriteString("]")
	}
	b.WriteString(k.xpub.String())
	if version == 1 {
		b.WriteString("/**")
	}
	return b.String()
}

func FuzzKeyInfo(f *testing.F) {
	f.Add("[73c5da0a/84'/0'/0']"+vecXpub84, false)
	f.Add(vecXpub84+"/**", true)
	f.Add("[f5acc2fd/48'/1'/0'/2']tpubDFAqEGNyad35aBCKUAXbQGDjdVhNueno5ZZVEn3sQbW5ci457gLR7HyTmHBg93oourBssgUxuWz1jX5uhc1qaqFo9VsybY1J5FuedLfm4dK", false)
	f.Fuzz(func(t *testing.T, s string, v1 bool) {
		version := byte(2)
		if v1 {
			version = 1
		}
		for _, net := range []*chaincfg.Params{&chaincfg.MainNetParams, &chaincfg.TestNet3Params} {
			app := &btcApp{net: net}
			k, err := parseKeyInfo(s, version, app)
			if err != nil {
				continue
			}
			out := formatKeyInfo(k, version)
			k2, err := parseKeyInfo(out, version, app)
			if err != nil || k.fpr != k2.fpr || !reflect.DeepEqual(k.origin, k2.origin) || !bytes.Equal(k.pubkey, k2.pubkey) || k.hasOrigin != k2.hasOrigin {
				t.Fatalf("%q → %q: %v", s, out, err)
			}
		}
	})
}

func FuzzDerivation(f *testing.F) {
	f.Add(unhex(f, "73c5da0a5400008000000080000000800000000000000000"), false)
	f.Add(unhex(f, "0073c5da0a5600008000000080000000800000000000000000"), true)
	f.Fuzz(func(t *testing.T, b []byte, tap bool) {
		d, ok := parseDerivation(b, tap)
		if !ok {
			return
		}
		var enc []byte
		if tap {
			enc = []byte{0}
		}
		enc = binary.BigEndian.AppendUint32(enc, d.fpr)
		for _, s := range d.path {
			enc = binary.LittleEndian.AppendUint32(enc, s)
		}
		d2, ok := parseDerivation(enc, tap)
		if !ok || !reflect.DeepEqual(d, d2) {
			t.Fatalf("%x → %x", b, enc)
		}
	})
}

// encodeEthTx re-encodes the fields the device reads (access lists come back empty).
func encodeEthTx(tx *ethTx) ([]byte, error) {
	to := tx.to
	switch tx.typ {
	case 0:
		f := []any{tx.nonce, tx.gasPrice, tx.gas, to, tx.value, tx.data}
		if tx.hasChain {
			f = append(f, tx.chainID, uint(0), uint(0))
		}
		return rlp.EncodeToBytes(f)
	case 1:
		b, err := rlp.EncodeToBytes([]any{tx.chainID, tx.nonce, tx.gasPrice, tx.gas, to, tx.value, tx.data, []any{}})
		return append([]byte{1}, b...), err
	}
	b, err := rlp.EncodeToBytes([]any{tx.chainID, tx.nonce, tx.tip, tx.gasPrice, tx.gas, to, tx.value, tx.data, []any{}})
	return append([]byte{2}, b...), err
}

func FuzzDecodeEthTx(f *testing.F) {
	for _, s := range []string{vecEth1559Tx, vecEthLegTx, "01e5018085012a05f20082520894000000000000000000000000000000000000dead0180c0", "e68085012a05f20082520894000000000000000000000000000000000000dead0180"} {
		f.Add(unhex(f, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 || (b[0] <= 0x7F && b[0] != 1 && b[0] != 2) {
			return
		}
		tx, err := decodeEthTx(b)
		if err != nil {
			return
		}
		enc, err := encodeEthTx(tx)
		if err != nil {
			t.Fatal(err)
		}
		tx2, err := decodeEthTx(enc)
		if err != nil {
			t.Fatalf("re-decode %x: %v", enc, err)
		}
		if !reflect.DeepEqual(norm(tx), norm(tx2)) {
			t.Fatalf("round trip %x → %x", b, enc)
		}
	})
}

// norm makes empty and nil byte fields and big ints compare equal.
func norm(t *ethTx) ethTx {
	n := *t
	for _, p := range []*[]byte{&n.chainID, &n.nonce, &n.to, &n.data} {
		if len(*p) == 0 {
			*p = nil
		}
	}
	for _, p := range []**big.Int{&n.gasPrice, &n.tip, &n.gas, &n.value} {
		if *p != nil {
			*p = new(big.Int).Set(*p)
			(*p).Abs(*p)
		}
	}
	return n
}

// FuzzBitcoinSession drives the Bitcoin app with an arbitrary command and arbitrary answers
// to its client commands (answers separated by 0xF8 0xF8): whatever the host sends, the
// device answers with a status word and never crashes; its state is sane afterwards.
func FuzzBitcoinSession(f *testing.F) {
	pol := testPolicy{template: "wpkh(@0/**)", keys: []string{"[73c5da0a/84'/0'/0']" + vecXpub84}}
	id := pol.id()
	addr := append(append([]byte{0}, id[:]...), make([]byte, 32)...)
	addr = append(addr, 0, 0, 0, 0, 0)
	ser := pol.serialize()
	pre := append(appendVarint(nil, uint64(len(ser))), byte(len(ser)))
	f.Add(byte(insGetWalletAddress), addr, append(pre, ser...))
	f.Add(byte(insSignMessage), append(pathBytes(f, "m/84'/0'/0'/0/0"), append([]byte{5}, make([]byte, 32)...)...), []byte{0x05, 0x05, 'h', 'e', 'l', 'l', 'o'})
	f.Add(byte(insRegisterWallet), append(appendVarint(nil, uint64(len(ser))), ser...), []byte{})
	f.Add(byte(insSignPSBT), make([]byte, 200), []byte{1, 0})
	d := NewForTest(f, Config{})
	f.Fuzz(func(t *testing.T, ins byte, data, answers []byte) {
		if len(data) > MaxAPDUData {
			data = data[:MaxAPDUData]
		}
		c := newTestClient(t, d)
		chunks := bytes.Split(answers, []byte{0xF8, 0xF8})
		_, sw := c.send(claBTC, ins, 0, 1, data)
		for i := 0; sw == swInterrupted; i++ {
			ans := []byte{}
			if i < len(chunks) {
				ans = chunks[i]
			}
			if len(ans) > MaxAPDUData {
				ans = ans[:MaxAPDUData]
			}
			if i > 64 {
				// Give up like a host would: any other APDU aborts the command.
				if _, sw = c.send(claBTC, insGetMasterFpr, 0, 1, nil); sw != swIncorrectData {
					t.Fatalf("abort: %04x", sw)
				}
				break
			}
			_, sw = c.send(claFramework, insContinue, 0, 0, ans)
		}
		c.mustOK(claBTC, insGetMasterFpr, 0, 1, nil)
	})
}

// FuzzEthereumSession sends arbitrary Ethereum app APDUs (records separated by 0xE0 0xE0:
// INS P1 P2 data…): every one is answered, and the app still works afterwards.
func FuzzEthereumSession(f *testing.F) {
	tx := append(append([]byte{insEthSignTx, 0, 0}, pathBytes(f, "m/44'/60'/0'/0/0")...), unhex(f, vecEth1559Tx)[:20]...)
	more := append([]byte{insEthSignTx, 0x80, 0}, unhex(f, vecEth1559Tx)[20:]...)
	f.Add(bytes.Join([][]byte{tx, more}, []byte{0xE0, 0xE0}))
	f.Add(append([]byte{insEthSignPersonal, 0, 0}, append(pathBytes(f, "m/44'/60'/0'/0/0"), 0, 0, 0, 2, 'h', 'i')...))
	f.Add(append([]byte{insEthSignEIP712, 0, 0}, append(pathBytes(f, "m/44'/60'/0'/0/0"), make([]byte, 64)...)...))
	d := NewForTest(f, Config{App: AppEthereum, BlindSigning: true})
	f.Fuzz(func(t *testing.T, script []byte) {
		c := newTestClient(t, d)
		for _, rec := range bytes.Split(script, []byte{0xE0, 0xE0}) {
			if len(rec) < 3 {
				continue
			}
			data := rec[3:]
			if len(data) > MaxAPDUData {
				data = data[:MaxAPDUData]
			}
			c.send(claETH, rec[0], rec[1], rec[2], data)
		}
		if got := c.mustOK(claETH, insEthGetConfig, 0, 0, nil); len(got) != 4 {
			t.Fatalf("config %x", got)
		}
	})
}
