package ethereum

import (
	"encoding/hex"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"testing"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/hwbridge/hwbridge/internal/hdpath"
)

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "vectors", path))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func bigDec(t *testing.T, s string) *big.Int {
	t.Helper()
	v, ok := new(big.Int).SetString(s, 0)
	if !ok {
		t.Fatalf("bad number %q", s)
	}
	return v
}

// TestEIP155Example pins our legacy transaction building and signing to the EIP's own
// example (its private key, through the test-only software signer and Account.SignTx).
func TestEIP155Example(t *testing.T) {
	var v struct {
		PrivateKey  string `json:"private_key"`
		ChainID     int64  `json:"chain_id"`
		Nonce       uint64 `json:"nonce"`
		GasPrice    string `json:"gas_price"`
		GasLimit    uint64 `json:"gas_limit"`
		To          string `json:"to"`
		Value       string `json:"value"`
		SigningData string `json:"signing_data"`
		SigningHash string `json:"signing_hash"`
		V           int64  `json:"v"`
		R, S        string
		SignedTx    string `json:"signed_tx"`
	}
	readJSON(t, "eip155/example.json", &v)
	to := common.HexToAddress(v.To)
	tx := types.NewTx(&types.LegacyTx{Nonce: v.Nonce, GasPrice: bigDec(t, v.GasPrice), Gas: v.GasLimit, To: &to, Value: bigDec(t, v.Value)})
	chainID := big.NewInt(v.ChainID)
	signer := types.NewEIP155Signer(chainID)
	if got := signer.Hash(tx).Hex(); got != v.SigningHash {
		t.Fatalf("signing hash %s, want %s", got, v.SigningHash)
	}
	if got := crypto.Keccak256Hash(hexutil.MustDecode(v.SigningData)).Hex(); got != v.SigningHash {
		t.Fatalf("keccak(signing data) %s, want %s", got, v.SigningHash)
	}
	soft := keySigner(t, v.PrivateKey)
	acct, err := OpenAccount(t.Context(), soft, hdpath.Path{})
	if err != nil {
		t.Fatal(err)
	}
	p := &Prepared{Tx: tx, ChainID: chainID, From: acct.Address, Fees: Fees{Price: tx.GasPrice()}}
	signed, err := acct.SignTx(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	gv, gr, gs := signed.RawSignatureValues()
	if gv.Int64() != v.V || gr.Cmp(bigDec(t, v.R)) != 0 || gs.Cmp(bigDec(t, v.S)) != 0 {
		t.Fatalf("v,r,s = %s,%s,%s; want %d,%s,%s", gv, gr, gs, v.V, v.R, v.S)
	}
	raw, err := signed.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if got := hexutil.Encode(raw); got != v.SignedTx {
		t.Fatalf("signed tx\n %s\nwant\n %s", got, v.SignedTx)
	}
}

// TestEIP1559Vectors signs Trezor's published EIP-1559 fixtures with the fixture mnemonic
// through Account.SignTx and compares v, r, s.
func TestEIP1559Vectors(t *testing.T) {
	var f struct {
		Setup struct{ Mnemonic string }
		Tests []struct {
			Name       string
			Parameters struct {
				Data           string
				Path           string
				ToAddress      string `json:"to_address"`
				ChainID        uint64 `json:"chain_id"`
				Nonce          string
				GasLimit       string `json:"gas_limit"`
				MaxGasFee      string `json:"max_gas_fee"`
				MaxPriorityFee string `json:"max_priority_fee"`
				Value          string
			}
			Result struct {
				SigV uint64 `json:"sig_v"`
				SigR string `json:"sig_r"`
				SigS string `json:"sig_s"`
			}
		}
	}
	readJSON(t, "eip1559/sign_tx_eip1559.json", &f)
	soft := mnemonicSigner(t, f.Setup.Mnemonic)
	for _, c := range f.Tests {
		t.Run(c.Name, func(t *testing.T) {
			p := c.Parameters
			path, err := hdpath.Parse(p.Path)
			if err != nil {
				t.Fatal(err)
			}
			data, err := hex.DecodeString(p.Data)
			if err != nil {
				t.Fatal(err)
			}
			to := common.HexToAddress(p.ToAddress)
			chainID := new(big.Int).SetUint64(p.ChainID)
			tx := types.NewTx(&types.DynamicFeeTx{
				ChainID: chainID, Nonce: bigDec(t, p.Nonce).Uint64(), GasTipCap: bigDec(t, p.MaxPriorityFee),
				GasFeeCap: bigDec(t, p.MaxGasFee), Gas: bigDec(t, p.GasLimit).Uint64(), To: &to, Value: bigDec(t, p.Value), Data: data,
			})
			acct, err := OpenAccount(t.Context(), soft, path)
			if err != nil {
				t.Fatal(err)
			}
			signed, err := acct.SignTx(t.Context(), &Prepared{Tx: tx, ChainID: chainID, From: acct.Address})
			if err != nil {
				t.Fatal(err)
			}
			v, r, s := signed.RawSignatureValues()
			if v.Uint64() != c.Result.SigV || hex.EncodeToString(common.LeftPadBytes(r.Bytes(), 32)) != c.Result.SigR ||
				hex.EncodeToString(common.LeftPadBytes(s.Bytes(), 32)) != c.Result.SigS {
				t.Fatalf("v,r,s = %d,%x,%x; want %d,%s,%s", v, r, s, c.Result.SigV, c.Result.SigR, c.Result.SigS)
			}
		})
	}
}

// TestEIP191Example checks personal_sign against the published web3.js example.
func TestEIP191Example(t *testing.T) {
	var v struct {
		Message     string
		PrivateKey  string `json:"private_key"`
		MessageHash string `json:"message_hash"`
		Signature   string
	}
	readJSON(t, "eip191/personal_sign.json", &v)
	if got := hexutil.Encode(accounts.TextHash([]byte(v.Message))); got != v.MessageHash {
		t.Fatalf("message hash %s, want %s", got, v.MessageHash)
	}
	acct, err := OpenAccount(t.Context(), keySigner(t, v.PrivateKey), hdpath.Path{})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := acct.SignPersonal(t.Context(), []byte(v.Message))
	if err != nil {
		t.Fatal(err)
	}
	if got := hexutil.Encode(sig); got != v.Signature {
		t.Fatalf("signature %s, want %s", got, v.Signature)
	}
}

// TestEIP712Mail checks the host-side hashes and the example signature of EIP-712's Mail.
func TestEIP712Mail(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "vectors", "eip712", "mail.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want struct {
		DomainSeparator string `json:"domain_separator"`
		MessageHash     string `json:"message_hash"`
		Digest          string
		KeyPreimage     string `json:"signer_key_preimage"`
		Signer          string
		V               byte
		R, S            string
	}
	readJSON(t, "eip712/expected.json", &want)
	td, err := ParseTypedData(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := hexutil.Encode(td.DomainSeparator[:]); got != want.DomainSeparator {
		t.Errorf("domain separator %s, want %s", got, want.DomainSeparator)
	}
	if got := hexutil.Encode(td.MessageHash); got != want.MessageHash {
		t.Errorf("message hash %s, want %s", got, want.MessageHash)
	}
	if got := hexutil.Encode(td.Digest[:]); got != want.Digest {
		t.Errorf("digest %s, want %s", got, want.Digest)
	}
	key := hex.EncodeToString(crypto.Keccak256([]byte(want.KeyPreimage)))
	acct, err := OpenAccount(t.Context(), keySigner(t, key), hdpath.Path{})
	if err != nil {
		t.Fatal(err)
	}
	if acct.Address.Hex() != want.Signer {
		t.Fatalf("keccak(%q) is %s, want %s", want.KeyPreimage, acct.Address.Hex(), want.Signer)
	}
	sig, err := acct.SignTypedData(t.Context(), td)
	if err != nil {
		t.Fatal(err)
	}
	if got := hexutil.Encode(sig); got != want.R+want.S[2:]+hex.EncodeToString([]byte{want.V}) {
		t.Errorf("signature %s, want r %s s %s v %d", got, want.R, want.S, want.V)
	}
	if d := td.Domain(); d["name"] != "Ether Mail" || d["chainId"] != "1" || d["verifyingContract"] != "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC" {
		t.Errorf("domain %v", d)
	}
}
