package erc20

import (
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

func TestArtifact(t *testing.T) {
	a, err := ABI()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"name", "symbol", "decimals", "totalSupply", "balanceOf", "allowance", "transfer", "approve", "transferFrom"} {
		if _, ok := a.Methods[m]; !ok {
			t.Errorf("abi has no %s", m)
		}
	}
	for _, ev := range []string{"Transfer", "Approval"} {
		if _, ok := a.Events[ev]; !ok {
			t.Errorf("abi has no event %s", ev)
		}
	}
	code, err := Bytecode()
	if err != nil || len(code) < 1000 {
		t.Fatalf("bytecode %d bytes, %v", len(code), err)
	}
	d, err := DeployData("Test USD", "TUSD", big.NewInt(1e12), common.HexToAddress("0x9858EfFD232B4033E47d90003D41EC34EcaEda94"))
	if err != nil || len(d) != len(code)+6*32+2*32 {
		t.Fatalf("deploy data %d bytes, %v", len(d), err)
	}
}
