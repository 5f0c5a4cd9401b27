package ethdev

import (
	"context"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/params"
)

func start(t testing.TB) *Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Error(err)
		}
	})
	return n
}

func waitReceipt(ctx context.Context, c *ethclient.Client, h common.Hash) (*types.Receipt, error) {
	for {
		r, err := c.TransactionReceipt(ctx, h)
		if err == nil {
			return r, nil
		}
		if !errors.Is(err, ethereum.NotFound) && !strings.Contains(err.Error(), "indexing is in progress") {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestTransfer sends an EIP-1559 transfer from the prefunded key over HTTP and waits for the
// block the simulated beacon seals for it.
func TestTransfer(t *testing.T) {
	n := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := ethclient.DialContext(ctx, n.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	id, err := c.ChainID(ctx)
	if err != nil || id.Int64() != ChainID {
		t.Fatalf("chain id %v %v, want %d", id, err, ChainID)
	}
	key := FaucetKey()
	from := crypto.PubkeyToAddress(key.PublicKey)
	bal, err := c.BalanceAt(ctx, from, nil)
	if err != nil || bal.Cmp(FaucetBalance) != 0 {
		t.Fatalf("faucet balance %v %v", bal, err)
	}
	to := common.HexToAddress("0x1111111111111111111111111111111111111111")
	head, err := c.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	tip, err := c.SuggestGasTipCap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	value := big.NewInt(params.Ether)
	gas, err := c.EstimateGas(ctx, ethereum.CallMsg{From: from, To: &to, Value: value})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := types.SignTx(types.NewTx(&types.DynamicFeeTx{
		ChainID: big.NewInt(ChainID), Nonce: 0, GasTipCap: tip,
		GasFeeCap: new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip),
		Gas:       gas, To: &to, Value: value,
	}), types.LatestSignerForChainID(big.NewInt(ChainID)), key)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SendTransaction(ctx, tx); err != nil {
		t.Fatal(err)
	}
	r, err := waitReceipt(ctx, c, tx.Hash())
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != types.ReceiptStatusSuccessful || r.BlockNumber.Uint64() != 1 {
		t.Fatalf("receipt status %d block %v", r.Status, r.BlockNumber)
	}
	got, err := c.BalanceAt(ctx, to, nil)
	if err != nil || got.Cmp(value) != 0 {
		t.Fatalf("recipient balance %v %v", got, err)
	}
	if n.BlockNumber() != 1 {
		t.Fatalf("head %d, want 1", n.BlockNumber())
	}
}

func TestRefusesNonLoopback(t *testing.T) {
	if _, err := Start(context.Background(), Options{Addr: "0.0.0.0:0"}); err == nil {
		t.Fatal("served on 0.0.0.0")
	}
}

func BenchmarkStartStop(b *testing.B) {
	for b.Loop() {
		n, err := Start(context.Background(), Options{})
		if err != nil {
			b.Fatal(err)
		}
		n.Close()
	}
}
