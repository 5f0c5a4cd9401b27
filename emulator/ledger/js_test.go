package ledgeremu

// Ledger's own JavaScript clients from npm (ledger-bitcoin, @ledgerhq/hw-app-eth over
// @ledgerhq/hw-transport-node-speculos) against the emulator's Speculos TCP port. They are
// the referee for byte-level fidelity.

import (
	"bytes"
	"context"
	"encoding/base64"
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

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/hwbridge/hwbridge/internal/peers"
)

// jsClients finds node and the Ledger npm clients (internal/peers: testdata/js/node_modules,
// or the cache scripts/deps.sh fills). It returns the script directory and the NODE_PATH.
func jsClients(t *testing.T) (dir, nodePath string) {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "js"))
	if err != nil {
		t.Fatal(err)
	}
	return dir, peers.NPM(t, dir, "ledgeremu-js", "@ledgerhq/hw-transport-node-speculos")
}

// serveTCP serves d on a free loopback port and returns the port.
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

// runNode runs clients.js with one request and decodes its JSON answer.
func runNode(t *testing.T, dir, nodePath, cmd string, req map[string]any, out any) {
	t.Helper()
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, "node", filepath.Join(dir, "clients.js"), cmd, string(b))
	c.Dir = dir
	c.Env = os.Environ()
	if nodePath != "" {
		c.Env = append(c.Env, "NODE_PATH="+nodePath)
	}
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		t.Fatalf("node clients.js %s: %v\n%s", cmd, err, stderr.String())
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		t.Fatalf("node output: %v\n%s", err, stdout.String())
	}
}

func psbtBase64(t *testing.T, p *psbt.Packet) string {
	t.Helper()
	var buf bytes.Buffer
	if err := p.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

type jsSig struct {
	Input     int    `json:"input"`
	Pubkey    string `json:"pubkey"`
	Signature string `json:"signature"`
}

type jsFailure struct {
	Error      string `json:"error"`
	StatusCode int    `json:"statusCode"`
}

func TestJSBitcoinClient(t *testing.T) {
	dir, nodePath := jsClients(t)
	d := newDevice(t, Config{App: AppEthereum}) // the script opens Bitcoin through the dashboard
	port := serveTCP(t, d)

	fw := buildSpend(t, d.Wallet(), "wpkh", 0, 1)
	ftr := buildSpend(t, d.Wallet(), "tr", 0, 2)
	cosigners := []string{cosignerKey(t, legalWinner, "m/48'/0'/0'/2'"), cosignerKey(t, "zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo wrong", "m/48'/0'/0'/2'")}
	var out struct {
		App, Fingerprint, Xpub84, Wpkh, WpkhDisplayed, Tr string
		CoinTypeRefused                                   jsFailure
		Multisig                                          struct {
			ID, Hmac, ExpectedID, Address string
			Keys                          []string
		}
		WpkhSigs, TrSigs []jsSig
		Message          string
	}
	runNode(t, dir, nodePath, "btc", map[string]any{
		"port": port, "app": "Bitcoin", "cosigners": cosigners,
		"wpkhPsbt": psbtBase64(t, fw.pkt), "trPsbt": psbtBase64(t, ftr.pkt), "message": "hello",
	}, &out)

	for _, c := range []struct{ name, got, want string }{
		{"app", out.App, AppBitcoin},
		{"fingerprint", out.Fingerprint, vecFingerprint},
		{"xpub m/84'/0'/0'", out.Xpub84, vecXpub84},
		{"wpkh address", out.Wpkh, vecWpkh},
		{"tr address", out.Tr, vecTr},
		{"multisig id", out.Multisig.ID, out.Multisig.ExpectedID},
	} {
		if c.got != c.want {
			t.Errorf("%s: %q, want %q", c.name, c.got, c.want)
		}
	}
	if out.CoinTypeRefused.StatusCode != int(swNotSupported) {
		t.Errorf("coin type 1' on the mainnet app: %+v, want 0x6a82", out.CoinTypeRefused)
	}
	// The registration's HMAC is the device's, and the address matches our own derivation.
	pol := testPolicy{name: "Cold 2of3", template: "wsh(sortedmulti(2,@0/**,@1/**,@2/**))", keys: out.Multisig.Keys}
	app := &btcApp{policyKey: d.policyKey}
	if mac := app.policyHMAC(pol.id()); hex.EncodeToString(mac[:]) != out.Multisig.Hmac {
		t.Errorf("multisig hmac %s", out.Multisig.Hmac)
	}
	if !strings.HasPrefix(out.Multisig.Address, "bc1q") || len(out.Multisig.Address) != 62 {
		t.Errorf("multisig address %q", out.Multisig.Address)
	}

	verify := func(name string, f *spendFixture, sigs []jsSig) {
		if len(sigs) != len(f.pkt.Inputs) {
			t.Fatalf("%s: %d signatures for %d inputs", name, len(sigs), len(f.pkt.Inputs))
		}
		m := map[int][2][]byte{}
		for _, s := range sigs {
			m[s.Input] = [2][]byte{unhex(t, s.Pubkey), unhex(t, s.Signature)}
		}
		f.finalizeAndVerify(t, m)
	}
	verify("p2wpkh", fw, out.WpkhSigs)
	verify("p2tr", ftr, out.TrSigs)

	sig, err := base64.StdEncoding.DecodeString(out.Message)
	if err != nil || len(sig) != 65 {
		t.Fatalf("message signature %q", out.Message)
	}
	checkBTCMessage(t, d, "m/84'/0'/0'/0/0", "hello", sig)

	// The test app: tpub, tb1 addresses, and coin type 0' refused.
	var tout struct {
		App, Fingerprint, Xpub84, Wpkh string
		CoinTypeRefused                jsFailure
	}
	runNode(t, dir, nodePath, "btc", map[string]any{"port": port, "app": "Bitcoin Test"}, &tout)
	if tout.App != AppBitcoinTest || tout.Fingerprint != vecFingerprint || tout.Xpub84 != vecTpub84 || tout.Wpkh != vecTestWpkh ||
		tout.CoinTypeRefused.StatusCode != int(swNotSupported) {
		t.Errorf("bitcoin test app: %+v", tout)
	}

	titles := map[string]bool{}
	for _, e := range d.Approver().Transcript() {
		titles[e.Title] = true
	}
	for _, want := range []string{"Open application", "Verify address", "Register wallet", "Sign transaction", "Sign message"} {
		if !titles[want] {
			t.Errorf("no %q screen in the transcript", want)
		}
	}
}

func TestJSEthereumClient(t *testing.T) {
	dir, nodePath := jsClients(t)
	d := newDevice(t, Config{})
	port := serveTCP(t, d)
	domain, message := crypto.Keccak256([]byte("domain")), crypto.Keccak256([]byte("message"))
	req := map[string]any{
		"port":    port,
		"txs":     []string{vecEthLegTx, vecEth1559Tx, hex.EncodeToString(erc20Raw(t))},
		"message": "hello",
		"eip712":  map[string]string{"domain": hex.EncodeToString(domain), "message": hex.EncodeToString(message)},
	}
	type txResult struct {
		OK *struct{ V, R, S string } `json:"ok"`
		jsFailure
	}
	var out struct {
		App    string
		Config struct {
			ArbitraryDataEnabled int
			Version              string
		}
		Address struct {
			Address, PublicKey, ChainCode string
		}
		AddressDisplayed struct{ Address string }
		Txs              []txResult
		Personal         struct {
			V    int
			R, S string
		}
		Eip712 struct {
			OK *struct {
				V    int
				R, S string
			} `json:"ok"`
			jsFailure
		}
	}
	runNode(t, dir, nodePath, "eth", req, &out)
	if out.App != AppEthereum || out.Address.Address != vecEthAddr || out.AddressDisplayed.Address != vecEthAddr || len(out.Address.ChainCode) != 64 {
		t.Fatalf("app %q address %+v", out.App, out.Address)
	}
	if out.Config.ArbitraryDataEnabled != 0 {
		t.Errorf("blind signing reported on: %+v", out.Config)
	}
	want := common.HexToAddress(vecEthAddr)
	// Legacy: hw-app-eth returns v = chainId*2+35+parity as hex.
	leg := out.Txs[0].OK
	if leg == nil || leg.V != "25" || leg.R != vecEthLegR || leg.S != vecEthLegS {
		t.Fatalf("legacy: %+v", out.Txs[0])
	}
	tx1559 := out.Txs[1].OK
	if tx1559 == nil || tx1559.V != "00" || tx1559.R != vecEth1559R || tx1559.S != vecEth1559S {
		t.Fatalf("eip-1559: %+v", out.Txs[1])
	}
	// Recover the senders with go-ethereum.
	for i, raw := range []string{vecEthLegTx, vecEth1559Tx} {
		r := out.Txs[i].OK
		v, _ := new(big.Int).SetString(r.V, 16)
		parity := byte(v.Uint64())
		if i == 0 {
			parity -= 37
		}
		if from := recover1559(t, unhex(t, raw), append([]byte{parity}, append(unhex(t, r.R), unhex(t, r.S)...)...)); from != want {
			t.Errorf("tx %d signed by %s", i, from.Hex())
		}
	}
	// Calldata without blind signing: hw-app-eth maps 0x6A80 to EthAppPleaseEnableContractData.
	// (the remapped error carries no status code).
	if f := out.Txs[2]; f.OK != nil || !strings.Contains(f.Error, "Please enable Blind signing or Contract data") {
		t.Errorf("erc-20 without blind signing: %+v", f)
	}
	if out.Personal.V != 28 || out.Personal.R != vecPersonalR || out.Personal.S != vecPersonalS {
		t.Errorf("personal: %+v", out.Personal)
	}
	if out.Eip712.OK != nil || out.Eip712.StatusCode != int(swIncorrectData) {
		t.Errorf("eip-712 without blind signing: %+v", out.Eip712)
	}

	// With blind signing on, the ERC-20 transfer and EIP-712 sign.
	d.SetBlindSigning(true)
	req["txs"] = []string{hex.EncodeToString(erc20Raw(t))}
	req["message"] = ""
	runNode(t, dir, nodePath, "eth", req, &out)
	if out.Config.ArbitraryDataEnabled != 1 {
		t.Errorf("blind signing not reported: %+v", out.Config)
	}
	erc := out.Txs[0].OK
	if erc == nil {
		t.Fatalf("erc-20 with blind signing: %+v", out.Txs[0])
	}
	v, _ := new(big.Int).SetString(erc.V, 16)
	if from := recover1559(t, erc20Raw(t), append([]byte{byte(v.Uint64())}, append(unhex(t, erc.R), unhex(t, erc.S)...)...)); from != want {
		t.Errorf("erc-20 signed by %s", from.Hex())
	}
	e := out.Eip712.OK
	if e == nil {
		t.Fatalf("eip-712: %+v", out.Eip712)
	}
	pub, err := crypto.SigToPub(crypto.Keccak256([]byte{0x19, 0x01}, domain, message), append(append(unhex(t, e.R), unhex(t, e.S)...), byte(e.V-27)))
	if err != nil || crypto.PubkeyToAddress(*pub) != want {
		t.Errorf("eip-712 signer: %v", err)
	}
}
