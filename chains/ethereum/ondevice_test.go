package ethereum

import (
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

func TestPreviewSaysWhatTheDeviceShows(t *testing.T) {
	usdc := Token{Address: common.HexToAddress("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"), Symbol: "USDC", Decimals: 6}
	to := common.HexToAddress("0x3535353535353535353535353535353535353535")
	data, _ := TransferData(to, big.NewInt(2_500_000))
	prep := func(chain int64, tok Token) *Prepared {
		tx := types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(chain), Gas: 65000, GasFeeCap: big.NewInt(1), GasTipCap: big.NewInt(1), To: &tok.Address, Data: data})
		return &Prepared{Tx: tx, ChainID: big.NewInt(chain), Token: &tok, Call: &TokenCall{Method: "transfer", To: to, Amount: big.NewInt(2_500_000)}, Fees: Fees{Dynamic: true, FeeCap: big.NewInt(1), TipCap: big.NewInt(1)}}
	}
	lines := strings.Join(prep(1, usdc).Summary().Lines(), "\n")
	if !strings.Contains(lines, `on device:  ledger: "Send 2.5 USDC to `+to.Hex()+`"`) {
		t.Errorf("mainnet usdc preview:\n%s", lines)
	}
	lines = strings.Join(prep(1337, usdc).Summary().Lines(), "\n")
	if !strings.Contains(lines, `Blind signing`) {
		t.Errorf("unknown token preview:\n%s", lines)
	}
}
