package ledger

// ERC-20 token information for the Ethereum app (PROVIDE ERC 20 TOKEN INFORMATION, E0 0A):
// a transfer or approve call to a token the app knows is shown as "Send 2.5 USDT / To 0x…"
// and signed with blind signing off; without it the app's ERC-20 parser falls back to blind
// signing. The app forgets the tokens after each transaction, so the descriptor is sent
// right before each SIGN (as hw-app-eth's signTransaction does with its resolution).

import (
	"context"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/ledgercal"
)

// insEthProvideERC20 is PROVIDE ERC 20 TOKEN INFORMATION; the reply is the asset index.
const insEthProvideERC20 = 0x0A

// TokenDescriptor is a token the driver can describe to the Ethereum app.
type TokenDescriptor struct {
	Ticker   string
	Contract common.Address
	Decimals uint32
	ChainID  uint32
	Payload  []byte // the E0 0A data
}

// tokenDescriptor finds the descriptor for a transaction's token call: the built-in
// Ledger-signed list first, then Options.TokenDescriptors. ok is false when tx is no
// transfer/approve call or the token is unknown (the app then needs blind signing).
func (d *Driver) tokenDescriptor(ctx context.Context, tx *types.Transaction, chainID *big.Int) (TokenDescriptor, bool, error) {
	if tx.To() == nil || !isTokenCall(tx.Data()) || !chainID.IsUint64() || chainID.Uint64() > 0xFFFFFFFF {
		return TokenDescriptor{}, false, nil
	}
	chain, contract := uint32(chainID.Uint64()), *tx.To()
	p, ok := ledgercal.Builtin(chain, contract)
	if !ok {
		for _, extra := range d.opts.TokenDescriptors {
			if x, err := ledgercal.Parse(extra); err == nil && x.ChainID == chain && x.Contract == contract {
				p, ok = extra, true
				break
			}
		}
	}
	if !ok {
		p, ok = d.testDescriptor(ctx, chain, contract)
	}
	if !ok {
		return TokenDescriptor{}, false, nil
	}
	x, err := ledgercal.Parse(p)
	if err != nil {
		return TokenDescriptor{}, false, fmt.Errorf("ledger: token descriptor for %s: %w", contract.Hex(), err)
	}
	return TokenDescriptor{Ticker: x.Ticker, Contract: x.Contract, Decimals: x.Decimals, ChainID: x.ChainID, Payload: p}, true, nil
}

// testDescriptor signs a descriptor with the emulator test key (internal/ledgercal) for
// the token the caller named in ctx (device.WithToken), on an emulator whose options say it
// trusts that key: dev-chain tokens have no Ledger-signed descriptor.
func (d *Driver) testDescriptor(ctx context.Context, chain uint32, contract common.Address) ([]byte, bool) {
	if !d.opts.Emulator || !d.opts.TestTokenKey {
		return nil, false
	}
	t, ok := device.TokenFrom(ctx)
	if !ok || t.Contract != contract || t.ChainID == nil || !t.ChainID.IsUint64() || t.ChainID.Uint64() != uint64(chain) {
		return nil, false
	}
	for _, r := range t.Symbol {
		if r < 0x21 || r > 0x7E {
			return nil, false
		}
	}
	p, err := ledgercal.SignTest(t.Symbol, contract, uint32(t.Decimals), chain)
	if err != nil {
		return nil, false // a symbol the app cannot store
	}
	return p, true
}

// isTokenCall reports whether data is a plain ERC-20 transfer or approve (selector and two
// 32-byte arguments), the calls the app's ERC-20 parser shows with token information.
func isTokenCall(data []byte) bool {
	if len(data) != 4+64 {
		return false
	}
	for _, sel := range erc20Selectors {
		if string(data[:4]) == string(sel) {
			return true
		}
	}
	return false
}

// BuiltinTokens lists the embedded Ledger-signed descriptors (for help texts and tests).
func BuiltinTokens() ([]TokenDescriptor, error) {
	all, err := ledgercal.BuiltinAll()
	if err != nil {
		return nil, err
	}
	out := make([]TokenDescriptor, 0, len(all))
	for _, p := range all {
		x, _ := ledgercal.Parse(p) // parsed once already
		out = append(out, TokenDescriptor{Ticker: x.Ticker, Contract: x.Contract, Decimals: x.Decimals, ChainID: x.ChainID, Payload: p})
	}
	return out, nil
}
