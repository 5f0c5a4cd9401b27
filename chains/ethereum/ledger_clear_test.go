package ethereum

import (
	"bytes"
	"context"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goeth "github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/ledger"
	ledgeremu "github.com/hwbridge/hwbridge/emulator/ledger"
	"github.com/hwbridge/hwbridge/internal/devchain/ethdev"
	testtoken "github.com/hwbridge/hwbridge/testdata/erc20"
	"github.com/hwbridge/hwbridge/transport"
)

// ledgerEmu is the Ledger driver (with opts) on an in-process Ledger-class emulator (cfg,
// the test mnemonic, the Ethereum app open), wrapped with device.Verify.
func ledgerEmu(tb testing.TB, cfg ledgeremu.Config, opts ledger.Options) (device.Device, *ledgeremu.Device) {
	tb.Helper()
	cfg.Mnemonic, cfg.App = testMnemonic, ledgeremu.AppEthereum
	emu, err := ledgeremu.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	opts.Emulator = true
	d := device.Verify(ledger.New(transport.NewSpeculosExchanger(emu.Pipe()), opts))
	tb.Cleanup(func() {
		d.Close()
		emu.Close()
	})
	return d, emu
}

// TestLedgerTokenTransferClearSigned sends a 6-decimal token (USDC-like, deployed on the
// embedded dev chain) from the Ledger-class emulator with blind signing off: the driver
// gives the app the token's descriptor (signed with the emulator-only test key, which this
// emulator is told to trust, from the token the pipeline names), the device shows the
// token amount, and the pipeline recovers the sender before it broadcasts.
func TestLedgerTokenTransferClearSigned(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	holder := common.HexToAddress("0x9858EfFD232B4033E47d90003D41EC34EcaEda94") // m/44'/60'/0'/0/0 of the test mnemonic
	faucet := crypto.PubkeyToAddress(ethdev.FaucetKey().PublicKey)
	node, err := ethdev.Start(ctx, ethdev.Options{Prefund: []common.Address{faucet, holder}})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()

	// Deploy the token from the faucet, supply to the device's account.
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
	head, err := ec.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	chain := big.NewInt(ethdev.ChainID)
	deploy, err := types.SignTx(types.NewTx(&types.DynamicFeeTx{ChainID: chain, GasTipCap: big.NewInt(1e9),
		GasFeeCap: new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), big.NewInt(1e9)), Gas: gas + gas/5, Data: data}),
		types.LatestSignerForChainID(chain), ethdev.FaucetKey())
	if err != nil {
		t.Fatal(err)
	}
	if err := ec.SendTransaction(ctx, deploy); err != nil {
		t.Fatal(err)
	}
	var token common.Address
	for token == (common.Address{}) {
		r, err := ec.TransactionReceipt(ctx, deploy.Hash())
		if err == nil {
			token = r.ContractAddress
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("no receipt for the token deployment")
		case <-time.After(50 * time.Millisecond):
		}
	}

	// The driver signs the token's descriptor with the emulator test key from the token the
	// pipeline resolved (symbol and decimals read from the contract).
	dev, emu := ledgerEmu(t, ledgeremu.Config{TrustTestTokenKey: true}, ledger.Options{TestTokenKey: true})
	c, err := Dial(ctx, node.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	to := recipient("clear")
	res, err := Send(ctx, c, SendOrder{RPC: node.URL(), To: to.Hex(), Token: token.Hex(), Amount: "2.5", ReceiptTimeout: 60}, dev, Hooks{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != "ok" || !strings.EqualFold(res.From, holder.Hex()) {
		t.Fatalf("send: %+v", res)
	}
	if got, _ := c.TokenBalance(ctx, token, to); got.Int64() != 2_500_000 {
		t.Fatalf("recipient holds %s", got)
	}
	var review []string
	for _, e := range emu.Approver().Transcript() {
		if e.Title == "Blind signing" {
			t.Errorf("blind-signing screen: %+v", e)
		}
		if e.Title == "Review transaction" {
			review = e.Lines
		}
	}
	if len(review) == 0 || review[0] != "Send 2.5 dUSD to "+to.Hex() {
		t.Errorf("review screen %q", review)
	}
}

// TestEIP712MailOneSignature signs the EIP-712 specification's Mail through the Ledger's
// full mode (verbose EIP-712 on, blind signing off), the Ledger's v0 hash mode (blind
// signing on) and the Trezor T's struct streaming: one signature, recovered to the account.
func TestEIP712MailOneSignature(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	raw, err := os.ReadFile(filepath.Join("testdata", "vectors", "eip712", "mail.json"))
	if err != nil {
		t.Fatal(err)
	}
	td, err := ParseTypedData(raw)
	if err != nil {
		t.Fatal(err)
	}
	path, _ := DerivationPath(0)

	full, fullEmu := ledgerEmu(t, ledgeremu.Config{VerboseEIP712: true}, ledger.Options{})
	fa, err := OpenAccount(ctx, full, path)
	if err != nil {
		t.Fatal(err)
	}
	fullSig, err := fa.SignTypedData(ctx, td)
	if err != nil {
		t.Fatal(err)
	}
	tr := fullEmu.Approver().Transcript()
	if last := tr[len(tr)-1]; last.Title != "Sign typed message" || !strings.Contains(strings.Join(last.Lines, "\n"), "contents: Hello, Bob!") {
		t.Errorf("full mode screen %+v", last)
	}

	hashed, _ := ledgerEmu(t, ledgeremu.Config{BlindSigning: true}, ledger.Options{})
	v0Sig, err := hashed.SignTypedHash(ctx, path, td.DomainSeparator, td.MessageHash)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkRecovers(td.Digest[:], v0Sig, fa.Address); err != nil {
		t.Fatal(err)
	}

	ta, err := OpenAccount(ctx, trezorDevice(t), path)
	if err != nil {
		t.Fatal(err)
	}
	trezorSig, err := ta.SignTypedData(ctx, td)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fullSig, v0Sig) || !bytes.Equal(fullSig, trezorSig) {
		t.Fatalf("signatures differ: ledger full %x, ledger v0 %x, trezor %x", fullSig, v0Sig, trezorSig)
	}
}
