package nodes

import (
	"context"
	"math/big"
	"net/http"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

func TestGethDevFund(t *testing.T) {
	g := StartGethT(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var id hexutil.Big
	if err := g.RPC().CallContext(ctx, &id, "eth_chainId"); err != nil {
		t.Fatal(err)
	}
	if id.ToInt().Int64() != 1337 {
		t.Fatalf("chain id %s, want 1337", id.ToInt())
	}
	to := common.HexToAddress("0x00000000000000000000000000000000000c0ffe")
	wei := big.NewInt(1_234_567_890)
	r, err := g.Fund(ctx, to, wei)
	if err != nil {
		t.Fatal(err)
	}
	if r.BlockNumber.Sign() <= 0 {
		t.Fatalf("receipt block %s", r.BlockNumber)
	}
	var bal hexutil.Big
	if err := g.RPC().CallContext(ctx, &bal, "eth_getBalance", to, "latest"); err != nil {
		t.Fatal(err)
	}
	if bal.ToInt().Cmp(wei) != 0 {
		t.Fatalf("balance %s, want %s", bal.ToInt(), wei)
	}
}

func TestGethCloseStopsNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	g := StartGethT(t)
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-g.exited:
	default:
		t.Fatal("geth still running after Close")
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.URL(), nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("geth still answers after Close")
	}
	if err := g.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
