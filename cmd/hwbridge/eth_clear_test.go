package main

import (
	"context"
	"math/big"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goeth "github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/hwbridge/hwbridge/daemon"
	ledgeremu "github.com/hwbridge/hwbridge/emulator/ledger"
	trezoremu "github.com/hwbridge/hwbridge/emulator/trezor"
	"github.com/hwbridge/hwbridge/internal/devchain/ethdev"
	testtoken "github.com/hwbridge/hwbridge/testdata/erc20"
)

// TestETHSignTypedDataBothFamilies: eth sign-typed-data signs the EIP-712 Mail in full on
// the Ledger-class emulator (verbose EIP-712 on, blind signing off: it shows the fields)
// and by streaming on the Trezor-class one, with one signature.
func TestETHSignTypedDataBothFamilies(t *testing.T) {
	file := filepath.Join("..", "..", "chains", "ethereum", "testdata", "vectors", "eip712", "mail.json")
	var lemu *ledgeremu.Device
	ledger := serveLedger(t, func(d *ledgeremu.Device) { d.SetVerboseEIP712(true); lemu = d })
	temu, err := trezoremu.New(trezoremu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	trezor := serveTrezorDevice(t, temu)
	sigs := map[string]string{}
	for name, dev := range map[string]string{"ledger": ledger, "trezor": trezor} {
		r := cli(t, "", nil, "--device", dev, "--json", "eth", "sign-typed-data", file)
		var out map[string]any
		decodeJSON(t, r, &out)
		if r.code != exitOK {
			t.Fatalf("%s: exit %d %q", name, r.code, r.stderr)
		}
		sigs[name], _ = out["signature"].(string)
		if name == "ledger" && !strings.Contains(r.stderr, "Verbose EIP-712") {
			t.Errorf("the preview does not say what a ledger shows: %q", r.stderr)
		}
	}
	if sigs["ledger"] == "" || sigs["ledger"] != sigs["trezor"] {
		t.Fatalf("signatures %v", sigs)
	}
	var shown []string
	for _, e := range lemu.Approver().Transcript() {
		if e.Title == "Blind signing" {
			t.Errorf("blind-signing screen %+v", e)
		}
		shown = append(shown, e.Lines...)
	}
	if !strings.Contains(strings.Join(shown, "\n"), "contents: Hello, Bob!") {
		t.Errorf("ledger transcript %q", shown)
	}
}

// TestETHTokenTransferLedgerClearSigned: eth token-transfer of a 6-decimal dev-chain token
// from the Ledger-class emulator with blind signing off. With HWBRIDGE_LEDGER_TEST_TOKEN_KEY=1
// the driver describes the token with a test-key descriptor, which this emulator (as hwemu
// --ledger-test-token-key) trusts: the device shows the token amount. Without it the
// transfer needs blind signing, and the error says so.
func TestETHTokenTransferLedgerClearSigned(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	holder := common.HexToAddress(ethEmulatorAddr)
	faucet := crypto.PubkeyToAddress(ethdev.FaucetKey().PublicKey)
	node, err := ethdev.Start(ctx, ethdev.Options{Prefund: []common.Address{faucet, holder}})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	ec, err := ethclient.DialContext(ctx, node.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	data, err := testtoken.DeployData("Demo USD", "dUSD", big.NewInt(100_000_000), holder)
	if err != nil {
		t.Fatal(err)
	}
	gas, err := ec.EstimateGas(ctx, goeth.CallMsg{From: faucet, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	chain := big.NewInt(ethdev.ChainID)
	deploy, err := types.SignTx(types.NewTx(&types.DynamicFeeTx{ChainID: chain, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(1e11), Gas: gas + gas/5, Data: data}),
		types.LatestSignerForChainID(chain), ethdev.FaucetKey())
	if err != nil {
		t.Fatal(err)
	}
	if err := ec.SendTransaction(ctx, deploy); err != nil {
		t.Fatal(err)
	}
	var token common.Address
	for token == (common.Address{}) {
		if r, err := ec.TransactionReceipt(ctx, deploy.Hash()); err == nil {
			token = r.ContractAddress
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("no receipt for the token deployment")
		case <-time.After(50 * time.Millisecond):
		}
	}

	emu, err := ledgeremu.New(ledgeremu.Config{App: ledgeremu.AppEthereum, TrustTestTokenKey: true})
	if err != nil {
		t.Fatal(err)
	}
	dev := serveTCP(t, func(ctx context.Context, ln net.Listener) error { return emu.Serve(ctx, ln) }, func() { emu.Close() })
	to := common.HexToAddress("0x3535353535353535353535353535353535353535")
	args := []string{"--device", dev, "--json", "eth", "token-transfer", "--token", token.Hex(), "--to", to.Hex(), "--amount", "2.5", "--rpc", node.URL(), "--yes"}

	r := cli(t, "", nil, args...)
	if r.code == exitOK || !strings.Contains(r.stdout+r.stderr, "Blind signing") {
		t.Fatalf("without the test key: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = cli(t, "", map[string]string{"HWBRIDGE_LEDGER_TEST_TOKEN_KEY": "1"}, args...)
	var res daemon.EthSendResult
	decodeJSON(t, r, &res)
	if r.code != exitOK || res.Status != "ok" || !strings.EqualFold(res.From, holder.Hex()) {
		t.Fatalf("exit %d %+v %q", r.code, res, r.stderr)
	}
	if !strings.Contains(r.stderr, "on device:") {
		t.Errorf("the preview does not say what the device shows: %q", r.stderr)
	}
	var review []string
	for _, e := range emu.Approver().Transcript() {
		if e.Title == "Review transaction" {
			review = e.Lines
		}
	}
	if len(review) == 0 || review[0] != "Send 2.5 dUSD to "+to.Hex() {
		t.Errorf("review screen %q", review)
	}
}
