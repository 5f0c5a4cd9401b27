package ledgeremu

// PROVIDE ERC 20 TOKEN INFORMATION (E0 0A), as app-ethereum de18010
// src/features/provide_erc20_token_information/cmd_provide_token_info.c and
// src/manage_asset_info.c: the descriptor's signature must verify with Ledger's key (or,
// only when Config.TrustTestTokenKey is set, the emulator test key of internal/ledgercal);
// the token goes into one of MAX_ASSETS (5) slots, round robin, and the reply is the slot
// index. The slots are forgotten once a transaction is signed or refused. The ERC-20
// parser then shows a transfer/approve of a stored token as "Send 2.5 USDT / To 0x…" and
// signs it with blind signing off. Hand-written: it is the app's own command, and no library
// implements the device side.

import (
	"math/big"

	"github.com/ethereum/go-ethereum/common"

	"github.com/hwbridge/hwbridge/internal/ledgercal"
)

const maxAssets = 5

type tokenInfo struct {
	ticker   string
	contract common.Address
	decimals uint32
}

type assetSlots struct {
	set  [maxAssets]bool
	info [maxAssets]tokenInfo
	next int
}

func (a *assetSlots) byContract(c []byte) (tokenInfo, bool) {
	for i := range a.info {
		if a.set[i] && a.info[i].contract == common.BytesToAddress(c) {
			return a.info[i], true
		}
	}
	return tokenInfo{}, false
}

func (cn *conn) ethProvideERC20(a APDU) ([]byte, error) {
	if a.P1 != 0 || a.P2 != 0 {
		return nil, fail(swWrongP1P2, "p1 %02x p2 %02x", a.P1, a.P2)
	}
	desc, err := ledgercal.Parse(a.Data)
	if err != nil {
		return nil, fail(swIncorrectData, "%v", err)
	}
	ok := desc.Verify(ledgercal.LedgerPublicKey)
	if !ok && cn.d.trustTestKey {
		ok = desc.Verify(ledgercal.TestPublicKey())
	}
	if !ok {
		return nil, fail(swIncorrectData, "erc-20 token descriptor signature does not verify")
	}
	s := &cn.d.assets
	idx := s.next
	s.info[idx] = tokenInfo{ticker: desc.Ticker, contract: desc.Contract, decimals: desc.Decimals}
	s.set[idx] = true
	s.next = (idx + 1) % maxAssets
	return []byte{byte(idx)}, nil
}

// tokenScreen is what the ERC-20 parser shows for a transfer/approve of a known token, or
// ok false (blind signing needed).
func (cn *conn) tokenScreen(to, data []byte) (title string, lines []string, ok bool) {
	if len(data) != 4+64 || !isERC20Call(to, data) {
		return "", nil, false
	}
	tok, ok := cn.d.assets.byContract(to)
	if !ok {
		return "", nil, false
	}
	for _, b := range data[4:16] { // the address argument's padding
		if b != 0 {
			return "", nil, false
		}
	}
	dest := common.BytesToAddress(data[16:36]).Hex()
	amount := new(big.Int).SetBytes(data[36:68])
	shown := formatUnitsBig(amount, int(tok.decimals)) + " " + tok.ticker
	if data[0] == 0x09 { // approve
		if amount.BitLen() == 256 && amount.Cmp(new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))) == 0 {
			shown = "Unlimited " + tok.ticker
		}
		return "Review transaction", []string{"Approve " + dest + " to spend " + shown, "Approve: " + shown, "Approve to: " + dest,
			"token contract: " + tok.contract.Hex()}, true
	}
	return "Review transaction", []string{"Send " + shown + " to " + dest, "Send: " + shown, "To: " + dest,
		"token contract: " + tok.contract.Hex()}, true
}
