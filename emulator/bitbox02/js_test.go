package bitbox02

// BitBox's own JavaScript client, bitbox-api (npm, WASM build of bitbox-api-rs), against the
// emulator's TCP port: the referee for byte-level fidelity. See testdata/js/client.mjs for
// how it reaches a TCP device from Node (a WebHID shim; bitbox-api's JS build has no TCP
// simulator transport).

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/internal/peers"
)

// Vectors for emulator.DefaultMnemonic ("abandon" ×11 "about"): BIP-84 and BIP-86 first
// addresses from the BIPs' test vectors, the rest as device/devicetest/vectors.go lists them.
const (
	vecFingerprint = "73c5da0a"
	vecXpub84      = "xpub6CatWdiZiodmUeTDp8LT5or8nmbKNcuyvz7WyksVFkKB4RHwCD3XyuvPEbvqAQY3rAPshWcMLoP2fMFMKHPJ4ZeZXYVUhLv1VMrjPC7PW6V"
	vecAddr84      = "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"
	vecAddr86      = "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr"
	vecAddr49      = "37VucYSaXLCAsxYyAPfbSi9eh4iEcbShgf"
	vecTestAddr84  = "tb1q6rz28mcfaxtmd6v789l9rrlrusdprr9pqcpvkl"
	vecETHAddr     = "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"
)

// jsClient finds node and bitbox-api (internal/peers: testdata/js/node_modules, or the cache
// scripts/deps.sh fills) and returns the script directory and the bitbox-api directory.
func jsClient(t *testing.T) (dir, bbDir string) {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "js"))
	if err != nil {
		t.Fatal(err)
	}
	np := peers.NPM(t, dir, "bitbox02emu-js", "bitbox-api")
	if np == "" {
		np = filepath.Join(dir, "node_modules")
	}
	return dir, filepath.Join(np, "bitbox-api")
}

func serveTCP(t *testing.T, d *Device) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().(*net.TCPAddr).Port
}

type jsOut map[string]json.RawMessage

func (o jsOut) str(t *testing.T, k string) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(o[k], &s); err != nil {
		t.Errorf("%s: %s", k, o[k])
	}
	return s
}

func (o jsOut) into(t *testing.T, k string, v any) {
	t.Helper()
	if err := json.Unmarshal(o[k], v); err != nil {
		t.Errorf("%s: %s (%v)", k, o[k], err)
	}
}

func runClient(t *testing.T, dir, bbDir string, req map[string]any) jsOut {
	t.Helper()
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, "node", "--experimental-wasm-modules", "--no-warnings", filepath.Join(dir, "client.mjs"), string(b))
	c.Dir = dir
	c.Env = append(os.Environ(), "BITBOX_API="+bbDir)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		t.Fatalf("node client.mjs: %v\n%s", err, stderr.String())
	}
	var out jsOut
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("node output: %v\n%s", err, stdout.String())
	}
	return out
}

type jsEthSig struct{ R, S, V string }

func TestBitBoxAPI(t *testing.T) {
	dir, bbDir := jsClient(t)
	d := NewForTest(t, Config{})
	port := serveTCP(t, d)
	storage := filepath.Join(t.TempDir(), "localStorage.json")

	mixed := spendPSBT(t, d.Wallet(), &chaincfg.MainNetParams, []emulator.ScriptKind{emulator.P2WPKH, emulator.P2SHP2WPKH, emulator.P2TR})
	trOnly := spendPSBT(t, d.Wallet(), &chaincfg.RegressionNetParams, []emulator.ScriptKind{emulator.P2TR, emulator.P2TR})
	to := "1d1c328764a41bda0492b66baa30c4a339ff85ef"
	kpETH := "m/44'/60'/0'/0/0"
	out := runClient(t, dir, bbDir, map[string]any{"port": port, "storage": storage, "ops": []map[string]any{
		{"name": "fingerprint", "op": "fingerprint"},
		{"name": "deviceInfo", "op": "deviceInfo"},
		{"name": "xpub84", "op": "xpub", "coin": "btc", "keypath": "m/84'/0'/0'", "xpubType": "xpub"},
		{"name": "addr84", "op": "address", "coin": "btc", "keypath": "m/84'/0'/0'/0/0", "simpleType": "p2wpkh", "display": true},
		{"name": "addr49", "op": "address", "coin": "btc", "keypath": "m/49'/0'/0'/0/0", "simpleType": "p2wpkhP2sh"},
		{"name": "addr86", "op": "address", "coin": "btc", "keypath": "m/86'/0'/0'/0/0", "simpleType": "p2tr"},
		{"name": "testAddr84", "op": "address", "coin": "tbtc", "keypath": "m/84'/1'/0'/0/0", "simpleType": "p2wpkh"},
		{"name": "badKeypath", "op": "address", "coin": "btc", "keypath": "m/84'/1'/0'/0/0", "simpleType": "p2wpkh"},
		{"name": "psbtMixed", "op": "signPSBT", "coin": "btc", "psbt": psbtBase64(t, mixed)},
		{"name": "psbtTaproot", "op": "signPSBT", "coin": "rbtc", "psbt": psbtBase64(t, trOnly)},
		{"name": "message", "op": "signMessage", "coin": "btc", "simpleType": "p2wpkh", "keypath": "m/84'/0'/0'/0/0", "message": "hello bitbox"},
		{"name": "ethAddress", "op": "ethAddress", "chainId": 1, "keypath": kpETH, "display": true},
		{"name": "ethLegacy", "op": "ethSign", "chainId": 1, "keypath": kpETH, "nonce": "07", "gasPrice": "04a817c800", "gasLimit": "5208", "recipient": to, "value": "2386f26fc10000", "data": ""},
		{"name": "eth1559", "op": "ethSign1559", "chainId": 11155111, "keypath": kpETH, "nonce": "03", "maxPriorityFeePerGas": "59682f00", "maxFeePerGas": "06fc23ac00", "gasLimit": "ea60", "recipient": to, "value": "3039", "data": "deadbeef"},
		{"name": "ethMessage", "op": "ethSignMessage", "chainId": 1, "keypath": kpETH, "message": "hello ethereum"},
		{"name": "typed", "op": "ethSignTypedMessage", "chainId": 1, "keypath": kpETH, "json": typedJSON},
	}})

	var code string
	out.into(t, "pairingCode", &code)
	if code == "" {
		t.Fatal("a new host was not asked to pair")
	}
	var shown string
	for _, e := range d.Approver().Transcript() {
		if e.Title == "Pairing code" {
			shown = strings.Join(e.Lines, "\n")
		}
	}
	if shown != code {
		t.Errorf("pairing code: bitbox-api %q, device screen %q", code, shown)
	}
	for _, c := range []struct{ k, want string }{
		{"fingerprint", vecFingerprint}, {"xpub84", vecXpub84}, {"addr84", vecAddr84}, {"addr49", vecAddr49},
		{"addr86", vecAddr86}, {"testAddr84", vecTestAddr84}, {"ethAddress", vecETHAddr}, {"version", "9.21.0"},
		{"product", "bitbox02-multi"},
	} {
		if got := out.str(t, c.k); got != c.want {
			t.Errorf("%s = %q, want %q", c.k, got, c.want)
		}
	}
	var bad struct {
		Error string `json:"error"`
	}
	out.into(t, "badKeypath", &bad)
	if !strings.Contains(bad.Error, "invalid input") {
		t.Errorf("coin type 1' on btc: %s, want the device's invalid input error", out["badKeypath"])
	}

	for _, c := range []struct {
		k   string
		org *psbt.Packet
	}{{"psbtMixed", mixed}, {"psbtTaproot", trOnly}} {
		signed, err := psbt.NewFromRawBytes(strings.NewReader(out.str(t, c.k)), true)
		if err != nil {
			t.Errorf("%s: %v (%s)", c.k, err, out[c.k])
			continue
		}
		if signed.UnsignedTx.TxHash() != c.org.UnsignedTx.TxHash() {
			t.Errorf("%s: bitbox-api returned another transaction", c.k)
		}
		if err := finalizeAndRun(signed); err != nil {
			t.Errorf("%s: %v", c.k, err)
		}
	}

	var msg struct {
		Sig           string `json:"sig"`
		Recid         int    `json:"recid"`
		ElectrumSig65 string `json:"electrumSig65"`
	}
	out.into(t, "message", &msg)
	checkBTCMessage(t, d, "hello bitbox", msg.ElectrumSig65)

	var legacy, dyn, em jsEthSig
	out.into(t, "ethLegacy", &legacy)
	out.into(t, "eth1559", &dyn)
	out.into(t, "ethMessage", &em)
	toAddr := common.HexToAddress(to)
	checkETHTx(t, types.NewTx(&types.LegacyTx{Nonce: 7, GasPrice: big.NewInt(20_000_000_000), Gas: 21000, To: &toAddr, Value: big.NewInt(10_000_000_000_000_000)}), 1, legacy)
	checkETHTx(t, types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(11155111), Nonce: 3, GasTipCap: big.NewInt(1_500_000_000), GasFeeCap: big.NewInt(30_000_000_000), Gas: 60000, To: &toAddr, Value: big.NewInt(12345), Data: []byte{0xde, 0xad, 0xbe, 0xef}}), 11155111, dyn)
	sig := unhexJS(t, em.R+em.S+em.V)
	if len(sig) == 65 {
		sig[64] -= 27
		pub, err := crypto.SigToPub(crypto.Keccak256([]byte("\x19Ethereum Signed Message:\n14hello ethereum")), sig)
		if err != nil || crypto.PubkeyToAddress(*pub).Hex() != vecETHAddr {
			t.Errorf("eth message signature does not recover %s (%v)", vecETHAddr, err)
		}
	} else {
		t.Errorf("eth message signature %s", out["ethMessage"])
	}

	var typed jsEthSig
	out.into(t, "typed", &typed)
	checkTyped(t, typed)

	// The screens a person would have seen: the recipient of the PSBT and the ETH sends.
	var titles []string
	for _, e := range d.Approver().Transcript() {
		titles = append(titles, e.Title)
		if e.Outcome != emulator.OutcomeApproved && e.Outcome != emulator.OutcomeShown {
			t.Errorf("screen %q: %s", e.Title, e.Outcome)
		}
	}
	for _, want := range []string{"Pairing code", "Receive address", "Send to", "Total", "Sign message", "Ethereum", "Send"} {
		if !strings.Contains(strings.Join(titles, "|"), want) {
			t.Errorf("no %q screen in the transcript %q", want, titles)
		}
	}

	// Pairing happens once: the same host (localStorage) connects again without a code.
	again := runClient(t, dir, bbDir, map[string]any{"port": port, "storage": storage, "ops": []map[string]any{{"name": "fingerprint", "op": "fingerprint"}}})
	if string(again["pairingCode"]) != "null" || again.str(t, "fingerprint") != vecFingerprint {
		t.Errorf("second connection: pairing code %s, fingerprint %s", again["pairingCode"], again["fingerprint"])
	}
}

func unhexJS(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Errorf("hex %q: %v", s, err)
	}
	return b
}

func checkETHTx(t *testing.T, tx *types.Transaction, chainID int64, s jsEthSig) {
	t.Helper()
	sig := unhexJS(t, s.R+s.S)
	v := new(big.Int).SetBytes(unhexJS(t, s.V))
	if tx.Type() == types.LegacyTxType { // bitbox-api returns the EIP-155 v: recid + 35 + 2·chain id
		v.Sub(v, big.NewInt(35+2*chainID))
	}
	if len(sig) != 64 || !v.IsUint64() || v.Uint64() > 1 {
		t.Errorf("eth signature %+v", s)
		return
	}
	sig = append(sig, byte(v.Uint64()))
	signer := types.LatestSignerForChainID(big.NewInt(chainID))
	signed, err := tx.WithSignature(signer, sig)
	if err != nil {
		t.Errorf("eth signature: %v", err)
		return
	}
	from, err := types.Sender(signer, signed)
	if err != nil || from.Hex() != vecETHAddr {
		t.Errorf("eth tx type %d: sender %s (%v), want %s", tx.Type(), from.Hex(), err, vecETHAddr)
	}
}

// checkBTCMessage recovers a BIP-137 signature (electrum format: header‖r‖s) and compares
// the key with the device's key at m/84'/0'/0'/0/0.
func checkBTCMessage(t *testing.T, d *Device, msg, sig65 string) {
	t.Helper()
	sig := unhexJS(t, sig65)
	if len(sig) != 65 {
		t.Errorf("message signature %q", sig65)
		return
	}
	var buf bytes.Buffer
	_ = wire.WriteVarString(&buf, 0, "Bitcoin Signed Message:\n")
	_ = wire.WriteVarString(&buf, 0, msg)
	h := chainhash.DoubleHashB(buf.Bytes())
	pub, _, err := ecdsa.RecoverCompact(sig, h)
	if err != nil {
		t.Errorf("recover: %v", err)
		return
	}
	want, _ := d.Wallet().PubKey([]uint32{84 + hardened, hardened, hardened, 0, 0})
	if !pub.IsEqual(want) {
		t.Errorf("message signed by %x, want %x", pub.SerializeCompressed(), want.SerializeCompressed())
	}

}

// typedJSON is an eth_signTypedData_v4 document with every kind of member the device asks
// for: nested structs, a dynamic array of structs, dynamic and fixed arrays of atoms,
// negative ints, bytesN, dynamic bytes, bools, strings and addresses.
const typedJSON = `{
  "types": {
    "EIP712Domain": [
      {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
      {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}
    ],
    "Person": [{"name": "name", "type": "string"}, {"name": "wallets", "type": "address[]"}],
    "Mail": [
      {"name": "from", "type": "Person"}, {"name": "to", "type": "Person[]"},
      {"name": "contents", "type": "string"}, {"name": "attachment", "type": "bytes"},
      {"name": "urgent", "type": "bool"}, {"name": "delta", "type": "int16"},
      {"name": "scores", "type": "uint8[3]"}, {"name": "tag", "type": "bytes4"}
    ]
  },
  "primaryType": "Mail",
  "domain": {"name": "Ether Mail", "version": "1", "chainId": 1, "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},
  "message": {
    "from": {"name": "Cow", "wallets": ["0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826", "0xDeaDbeefdEAdbeefdEadbEEFdeadbeEFdEaDbeeF"]},
    "to": [{"name": "Bob", "wallets": ["0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"]}, {"name": "Daisy", "wallets": []}],
    "contents": "Hello, Bob!", "attachment": "0x0102030405", "urgent": true, "delta": "-300",
    "scores": ["1", "2", "255"], "tag": "0xabcdef01"
  }
}`

// checkTyped recovers the EIP-712 signature over go-ethereum's digest of typedJSON.
func checkTyped(t *testing.T, s jsEthSig) {
	t.Helper()
	var td apitypes.TypedData
	if err := json.Unmarshal([]byte(typedJSON), &td); err != nil {
		t.Fatal(err)
	}
	digest, _, err := apitypes.TypedDataAndHash(td)
	if err != nil {
		t.Fatal(err)
	}
	sig := unhexJS(t, s.R+s.S+s.V)
	if len(sig) != 65 {
		t.Errorf("typed data signature %+v", s)
		return
	}
	sig[64] -= 27
	pub, err := crypto.SigToPub(digest, sig)
	if err != nil || crypto.PubkeyToAddress(*pub).Hex() != vecETHAddr {
		t.Errorf("typed data signature does not recover %s over go-ethereum's digest (%v)", vecETHAddr, err)
	}
}
