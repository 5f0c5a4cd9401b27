package ledger

import (
	"context"
	"math/big"
	"slices"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// TestTokenInfoFollowsAppConfiguration: the descriptor goes out only when GET APP
// CONFIGURATION sets flag 0x02 (external token information needed), as hw-app-eth reads it.
func TestTokenInfoFollowsAppConfiguration(t *testing.T) {
	usdc := common.HexToAddress("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48")
	data := append(append([]byte{0xa9, 0x05, 0x9c, 0xbb}, make([]byte, 32)...), common.LeftPadBytes([]byte{1}, 32)...)
	tx := types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(1), Gas: 60000, GasFeeCap: big.NewInt(2), GasTipCap: big.NewInt(1), To: &usdc, Data: data})
	key, _ := crypto.GenerateKey()
	for _, c := range []struct {
		flags byte
		want  []string
	}{
		{0x02, []string{"e0060000", "e00a0000", "e0040000"}},
		{0x00, []string{"e0060000", "e0040000"}},
	} {
		f := &scripted{app: AppEthereum, version: "1.17.0", handle: func(apdu []byte) ([]byte, uint16) {
			switch apdu[1] {
			case insEthConfig:
				return []byte{c.flags, 1, 17, 0}, swOK
			case insEthProvideERC20:
				return []byte{0}, swOK
			case insEthSignTx:
				sig, _ := crypto.Sign(types.LatestSignerForChainID(big.NewInt(1)).Hash(tx).Bytes(), key)
				return append([]byte{sig[64]}, sig[:64]...), swOK
			}
			return nil, swINSNotSupported
		}}
		if _, err := New(f, Options{}).SignEthTx(context.Background(), hdpath.MustParse("m/44'/60'/0'/0/0"), tx, big.NewInt(1)); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, h := range f.headers() {
			if h != "b0010000" {
				got = append(got, h)
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("flags %02x: apdus %v, want %v", c.flags, got, c.want)
		}
	}
}
