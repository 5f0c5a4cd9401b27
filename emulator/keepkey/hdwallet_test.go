package keepkeyemu

// KeepKey's own client, @shapeshiftoss/hdwallet-keepkey 1.62.41 (npm, pinned in
// testdata/js), drives the emulator over the KeepKey emulator's UDP protocol. Every answer
// is checked here on its own: xpubs and addresses against the BIP-44/49/84 vectors of the
// standard test mnemonic, the signed Bitcoin transactions by running their scripts in
// btcd's engine against the outputs they spend, Ethereum transactions and messages by
// recovering the signer.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/hwbridge/hwbridge/internal/peers"
)

// Vectors of the standard test mnemonic: the BIP-44/49/84 account keys (SLIP-132 versions,
// as KeepKey reports them by script type) and first receive addresses (bitcoin/bips
// bip-0049 and bip-0084 test vectors; BIP-44 the widely published values), and the
// Ethereum address of m/44'/60'/0'/0/0.
var hdwalletVectors = []struct {
	name, scriptType, account, xpub, address string
}{
	{"p2pkh", "p2pkh", "m/44'/0'/0'", "xpub6BosfCnifzxcFwrSzQiqu2DBVTshkCXacvNsWGYJVVhhawA7d4R5WSWGFNbi8Aw6ZRc1brxMyWMzG3DSSSSoekkudhUd9yLb6qx39T9nMdj", "1LqBGSKuX5yYUonjxT5qGfpUsXKYYWeabA"},
	{"p2sh-p2wpkh", "p2sh-p2wpkh", "m/49'/0'/0'", "ypub6Ww3ibxVfGzLrAH1PNcjyAWenMTbbAosGNB6VvmSEgytSER9azLDWCxoJwW7Ke7icmizBMXrzBx9979FfaHxHcrArf3zbeJJJUZPf663zsP", "37VucYSaXLCAsxYyAPfbSi9eh4iEcbShgf"},
	{"p2wpkh", "p2wpkh", "m/84'/0'/0'", "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs", "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"},
}

const (
	hdwalletETHAddr = "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"
	hdwalletPayTo   = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4" // BIP-173 example
	hdwalletEthTo   = "0x1d1c328764a41bda0492b66baa30c4a339ff85ef"
)

// addressN turns m/a'/b/... into the numbers hdwallet takes.
func addressN(t *testing.T, p string) []uint32 {
	t.Helper()
	var out []uint32
	for _, s := range strings.Split(strings.TrimPrefix(p, "m/"), "/") {
		var v uint32
		hard := strings.HasSuffix(s, "'")
		if _, err := fmt.Sscanf(strings.TrimSuffix(s, "'"), "%d", &v); err != nil {
			t.Fatalf("path %s: %v", p, err)
		}
		if hard {
			v |= 0x80000000
		}
		out = append(out, v)
	}
	return out
}

// fundingTx pays 100000 sat to addr from a made-up input (the device checks only the
// previous transaction's own hash and the spent output).
func fundingTx(t *testing.T, name, addr string) *wire.MsgTx {
	t.Helper()
	a, err := btcutil.DecodeAddress(addr, &chaincfg.MainNetParams)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := txscript.PayToAddrScript(a)
	if err != nil {
		t.Fatal(err)
	}
	tx := wire.NewMsgTx(2)
	seed := chainhash.Hash(sha256.Sum256([]byte("hwbridge hdwallet test funding " + name)))
	tx.AddTxIn(wire.NewTxIn(wire.NewOutPoint(&seed, 0), []byte{0x51}, nil))
	tx.AddTxOut(wire.NewTxOut(100000, pk))
	return tx
}

type hdwalletAnswer struct {
	OK    bool            `json:"ok"`
	Value json.RawMessage `json:"value"`
	Error string          `json:"error"`
}

func runHDWallet(t *testing.T, port int, pin string, calls [][]any) map[string]hdwalletAnswer {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "js"))
	if err != nil {
		t.Fatal(err)
	}
	nodePath := peers.NPM(t, dir, "keepkeyemu-js", "@shapeshiftoss/hdwallet-keepkey", "--ignore-scripts")
	plan, err := json.Marshal(map[string]any{"port": port, "pin": pin, "calls": calls})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(dir, "hdwallet.js"))
	cmd.Dir = dir
	cmd.Env = os.Environ()
	if nodePath != "" {
		cmd.Env = append(cmd.Env, "NODE_PATH="+nodePath)
	}
	cmd.Stdin = bytes.NewReader(plan)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node hdwallet.js: %v\n%s", err, stderr.String())
	}
	var out map[string]hdwalletAnswer
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("hdwallet.js output: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	if p, ok := out["pair"]; ok && !p.OK {
		t.Fatalf("hdwallet-keepkey could not pair with the emulator: %s", p.Error)
	}
	return out
}

func serveUDP(t *testing.T, d *Device) *UDPServer {
	t.Helper()
	srv, err := d.ListenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return srv
}

func TestHDWalletKeepKey(t *testing.T) {
	d := NewForTest(t, Options{})
	srv := serveUDP(t, d)

	eth := addressN(t, "m/44'/60'/0'/0/0")
	calls := [][]any{
		{"features", "getFeatures", false},
		{"ethAddress", "ethGetAddress", map[string]any{"addressNList": eth, "showDisplay": false}},
		{"ethAddressShown", "ethGetAddress", map[string]any{"addressNList": eth, "showDisplay": true}},
		{"ethLegacy", "ethSignTx", map[string]any{"addressNList": eth, "nonce": "0x0", "gasPrice": "0x3b9aca00", "gasLimit": "0x5208",
			"to": hdwalletEthTo, "value": "0x2386f26fc10000", "data": "", "chainId": 1}},
		{"ethLegacyData", "ethSignTx", map[string]any{"addressNList": eth, "nonce": "0x7", "gasPrice": "0x77359400", "gasLimit": "0x186a0",
			"to": hdwalletEthTo, "value": "0x0", "data": "0x" + strings.Repeat("deadbeef", 375), "chainId": 11155111}},
		{"eth1559", "ethSignTx", map[string]any{"addressNList": eth, "nonce": "0x1", "maxFeePerGas": "0x77359400", "maxPriorityFeePerGas": "0x3b9aca00",
			"gasLimit": "0x5208", "to": hdwalletEthTo, "value": "0x2386f26fc10000", "data": "", "chainId": 1}},
		{"ethMessage", "ethSignMessage", map[string]any{"addressNList": eth, "message": "0x" + hex.EncodeToString([]byte("hello hwbridge"))}},
		{"btcMessage", "btcSignMessage", map[string]any{"addressNList": addressN(t, "m/84'/0'/0'/0/0"), "coin": "Bitcoin", "scriptType": "p2wpkh", "message": "hello hwbridge"}},
	}
	var pks []map[string]any
	for _, v := range hdwalletVectors {
		pks = append(pks, map[string]any{"addressNList": addressN(t, v.account), "coin": "Bitcoin", "curve": "secp256k1", "scriptType": v.scriptType})
	}
	calls = append(calls, []any{"publicKeys", "getPublicKeys", pks})
	funding := map[string]*wire.MsgTx{}
	for _, v := range hdwalletVectors {
		path := addressN(t, v.account+"/0/0")
		for _, show := range []bool{false, true} {
			calls = append(calls, []any{fmt.Sprintf("address %s %v", v.name, show), "btcGetAddress",
				map[string]any{"addressNList": path, "coin": "Bitcoin", "scriptType": v.scriptType, "showDisplay": show}})
		}
		tx := fundingTx(t, v.name, v.address)
		funding[v.name] = tx
		var raw bytes.Buffer
		if err := tx.Serialize(&raw); err != nil {
			t.Fatal(err)
		}
		calls = append(calls, []any{"signTx " + v.name, "btcSignTx", map[string]any{
			"coin": "Bitcoin", "version": 1, "locktime": 0,
			"inputs": []map[string]any{{"addressNList": path, "scriptType": v.scriptType, "amount": "100000", "vout": 0,
				"txid": tx.TxHash().String(), "hex": hex.EncodeToString(raw.Bytes())}},
			"outputs": []map[string]any{
				{"address": hdwalletPayTo, "addressType": "spend", "amount": "60000", "isChange": false},
				{"addressNList": addressN(t, "m/84'/0'/0'/1/0"), "scriptType": "p2wpkh", "addressType": "change", "amount": "30000", "isChange": true},
			},
		}})
	}
	out := runHDWallet(t, srv.Addr().Port, "", calls)
	value := func(name string, v any) {
		t.Helper()
		a, ok := out[name]
		if !ok || !a.OK {
			t.Fatalf("%s: hdwallet-keepkey reports failure: %s", name, a.Error)
		}
		if err := json.Unmarshal(a.Value, v); err != nil {
			t.Fatalf("%s: value %s: %v", name, a.Value, err)
		}
	}

	t.Run("features", func(t *testing.T) {
		var f map[string]any
		value("features", &f)
		if f["vendor"] != "keepkey.com" || f["model"] != "K1-14AM" || f["majorVersion"] != 7.0 || f["minorVersion"] != 10.0 ||
			f["initialized"] != true || f["firmwareVariant"] != "Emulator" {
			t.Fatalf("features as hdwallet-keepkey saw them: %v", f)
		}
		if pol, _ := f["policiesList"].([]any); len(pol) != 4 {
			t.Fatalf("policies %v", f["policiesList"])
		}
	})

	t.Run("public keys", func(t *testing.T) {
		var pks []struct{ Xpub string }
		value("publicKeys", &pks)
		if len(pks) != len(hdwalletVectors) {
			t.Fatalf("%d public keys", len(pks))
		}
		for i, v := range hdwalletVectors {
			if pks[i].Xpub != v.xpub {
				t.Errorf("%s %s: %s, want %s", v.name, v.account, pks[i].Xpub, v.xpub)
			}
		}
	})

	t.Run("addresses", func(t *testing.T) {
		for _, v := range hdwalletVectors {
			for _, show := range []bool{false, true} {
				var a string
				value(fmt.Sprintf("address %s %v", v.name, show), &a)
				if a != v.address {
					t.Errorf("%s (display %v): %s, want %s", v.name, show, a, v.address)
				}
			}
		}
		for _, name := range []string{"ethAddress", "ethAddressShown"} {
			var a string
			value(name, &a)
			if a != hdwalletETHAddr {
				t.Errorf("%s: %s, want %s", name, a, hdwalletETHAddr)
			}
		}
	})

	t.Run("btc sign tx", func(t *testing.T) {
		for _, v := range hdwalletVectors {
			var r struct {
				Signatures   []string
				SerializedTx string
			}
			value("signTx "+v.name, &r)
			raw, err := hex.DecodeString(r.SerializedTx)
			if err != nil {
				t.Fatalf("%s: serialized tx %q: %v", v.name, r.SerializedTx, err)
			}
			var tx wire.MsgTx
			if err := tx.Deserialize(bytes.NewReader(raw)); err != nil {
				t.Fatalf("%s: the device's serialized tx does not parse: %v (%x)", v.name, err, raw)
			}
			prev := funding[v.name].TxOut[0]
			if len(tx.TxIn) != 1 || tx.TxIn[0].PreviousOutPoint.Hash != funding[v.name].TxHash() || len(tx.TxOut) != 2 ||
				tx.TxOut[0].Value != 60000 || tx.TxOut[1].Value != 30000 {
				t.Fatalf("%s: signed tx is not the one asked for: %+v", v.name, tx)
			}
			fetch := txscript.NewCannedPrevOutputFetcher(prev.PkScript, prev.Value)
			vm, err := txscript.NewEngine(prev.PkScript, &tx, 0, txscript.StandardVerifyFlags, nil, txscript.NewTxSigHashes(&tx, fetch), prev.Value, fetch)
			if err != nil {
				t.Fatal(err)
			}
			if err := vm.Execute(); err != nil {
				t.Errorf("%s: the signed input does not verify: %v", v.name, err)
			}
			// The signature hdwallet reports is the one in the transaction.
			if len(r.Signatures) != 1 {
				t.Fatalf("%s: %d signatures", v.name, len(r.Signatures))
			}
			der, err := hex.DecodeString(r.Signatures[0])
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ecdsa.ParseDERSignature(der); err != nil {
				t.Errorf("%s: signature %x: %v", v.name, der, err)
			}
			if !bytes.Contains(raw, append(der, byte(txscript.SigHashAll))) {
				t.Errorf("%s: reported signature is not in the transaction", v.name)
			}
		}
	})

	t.Run("eth sign tx", func(t *testing.T) {
		for name, chain := range map[string]int64{"ethLegacy": 1, "ethLegacyData": 11155111, "eth1559": 1} {
			var r struct{ Serialized string }
			value(name, &r)
			raw, err := hexutil.Decode(r.Serialized)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			var tx types.Transaction
			if err := tx.UnmarshalBinary(raw); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			from, err := types.Sender(types.LatestSignerForChainID(big.NewInt(chain)), &tx)
			if err != nil || from.Hex() != hdwalletETHAddr {
				t.Errorf("%s: sender %s (%v), want %s", name, from.Hex(), err, hdwalletETHAddr)
			}
			if tx.To() == nil || !strings.EqualFold(tx.To().Hex(), hdwalletEthTo) {
				t.Errorf("%s: to %v", name, tx.To())
			}
			if name == "eth1559" && tx.Type() != types.DynamicFeeTxType {
				t.Errorf("eth1559: type %d", tx.Type())
			}
			if name == "ethLegacyData" && len(tx.Data()) != 1500 {
				t.Errorf("ethLegacyData: %d bytes of data", len(tx.Data()))
			}
		}
	})

	t.Run("messages", func(t *testing.T) {
		var m struct{ Address, Signature string }
		value("ethMessage", &m)
		sig, err := hexutil.Decode(m.Signature)
		if err != nil || len(sig) != 65 || sig[64] < 27 {
			t.Fatalf("eth signature %q", m.Signature)
		}
		sig[64] -= 27
		pub, err := crypto.SigToPub(accounts.TextHash([]byte("hello hwbridge")), sig)
		if err != nil || crypto.PubkeyToAddress(*pub).Hex() != hdwalletETHAddr || m.Address != hdwalletETHAddr {
			t.Errorf("eth message signature recovers %v (%v), address %s; want %s", pub, err, m.Address, hdwalletETHAddr)
		}
		var b struct{ Address, Signature string }
		value("btcMessage", &b)
		bsig, err := hex.DecodeString(b.Signature)
		if err != nil || len(bsig) != 65 || bsig[0] < 39 || bsig[0] > 42 {
			t.Fatalf("btc signature %q: want 65 bytes with a p2wpkh header (39-42)", b.Signature)
		}
		var buf bytes.Buffer
		_ = wire.WriteVarString(&buf, 0, "Bitcoin Signed Message:\n")
		_ = wire.WriteVarString(&buf, 0, "hello hwbridge")
		pk, _, err := ecdsa.RecoverCompact(append([]byte{bsig[0] - 8}, bsig[1:]...), chainhash.DoubleHashB(buf.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		a, err := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(pk.SerializeCompressed()), &chaincfg.MainNetParams)
		if err != nil || a.EncodeAddress() != hdwalletVectors[2].address || b.Address != hdwalletVectors[2].address {
			t.Errorf("btc message signature recovers %v, hdwallet says %s, want %s", a, b.Address, hdwalletVectors[2].address)
		}
	})

	t.Run("transcript", func(t *testing.T) {
		titles := map[string]int{}
		for _, e := range d.Approver().Transcript() {
			titles[e.Title]++
		}
		// One send screen per transaction, a transaction screen per sign, the address
		// displays asked for.
		if titles["Send"] != 3 || titles["Transaction"] < 6 || titles["BTC address"] != 3 || titles["ETH address"] != 1 {
			t.Errorf("screens %v", titles)
		}
	})
}

// TestHDWalletKeepKeyPIN: hdwallet-keepkey answers the PIN matrix (PIN_REQUEST, sendPin)
// of a PIN-protected persona, once per session.
func TestHDWalletKeepKeyPIN(t *testing.T) {
	d := NewForTest(t, Options{PIN: "1379"})
	srv := serveUDP(t, d)
	get := map[string]any{"addressNList": addressN(t, "m/84'/0'/0'/0/0"), "coin": "Bitcoin", "scriptType": "p2wpkh"}
	out := runHDWallet(t, srv.Addr().Port, "1379", [][]any{
		{"before", "getFeatures", false},
		{"address", "btcGetAddress", get},
		{"again", "btcGetAddress", get},
		{"after", "getFeatures", false},
	})
	for _, name := range []string{"address", "again"} {
		var a string
		if r := out[name]; !r.OK || json.Unmarshal(r.Value, &a) != nil || a != hdwalletVectors[2].address {
			t.Fatalf("%s: %+v", name, out[name])
		}
	}
	var before, after map[string]any
	if json.Unmarshal(out["before"].Value, &before) != nil || json.Unmarshal(out["after"].Value, &after) != nil {
		t.Fatalf("features %+v %+v", out["before"], out["after"])
	}
	if before["pinProtection"] != true || before["pinCached"] != false || after["pinCached"] != true {
		t.Fatalf("pin state before %v/%v, after %v", before["pinProtection"], before["pinCached"], after["pinCached"])
	}
	asked := 0
	for _, e := range d.Approver().Transcript() {
		if e.Title == "Enter Your PIN" {
			asked++
		}
	}
	if asked != 1 {
		t.Errorf("the PIN was asked %d times, want once", asked)
	}
}
