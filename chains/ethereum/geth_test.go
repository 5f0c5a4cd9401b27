package ethereum

import (
	"context"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/internal/nodes"
	testtoken "github.com/hwbridge/hwbridge/testdata/erc20"
)

var oneETH = big.NewInt(1e18)

// devEnv is a geth --dev node, a client on it and the test signer.
type devEnv struct {
	t    *testing.T
	g    *nodes.Geth
	c    *Client
	soft *softSigner
}

func (e *devEnv) ctx() context.Context {
	ctx, cancel := context.WithTimeout(e.t.Context(), time.Minute)
	e.t.Cleanup(cancel)
	return ctx
}

// account opens m/44'/60'/0'/0/index of the test mnemonic and funds it with eth ETH.
func (e *devEnv) account(index uint32, eth int64) *Account {
	e.t.Helper()
	path, err := DerivationPath(index)
	if err != nil {
		e.t.Fatal(err)
	}
	a, err := OpenAccount(e.ctx(), e.soft, path)
	if err != nil {
		e.t.Fatal(err)
	}
	if eth > 0 {
		if _, err := e.g.Fund(e.ctx(), a.Address, new(big.Int).Mul(big.NewInt(eth), oneETH)); err != nil {
			e.t.Fatal(err)
		}
	}
	return a
}

// deployToken deploys the committed test token from the dev account, minting supply (base
// units) to holder.
func (e *devEnv) deployToken(holder common.Address, supply int64) common.Address {
	e.t.Helper()
	data, err := testtoken.DeployData("Test USD", "TUSD", big.NewInt(supply), holder)
	if err != nil {
		e.t.Fatal(err)
	}
	r, err := e.g.SendFromDev(e.ctx(), nil, nil, data)
	if err != nil {
		e.t.Fatal(err)
	}
	return r.ContractAddress
}

// send prepares, signs, broadcasts and waits.
func (e *devEnv) send(a *Account, p *Prepared) (*types.Receipt, error) {
	signed, err := a.SignTx(e.ctx(), p)
	if err != nil {
		p.Release()
		return nil, err
	}
	h, err := e.c.Broadcast(e.ctx(), p, signed)
	if err != nil {
		return nil, err
	}
	return e.c.WaitReceipt(e.ctx(), h, WaitOptions{Timeout: 30 * time.Second})
}

func recipient(tag string) common.Address {
	return common.BytesToAddress(crypto.Keccak256([]byte("hwbridge test recipient " + tag))[12:])
}

// foreignSigner signs with a key that is not the device's but reports the device's
// address: what a compromised or buggy device could do.
type foreignSigner struct {
	*softSigner
	foreign *softSigner
}

func (f *foreignSigner) SignEthTx(ctx context.Context, path hdpath.Path, tx *types.Transaction, chainID *big.Int) (*types.Transaction, error) {
	return f.foreign.SignEthTx(ctx, path, tx, chainID)
}

func TestGethIntegration(t *testing.T) {
	g := nodes.StartGethT(t)
	c, err := Dial(t.Context(), g.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	env := &devEnv{t: t, g: g, c: c, soft: mnemonicSigner(t, testMnemonic)}

	t.Run("eth send", func(t *testing.T) {
		e := *env
		e.t = t
		a := e.account(0, 10)
		if a.Address.Hex() != "0x9858EfFD232B4033E47d90003D41EC34EcaEda94" {
			t.Fatalf("m/44'/60'/0'/0/0 is %s", a.Address.Hex())
		}
		to := recipient("eth")
		value, _ := ParseEther("1.5")
		p, err := c.Prepare(e.ctx(), TxRequest{From: a.Address, To: to, Value: value})
		if err != nil {
			t.Fatal(err)
		}
		if !p.Fees.Dynamic || p.Tx.Type() != types.DynamicFeeTxType || p.Tx.Gas() != 21000 {
			t.Fatalf("prepared type %d gas %d", p.Tx.Type(), p.Tx.Gas())
		}
		s := p.Summary()
		if s.ChainID != "1337" || s.Value != "1.5" || s.To != to.Hex() {
			t.Fatalf("summary %+v", s)
		}
		var states []string
		signed, err := a.SignTx(e.ctx(), p)
		if err != nil {
			t.Fatal(err)
		}
		h, err := c.Broadcast(e.ctx(), p, signed)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Broadcast(e.ctx(), p, signed); err != nil {
			t.Fatalf("second broadcast of the same transaction: %v", err)
		}
		r, err := c.WaitReceipt(e.ctx(), h, WaitOptions{Progress: func(p Progress) { states = append(states, p.State) }})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != 1 || len(states) == 0 || states[len(states)-1] != "mined" {
			t.Fatalf("status %d, progress %v", r.Status, states)
		}
		bal, _ := c.Balance(e.ctx(), to)
		if bal.Cmp(value) != 0 {
			t.Fatalf("recipient has %s wei", bal)
		}
	})

	t.Run("legacy gas price", func(t *testing.T) {
		e := *env
		e.t = t
		a := e.account(1, 1)
		p, err := c.Prepare(e.ctx(), TxRequest{From: a.Address, To: recipient("legacy"), Value: big.NewInt(1), Fees: FeeOptions{GasPrice: big.NewInt(5e9)}})
		if err != nil {
			t.Fatal(err)
		}
		if p.Tx.Type() != types.LegacyTxType || p.Summary().Type != "legacy" {
			t.Fatalf("type %d", p.Tx.Type())
		}
		if _, err := e.send(a, p); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("back to back nonces", func(t *testing.T) {
		e := *env
		e.t = t
		a := e.account(2, 1)
		var ps []*Prepared
		for i := range 3 {
			p, err := c.Prepare(e.ctx(), TxRequest{From: a.Address, To: recipient("b2b"), Value: big.NewInt(int64(i + 1))})
			if err != nil {
				t.Fatal(err)
			}
			if p.Tx.Nonce() != uint64(i) {
				t.Fatalf("prepared #%d has nonce %d", i, p.Tx.Nonce())
			}
			ps = append(ps, p)
		}
		// A released (never broadcast) last nonce is handed out again.
		ps[2].Release()
		p, err := c.Prepare(e.ctx(), TxRequest{From: a.Address, To: recipient("b2b"), Value: big.NewInt(3)})
		if err != nil || p.Tx.Nonce() != 2 {
			t.Fatalf("after release: nonce %d, %v", p.Tx.Nonce(), err)
		}
		ps[2] = p
		for _, p := range ps {
			if _, err := e.send(a, p); err != nil {
				t.Fatal(err)
			}
		}
		bal, _ := c.Balance(e.ctx(), recipient("b2b"))
		if bal.Int64() != 6 {
			t.Fatalf("recipient has %s wei, want 6", bal)
		}
	})

	t.Run("token transfer", func(t *testing.T) {
		e := *env
		e.t = t
		a := e.account(3, 1)
		addr := e.deployToken(a.Address, 1_000_000_000) // 1000 TUSD
		tok, err := c.ResolveToken(e.ctx(), strings.ToLower(addr.Hex()))
		if err != nil {
			t.Fatal(err)
		}
		if tok.Symbol != "TUSD" || tok.Decimals != 6 || tok.Name != "Test USD" {
			t.Fatalf("token %+v", tok)
		}
		amount, err := ParseUnits("12.345678", tok.Decimals)
		if err != nil {
			t.Fatal(err)
		}
		to := recipient("token")
		p, err := c.PrepareTokenTransfer(e.ctx(), TokenTransfer{From: a.Address, Token: tok, To: to, Amount: amount})
		if err != nil {
			t.Fatal(err)
		}
		s := p.Summary()
		if s.TokenAmount != "12.345678" || s.To != to.Hex() || s.Contract != addr.Hex() || s.Value != "0" {
			t.Fatalf("summary %+v", s)
		}
		r, err := e.send(a, p)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Logs) != 1 || r.Logs[0].Topics[0] != erc20TransferTopic() {
			t.Fatalf("logs %+v", r.Logs)
		}
		got, err := c.TokenBalance(e.ctx(), addr, to)
		if err != nil || got.Cmp(amount) != 0 {
			t.Fatalf("recipient balance %v, %v", got, err)
		}
		left, _ := c.TokenBalance(e.ctx(), addr, a.Address)
		if FormatUnits(left, 6) != "987.654322" {
			t.Fatalf("sender has %s", FormatUnits(left, 6))
		}
	})

	t.Run("reverted transfer", func(t *testing.T) {
		e := *env
		e.t = t
		a := e.account(4, 1)
		addr := e.deployToken(a.Address, 5_000_000)
		tok, err := c.ResolveToken(e.ctx(), addr.Hex())
		if err != nil {
			t.Fatal(err)
		}
		all := big.NewInt(5_000_000)
		// Both prepared before either is sent: each alone is fine, the second one fails
		// on chain because the first took the balance.
		p1, err := c.PrepareTokenTransfer(e.ctx(), TokenTransfer{From: a.Address, Token: tok, To: recipient("r1"), Amount: all})
		if err != nil {
			t.Fatal(err)
		}
		p2, err := c.PrepareTokenTransfer(e.ctx(), TokenTransfer{From: a.Address, Token: tok, To: recipient("r2"), Amount: all})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.send(a, p1); err != nil {
			t.Fatal(err)
		}
		r, err := e.send(a, p2)
		var re *RevertError
		if !errors.Is(err, ErrReverted) || !errors.As(err, &re) || r == nil || r.Status != 0 {
			t.Fatalf("second transfer: %v", err)
		}
		if !strings.Contains(re.Reason, "exceeds balance") || !strings.Contains(err.Error(), "reverted in block") {
			t.Fatalf("revert error %q", err)
		}
		// Asked again now, the same transfer is refused before anything is signed.
		_, err = c.PrepareTokenTransfer(e.ctx(), TokenTransfer{From: a.Address, Token: tok, To: recipient("r2"), Amount: all})
		if !errors.Is(err, ErrInsufficientFunds) || !strings.Contains(err.Error(), "holds 0 TUSD") {
			t.Fatalf("insufficient tokens: %v", err)
		}
		// Built by hand (no token balance check first), the node's estimate says it reverts.
		data, _ := TransferData(recipient("r2"), all)
		_, err = c.Prepare(e.ctx(), TxRequest{From: a.Address, To: addr, Data: data})
		if !errors.Is(err, ErrWouldRevert) || !strings.Contains(err.Error(), "exceeds balance") || !strings.Contains(err.Error(), "nothing was sent") {
			t.Fatalf("estimate of a reverting call: %v", err)
		}
		// A holder of tokens without ETH for gas cannot send them.
		_, err = c.PrepareTokenTransfer(e.ctx(), TokenTransfer{From: recipient("r1"), Token: tok, To: recipient("r3"), Amount: big.NewInt(1)})
		if !errors.Is(err, ErrInsufficientFunds) {
			t.Fatalf("recipient without ETH: %v", err)
		}
	})

	t.Run("insufficient funds", func(t *testing.T) {
		e := *env
		e.t = t
		a := e.account(5, 0)
		_, err := c.Prepare(e.ctx(), TxRequest{From: a.Address, To: recipient("poor"), Value: oneETH})
		if !errors.Is(err, ErrInsufficientFunds) {
			t.Fatalf("unfunded: %v", err)
		}
		b := e.account(6, 1)
		_, err = c.Prepare(e.ctx(), TxRequest{From: b.Address, To: recipient("poor"), Value: oneETH})
		if !errors.Is(err, ErrInsufficientFunds) || !strings.Contains(err.Error(), "may cost up to") {
			t.Fatalf("value + gas over balance: %v", err)
		}
	})

	t.Run("wrong chain", func(t *testing.T) {
		e := *env
		e.t = t
		a := e.account(7, 1)
		_, err := c.Prepare(e.ctx(), TxRequest{From: a.Address, To: recipient("chain"), Value: big.NewInt(1), ChainID: big.NewInt(1)})
		if !errors.Is(err, ErrWrongChain) || !strings.Contains(err.Error(), "on chain 1337") {
			t.Fatalf("expected chain 1: %v", err)
		}
		// A transaction signed for mainnet is never sent to the dev chain.
		p, err := c.Prepare(e.ctx(), TxRequest{From: a.Address, To: recipient("chain"), Value: big.NewInt(1)})
		if err != nil {
			t.Fatal(err)
		}
		mainnet := big.NewInt(1)
		tx := types.NewTx(&types.DynamicFeeTx{ChainID: mainnet, Nonce: p.Tx.Nonce(), GasTipCap: p.Tx.GasTipCap(), GasFeeCap: p.Tx.GasFeeCap(), Gas: p.Tx.Gas(), To: p.Tx.To(), Value: p.Tx.Value()})
		signed, err := a.SignTx(e.ctx(), &Prepared{Tx: tx, ChainID: mainnet, From: a.Address})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Broadcast(e.ctx(), nil, signed); !errors.Is(err, ErrWrongChain) {
			t.Fatalf("mainnet tx on the dev chain: %v", err)
		}
		p.Release()
	})

	t.Run("foreign signature is not broadcast", func(t *testing.T) {
		e := *env
		e.t = t
		a := e.account(8, 1)
		bad := &Account{Signer: &foreignSigner{softSigner: env.soft, foreign: keySigner(t, strings.Repeat("46", 32))}, Path: a.Path, Address: a.Address}
		p, err := c.Prepare(e.ctx(), TxRequest{From: a.Address, To: recipient("foreign"), Value: big.NewInt(1)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = bad.SignTx(e.ctx(), p)
		if !errors.Is(err, ErrSenderMismatch) || !errors.Is(err, device.ErrBadSignature) {
			t.Fatalf("foreign signature: %v", err)
		}
		// Even handed straight to Broadcast, the prepared transaction's sender is checked.
		foreignTx, _ := keySigner(t, strings.Repeat("46", 32)).SignEthTx(e.ctx(), a.Path, p.Tx, p.ChainID)
		if _, err := c.Broadcast(e.ctx(), p, foreignTx); !errors.Is(err, ErrSenderMismatch) {
			t.Fatalf("broadcast of a foreign signature: %v", err)
		}
		if _, _, err := c.Node().TransactionByHash(e.ctx(), foreignTx.Hash()); err == nil {
			t.Fatal("the node knows the foreign transaction")
		}
		n, _ := c.Node().PendingNonceAt(e.ctx(), a.Address)
		if n != 0 {
			t.Fatalf("pending nonce %d: something was sent", n)
		}
	})

	t.Run("unknown tokens", func(t *testing.T) {
		e := *env
		e.t = t
		if _, err := c.ResolveToken(e.ctx(), "USDC"); !errors.Is(err, ErrUnknownToken) || !strings.Contains(err.Error(), "pass the token's contract address") {
			t.Fatalf("USDC on the dev chain: %v", err)
		}
		if _, err := c.ResolveToken(e.ctx(), recipient("eoa").Hex()); !errors.Is(err, ErrUnknownToken) || !strings.Contains(err.Error(), "no contract") {
			t.Fatalf("EOA as token: %v", err)
		}
		if _, err := c.ResolveToken(e.ctx(), "0xdAC17F958D2ee523a2206206994597C13D831eC7"); !errors.Is(err, ErrInvalidAddress) {
			t.Fatalf("bad checksum token: %v", err)
		}
	})

	t.Run("receipt timeout", func(t *testing.T) {
		e := *env
		e.t = t
		_, err := c.WaitReceipt(e.ctx(), common.HexToHash("0x01"), WaitOptions{Timeout: 100 * time.Millisecond})
		if !errors.Is(err, ErrReceiptTimeout) || !strings.Contains(err.Error(), "unknown") {
			t.Fatalf("timeout: %v", err)
		}
	})
}

func erc20TransferTopic() common.Hash {
	return crypto.Keccak256Hash([]byte("Transfer(address,address,uint256)"))
}
