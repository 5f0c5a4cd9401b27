package ethdev

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/ethereum/go-ethereum/trie"
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
// block mined for it.
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

// Contracts written in bytecode, so the test needs no compiler.
var (
	// logger's runtime emits LOG1(topic 1, data 42) and returns 42 as a 32-byte word.
	loggerRuntime = common.FromHex("602a600052" + "600160206000a1" + "60206000f3")
	// reverter's runtime reverts with Error("nope").
	reverterRuntime = append(common.FromHex("6064600c60003960646000fd"), revertData("nope")...)
)

// revertData is Error(reason) ABI-encoded, for a reason under 32 bytes.
func revertData(reason string) []byte {
	out := common.FromHex("08c379a0")
	out = append(out, common.LeftPadBytes([]byte{0x20}, 32)...)
	out = append(out, common.LeftPadBytes([]byte{byte(len(reason))}, 32)...)
	return append(out, common.RightPadBytes([]byte(reason), 32)...)
}

// initCode deploys runtime: CODECOPY it to memory and RETURN it.
func initCode(runtime []byte) []byte {
	n := byte(len(runtime))
	return append([]byte{0x60, n, 0x60, 0x0c, 0x60, 0x00, 0x39, 0x60, n, 0x60, 0x00, 0xf3}, runtime...)
}

// rpcEnv is what the RPC table tests share: one chain, in the order of the table.
type rpcEnv struct {
	n        *Node
	c        *ethclient.Client
	key      *ecdsa.PrivateKey
	from     common.Address
	logger   common.Address // deployed by "deploy"
	reverter common.Address // deployed by "deploy"
	lastTx   *types.Transaction
}

// send signs an EIP-1559 transaction from the faucet with the next nonce and sends it.
func (e *rpcEnv) send(ctx context.Context, t *testing.T, to *common.Address, gas uint64, value *big.Int, data []byte) (*types.Transaction, error) {
	t.Helper()
	nonce, err := e.c.PendingNonceAt(ctx, e.from)
	if err != nil {
		t.Fatal(err)
	}
	return e.sendFrom(ctx, t, e.key, nonce, to, gas, value, data)
}

func (e *rpcEnv) sendFrom(ctx context.Context, t *testing.T, key *ecdsa.PrivateKey, nonce uint64, to *common.Address, gas uint64, value *big.Int, data []byte) (*types.Transaction, error) {
	t.Helper()
	head, err := e.c.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	tip := big.NewInt(params.GWei)
	tx, err := types.SignTx(types.NewTx(&types.DynamicFeeTx{
		ChainID: big.NewInt(ChainID), Nonce: nonce, GasTipCap: tip,
		GasFeeCap: new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip),
		Gas:       gas, To: to, Value: value, Data: data,
	}), types.LatestSignerForChainID(big.NewInt(ChainID)), key)
	if err != nil {
		t.Fatal(err)
	}
	return tx, e.c.SendTransaction(ctx, tx)
}

// receipt returns tx's receipt, which must be there as soon as the send returned.
func (e *rpcEnv) receipt(ctx context.Context, t *testing.T, tx *types.Transaction) *types.Receipt {
	t.Helper()
	r, err := e.c.TransactionReceipt(ctx, tx.Hash())
	if err != nil {
		t.Fatalf("receipt of %s right after sending: %v", tx.Hash(), err)
	}
	return r
}

// TestRPC walks the methods wallets and ethclient use, in order, on one chain.
func TestRPC(t *testing.T) {
	n := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := ethclient.DialContext(ctx, n.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	key := FaucetKey()
	e := &rpcEnv{n: n, c: c, key: key, from: crypto.PubkeyToAddress(key.PublicKey)}
	other := common.HexToAddress("0x2222222222222222222222222222222222222222")

	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"chain and network id", func(t *testing.T) {
			id, err := c.ChainID(ctx)
			if err != nil || id.Int64() != ChainID {
				t.Fatalf("chain id %v %v", id, err)
			}
			nid, err := c.NetworkID(ctx)
			if err != nil || nid.Int64() != ChainID {
				t.Fatalf("network id %v %v", nid, err)
			}
		}},
		{"balances", func(t *testing.T) {
			for _, tc := range []struct {
				addr  common.Address
				block *big.Int
				want  *big.Int
			}{
				{e.from, nil, FaucetBalance},
				{e.from, big.NewInt(0), FaucetBalance},
				{other, nil, new(big.Int)},
			} {
				got, err := c.BalanceAt(ctx, tc.addr, tc.block)
				if err != nil || got.Cmp(tc.want) != 0 {
					t.Errorf("balance of %s at %v = %v %v, want %v", tc.addr, tc.block, got, err, tc.want)
				}
			}
		}},
		{"estimate a transfer", func(t *testing.T) {
			gas, err := c.EstimateGas(ctx, ethereum.CallMsg{From: e.from, To: &other, Value: big.NewInt(1)})
			if err != nil || gas != params.TxGas {
				t.Fatalf("estimate %d %v, want %d", gas, err, params.TxGas)
			}
		}},
		{"fee suggestions", func(t *testing.T) {
			tip, err := c.SuggestGasTipCap(ctx)
			if err != nil || tip.Sign() <= 0 {
				t.Fatalf("tip %v %v", tip, err)
			}
			price, err := c.SuggestGasPrice(ctx)
			if err != nil || price.Cmp(tip) <= 0 {
				t.Fatalf("gas price %v %v, want above the tip %v", price, err, tip)
			}
		}},
		{"transfer and nonce", func(t *testing.T) {
			tx, err := e.send(ctx, t, &other, params.TxGas, big.NewInt(params.GWei), nil)
			if err != nil {
				t.Fatal(err)
			}
			r := e.receipt(ctx, t, tx)
			if r.Status != types.ReceiptStatusSuccessful || r.GasUsed != params.TxGas || r.ContractAddress != (common.Address{}) {
				t.Fatalf("receipt %+v", r)
			}
			pending, err := c.PendingNonceAt(ctx, e.from)
			if err != nil || pending != 1 {
				t.Fatalf("pending nonce %d %v, want 1", pending, err)
			}
			latest, err := c.NonceAt(ctx, e.from, nil)
			if err != nil || latest != pending {
				t.Fatalf("latest nonce %d %v, want %d", latest, err, pending)
			}
			got, isPending, err := c.TransactionByHash(ctx, tx.Hash())
			if err != nil {
				t.Fatal(err)
			}
			sender, err := types.Sender(types.LatestSignerForChainID(big.NewInt(ChainID)), got)
			if got.Hash() != tx.Hash() || sender != e.from || isPending {
				t.Fatalf("transaction by hash %s from %s", got.Hash(), sender)
			}
			e.lastTx = tx
		}},
		{"deploy and call", func(t *testing.T) {
			nonce, _ := c.PendingNonceAt(ctx, e.from)
			gas, err := c.EstimateGas(ctx, ethereum.CallMsg{From: e.from, Data: initCode(loggerRuntime)})
			if err != nil {
				t.Fatal(err)
			}
			tx, err := e.send(ctx, t, nil, gas, nil, initCode(loggerRuntime))
			if err != nil {
				t.Fatal(err)
			}
			r := e.receipt(ctx, t, tx)
			if want := crypto.CreateAddress(e.from, nonce); r.Status != 1 || r.ContractAddress != want {
				t.Fatalf("deploy receipt status %d contract %s, want %s", r.Status, r.ContractAddress, want)
			}
			e.logger = r.ContractAddress
			code, err := c.CodeAt(ctx, e.logger, nil)
			if err != nil || !bytes.Equal(code, loggerRuntime) {
				t.Fatalf("code %x %v", code, err)
			}
			out, err := c.CallContract(ctx, ethereum.CallMsg{From: e.from, To: &e.logger}, nil)
			if err != nil || new(big.Int).SetBytes(out).Int64() != 42 {
				t.Fatalf("call %x %v, want 42", out, err)
			}
			tx, err = e.send(ctx, t, nil, 200_000, nil, initCode(reverterRuntime))
			if err != nil {
				t.Fatal(err)
			}
			e.reverter = e.receipt(ctx, t, tx).ContractAddress
		}},
		{"receipt logs", func(t *testing.T) {
			tx, err := e.send(ctx, t, &e.logger, 100_000, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			r := e.receipt(ctx, t, tx)
			if len(r.Logs) != 1 {
				t.Fatalf("%d logs, want 1", len(r.Logs))
			}
			l := r.Logs[0]
			if l.Address != e.logger || len(l.Topics) != 1 || l.Topics[0] != common.BigToHash(big.NewInt(1)) ||
				new(big.Int).SetBytes(l.Data).Int64() != 42 || l.TxHash != tx.Hash() || l.BlockHash != r.BlockHash ||
				l.BlockNumber != r.BlockNumber.Uint64() {
				t.Fatalf("log %+v", l)
			}
			if r.Bloom == (types.Bloom{}) || r.EffectiveGasPrice == nil || r.EffectiveGasPrice.Sign() <= 0 || r.CumulativeGasUsed != r.GasUsed {
				t.Fatalf("receipt %+v", r)
			}
		}},
		{"reverted call and transaction", func(t *testing.T) {
			_, err := c.CallContract(ctx, ethereum.CallMsg{From: e.from, To: &e.reverter}, nil)
			var de rpc.DataError
			if err == nil || !strings.Contains(err.Error(), "execution reverted: nope") || !errors.As(err, &de) {
				t.Fatalf("call error %v, want execution reverted: nope with data", err)
			}
			if _, err := c.EstimateGas(ctx, ethereum.CallMsg{From: e.from, To: &e.reverter}); err == nil || !strings.Contains(err.Error(), "execution reverted") {
				t.Fatalf("estimate error %v", err)
			}
			before := n.BlockNumber()
			tx, err := e.send(ctx, t, &e.reverter, 100_000, nil, nil)
			if err != nil {
				t.Fatalf("a reverting transaction is mined, not refused: %v", err)
			}
			r := e.receipt(ctx, t, tx)
			if r.Status != types.ReceiptStatusFailed || r.BlockNumber.Uint64() != before+1 {
				t.Fatalf("status %d block %v, want 0 in %d", r.Status, r.BlockNumber, before+1)
			}
		}},
		{"refused transactions", func(t *testing.T) {
			poor, _ := crypto.GenerateKey()
			for _, tc := range []struct {
				name string
				send func() error
				want string
			}{
				{"already known", func() error { return c.SendTransaction(ctx, e.lastTx) }, "already known"},
				{"nonce too low", func() error {
					_, err := e.sendFrom(ctx, t, e.key, 0, &other, params.TxGas, big.NewInt(2), nil)
					return err
				}, "nonce too low"},
				{"insufficient funds", func() error {
					_, err := e.sendFrom(ctx, t, poor, 0, &other, params.TxGas, big.NewInt(1), nil)
					return err
				}, "insufficient funds for gas * price + value"},
				{"intrinsic gas", func() error {
					_, err := e.send(ctx, t, &other, 20_000, nil, nil)
					return err
				}, "intrinsic gas too low"},
			} {
				head := n.BlockNumber()
				err := tc.send()
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
				}
				if n.BlockNumber() != head {
					t.Errorf("%s: a block was mined", tc.name)
				}
			}
		}},
		{"unknown transaction", func(t *testing.T) {
			h := common.HexToHash("0x1234")
			if _, err := c.TransactionReceipt(ctx, h); !errors.Is(err, ethereum.NotFound) {
				t.Errorf("receipt error %v, want NotFound", err)
			}
			if _, _, err := c.TransactionByHash(ctx, h); !errors.Is(err, ethereum.NotFound) {
				t.Errorf("transaction error %v, want NotFound", err)
			}
			if _, err := c.BlockByNumber(ctx, big.NewInt(1_000)); !errors.Is(err, ethereum.NotFound) {
				t.Errorf("block error %v, want NotFound", err)
			}
		}},
		{"fee history", func(t *testing.T) {
			head := n.BlockNumber()
			fh, err := c.FeeHistory(ctx, 4, nil, []float64{25, 75})
			if err != nil {
				t.Fatal(err)
			}
			if fh.OldestBlock.Uint64() != head-3 || len(fh.GasUsedRatio) != 4 || len(fh.BaseFee) != 5 || len(fh.Reward) != 4 {
				t.Fatalf("fee history oldest %v ratios %d base fees %d rewards %d", fh.OldestBlock, len(fh.GasUsedRatio), len(fh.BaseFee), len(fh.Reward))
			}
			for i, r := range fh.Reward {
				if len(r) != 2 || r[0].Sign() <= 0 || fh.GasUsedRatio[i] <= 0 {
					t.Errorf("block %d: rewards %v ratio %v", i, r, fh.GasUsedRatio[i])
				}
			}
		}},
		{"blocks", func(t *testing.T) {
			head, err := c.HeaderByNumber(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if head.Number.Uint64() != n.BlockNumber() || head.BaseFee == nil || head.WithdrawalsHash == nil ||
				head.ExcessBlobGas == nil || head.ParentBeaconRoot == nil || head.RequestsHash == nil {
				t.Fatalf("head %+v", head)
			}
			for _, num := range []*big.Int{nil, big.NewInt(1), big.NewInt(0)} {
				b, err := c.BlockByNumber(ctx, num)
				if err != nil {
					t.Fatal(err)
				}
				if got := types.DeriveSha(b.Transactions(), trie.NewStackTrie(nil)); got != b.TxHash() {
					t.Errorf("block %v: transactions root %s, header says %s", num, got, b.TxHash())
				}
				byHash, err := c.HeaderByHash(ctx, b.Hash())
				if err != nil || byHash.Hash() != b.Hash() {
					t.Errorf("block %v by hash: %v", num, err)
				}
			}
			b1, _ := c.BlockByNumber(ctx, big.NewInt(1))
			if len(b1.Transactions()) != 1 || b1.Transactions()[0].Hash() != e.lastTx.Hash() {
				t.Errorf("block 1 holds %d transactions", len(b1.Transactions()))
			}
		}},
		{"loopback host only", func(t *testing.T) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, n.URL(), strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`))
			req.Host = "evil.example"
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("status %d for a foreign Host", resp.StatusCode)
			}
		}},
	}
	for _, tc := range tests {
		if !t.Run(tc.name, tc.run) {
			break // later cases build on earlier ones
		}
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
