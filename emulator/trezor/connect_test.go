package trezoremu

// Trezor's own current client, @trezor/connect (npm, pinned in testdata/js), drives the
// emulator's model T over UDP. Every answer is checked here on its own: addresses and
// xpubs against the BIP-44/49/84/86 vectors of the standard test mnemonic, signatures by
// verification (btcd's script engine, go-ethereum's sender recovery and EIP-712 hashing).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
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
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/internal/peers"
)

// connectClient finds node and @trezor/connect (internal/peers: testdata/js/node_modules,
// or the cache scripts/deps.sh fills). It returns the script directory and the NODE_PATH.
func connectClient(t *testing.T) (dir, nodePath string) {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "js"))
	if err != nil {
		t.Fatal(err)
	}
	return dir, peers.NPM(t, dir, "trezoremu-js", "@trezor/connect", "--ignore-scripts")
}

// connectAnswer is one call's result as connect returns it.
type connectAnswer struct {
	Success bool            `json:"success"`
	Payload json.RawMessage `json:"payload"`
}

// Vectors of the standard test mnemonic (BIP-44/49/84/86 test vectors, account 0, first
// receive address; Ethereum m/44'/60'/0'/0/0).
var connectBTCVectors = []struct {
	name, path, scriptType, address string
}{
	{"p2pkh", "m/44'/0'/0'/0/0", "SPENDADDRESS", "1LqBGSKuX5yYUonjxT5qGfpUsXKYYWeabA"},
	{"p2sh-p2wpkh", "m/49'/0'/0'/0/0", "SPENDP2SHWITNESS", "37VucYSaXLCAsxYyAPfbSi9eh4iEcbShgf"},
	{"p2wpkh", "m/84'/0'/0'/0/0", "SPENDWITNESS", "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"},
	{"p2tr", "m/86'/0'/0'/0/0", "SPENDTAPROOT", "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr"},
}

const (
	connectXpub84 = "xpub6CatWdiZiodmUeTDp8LT5or8nmbKNcuyvz7WyksVFkKB4RHwCD3XyuvPEbvqAQY3rAPshWcMLoP2fMFMKHPJ4ZeZXYVUhLv1VMrjPC7PW6V"
	connectXpub86 = "xpub6BgBgsespWvERF3LHQu6CnqdvfEvtMcQjYrcRzx53QJjSxarj2afYWcLteoGVky7D3UKDP9QyrLprQ3VCECoY49yfdDEHGCtMMj92pReUsQ"
	connectPayTo  = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4" // BIP-173 example
	connectEthTo  = "0x1d1c328764a41bda0492b66baa30c4a339ff85ef"
)

const connectTypedData = `{
  "types": {
    "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
      {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
    "Person": [{"name": "name", "type": "string"}, {"name": "wallets", "type": "address[]"}],
    "Mail": [{"name": "from", "type": "Person"}, {"name": "to", "type": "Person[]"},
      {"name": "contents", "type": "string"}, {"name": "flags", "type": "bool[2]"},
      {"name": "delta", "type": "int32"}, {"name": "tag", "type": "bytes4"}, {"name": "blob", "type": "bytes"}]
  },
  "primaryType": "Mail",
  "domain": {"name": "Ether Mail", "version": "1", "chainId": 1, "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},
  "message": {
    "from": {"name": "Cow", "wallets": ["0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826", "0xDeaDbeefdEAdbeefdEadbEEFdeadbeEFdEaDbeeF"]},
    "to": [{"name": "Bob", "wallets": ["0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"]}, {"name": "Daisy", "wallets": []}],
    "contents": "Hello, Bob!", "flags": [true, false], "delta": -7, "tag": "0xdeadbeef", "blob": "0x0102"
  }
}`

// connectFundingTx is a previous transaction paying 100000 sat to addr (its input is made up:
// the device checks only the previous transaction's own hash and the spent output).
func connectFundingTx(t *testing.T, name, addr string) (*wire.MsgTx, []byte) {
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
	seed := chainhash.Hash(sha256.Sum256([]byte("hwbridge connect test funding " + name)))
	tx.AddTxIn(wire.NewTxIn(wire.NewOutPoint(&seed, 0), []byte{0x51}, nil))
	tx.AddTxOut(wire.NewTxOut(100000, pk))
	return tx, pk
}

func refTx(tx *wire.MsgTx) map[string]any {
	var ins, outs []map[string]any
	for _, in := range tx.TxIn {
		ins = append(ins, map[string]any{"prev_hash": in.PreviousOutPoint.Hash.String(), "prev_index": in.PreviousOutPoint.Index,
			"script_sig": hex.EncodeToString(in.SignatureScript), "sequence": in.Sequence})
	}
	for _, o := range tx.TxOut {
		outs = append(outs, map[string]any{"amount": fmt.Sprint(o.Value), "script_pubkey": hex.EncodeToString(o.PkScript)})
	}
	return map[string]any{"hash": tx.TxHash().String(), "version": tx.Version, "lock_time": tx.LockTime, "inputs": ins, "bin_outputs": outs}
}

func TestTrezorConnect(t *testing.T) {
	d := newDevice(t, Options{})
	srv := serveConnectUDP(t, d)

	var td apitypes.TypedData
	if err := json.Unmarshal([]byte(connectTypedData), &td); err != nil {
		t.Fatal(err)
	}
	domainSep, err := td.HashStruct("EIP712Domain", td.Domain.Map())
	if err != nil {
		t.Fatal(err)
	}
	msgHash, err := td.HashStruct(td.PrimaryType, td.Message)
	if err != nil {
		t.Fatal(err)
	}
	var rawTD map[string]any
	if err := json.Unmarshal([]byte(connectTypedData), &rawTD); err != nil {
		t.Fatal(err)
	}

	// Signatures for the verify calls, made here with keys derived from the mnemonic.
	w, err := emulator.NewWallet(emulator.DefaultMnemonic, "")
	if err != nil {
		t.Fatal(err)
	}
	btcKey, err := w.PrivKey(path("m/84'/0'/0'/0/0"))
	if err != nil {
		t.Fatal(err)
	}
	var mbuf bytes.Buffer
	_ = wire.WriteVarString(&mbuf, 0, "Bitcoin Signed Message:\n")
	_ = wire.WriteVarString(&mbuf, 0, "verify me")
	btcSig := ecdsa.SignCompact(btcKey, chainhash.DoubleHashB(mbuf.Bytes()), true)
	btcSig[0] += 8 // p2wpkh header
	ethKey, err := w.EthKey(path("m/44'/60'/0'/0/0"))
	if err != nil {
		t.Fatal(err)
	}
	ethSig, err := crypto.Sign(accounts.TextHash([]byte("verify me")), ethKey)
	if err != nil {
		t.Fatal(err)
	}
	ethSig[64] += 27

	const ethPath = "m/44'/60'/0'/0/0"
	calls := [][]any{
		{"verifyMessage", "verifyMessage", map[string]any{"address": connectBTCVectors[2].address, "coin": "btc", "message": "verify me", "signature": base64.StdEncoding.EncodeToString(btcSig)}},
		{"verifyMessageBad", "verifyMessage", map[string]any{"address": connectBTCVectors[2].address, "coin": "btc", "message": "verify me!", "signature": base64.StdEncoding.EncodeToString(btcSig)}},
		{"ethVerify", "ethereumVerifyMessage", map[string]any{"address": ethAddr0, "message": "verify me", "signature": hex.EncodeToString(ethSig)}},
		{"ethVerifyBad", "ethereumVerifyMessage", map[string]any{"address": ethAddr0, "message": "verify me!", "signature": hex.EncodeToString(ethSig)}},
		{"features", "getFeatures", map[string]any{}},
		{"xpub84", "getPublicKey", map[string]any{"path": "m/84'/0'/0'", "coin": "btc"}},
		{"xpub86", "getPublicKey", map[string]any{"path": "m/86'/0'/0'", "coin": "btc"}},
		{"applySettings", "applySettings", map[string]any{"label": "connect"}},
		{"featuresAfter", "getFeatures", map[string]any{}},
		{"signMessage", "signMessage", map[string]any{"path": "m/84'/0'/0'/0/0", "coin": "btc", "message": "hello hwbridge"}},
		{"ethAddress", "ethereumGetAddress", map[string]any{"path": ethPath, "showOnTrezor": false}},
		{"ethAddressShown", "ethereumGetAddress", map[string]any{"path": ethPath, "showOnTrezor": true}},
		{"ethLegacy", "ethereumSignTransaction", map[string]any{"path": ethPath, "transaction": map[string]any{
			"to": connectEthTo, "value": "0x2386f26fc10000", "gasPrice": "0x3b9aca00", "gasLimit": "0x5208", "nonce": "0x0", "chainId": 1, "data": "0x"}}},
		{"eth1559", "ethereumSignTransaction", map[string]any{"path": ethPath, "transaction": map[string]any{
			"to": connectEthTo, "value": "0x2386f26fc10000", "maxFeePerGas": "0x77359400", "maxPriorityFeePerGas": "0x3b9aca00",
			"gasLimit": "0x5208", "nonce": "0x1", "chainId": 1, "data": "0xa9059cbb"}}},
		{"ethMessage", "ethereumSignMessage", map[string]any{"path": ethPath, "message": "hello hwbridge"}},
		{"typedData", "ethereumSignTypedData", map[string]any{"path": ethPath, "data": rawTD, "metamask_v4_compat": true}},
		{"typedDataHashes", "ethereumSignTypedData", map[string]any{"path": ethPath, "data": rawTD, "metamask_v4_compat": true,
			"domain_separator_hash": hex.EncodeToString(domainSep), "message_hash": hex.EncodeToString(msgHash)}},
	}
	for _, v := range connectBTCVectors {
		for _, show := range []bool{false, true} {
			calls = append(calls, []any{fmt.Sprintf("address %s %v", v.name, show), "getAddress", map[string]any{"path": v.path, "coin": "btc", "showOnTrezor": show}})
		}
	}
	funding := map[string]*wire.MsgTx{}
	for _, v := range connectBTCVectors {
		tx, _ := connectFundingTx(t, v.name, v.address)
		funding[v.name] = tx
		calls = append(calls, []any{"signTx " + v.name, "signTransaction", map[string]any{
			"coin": "btc", "push": false,
			"inputs":  []map[string]any{{"address_n": v.path, "prev_hash": tx.TxHash().String(), "prev_index": 0, "amount": "100000", "script_type": v.scriptType}},
			"outputs": []map[string]any{{"address": connectPayTo, "amount": "90000", "script_type": "PAYTOADDRESS"}},
			"refTxs":  []map[string]any{refTx(tx)},
		}})
	}
	out := runConnect(t, srv.Addr().Port, calls)
	answer := func(name string, v any) {
		t.Helper()
		var a connectAnswer
		if err := json.Unmarshal(out[name], &a); err != nil {
			t.Fatalf("%s: %v (%s)", name, err, out[name])
		}
		if !a.Success {
			t.Fatalf("%s: connect reports failure: %s", name, a.Payload)
		}
		if err := json.Unmarshal(a.Payload, v); err != nil {
			t.Fatalf("%s: payload %s: %v", name, a.Payload, err)
		}
	}

	t.Run("features", func(t *testing.T) {
		var f struct {
			Model, InternalModel, Revision, Label, Vendor string
			Major                                         int   `json:"major_version"`
			Minor                                         int   `json:"minor_version"`
			Patch                                         int   `json:"patch_version"`
			Bootloader                                    *bool `json:"bootloader_mode"`
		}
		answer("features", &f)
		var raw map[string]any
		answer("features", &raw)
		if raw["model"] != "T" || raw["internal_model"] != "T2T1" || raw["revision"] != connectReleases[ModelT].revision ||
			fmt.Sprintf("%v.%v.%v", raw["major_version"], raw["minor_version"], raw["patch_version"]) != connectReleases[ModelT].version ||
			raw["bootloader_mode"] != nil {
			t.Fatalf("features as connect saw them: %v", raw)
		}
		answer("featuresAfter", &raw)
		if raw["label"] != "connect" {
			t.Fatalf("label after applySettings: %v", raw["label"])
		}
		// Connect checked the revision against its bundled release list on connect.
		var events []struct {
			Type               string
			AuthenticityChecks struct {
				FirmwareRevision *struct {
					Success bool
					Error   string
				} `json:"firmwareRevision"`
			} `json:"authenticityChecks"`
		}
		if err := json.Unmarshal(out["events"], &events); err != nil || len(events) == 0 {
			t.Fatalf("device events %s: %v", out["events"], err)
		}
		if fr := events[len(events)-1].AuthenticityChecks.FirmwareRevision; fr == nil || !fr.Success {
			t.Fatalf("connect's firmware revision check: %s", out["events"])
		}
	})

	t.Run("public keys", func(t *testing.T) {
		for name, want := range map[string]string{"xpub84": connectXpub84, "xpub86": connectXpub86} {
			var pk struct {
				Xpub       string
				Descriptor *string
			}
			answer(name, &pk)
			if pk.Xpub != want {
				t.Errorf("%s: %s, want %s", name, pk.Xpub, want)
			}
		}
		var pk struct{ Descriptor string }
		answer("xpub84", &pk)
		if !strings.HasPrefix(pk.Descriptor, "wpkh([73c5da0a/84h/0h/0h]"+connectXpub84+"/<0;1>/*)#") {
			t.Errorf("descriptor %q", pk.Descriptor)
		}
	})

	t.Run("addresses", func(t *testing.T) {
		for _, v := range connectBTCVectors {
			for _, show := range []bool{false, true} {
				var a struct{ Address string }
				answer(fmt.Sprintf("address %s %v", v.name, show), &a)
				if a.Address != v.address {
					t.Errorf("%s (display %v): %s, want %s", v.name, show, a.Address, v.address)
				}
			}
		}
		for _, name := range []string{"ethAddress", "ethAddressShown"} {
			var a struct{ Address string }
			answer(name, &a)
			if a.Address != ethAddr0 {
				t.Errorf("%s: %s, want %s", name, a.Address, ethAddr0)
			}
		}
	})

	t.Run("sign message", func(t *testing.T) {
		var m struct{ Address, Signature string }
		answer("signMessage", &m)
		sig, err := base64.StdEncoding.DecodeString(m.Signature)
		if err != nil || len(sig) != 65 || sig[0] < 39 || sig[0] > 42 {
			t.Fatalf("signature %q: want 65 bytes with a p2wpkh header (39-42)", m.Signature)
		}
		var buf bytes.Buffer
		_ = wire.WriteVarString(&buf, 0, "Bitcoin Signed Message:\n")
		_ = wire.WriteVarString(&buf, 0, "hello hwbridge")
		norm := append([]byte{sig[0] - 8}, sig[1:]...)
		pub, _, err := ecdsa.RecoverCompact(norm, chainhash.DoubleHashB(buf.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		a, err := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(pub.SerializeCompressed()), &chaincfg.MainNetParams)
		if err != nil || a.EncodeAddress() != connectBTCVectors[2].address || m.Address != a.EncodeAddress() {
			t.Fatalf("signature recovers %v, connect says %s, want %s", a, m.Address, connectBTCVectors[2].address)
		}
	})

	t.Run("verify message", func(t *testing.T) {
		for _, name := range []string{"verifyMessage", "ethVerify"} {
			var ok struct{ Message string }
			answer(name, &ok)
		}
		for _, name := range []string{"verifyMessageBad", "ethVerifyBad"} {
			var a connectAnswer
			if err := json.Unmarshal(out[name], &a); err != nil || a.Success {
				t.Errorf("%s: a wrong message verified: %s", name, out[name])
			}
		}
	})

	t.Run("screens", func(t *testing.T) {
		// The displayed addresses were shown, and typed data went through struct streaming
		// (the domain screen), not a hash.
		shown, domains := 0, 0
		for _, e := range d.Approver().Transcript() {
			switch e.Title {
			case "Receive address":
				shown++
			case "Typed data domain":
				domains++
			}
		}
		if shown != len(connectBTCVectors)+1 || domains != 2 {
			t.Errorf("screens: %d addresses shown (want %d), %d typed data domains (want 2)", shown, len(connectBTCVectors)+1, domains)
		}
	})

	t.Run("sign transaction", func(t *testing.T) {
		for _, v := range connectBTCVectors {
			var r struct {
				SerializedTx string `json:"serializedTx"`
			}
			answer("signTx "+v.name, &r)
			raw, err := hex.DecodeString(r.SerializedTx)
			if err != nil {
				t.Fatal(err)
			}
			var tx wire.MsgTx
			if err := tx.Deserialize(bytes.NewReader(raw)); err != nil {
				t.Fatalf("%s: %v", v.name, err)
			}
			prev := funding[v.name]
			if len(tx.TxIn) != 1 || tx.TxIn[0].PreviousOutPoint != *wire.NewOutPoint(ptr(prev.TxHash()), 0) || len(tx.TxOut) != 1 || tx.TxOut[0].Value != 90000 {
				t.Fatalf("%s: signed a different transaction: %+v", v.name, tx)
			}
			fetcher := txscript.NewCannedPrevOutputFetcher(prev.TxOut[0].PkScript, prev.TxOut[0].Value)
			vm, err := txscript.NewEngine(prev.TxOut[0].PkScript, &tx, 0, txscript.StandardVerifyFlags, nil,
				txscript.NewTxSigHashes(&tx, fetcher), prev.TxOut[0].Value, fetcher)
			if err != nil {
				t.Fatal(err)
			}
			if err := vm.Execute(); err != nil {
				t.Errorf("%s: the signed input does not verify: %v", v.name, err)
			}
		}
	})

	t.Run("ethereum transactions", func(t *testing.T) {
		to := common.HexToAddress(connectEthTo)
		value, _ := new(big.Int).SetString("2386f26fc10000", 16)
		chain := big.NewInt(1)
		for _, name := range []string{"ethLegacy", "eth1559"} {
			var s struct{ V, R, S string }
			answer(name, &s)
			v, r, ss := hexutil.MustDecodeBig(s.V), hexutil.MustDecodeBig(s.R), hexutil.MustDecodeBig(s.S)
			var tx *types.Transaction
			var signer types.Signer
			if name == "ethLegacy" {
				tx = types.NewTx(&types.LegacyTx{Nonce: 0, GasPrice: big.NewInt(1e9), Gas: 21000, To: &to, Value: value, V: v, R: r, S: ss})
				signer = types.NewEIP155Signer(chain)
			} else {
				tx = types.NewTx(&types.DynamicFeeTx{ChainID: chain, Nonce: 1, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(2e9), Gas: 21000,
					To: &to, Value: value, Data: []byte{0xa9, 0x05, 0x9c, 0xbb}, V: v, R: r, S: ss})
				signer = types.NewLondonSigner(chain)
			}
			from, err := types.Sender(signer, tx)
			if err != nil || from.Hex() != ethAddr0 {
				t.Errorf("%s: sender %s (%v), want %s", name, from.Hex(), err, ethAddr0)
			}
		}
	})

	t.Run("ethereum message and typed data", func(t *testing.T) {
		recovers := func(name string, digest []byte, sigHex string) {
			t.Helper()
			sig, err := hexutil.Decode("0x" + strings.TrimPrefix(sigHex, "0x"))
			if err != nil || len(sig) != 65 {
				t.Fatalf("%s: signature %q", name, sigHex)
			}
			sig[64] -= 27
			pub, err := crypto.SigToPub(digest, sig)
			if err != nil || crypto.PubkeyToAddress(*pub).Hex() != ethAddr0 {
				t.Errorf("%s: signature does not recover %s", name, ethAddr0)
			}
		}
		var m struct{ Address, Signature string }
		answer("ethMessage", &m)
		recovers("personal message", accounts.TextHash([]byte("hello hwbridge")), m.Signature)
		digest := crypto.Keccak256([]byte{0x19, 0x01}, domainSep, msgHash)
		for _, name := range []string{"typedData", "typedDataHashes"} {
			var s struct{ Address, Signature string }
			answer(name, &s)
			recovers(name, digest, s.Signature)
		}
	})
}

func ptr[T any](v T) *T { return &v }

// serveConnectUDP serves d on a free loopback UDP port pair for the duration of the test.
func serveConnectUDP(t *testing.T, d *Device) *UDPServer {
	t.Helper()
	srv, err := d.ListenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("udp server: %v", err)
		}
	})
	return srv
}

// runConnect runs connect.js with the calls ([name, method, params]) against port and
// returns its answers by name, plus "events" (the device events connect emitted).
func runConnect(t *testing.T, port int, calls [][]any) map[string]json.RawMessage {
	t.Helper()
	dir, nodePath := connectClient(t)
	plan, err := json.Marshal(map[string]any{"port": port, "calls": calls})
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer rcancel()
	cmd := exec.CommandContext(rctx, "node", filepath.Join(dir, "connect.js"))
	cmd.Dir = dir
	cmd.Env = os.Environ()
	if nodePath != "" {
		cmd.Env = append(cmd.Env, "NODE_PATH="+nodePath)
	}
	cmd.Stdin = bytes.NewReader(plan)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node connect.js: %v\n%s", err, stderr.String())
	}
	var out map[string]json.RawMessage
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("connect.js output: %v\n%s", err, stdout.String())
	}
	return out
}

// TestTrezorConnectPersonas: connect accepts every persona (its strict Features check and
// its revision check against the bundled release list), gets the BIP-84 address, and signs
// EIP-712 the way it does for that model: struct streaming on the Safes, the hashes
// (EthereumSignTypedHash) on the Trezor One.
func TestTrezorConnectPersonas(t *testing.T) {
	var td apitypes.TypedData
	if err := json.Unmarshal([]byte(connectTypedData), &td); err != nil {
		t.Fatal(err)
	}
	domainSep, err := td.HashStruct("EIP712Domain", td.Domain.Map())
	if err != nil {
		t.Fatal(err)
	}
	msgHash, err := td.HashStruct(td.PrimaryType, td.Message)
	if err != nil {
		t.Fatal(err)
	}
	var rawTD map[string]any
	if err := json.Unmarshal([]byte(connectTypedData), &rawTD); err != nil {
		t.Fatal(err)
	}
	digest := crypto.Keccak256([]byte{0x19, 0x01}, domainSep, msgHash)
	for _, m := range []Model{ModelOne, ModelSafe3, ModelSafe5} {
		t.Run(strings.ReplaceAll(string(m), " ", ""), func(t *testing.T) {
			d := newDevice(t, Options{Model: m})
			srv := serveConnectUDP(t, d)
			out := runConnect(t, srv.Addr().Port, [][]any{
				{"features", "getFeatures", map[string]any{}},
				{"address", "getAddress", map[string]any{"path": connectBTCVectors[2].path, "coin": "btc", "showOnTrezor": false}},
				{"typed", "ethereumSignTypedData", map[string]any{"path": "m/44'/60'/0'/0/0", "data": rawTD, "metamask_v4_compat": true,
					"domain_separator_hash": hex.EncodeToString(domainSep), "message_hash": hex.EncodeToString(msgHash)}},
			})
			get := func(name string, v any) {
				t.Helper()
				var a connectAnswer
				if err := json.Unmarshal(out[name], &a); err != nil || !a.Success {
					t.Fatalf("%s: %s (%v)", name, out[name], err)
				}
				if err := json.Unmarshal(a.Payload, v); err != nil {
					t.Fatal(err)
				}
			}
			var f map[string]any
			get("features", &f)
			rel := connectReleases[m]
			if f["model"] != string(m) || f["revision"] != rel.revision || f["bootloader_mode"] != nil ||
				fmt.Sprintf("%v.%v.%v", f["major_version"], f["minor_version"], f["patch_version"]) != rel.version {
				t.Fatalf("features as connect saw them: %v", f)
			}
			if !strings.Contains(string(out["events"]), `"firmwareRevision":{"success":true}`) {
				t.Fatalf("connect's firmware revision check: %s", out["events"])
			}
			var a struct{ Address string }
			get("address", &a)
			if a.Address != connectBTCVectors[2].address {
				t.Fatalf("address %s", a.Address)
			}
			var s struct{ Signature string }
			get("typed", &s)
			sig, err := hexutil.Decode("0x" + strings.TrimPrefix(s.Signature, "0x"))
			if err != nil || len(sig) != 65 {
				t.Fatalf("signature %q", s.Signature)
			}
			sig[64] -= 27
			pub, err := crypto.SigToPub(digest, sig)
			if err != nil || crypto.PubkeyToAddress(*pub).Hex() != ethAddr0 {
				t.Fatalf("typed data signature does not recover %s", ethAddr0)
			}
			streamed := false
			for _, e := range d.Approver().Transcript() {
				streamed = streamed || e.Title == "Typed data domain"
			}
			if streamed == (m == ModelOne) {
				t.Fatalf("model %s: struct streaming used: %v", m, streamed)
			}
		})
	}
}
