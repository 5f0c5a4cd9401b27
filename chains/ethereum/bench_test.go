package ethereum

import (
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/hwbridge/hwbridge/internal/nodes"
	testtoken "github.com/hwbridge/hwbridge/testdata/erc20"
)

// stubNode answers from memory as a dev chain would, so that a benchmark measures only
// host work: building, encoding, the device exchange and the checks.
type stubNode struct {
	tokenBalance []byte // ABI-encoded balanceOf answer
}

func (stubNode) ChainID(context.Context) (*big.Int, error) { return big.NewInt(1337), nil }
func (stubNode) PendingNonceAt(context.Context, common.Address) (uint64, error) {
	return 0, nil
}
func (stubNode) BalanceAt(context.Context, common.Address, *big.Int) (*big.Int, error) {
	return new(big.Int).Mul(big.NewInt(100), big.NewInt(1e18)), nil
}
func (stubNode) CodeAt(context.Context, common.Address, *big.Int) ([]byte, error) {
	return []byte{0x60}, nil
}
func (s stubNode) CallContract(context.Context, ethereum.CallMsg, *big.Int) ([]byte, error) {
	return s.tokenBalance, nil
}
func (stubNode) EstimateGas(context.Context, ethereum.CallMsg) (uint64, error) { return 51533, nil }
func (stubNode) HeaderByNumber(context.Context, *big.Int) (*types.Header, error) {
	return &types.Header{Number: big.NewInt(7), BaseFee: big.NewInt(875_000_000)}, nil
}
func (stubNode) FeeHistory(context.Context, uint64, *big.Int, []float64) (*ethereum.FeeHistory, error) {
	return &ethereum.FeeHistory{BaseFee: []*big.Int{big.NewInt(875_000_000), big.NewInt(765_625_000)}, Reward: [][]*big.Int{{big.NewInt(1e9)}}}, nil
}
func (stubNode) SuggestGasTipCap(context.Context) (*big.Int, error) { return big.NewInt(1e9), nil }
func (stubNode) SuggestGasPrice(context.Context) (*big.Int, error)  { return big.NewInt(2e9), nil }
func (stubNode) SendTransaction(context.Context, *types.Transaction) error {
	return nil
}
func (stubNode) TransactionReceipt(context.Context, common.Hash) (*types.Receipt, error) {
	return nil, ethereum.NotFound
}
func (stubNode) TransactionByHash(context.Context, common.Hash) (*types.Transaction, bool, error) {
	return nil, false, ethereum.NotFound
}

// BenchmarkBuildSignTransfer is the host cost of an ERC-20 transfer up to a verified
// signature: Prepare (fees, estimate, balance and nonce against an in-memory node),
// then signing and checking — on the Trezor-class emulator over the in-process pipe
// (driver + Codec v1 + emulator + device.Verify), on the Ledger-class emulator, and with
// the software signer for reference.
func BenchmarkBuildSignTransfer(b *testing.B) {
	bal := common.LeftPadBytes(big.NewInt(1e12).Bytes(), 32)
	c := NewClient(stubNode{tokenBalance: bal}, nil)
	tok := Token{Address: common.HexToAddress("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"), Symbol: "USDC", Decimals: 6}
	path, _ := DerivationPath(0)
	for _, tc := range []struct {
		name   string
		signer func(testing.TB) Signer
	}{
		{"trezor-emulator", func(tb testing.TB) Signer { return trezorDevice(tb) }},
		{"ledger-emulator", func(tb testing.TB) Signer { return ledgerDevice(tb, true) }},
		{"software", func(tb testing.TB) Signer { return mnemonicSigner(tb, testMnemonic) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := b.Context()
			acct, err := OpenAccount(ctx, tc.signer(b), path)
			if err != nil {
				b.Fatal(err)
			}
			to := recipient("bench")
			amount, _ := ParseUnits("12.5", 6)
			for b.Loop() {
				p, err := c.PrepareTokenTransfer(ctx, TokenTransfer{From: acct.Address, Token: tok, To: to, Amount: amount})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := acct.SignTx(ctx, p); err != nil {
					b.Fatal(err)
				}
				p.Release()
			}
		})
	}
}

// BenchmarkSendToReceipt is the end-to-end time of an ETH transfer and of an ERC-20
// transfer on geth --dev --dev.period 0 with the Trezor-class emulator: prepare against
// the node, sign on the device, verify, eth_sendRawTransaction, wait for the receipt.
func BenchmarkSendToReceipt(b *testing.B) {
	g := nodes.StartGethT(b)
	ctx, cancel := context.WithTimeout(b.Context(), 10*time.Minute)
	defer cancel()
	c, err := Dial(ctx, g.URL(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	path, _ := DerivationPath(0)
	acct, err := OpenAccount(ctx, trezorDevice(b), path)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := g.Fund(ctx, acct.Address, new(big.Int).Mul(big.NewInt(1000), oneETH)); err != nil {
		b.Fatal(err)
	}
	data, _ := testtoken.DeployData("Test USD", "TUSD", new(big.Int).Lsh(big.NewInt(1), 200), acct.Address)
	r, err := g.SendFromDev(ctx, nil, nil, data)
	if err != nil {
		b.Fatal(err)
	}
	tok, err := c.ResolveToken(ctx, r.ContractAddress.Hex())
	if err != nil {
		b.Fatal(err)
	}
	to := recipient("bench e2e")
	// Each phase's mean is reported too: prepare (node round trips), sign (device +
	// checks), broadcast, and the wait for the receipt.
	run := func(b *testing.B, prepare func() (*Prepared, error)) {
		var tPrep, tSign, tSend, tWait time.Duration
		n := 0
		for b.Loop() {
			t0 := time.Now()
			p, err := prepare()
			if err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			signed, err := acct.SignTx(ctx, p)
			if err != nil {
				b.Fatal(err)
			}
			t2 := time.Now()
			h, err := c.Broadcast(ctx, p, signed)
			if err != nil {
				b.Fatal(err)
			}
			t3 := time.Now()
			if _, err := c.WaitReceipt(ctx, h, WaitOptions{}); err != nil {
				b.Fatal(err)
			}
			tPrep, tSign, tSend, tWait = tPrep+t1.Sub(t0), tSign+t2.Sub(t1), tSend+t3.Sub(t2), tWait+time.Since(t3)
			n++
		}
		ms := func(d time.Duration) float64 { return float64(d) / float64(n) / 1e6 }
		b.ReportMetric(ms(tPrep), "prepare-ms/op")
		b.ReportMetric(ms(tSign), "sign-ms/op")
		b.ReportMetric(ms(tSend), "broadcast-ms/op")
		b.ReportMetric(ms(tWait), "receipt-ms/op")
	}
	b.Run("eth", func(b *testing.B) {
		run(b, func() (*Prepared, error) {
			return c.Prepare(ctx, TxRequest{From: acct.Address, To: to, Value: big.NewInt(1)})
		})
	})
	b.Run("erc20", func(b *testing.B) {
		run(b, func() (*Prepared, error) {
			return c.PrepareTokenTransfer(ctx, TokenTransfer{From: acct.Address, Token: tok, To: to, Amount: big.NewInt(1)})
		})
	})
}
