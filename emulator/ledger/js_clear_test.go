package ledgeremu

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/hwbridge/hwbridge/internal/ledgercal"
)

// mailTyped is the EIP-712 specification's example (Example.js).
const mailTyped = `{
 "types": {
  "EIP712Domain": [{"name":"name","type":"string"},{"name":"version","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}],
  "Person": [{"name":"name","type":"string"},{"name":"wallet","type":"address"}],
  "Mail": [{"name":"from","type":"Person"},{"name":"to","type":"Person"},{"name":"contents","type":"string"}]
 },
 "primaryType": "Mail",
 "domain": {"name":"Ether Mail","version":"1","chainId":1,"verifyingContract":"0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},
 "message": {"from":{"name":"Cow","wallet":"0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},"to":{"name":"Bob","wallet":"0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},"contents":"Hello, Bob!"}
}`

// mainnetDescriptor reads Ledger's signed descriptor of a mainnet token from the data the
// driver embeds (internal/ledgercal/tokens, from @ledgerhq/cryptoassets-evm-signatures).
func mainnetDescriptor(t *testing.T, ticker string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "internal", "ledgercal", "tokens", "erc20-descriptors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var entries []struct {
		ChainID int    `json:"chain_id"`
		Ticker  string `json:"ticker"`
		Payload string `json:"payload"`
	}
	if err := json.Unmarshal(b, &entries); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.ChainID == 1 && e.Ticker == ticker {
			return unhex(t, e.Payload)
		}
	}
	t.Fatalf("no %s descriptor", ticker)
	return nil
}

// calBlob is the erc20-signatures.json format: base64 of u32 BE length ‖ payload, repeated.
func calBlob(payloads ...[]byte) string {
	var b []byte
	for _, p := range payloads {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// TestJSEthereumClearSigning drives the token-information path (hw-app-eth's own
// resolveTransaction from descriptor blobs, then signTransaction with the resolution, and
// provideERC20TokenInformation) and signEIP712Message (full EIP-712) against the
// emulator, with blind signing off.
func TestJSEthereumClearSigning(t *testing.T) {
	dir, nodePath := jsClients(t)
	d := newDevice(t, Config{TrustTestTokenKey: true, VerboseEIP712: true})
	port := serveTCP(t, d)

	devToken := common.HexToAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3")
	devDesc, err := ledgercal.SignTest("dUSD", devToken, 6, 1337)
	if err != nil {
		t.Fatal(err)
	}
	dest := common.HexToAddress("0x3535353535353535353535353535353535353535")
	data := append(append([]byte{0xa9, 0x05, 0x9c, 0xbb}, common.LeftPadBytes(dest.Bytes(), 32)...), common.LeftPadBytes(big.NewInt(2_500_000).Bytes(), 32)...)
	devTx, err := types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: 1, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(3e10), Gas: 60000, To: &devToken, Data: data}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	// Unsigned typed txs: MarshalBinary of an unsigned tx carries zero v, r, s; hw-app-eth
	// wants the signing payload (type ‖ rlp without the signature).
	devRaw := signingPayload(t, devTx)
	usdcRaw := erc20Raw(t) // 1 USDC to 0x…dEaD on mainnet

	var typed map[string]any
	if err := json.Unmarshal([]byte(mailTyped), &typed); err != nil {
		t.Fatal(err)
	}
	var out struct {
		Config struct {
			ArbitraryDataEnabled       int
			Erc20ProvisioningNecessary int
		}
		Provided struct {
			OK *bool `json:"ok"`
			jsFailure
		}
		Txs []struct {
			Tokens []string
			Sig    struct {
				OK *struct{ V, R, S string } `json:"ok"`
				jsFailure
			}
		}
		Eip712 struct {
			OK *struct {
				V    int
				R, S string
			} `json:"ok"`
			jsFailure
		}
	}
	runNode(t, dir, nodePath, "ethclear", map[string]any{
		"port":       port,
		"erc20Blobs": map[string]string{"1": calBlob(mainnetDescriptor(t, "USDT"), mainnetDescriptor(t, "USDC")), "1337": calBlob(devDesc)},
		"provide":    hex.EncodeToString(devDesc),
		"txs":        []string{hex.EncodeToString(usdcRaw), hex.EncodeToString(devRaw)},
		"typed":      typed,
	}, &out)

	if out.Config.ArbitraryDataEnabled != 0 || out.Config.Erc20ProvisioningNecessary == 0 {
		t.Errorf("app configuration %+v", out.Config)
	}
	if out.Provided.OK == nil || !*out.Provided.OK {
		t.Errorf("provideERC20TokenInformation: %+v", out.Provided)
	}
	want := common.HexToAddress(vecEthAddr)
	for i, raw := range [][]byte{usdcRaw, devRaw} {
		tx := out.Txs[i]
		if len(tx.Tokens) != 1 {
			t.Errorf("tx %d: hw-app-eth resolved %d tokens", i, len(tx.Tokens))
		}
		s := tx.Sig.OK
		if s == nil {
			t.Fatalf("tx %d: %+v", i, tx.Sig)
		}
		v, _ := new(big.Int).SetString(s.V, 16)
		if from := recover1559(t, raw, append([]byte{byte(v.Uint64())}, append(unhex(t, s.R), unhex(t, s.S)...)...)); from != want {
			t.Errorf("tx %d signed by %s", i, from.Hex())
		}
	}
	var shown []string
	for _, e := range d.Approver().Transcript() {
		if e.Title == "Blind signing" {
			t.Errorf("blind-signing screen: %+v", e)
		}
		shown = append(shown, e.Lines...)
	}
	all := strings.Join(shown, "\n")
	for _, w := range []string{"Send 1 USDC to 0x000000000000000000000000000000000000dEaD", "Send 2.5 dUSD to " + dest.Hex(), "contents: Hello, Bob!"} {
		if !strings.Contains(all, w) {
			t.Errorf("transcript lacks %q", w)
		}
	}

	e := out.Eip712.OK
	if e == nil {
		t.Fatalf("signEIP712Message: %+v", out.Eip712)
	}
	var td apitypes.TypedData
	if err := json.Unmarshal([]byte(mailTyped), &td); err != nil {
		t.Fatal(err)
	}
	digest, _, err := apitypes.TypedDataAndHash(td)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := crypto.SigToPub(digest, append(append(unhex(t, e.R), unhex(t, e.S)...), byte(e.V-27)))
	if err != nil || crypto.PubkeyToAddress(*pub) != want {
		t.Errorf("eip-712 signer: %v", err)
	}
}

// signingPayload turns an unsigned typed transaction's encoding into what the app signs.
func signingPayload(t *testing.T, enc []byte) []byte {
	t.Helper()
	var tx types.Transaction
	if err := tx.UnmarshalBinary(enc); err != nil {
		t.Fatal(err)
	}
	b, err := rlpEncode([]any{tx.ChainId(), tx.Nonce(), tx.GasTipCap(), tx.GasFeeCap(), tx.Gas(), tx.To(), tx.Value(), tx.Data(), tx.AccessList()})
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte{tx.Type()}, b...)
}
