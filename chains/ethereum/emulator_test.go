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

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/trezor"
	trezoremu "github.com/hwbridge/hwbridge/emulator/trezor"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/internal/nodes"
	testtoken "github.com/hwbridge/hwbridge/testdata/erc20"
)

// trezorDevice is the Trezor driver on an in-process emulator running the test mnemonic,
// wrapped with device.Verify as the CLI and daemon use it.
func trezorDevice(tb testing.TB) device.Device {
	tb.Helper()
	emu, err := trezoremu.New(trezoremu.Options{Mnemonic: testMnemonic})
	if err != nil {
		tb.Fatal(err)
	}
	d := device.Verify(trezor.New(emu.Pipe(), trezor.Options{Emulator: true}))
	tb.Cleanup(func() {
		d.Close()
		emu.Close()
	})
	return d
}

// TestEmulatorSignaturesMatchRecomputation signs with the Trezor-class emulator through
// the driver and compares every signature with the software signer's for the same key:
// RFC 6979 signatures are deterministic, so they must be byte-identical.
func TestEmulatorSignaturesMatchRecomputation(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	dev := trezorDevice(t)
	soft := mnemonicSigner(t, testMnemonic)
	path, _ := DerivationPath(0)
	hw, err := OpenAccount(ctx, dev, path)
	if err != nil {
		t.Fatal(err)
	}
	sw, err := OpenAccount(ctx, soft, path)
	if err != nil {
		t.Fatal(err)
	}
	if hw.Address != sw.Address || hw.Address.Hex() != "0x9858EfFD232B4033E47d90003D41EC34EcaEda94" {
		t.Fatalf("device address %s, software %s", hw.Address.Hex(), sw.Address.Hex())
	}
	to := common.HexToAddress("0x3535353535353535353535353535353535353535")
	transfer, _ := TransferData(to, big.NewInt(12_500_000))
	chain := big.NewInt(1)
	txs := map[string]*types.Transaction{
		// The EIP-155 example transaction, signed by the test mnemonic's key.
		"eip155": types.NewTx(&types.LegacyTx{Nonce: 9, GasPrice: big.NewInt(20e9), Gas: 21000, To: &to, Value: big.NewInt(1e18)}),
		"eip1559": types.NewTx(&types.DynamicFeeTx{ChainID: chain, Nonce: 3, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(30e9),
			Gas: 21000, To: &to, Value: big.NewInt(15e17)}),
		"eip1559 erc20": types.NewTx(&types.DynamicFeeTx{ChainID: chain, Nonce: 4, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(30e9),
			Gas: 65000, To: &to, Data: transfer}),
		"eip1559 big calldata": types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: 5, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2e9),
			Gas: 900000, To: &to, Data: bytes.Repeat([]byte("hwbridge"), 400)}),
	}
	for name, tx := range txs {
		t.Run(name, func(t *testing.T) {
			id := chain
			if tx.Type() == types.DynamicFeeTxType {
				id = tx.ChainId()
			}
			p := &Prepared{Tx: tx, ChainID: id, From: hw.Address}
			a, err := hw.SignTx(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			b, err := sw.SignTx(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if a.Hash() != b.Hash() {
				ra, _ := a.MarshalBinary()
				rb, _ := b.MarshalBinary()
				t.Fatalf("device %x\nsoftware %x", ra, rb)
			}
		})
	}
	t.Run("eip191", func(t *testing.T) {
		msg := []byte("Some data")
		a, err := hw.SignPersonal(ctx, msg)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := sw.SignPersonal(ctx, msg)
		if !bytes.Equal(a, b) {
			t.Fatalf("device %x, software %x", a, b)
		}
	})
	t.Run("eip712 mail", func(t *testing.T) {
		raw, err := os.ReadFile(filepath.Join("testdata", "vectors", "eip712", "mail.json"))
		if err != nil {
			t.Fatal(err)
		}
		td, err := ParseTypedData(raw)
		if err != nil {
			t.Fatal(err)
		}
		a, err := hw.SignTypedData(ctx, td)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := sw.SignTypedData(ctx, td)
		if !bytes.Equal(a, b) {
			t.Fatalf("device %x, software %x", a, b)
		}
	})
}

// TestEmulatorOnGeth sends ETH and tokens from the emulator's address on geth --dev, and
// checks that a device answering with someone else's signature gets nothing broadcast.
func TestEmulatorOnGeth(t *testing.T) {
	g := nodes.StartGethT(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	c, err := Dial(ctx, g.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dev := trezorDevice(t)
	path, _ := DerivationPath(0)
	acct, err := OpenAccount(ctx, dev, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Fund(ctx, acct.Address, new(big.Int).Mul(big.NewInt(5), oneETH)); err != nil {
		t.Fatal(err)
	}
	send := func(p *Prepared) *types.Receipt {
		t.Helper()
		signed, err := acct.SignTx(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		h, err := c.Broadcast(ctx, p, signed)
		if err != nil {
			t.Fatal(err)
		}
		r, err := c.WaitReceipt(ctx, h, WaitOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	to := recipient("emulator")
	p, err := c.Prepare(ctx, TxRequest{From: acct.Address, To: to, Value: big.NewInt(25e16)})
	if err != nil {
		t.Fatal(err)
	}
	send(p)
	if bal, _ := c.Balance(ctx, to); bal.Cmp(big.NewInt(25e16)) != 0 {
		t.Fatalf("recipient has %s wei", bal)
	}

	// The token is deployed by the device too: a contract creation it signs.
	deploy, err := testtoken.DeployData("Test USD", "TUSD", big.NewInt(1_000_000_000), acct.Address)
	if err != nil {
		t.Fatal(err)
	}
	r := deployWithDevice(t, ctx, c, acct, deploy)
	tok, err := c.ResolveToken(ctx, r.ContractAddress.Hex())
	if err != nil {
		t.Fatal(err)
	}
	amt, _ := ParseUnits("250.75", tok.Decimals)
	tp, err := c.PrepareTokenTransfer(ctx, TokenTransfer{From: acct.Address, Token: tok, To: to, Amount: amt})
	if err != nil {
		t.Fatal(err)
	}
	send(tp)
	if got, _ := c.TokenBalance(ctx, tok.Address, to); got.Cmp(amt) != 0 {
		t.Fatalf("recipient holds %s", got)
	}

	// A device that signs with another key: Verify and SignTx both refuse, nothing is sent.
	bad := &Account{Signer: &foreignDevice{Device: dev, foreign: keySigner(t, strings.Repeat("46", 32))}, Path: acct.Path, Address: acct.Address}
	p, err = c.Prepare(ctx, TxRequest{From: acct.Address, To: to, Value: big.NewInt(1)})
	if err != nil {
		t.Fatal(err)
	}
	nonce := p.Tx.Nonce()
	if _, err := bad.SignTx(ctx, p); err == nil || !strings.Contains(err.Error(), "recovers") {
		t.Fatalf("foreign signature: %v", err)
	}
	p.Release()
	if n, _ := c.Node().PendingNonceAt(ctx, acct.Address); n != nonce {
		t.Fatalf("pending nonce %d, want %d: something was broadcast", n, nonce)
	}
}

// deployWithDevice signs a contract creation on the device and broadcasts it (Prepare
// builds calls only, so the transaction is assembled here).
func deployWithDevice(t *testing.T, ctx context.Context, c *Client, acct *Account, code []byte) *types.Receipt {
	t.Helper()
	fees, err := c.SuggestFees(ctx, FeeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	chainID, _ := c.ChainID(ctx)
	nonce, err := c.reserveNonce(ctx, acct.Address)
	if err != nil {
		t.Fatal(err)
	}
	gas, err := c.node.EstimateGas(ctx, goeth.CallMsg{From: acct.Address, Data: code})
	if err != nil {
		t.Fatal(err)
	}
	tx := types.NewTx(&types.DynamicFeeTx{ChainID: chainID, Nonce: nonce, GasTipCap: fees.TipCap, GasFeeCap: fees.FeeCap, Gas: gas * 12 / 10, Data: code})
	signed, err := acct.Signer.SignEthTx(ctx, acct.Path, tx, chainID)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckSigned(tx, signed, chainID, acct.Address); err != nil {
		t.Fatal(err)
	}
	if err := c.node.SendTransaction(ctx, signed); err != nil {
		t.Fatal(err)
	}
	r, err := c.WaitReceipt(ctx, signed.Hash(), WaitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// foreignDevice is a real device whose transaction signatures are replaced by another
// key's.
type foreignDevice struct {
	device.Device
	foreign *softSigner
}

func (f *foreignDevice) SignEthTx(ctx context.Context, path hdpath.Path, tx *types.Transaction, chainID *big.Int) (*types.Transaction, error) {
	return f.foreign.SignEthTx(ctx, path, tx, chainID)
}
