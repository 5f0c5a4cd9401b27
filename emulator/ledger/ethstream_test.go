package ledgeremu

import (
	"bytes"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rlp"
)

// sendChunks streams path ‖ tx cut at the given tx offsets (and every 200 bytes between
// them) and returns the tx byte range [from, to) of the chunk that got a status other
// than 9000 (from -1 if none) and that status.
func sendChunks(t *testing.T, c *testClient, tx []byte, cuts []int) (int, int, uint16) {
	t.Helper()
	var bounds []int
	prev := 0
	for _, cut := range append(cuts, len(tx)) {
		for prev+200 < cut {
			prev += 200
			bounds = append(bounds, prev)
		}
		bounds = append(bounds, cut)
		prev = cut
	}
	from := 0
	for i, end := range bounds {
		ch := tx[from:end]
		p1 := byte(p1More)
		if i == 0 {
			p1 = p1First
			ch = append(pathBytes(t, ethPath0), ch...)
		}
		_, sw := c.send(claETH, insEthSignTx, p1, 0, ch)
		if sw != swOK {
			return from, end, sw
		}
		from = end
	}
	return -1, 0, swOK
}

// legacyTx is the EIP-155 signing payload the host streams for a legacy transaction.
func legacyTx(t *testing.T, to *common.Address, value int64, data []byte) []byte {
	t.Helper()
	b, err := rlp.EncodeToBytes([]any{uint64(7), big.NewInt(2_000_000_000), uint64(100000), to, big.NewInt(value), data, big.NewInt(11155111), uint(0), uint(0)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dataOffset is where data starts in tx.
func dataOffset(tx, data []byte) int { return bytes.Index(tx, data) }

// TestEthStreamRefusals pins which chunk the Ethereum app refuses (app-ethereum 1.22.0
// logic_sign_tx.c custom_processor and erc20_plugin.c): ERC-20 calls the parser cannot take
// are refused whatever the blind-signing setting, other calls without blind signing at the
// chunk carrying the data's start, creations and ERC-20 calls without token information
// at the end.
func TestEthStreamRefusals(t *testing.T) {
	to := common.HexToAddress("0x1d1c328764a41bda0492b66baa30c4a339ff85ef")
	transfer := append([]byte{0xa9, 0x05, 0x9c, 0xbb}, make([]byte, 64)...)
	approve := append([]byte{0x09, 0x5e, 0xa7, 0xb3}, make([]byte, 64)...)
	long := bytes.Repeat([]byte{0xa9, 0x05, 0x9c, 0xbb}, 375) // the suite's malformed vector
	other := bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 100)
	const (
		signed = -1 << 20 // signed, no refusal
		atEnd  = -2 << 20 // refused at the last chunk
	)
	tests := []struct {
		name  string
		to    *common.Address
		value int64
		data  []byte
		blind bool
		cuts  func(s int) []int // cut offsets, from the data's start s
		want  int               // the refused chunk holds data byte want (or signed, atEnd)
	}{
		{"transfer-blind", &to, 0, transfer, true, nil, signed},
		{"transfer-no-blind", &to, 0, transfer, false, func(s int) []int { return []int{s + 10} }, atEnd}, // no token info
		{"approve-blind", &to, 0, approve, true, nil, signed},
		{"transfer-extra-64", &to, 0, append(append([]byte{}, transfer...), make([]byte, 64)...), true, nil, signed},
		{"transfer-extra-65", &to, 0, append(append([]byte{}, transfer...), make([]byte, 65)...), true, func(s int) []int { return []int{s + 100} }, 132},
		{"transfer-with-value", &to, 1, transfer, true, func(s int) []int { return []int{s + 10} }, 0},
		{"malformed", &to, 0, long, true, func(s int) []int { return []int{s + 100, s + 163, s + 164} }, 163},
		{"malformed-no-blind", &to, 0, long, false, func(s int) []int { return []int{s + 150} }, 163},
		{"value-chunked", &to, 5, long, true, func(s int) []int { return []int{s - 1} }, 0},
		{"other-blind", &to, 0, other, true, nil, signed},
		{"other-no-blind", &to, 0, other, false, func(s int) []int { return []int{s + 10} }, 0},
		{"selector-split", &to, 0, other, true, func(s int) []int { return []int{s + 2} }, 0},
		{"selector-at-cut", &to, 0, other, true, func(s int) []int { return []int{s} }, signed},
		{"create-no-blind", nil, 0, other, false, func(s int) []int { return []int{s + 10} }, atEnd},
		{"create-blind", nil, 0, long, true, nil, signed},
		{"short-data-no-blind", &to, 0, []byte{1, 2, 3}, false, nil, atEnd},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDevice(t, Config{App: AppEthereum, BlindSigning: tt.blind})
			c := newTestClient(t, d)
			tx := legacyTx(t, tt.to, tt.value, tt.data)
			s := dataOffset(tx, tt.data)
			var cuts []int
			if tt.cuts != nil {
				cuts = tt.cuts(s)
			}
			from, end, sw := sendChunks(t, c, tx, cuts)
			switch {
			case tt.want == signed && from != -1:
				t.Errorf("refused the chunk [%d,%d) (sw %04x), want signed", from, end, sw)
			case tt.want == atEnd && (end != len(tx) || sw != swIncorrectData):
				t.Errorf("refused [%d,%d) of %d (sw %04x), want the last chunk refused", from, end, len(tx), sw)
			case tt.want >= 0 && (from > s+tt.want || end <= s+tt.want || sw != swIncorrectData):
				t.Errorf("refused [%d,%d) (sw %04x), want the chunk holding data byte %d (offset %d)", from, end, sw, tt.want, s+tt.want)
			}
			// The app is ready for the next transaction.
			plain := types.NewTx(&types.LegacyTx{Gas: 21000, To: &to, Value: big.NewInt(1), GasPrice: big.NewInt(1)})
			b, _ := rlp.EncodeToBytes([]any{plain.Nonce(), plain.GasPrice(), plain.Gas(), plain.To(), plain.Value(), plain.Data(), big.NewInt(1), uint(0), uint(0)})
			if from, _, sw := sendChunks(t, c, b, nil); from != -1 {
				t.Errorf("next transaction refused: %04x", sw)
			}
		})
	}
}
