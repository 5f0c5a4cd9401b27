package ethereum

import (
	"context"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/hwbridge/hwbridge/internal/hdpath"
)

func TestParseAddress(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr string
	}{
		{"0x9858EfFD232B4033E47d90003D41EC34EcaEda94", "0x9858EfFD232B4033E47d90003D41EC34EcaEda94", ""},
		{"0x9858effd232b4033e47d90003d41ec34ecaeda94", "0x9858EfFD232B4033E47d90003D41EC34EcaEda94", ""}, // no checksum
		{"0X9858EFFD232B4033E47D90003D41EC34ECAEDA94", "0x9858EfFD232B4033E47d90003D41EC34EcaEda94", ""}, // no checksum
		// EIP-55's own examples
		{"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", ""},
		{"0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359", "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359", ""},
		{"0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB", "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB", ""},
		{"0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb", "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb", ""},
		{"0x9858EfFD232B4033E47d90003D41EC34EcaEda95", "", "fails its EIP-55 checksum"},
		{"0x9858efFD232B4033E47d90003D41EC34EcaEda94", "", "did you mean 0x9858EfFD232B4033E47d90003D41EC34EcaEda94"},
		{"9858EfFD232B4033E47d90003D41EC34EcaEda94", "", "want 0x followed by 40 hex digits"},
		{"0x9858EfFD232B4033E47d90003D41EC34EcaEda9", "", "39 hex digits"},
		{"0x9858EfFD232B4033E47d90003D41EC34EcaEdaZZ", "", "not hexadecimal"},
		{"0x0000000000000000000000000000000000000000", "", "zero address"},
		{"", "", "want 0x"},
		{"vitalik.eth", "", "want 0x"},
	}
	for _, tt := range tests {
		a, err := ParseAddress(tt.in)
		if tt.wantErr != "" {
			if !errors.Is(err, ErrInvalidAddress) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseAddress(%q) = %v, want error containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || a.Hex() != tt.want {
			t.Errorf("ParseAddress(%q) = %s, %v; want %s", tt.in, a.Hex(), err, tt.want)
		}
	}
}

func TestParseUnits(t *testing.T) {
	tests := []struct {
		in       string
		decimals uint8
		want     string
		err      error
	}{
		{"1", 18, "1000000000000000000", nil},
		{"1.5", 18, "1500000000000000000", nil},
		{"0.000000000000000001", 18, "1", nil},
		{"1.000000000000000000000", 18, "1000000000000000000", nil}, // trailing zeros past 18 are exact
		{"12.345678", 6, "12345678", nil},
		{"0.1", 6, "100000", nil},
		{"1000000", 6, "1000000000000", nil},
		{"0", 6, "0", nil},
		{"007", 0, "7", nil},
		{"1.0000001", 6, "", ErrTooManyDecimals},
		{"0.0000000000000000001", 18, "", ErrTooManyDecimals},
		{"1.5", 0, "", ErrTooManyDecimals},
		{"", 6, "", ErrInvalidAmount},
		{"-1", 6, "", ErrInvalidAmount},
		{"+1", 6, "", ErrInvalidAmount},
		{"1e6", 6, "", ErrInvalidAmount},
		{".5", 6, "", ErrInvalidAmount},
		{"5.", 6, "", ErrInvalidAmount},
		{"1.2.3", 6, "", ErrInvalidAmount},
		{"1,5", 6, "", ErrInvalidAmount},
		{" 1", 6, "", ErrInvalidAmount},
		{"0x10", 6, "", ErrInvalidAmount},
		{"NaN", 6, "", ErrInvalidAmount},
		{strings.Repeat("9", 78), 0, "", ErrInvalidAmount}, // > 2^256
	}
	for _, tt := range tests {
		v, err := ParseUnits(tt.in, tt.decimals)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("ParseUnits(%q, %d) = %v, %v; want %v", tt.in, tt.decimals, v, err, tt.err)
			}
			continue
		}
		if err != nil || v.String() != tt.want {
			t.Errorf("ParseUnits(%q, %d) = %v, %v; want %s", tt.in, tt.decimals, v, err, tt.want)
		}
	}
	_, err := ParseUnits("1.0000001", 6)
	if !strings.Contains(err.Error(), "7 decimal places") {
		t.Errorf("message %q should say how many places", err)
	}
}

// TestParseHostileUnits: inputs that must never become an amount, for ETH, gwei and a
// 6-decimal token alike.
func TestParseHostileUnits(t *testing.T) {
	hostile := []string{"", "-1", "+1", "-0", "1e18", "1E-18", "0x10", ".5", "5.", ".", "1.2.3", "1,5", "1_000",
		" 1", "1 ", "1\n", "NaN", "Inf", "1/2", "١", "１", "½", "1\x00",
		"115792089237316195423570985008687907853269984665640564039457584007913129639936", // 2^256
		strings.Repeat("9", 161)}
	for _, s := range hostile {
		for _, parse := range []func(string) (*big.Int, error){ParseEther, ParseGwei, func(s string) (*big.Int, error) { return ParseUnits(s, 6) }} {
			if v, err := parse(s); !errors.Is(err, ErrInvalidAmount) {
				t.Errorf("parse(%q) = %v, %v; want ErrInvalidAmount", s, v, err)
			}
		}
	}
	for _, s := range []string{"0.0000000000000000001", "1.000000000000000000"} {
		if v, err := ParseEther(s + "1"); !errors.Is(err, ErrTooManyDecimals) {
			t.Errorf("ParseEther(%q) = %v, %v; want ErrTooManyDecimals", s+"1", v, err)
		}
	}
	if v, err := ParseUnits("115792089237316195423570985008687907853269984665640564039457584007913129639935", 0); err != nil || v.BitLen() != 256 {
		t.Errorf("2^256-1 = %v, %v", v, err)
	}
	for _, c := range []struct {
		in string
		ok bool
	}{{"1", true}, {"18446744073709551615", true}, {"18446744073709551616", false}, {"0", false}, {"-1", false}, {"0x1", false}, {"1.0", false}, {"", false}} {
		if _, err := ParseChainID(c.in); (err == nil) != c.ok {
			t.Errorf("ParseChainID(%q): %v", c.in, err)
		}
	}
}

func TestFormatUnits(t *testing.T) {
	for _, tt := range []struct {
		v    int64
		d    uint8
		want string
	}{{0, 6, "0"}, {1, 6, "0.000001"}, {1500000, 6, "1.5"}, {42, 0, "42"}, {-2500, 3, "-2.5"}, {1000000, 6, "1"}} {
		if got := FormatUnits(big.NewInt(tt.v), tt.d); got != tt.want {
			t.Errorf("FormatUnits(%d, %d) = %q, want %q", tt.v, tt.d, got, tt.want)
		}
	}
}

func FuzzParseUnits(f *testing.F) {
	for _, s := range []string{"1", "1.5", "0.000001", "12.345678", "1.0000001", "", "1e6", "00.10"} {
		f.Add(s, uint8(6))
	}
	f.Fuzz(func(t *testing.T, s string, d uint8) {
		v, err := ParseUnits(s, d)
		if err != nil {
			return
		}
		if v.Sign() < 0 || v.BitLen() > 256 {
			t.Fatalf("ParseUnits(%q) = %v: not a uint256", s, v)
		}
		// What the text means, read by math/big's rational parser (independent of ours).
		want, ok := new(big.Rat).SetString(s)
		scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(d)), nil)
		if !ok || new(big.Rat).SetFrac(v, scale).Cmp(want) != 0 {
			t.Fatalf("ParseUnits(%q, %d) = %v, which is not what the text means", s, d, v)
		}
		out := FormatUnits(v, d)
		v2, err := ParseUnits(out, d)
		if err != nil || v2.Cmp(v) != 0 {
			t.Fatalf("%q -> %s -> %q -> %v, %v", s, v, out, v2, err)
		}
	})
}

func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"0x9858EfFD232B4033E47d90003D41EC34EcaEda94", "0x9858effd232b4033e47d90003d41ec34ecaeda94", "0x00", "xyz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		if err != nil {
			return
		}
		for _, enc := range []string{a.Hex(), strings.ToLower(a.Hex())} {
			b, err := ParseAddress(enc)
			if err != nil || b != a {
				t.Fatalf("%q -> %s -> %v, %v", s, enc, b, err)
			}
		}
	})
}

func TestTokenCalldata(t *testing.T) {
	to := common.HexToAddress("0x574bbb36871ba6b78e27f4b4dcfb76ea0091880b")
	d, err := TransferData(to, big.NewInt(0x123))
	if err != nil {
		t.Fatal(err)
	}
	// Trezor's erc20 fixture calldata (testdata/vectors/eip1559).
	const want = "0xa9059cbb000000000000000000000000574bbb36871ba6b78e27f4b4dcfb76ea0091880b0000000000000000000000000000000000000000000000000000000000000123"
	if hexutil.Encode(d) != want {
		t.Fatalf("transfer calldata %x", d)
	}
	call, ok := DecodeTokenCall(d)
	if !ok || call.Method != "transfer" || call.To != to || call.Amount.Int64() != 0x123 {
		t.Fatalf("decode: %+v %v", call, ok)
	}
	a, err := ApproveData(to, big.NewInt(5))
	if err != nil || hexutil.Encode(a[:4]) != "0x095ea7b3" {
		t.Fatalf("approve selector %x, %v", a[:4], err)
	}
	if call, ok := DecodeTokenCall(a); !ok || call.Method != "approve" {
		t.Fatalf("decode approve: %+v", call)
	}
	if _, err := TransferData(to, big.NewInt(-1)); !errors.Is(err, ErrInvalidAmount) {
		t.Fatalf("negative amount: %v", err)
	}
	if _, ok := DecodeTokenCall([]byte{1, 2, 3}); ok {
		t.Fatal("decoded garbage")
	}
}

func FuzzDecodeTokenCall(f *testing.F) {
	d, _ := TransferData(common.HexToAddress("0x574bbb36871ba6b78e27f4b4dcfb76ea0091880b"), big.NewInt(291))
	f.Add(d)
	f.Add([]byte{0xa9, 0x05, 0x9c, 0xbb})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, ok := DecodeTokenCall(b)
		if !ok {
			return
		}
		var enc []byte
		var err error
		if c.Method == "transfer" {
			enc, err = TransferData(c.To, c.Amount)
		} else {
			enc, err = ApproveData(c.To, c.Amount)
		}
		if err != nil {
			t.Fatal(err)
		}
		c2, ok := DecodeTokenCall(enc)
		if !ok || c2.Method != c.Method || c2.To != c.To || c2.Amount.Cmp(c.Amount) != 0 {
			t.Fatalf("round trip %+v -> %+v", c, c2)
		}
	})
}

func TestKnownTokens(t *testing.T) {
	main := KnownTokens(big.NewInt(1))
	got := map[string]string{}
	for _, tk := range main {
		got[tk.Symbol] = tk.Address.Hex()
		if tk.Decimals != 6 {
			t.Errorf("%s decimals %d", tk.Symbol, tk.Decimals)
		}
	}
	if got["USDT"] != "0xdAC17F958D2ee523a2206206994597C13D831ec7" || got["USDC"] != "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48" {
		t.Fatalf("mainnet tokens %v", got)
	}
	if len(KnownTokens(big.NewInt(1337))) != 0 {
		t.Fatal("dev chain has built-in tokens")
	}
}

func TestTypedDataErrors(t *testing.T) {
	tests := []struct{ name, json, want string }{
		{"not json", `{`, "eip-712"},
		{"no domain type", `{"types":{"Mail":[]},"primaryType":"Mail","domain":{},"message":{}}`, "no EIP712Domain"},
		{"unknown primary", `{"types":{"EIP712Domain":[{"name":"name","type":"string"}]},"primaryType":"Nope","domain":{"name":"x"},"message":{}}`, "not among the types"},
		{"float", `{"types":{"EIP712Domain":[{"name":"name","type":"string"}],"M":[{"name":"v","type":"uint256"}]},"primaryType":"M","domain":{"name":"x"},"message":{"v":1.5}}`, "not an integer"},
		{"too big for type", `{"types":{"EIP712Domain":[{"name":"name","type":"string"}],"M":[{"name":"v","type":"uint8"}]},"primaryType":"M","domain":{"name":"x"},"message":{"v":256}}`, "larger than"},
		{"trailing", `{"types":{},"primaryType":"M"} {}`, "trailing"},
	}
	for _, tt := range tests {
		_, err := ParseTypedData([]byte(tt.json))
		if !errors.Is(err, ErrInvalidTypedData) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	// Exact integers above 2^53 survive (apitypes alone would see a float64).
	big := `{"types":{"EIP712Domain":[{"name":"name","type":"string"}],"M":[{"name":"v","type":"uint256"}]},"primaryType":"M","domain":{"name":"x"},"message":{"v":18446744073709551617}}`
	str := strings.Replace(big, `18446744073709551617`, `"18446744073709551617"`, 1)
	a, err := ParseTypedData([]byte(big))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseTypedData([]byte(str))
	if err != nil {
		t.Fatal(err)
	}
	if a.Digest != b.Digest {
		t.Fatal("a number and its decimal string hash differently")
	}
	// Domain-only data has no message hash.
	d, err := ParseTypedData([]byte(`{"types":{"EIP712Domain":[{"name":"name","type":"string"}]},"primaryType":"EIP712Domain","domain":{"name":"x"},"message":{}}`))
	if err != nil || d.MessageHash != nil {
		t.Fatalf("domain-only: %v, %x", err, d.MessageHash)
	}
}

func FuzzParseTypedData(f *testing.F) {
	f.Add([]byte(`{"types":{"EIP712Domain":[{"name":"name","type":"string"}],"M":[{"name":"v","type":"uint256"},{"name":"b","type":"bytes"},{"name":"a","type":"address[]"}]},"primaryType":"M","domain":{"name":"x"},"message":{"v":"7","b":"0x01","a":[]}}`))
	f.Add([]byte(`{"types":{"EIP712Domain":[]},"primaryType":"EIP712Domain","domain":{"chainId":1}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		td, err := ParseTypedData(b)
		if err != nil {
			return
		}
		// Hashing is deterministic: the parsed document hashes the same again.
		again, err := HashTypedData(td.Data)
		if err != nil || again.Digest != td.Digest {
			t.Fatalf("rehash: %v", err)
		}
	})
}

// wrongChainSigner signs every transaction for chain 1, whatever it is asked.
type wrongChainSigner struct{ *softSigner }

func (w wrongChainSigner) SignEthTx(ctx context.Context, path hdpath.Path, tx *types.Transaction, _ *big.Int) (*types.Transaction, error) {
	return w.softSigner.SignEthTx(ctx, path, tx, big.NewInt(1))
}

func TestSignedForAnotherChain(t *testing.T) {
	soft := mnemonicSigner(t, testMnemonic)
	path, _ := DerivationPath(0)
	acct, err := OpenAccount(t.Context(), wrongChainSigner{soft}, path)
	if err != nil {
		t.Fatal(err)
	}
	to := common.HexToAddress("0x3535353535353535353535353535353535353535")
	dev := big.NewInt(1337)
	legacy := types.NewTx(&types.LegacyTx{Nonce: 1, GasPrice: big.NewInt(1e9), Gas: 21000, To: &to, Value: big.NewInt(1)})
	_, err = acct.SignTx(t.Context(), &Prepared{Tx: legacy, ChainID: dev, From: acct.Address})
	if !errors.Is(err, ErrSenderMismatch) || !strings.Contains(err.Error(), "signed for chain 1, not 1337") {
		t.Fatalf("legacy signed for chain 1: %v", err)
	}
	// (An EIP-1559 transaction carries its chain id in the signed payload: signing it for
	// another chain changes the transaction, which CheckSigned refuses as different.)
	// An unprotected (pre-EIP-155) legacy signature is refused too.
	k, _ := soft.key(path)
	unprotected, _ := types.SignTx(legacy, types.HomesteadSigner{}, k)
	if err := CheckSigned(legacy, unprotected, dev, acct.Address); !errors.Is(err, ErrSenderMismatch) || !strings.Contains(err.Error(), "replay protection") {
		t.Fatalf("unprotected: %v", err)
	}
}
