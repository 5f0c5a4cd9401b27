package ethereum

import (
	"fmt"

	"github.com/hwbridge/hwbridge/internal/ledgercal"
)

// onDevice says what each device family shows for p before it signs, so that the preview
// can be compared with the screen. Display only: signing never branches on it.
func onDevice(p *Prepared) []string {
	tx := p.Tx
	if p.Token != nil && p.Call != nil {
		amount := FormatUnits(p.Call.Amount, p.Token.Decimals)
		ledger := "ledger: a contract call to " + p.Token.Address.Hex() + ": hwbridge has no Ledger-signed token information for it, so the Ethereum app needs \"Blind signing\" on (an emulator that trusts hwbridge's test key shows the amount)"
		if p.ChainID.IsUint64() && p.ChainID.Uint64() <= 0xFFFFFFFF {
			if b, ok := ledgercal.Builtin(uint32(p.ChainID.Uint64()), p.Token.Address); ok {
				if d, err := ledgercal.Parse(b); err == nil {
					verb := "Send " + amount + " " + d.Ticker + " to " + p.Call.To.Hex()
					if p.Call.Method == "approve" {
						verb = "Approve " + p.Call.To.Hex() + " to spend " + amount + " " + d.Ticker
					}
					ledger = "ledger: \"" + verb + "\" (Ledger-signed token information is sent first; blind signing can stay off)"
				}
			}
		}
		return []string{ledger, fmt.Sprintf("trezor: the call to %s with %d bytes of data (the token amount where the firmware knows the token)", p.Token.Address.Hex(), len(tx.Data()))}
	}
	if len(tx.Data()) > 0 {
		return []string{"ledger: a contract call (the Ethereum app needs \"Blind signing\" on)", fmt.Sprintf("trezor: %d bytes of data", len(tx.Data()))}
	}
	to := "a new contract"
	if tx.To() != nil {
		to = tx.To().Hex()
	}
	return []string{"ledger and trezor: " + FormatEther(tx.Value()) + " ETH to " + to + ", and the fee"}
}
