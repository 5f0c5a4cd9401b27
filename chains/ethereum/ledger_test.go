package ethereum

import (
	"bytes"
	"context"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/ledger"
	ledgeremu "github.com/hwbridge/hwbridge/emulator/ledger"
	"github.com/hwbridge/hwbridge/internal/nodes"
	testtoken "github.com/hwbridge/hwbridge/testdata/erc20"
	"github.com/hwbridge/hwbridge/transport"
)

// ledgerDevice is the Ledger driver on an in-process Ledger-class emulator with the
// Ethereum app open, wrapped with device.Verify.
func ledgerDevice(tb testing.TB, blindSigning bool) device.Device {
	tb.Helper()
	emu, err := ledgeremu.New(ledgeremu.Config{Mnemonic: testMnemonic, App: ledgeremu.AppEthereum, BlindSigning: blindSigning})
	if err != nil {
		tb.Fatal(err)
	}
	d := device.Verify(ledger.New(transport.NewSpeculosExchanger(emu.Pipe()), ledger.Options{}))
	tb.Cleanup(func() {
		d.Close()
		emu.Close()
	})
	return d
}

func TestLedgerSignaturesMatchRecomputation(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	path, _ := DerivationPath(0)
	hw, err := OpenAccount(ctx, ledgerDevice(t, true), path)
	if err != nil {
		t.Fatal(err)
	}
	sw, _ := OpenAccount(ctx, mnemonicSigner(t, testMnemonic), path)
	if hw.Address != sw.Address {
		t.Fatalf("device address %s, software %s", hw.Address.Hex(), sw.Address.Hex())
	}
	to := common.HexToAddress("0x3535353535353535353535353535353535353535")
	transfer, _ := TransferData(to, big.NewInt(12_500_000))
	chain := big.NewInt(1)
	for name, tx := range map[string]*types.Transaction{
		"eip155": types.NewTx(&types.LegacyTx{Nonce: 9, GasPrice: big.NewInt(20e9), Gas: 21000, To: &to, Value: big.NewInt(1e18)}),
		"eip1559": types.NewTx(&types.DynamicFeeTx{ChainID: chain, Nonce: 3, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(30e9),
			Gas: 21000, To: &to, Value: big.NewInt(15e17)}),
		"eip1559 erc20": types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: 4, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(30e9),
			Gas: 65000, To: &to, Data: transfer}),
	} {
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
			b, _ := sw.SignTx(ctx, p)
			if a.Hash() != b.Hash() {
				t.Fatalf("device and software signatures differ")
			}
		})
	}
	t.Run("eip191", func(t *testing.T) {
		a, err := hw.SignPersonal(ctx, []byte("Some data"))
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := sw.SignPersonal(ctx, []byte("Some data")); !bytes.Equal(a, b) {
			t.Fatalf("device %x, software %x", a, b)
		}
	})
	t.Run("eip712 mail", func(t *testing.T) {
		raw, _ := os.ReadFile(filepath.Join("testdata", "vectors", "eip712", "mail.json"))
		td, err := ParseTypedData(raw)
		if err != nil {
			t.Fatal(err)
		}
		a, err := hw.SignTypedData(ctx, td)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := sw.SignTypedData(ctx, td); !bytes.Equal(a, b) {
			t.Fatalf("device %x, software %x", a, b)
		}
	})
}

// TestLedgerBlindSigningOff: with the app's blind-signing setting off (the default), an
// ERC-20 transfer is refused with a message saying what to enable; a plain ETH transfer
// still signs.
func TestLedgerBlindSigningOff(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	path, _ := DerivationPath(0)
	hw, err := OpenAccount(ctx, ledgerDevice(t, false), path)
	if err != nil {
		t.Fatal(err)
	}
	to := common.HexToAddress("0x3535353535353535353535353535353535353535")
	transfer, _ := TransferData(to, big.NewInt(1))
	chain := big.NewInt(1337)
	tx := types.NewTx(&types.DynamicFeeTx{ChainID: chain, Nonce: 0, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2e9), Gas: 65000, To: &to, Data: transfer})
	_, err = hw.SignTx(ctx, &Prepared{Tx: tx, ChainID: chain, From: hw.Address})
	if !errors.Is(err, ledger.ErrBlindSigningDisabled) || !strings.Contains(err.Error(), `enable "Blind signing"`) {
		t.Fatalf("erc20 without blind signing: %v", err)
	}
	plain := types.NewTx(&types.DynamicFeeTx{ChainID: chain, Nonce: 0, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2e9), Gas: 21000, To: &to, Value: big.NewInt(1)})
	if _, err := hw.SignTx(ctx, &Prepared{Tx: plain, ChainID: chain, From: hw.Address}); err != nil {
		t.Fatalf("plain transfer: %v", err)
	}
}

// TestLedgerOnGeth sends ETH and a token transfer from the Ledger-class emulator on geth.
func TestLedgerOnGeth(t *testing.T) {
	g := nodes.StartGethT(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	c, err := Dial(ctx, g.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	path, _ := DerivationPath(1)
	acct, err := OpenAccount(ctx, ledgerDevice(t, true), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Fund(ctx, acct.Address, oneETH); err != nil {
		t.Fatal(err)
	}
	send := func(p *Prepared) {
		t.Helper()
		signed, err := acct.SignTx(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		h, err := c.Broadcast(ctx, p, signed)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.WaitReceipt(ctx, h, WaitOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	to := recipient("ledger")
	p, err := c.Prepare(ctx, TxRequest{From: acct.Address, To: to, Value: big.NewInt(1e17)})
	if err != nil {
		t.Fatal(err)
	}
	send(p)
	data, _ := testtoken.DeployData("Test USD", "TUSD", big.NewInt(1_000_000), acct.Address)
	r, err := g.SendFromDev(ctx, nil, nil, data)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.ResolveToken(ctx, r.ContractAddress.Hex())
	if err != nil {
		t.Fatal(err)
	}
	tp, err := c.PrepareTokenTransfer(ctx, TokenTransfer{From: acct.Address, Token: tok, To: to, Amount: big.NewInt(250_000)})
	if err != nil {
		t.Fatal(err)
	}
	send(tp)
	if bal, _ := c.Balance(ctx, to); bal.Cmp(big.NewInt(1e17)) != 0 {
		t.Fatalf("recipient has %s wei", bal)
	}
	if got, _ := c.TokenBalance(ctx, tok.Address, to); got.Int64() != 250_000 {
		t.Fatalf("recipient holds %s", got)
	}
}
