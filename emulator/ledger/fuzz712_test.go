package ledgeremu

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/hwbridge/hwbridge/internal/ledgercal"
)

// encodeField712 is the definition parseField712 reads (E0 1A 00 FF).
func encodeField712(f *field712) []byte {
	desc := f.kind
	if len(f.levels) > 0 {
		desc |= 0x80
	}
	if f.size > 0 {
		desc |= 0x40
	}
	b := []byte{desc}
	if f.kind == sol712Custom {
		b = append(append(b, byte(len(f.custom))), f.custom...)
	}
	if f.size > 0 {
		b = append(b, byte(f.size))
	}
	if len(f.levels) > 0 {
		b = append(b, byte(len(f.levels)))
		for _, l := range f.levels {
			if l < 0 {
				b = append(b, 0)
			} else {
				b = append(b, 1, byte(l))
			}
		}
	}
	return append(append(b, byte(len(f.name))), f.name...)
}

func FuzzField712(f *testing.F) {
	for _, fd := range []field712{
		{name: "from", kind: sol712Custom, custom: "Person"},
		{name: "wallets", kind: sol712Address, levels: []int{-1}},
		{name: "amount", kind: sol712Uint, size: 32},
		{name: "flags", kind: sol712Bool, levels: []int{2, -1}},
		{name: "tag", kind: sol712FixBytes, size: 4},
	} {
		f.Add(encodeField712(&fd))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fd, err := parseField712(b)
		if err != nil {
			return
		}
		enc := encodeField712(fd)
		if !bytes.Equal(enc, b) {
			t.Fatalf("round trip %x → %x", b, enc)
		}
		fd2, err := parseField712(enc)
		if err != nil || fd2.typeName() != fd.typeName() || fd2.name != fd.name {
			t.Fatalf("again: %v", err)
		}
	})
}

// mailScript is the E0 1A/1C/0C stream of the EIP-712 Mail example as fuzz records
// (INS P1 P2 data, separated by 0xE0 0xE0).
func mailScript(tb testing.TB) []byte {
	var recs [][]byte
	rec := func(ins, p1, p2 byte, data []byte) { recs = append(recs, append([]byte{ins, p1, p2}, data...)) }
	def := func(name string, fields ...field712) {
		rec(insEthStructDef, 0, 0, []byte(name))
		for _, fd := range fields {
			rec(insEthStructDef, 0, 0xFF, encodeField712(&fd))
		}
	}
	val := func(b []byte) {
		rec(insEthStructImpl, 0, 0xFF, append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...))
	}
	def("EIP712Domain", field712{name: "name", kind: sol712String}, field712{name: "version", kind: sol712String},
		field712{name: "chainId", kind: sol712Uint, size: 32}, field712{name: "verifyingContract", kind: sol712Address})
	def("Mail", field712{name: "from", kind: sol712Custom, custom: "Person"}, field712{name: "to", kind: sol712Custom, custom: "Person"},
		field712{name: "contents", kind: sol712String})
	def("Person", field712{name: "name", kind: sol712String}, field712{name: "wallet", kind: sol712Address})
	rec(insEthStructImpl, 0, 0, []byte("EIP712Domain"))
	val([]byte("Ether Mail"))
	val([]byte("1"))
	val([]byte{1})
	val(common.HexToAddress("0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC").Bytes())
	rec(insEthStructImpl, 0, 0, []byte("Mail"))
	val([]byte("Cow"))
	val(common.HexToAddress("0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826").Bytes())
	val([]byte("Bob"))
	val(common.HexToAddress("0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB").Bytes())
	val([]byte("Hello, Bob!"))
	rec(insEthSignEIP712, 0, 1, pathBytes(tb, "m/44'/60'/0'/0/0"))
	return bytes.Join(recs, []byte{0xE0, 0xE0})
}

// FuzzEIP712Session sends arbitrary struct definitions, implementations, token
// descriptors and signing requests: every APDU is answered and the app works afterwards.
func FuzzEIP712Session(f *testing.F) {
	f.Add(mailScript(f))
	desc, err := ledgercal.SignTest("dUSD", common.Address{1}, 6, 1337)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(append([]byte{insEthProvideERC20, 0, 0}, desc...))
	d := NewForTest(f, Config{App: AppEthereum, VerboseEIP712: true, TrustTestTokenKey: true})
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

// TestMailScript checks the fuzz seed itself signs (so the fuzzer starts from a valid flow).
func TestMailScript(t *testing.T) {
	d := newDevice(t, Config{App: AppEthereum, VerboseEIP712: true})
	c := newTestClient(t, d)
	recs := bytes.Split(mailScript(t), []byte{0xE0, 0xE0})
	for i, rec := range recs {
		data, sw := c.send(claETH, rec[0], rec[1], rec[2], rec[3:])
		if sw != swOK {
			t.Fatalf("record %d (%x): %04x", i, rec[:3], sw)
		}
		if i == len(recs)-1 && len(data) != 65 {
			t.Fatalf("signature of %d bytes", len(data))
		}
	}
}
