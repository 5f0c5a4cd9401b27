package nodes

import (
	"encoding/json"
	"testing"
)

// testMiningAddr is the regtest p2wpkh address of sha256("nodes-poc bitcoin test key").
const testMiningAddr = "bcrt1qt3w8fqtusln7t30s0ujzcdex76ywty6pmpfp36"

func TestStartBtcd(t *testing.T) {
	b := StartBtcdT(t, testMiningAddr)
	ctx := t.Context()
	hashes, err := b.Generate(ctx, 101)
	if err != nil {
		t.Fatal(err)
	}
	if len(hashes) != 101 {
		t.Fatalf("generate 101 gave %d hashes", len(hashes))
	}
	raw, err := b.Call(ctx, "getblockcount")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := json.Unmarshal(raw, &n); err != nil || n != 101 {
		t.Fatalf("getblockcount = %s (%v), want 101", raw, err)
	}
	if _, err := b.Call(ctx, "generatetoaddress", 1, testMiningAddr); err == nil {
		t.Fatal("btcd answered generatetoaddress; nodes.md says it has no such method")
	}
	pool, err := b.Mempool(ctx)
	if err != nil || len(pool) != 0 {
		t.Fatalf("mempool %v %v, want empty", pool, err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Call(ctx, "getblockcount"); err == nil {
		t.Fatal("node still answers after Close")
	}
}
