package keepkey

import (
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/core/types"
	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/internal/keepkeypb"
)

// TestEthTxSignature: v as ethereum.c send_signature sets it.
func TestEthTxSignature(t *testing.T) {
	r := make([]byte, 32)
	for _, tt := range []struct {
		name    string
		v       uint32
		txType  uint8
		chainID int64
		recid   byte
		ok      bool
	}{
		{"eip155 chain 1", 37, types.LegacyTxType, 1, 0, true},
		{"eip155 chain 1 odd", 38, types.LegacyTxType, 1, 1, true},
		{"recid above MAX_CHAIN_ID", 1, types.LegacyTxType, 3_000_000_000, 1, true},
		{"eip155 at MAX_CHAIN_ID", 35 + 2*2147483630, types.LegacyTxType, 2147483630, 0, true},
		{"1559 recid", 1, types.DynamicFeeTxType, 1, 1, true},
		{"1559 full v is wrong", 37, types.DynamicFeeTxType, 1, 0, false},
		{"v for another chain", 39, types.LegacyTxType, 5, 0, false},
		{"pre-eip155 v", 27, types.LegacyTxType, 1, 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sig, err := ethTxSignature(&keepkeypb.EthereumTxRequest{SignatureV: proto.Uint32(tt.v), SignatureR: r, SignatureS: r}, tt.txType, big.NewInt(tt.chainID))
			if (err == nil) != tt.ok {
				t.Fatalf("err %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && sig[64] != tt.recid {
				t.Errorf("recid %d, want %d", sig[64], tt.recid)
			}
		})
	}
}

// TestCapabilitiesByVersion: EIP-1559 from 7.2.1, EIP-712 hashes from 7.4.0.
func TestCapabilitiesByVersion(t *testing.T) {
	for _, tt := range []struct {
		v             [3]uint32
		eip1559, hash bool
	}{
		{[3]uint32{6, 7, 0}, false, false},
		{[3]uint32{7, 2, 0}, false, false},
		{[3]uint32{7, 2, 1}, true, false},
		{[3]uint32{7, 3, 2}, true, false},
		{[3]uint32{7, 4, 0}, true, true},
		{[3]uint32{7, 10, 0}, true, true},
		{[3]uint32{8, 0, 0}, true, true},
	} {
		c := capabilities(&keepkeypb.Features{MajorVersion: proto.Uint32(tt.v[0]), MinorVersion: proto.Uint32(tt.v[1]), PatchVersion: proto.Uint32(tt.v[2])})
		if c.EIP1559 != tt.eip1559 || c.EIP712Hash != tt.hash || c.EIP712 != tt.hash || c.Taproot || c.Multisig {
			t.Errorf("%v: %+v", tt.v, c)
		}
	}
}
