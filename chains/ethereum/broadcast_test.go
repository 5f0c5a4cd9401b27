package ethereum

import (
	"context"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	goeth "github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// scriptedNode is stubNode with scripted answers for broadcasting and receipts.
type scriptedNode struct {
	stubNode
	sendErr   error
	known     bool    // TransactionByHash finds the transaction
	receiptEr []error // errors returned before the receipt, in order
	calls     int
	headLag   int // answers of a head below the receipt's block before it catches up
}

func (s *scriptedNode) SendTransaction(context.Context, *types.Transaction) error { return s.sendErr }

// HeaderByNumber: the head is block 9 (where the scripted receipt is), reached after
// headLag answers of block 8.
func (s *scriptedNode) HeaderByNumber(ctx context.Context, n *big.Int) (*types.Header, error) {
	h, _ := s.stubNode.HeaderByNumber(ctx, n)
	h.Number = big.NewInt(9)
	if s.headLag > 0 {
		s.headLag--
		h.Number = big.NewInt(8)
	}
	return h, nil
}

func (s *scriptedNode) TransactionByHash(context.Context, common.Hash) (*types.Transaction, bool, error) {
	if s.known {
		return nil, true, nil
	}
	return nil, false, goeth.NotFound
}

func (s *scriptedNode) TransactionReceipt(context.Context, common.Hash) (*types.Receipt, error) {
	s.calls++
	if s.calls <= len(s.receiptEr) {
		return nil, s.receiptEr[s.calls-1]
	}
	return &types.Receipt{Status: 1, BlockNumber: big.NewInt(9)}, nil
}

func signedDevTx(t *testing.T) (*Prepared, *types.Transaction) {
	t.Helper()
	soft := mnemonicSigner(t, testMnemonic)
	path, _ := DerivationPath(0)
	acct, _ := OpenAccount(t.Context(), soft, path)
	to := common.HexToAddress("0x3535353535353535353535353535353535353535")
	tx := types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: 0, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2e9), Gas: 21000, To: &to, Value: big.NewInt(1)})
	p := &Prepared{Tx: tx, ChainID: big.NewInt(1337), From: acct.Address}
	signed, err := acct.SignTx(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	return p, signed
}

func TestBroadcastOutcomes(t *testing.T) {
	tests := []struct {
		name    string
		sendErr error
		known   bool
		want    error // nil: success
		text    string
	}{
		{"accepted", nil, false, nil, ""},
		{"already known", errors.New("already known"), false, nil, ""},
		{"nonce too low, ours", errors.New("nonce too low: next nonce 1, tx nonce 0"), true, nil, ""},
		{"nonce too low, another", errors.New("nonce too low: next nonce 1, tx nonce 0"), false, errAny, "prepare it again"},
		{"insufficient funds", errors.New("insufficient funds for gas * price + value"), false, ErrInsufficientFunds, "fund it"},
		{"invalid chain id", errors.New("invalid chain id for signer"), false, ErrWrongChain, "another chain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewClient(&scriptedNode{sendErr: tt.sendErr, known: tt.known}, nil)
			p, signed := signedDevTx(t)
			h, err := c.Broadcast(t.Context(), p, signed)
			switch {
			case tt.want == nil && (err != nil || h != signed.Hash()):
				t.Fatalf("%v, %s", err, h)
			case tt.want == errAny && (err == nil || !strings.Contains(err.Error(), tt.text)):
				t.Fatalf("%v", err)
			case tt.want != nil && tt.want != errAny && (!errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.text)):
				t.Fatalf("%v, want %v", err, tt.want)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestWaitReceiptRetriesIndexing(t *testing.T) {
	node := &scriptedNode{receiptEr: []error{
		errors.New("transaction indexing is in progress"), goeth.NotFound, errors.New("transaction indexing is in progress"),
	}}
	c := NewClient(node, nil)
	var states []string
	r, err := c.WaitReceipt(t.Context(), common.Hash{1}, WaitOptions{Timeout: 10 * time.Second, Progress: func(p Progress) { states = append(states, p.State) }})
	if err != nil || r.BlockNumber.Int64() != 9 {
		t.Fatalf("%v, %v", r, err)
	}
	if strings.Join(states, ",") != "indexing,unknown,indexing,mined" {
		t.Fatalf("progress %v", states)
	}
	// The receipt comes before the node's head reaches its block (geth --dev): WaitReceipt
	// returns once "latest" is there.
	node = &scriptedNode{headLag: 3}
	if r, err := NewClient(node, nil).WaitReceipt(t.Context(), common.Hash{1}, WaitOptions{Timeout: 10 * time.Second}); err != nil || r.BlockNumber.Int64() != 9 || node.headLag != 0 {
		t.Fatalf("head lag: %v, %v, %d answers of block 8 left", r, err, node.headLag)
	}
	node = &scriptedNode{receiptEr: []error{errors.New("connection refused")}}
	if _, err := NewClient(node, nil).WaitReceipt(t.Context(), common.Hash{1}, WaitOptions{}); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("node error: %v", err)
	}
}
