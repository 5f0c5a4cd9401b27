package ledger

// ERC-20 token information for the Ethereum app (PROVIDE ERC 20 TOKEN INFORMATION, E0 0A):
// a transfer or approve call to a token the app knows is shown as "Send 2.5 USDT / To 0x…"
// and signed with blind signing off; without it the app's ERC-20 parser falls back to blind
// signing. The app forgets the tokens after each transaction, so the descriptor is sent
// right before each SIGN (as hw-app-eth's signTransaction does with its resolution).

import (
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/hwbridge/hwbridge/internal/ledgercal"
)

// insEthProvideERC20 is PROVIDE ERC 20 TOKEN INFORMATION; the reply is the asset index.
const insEthProvideERC20 = 0x0A

//go:embed tokens/erc20-descriptors.json
var embeddedDescriptors []byte

// tokenEntry is one line of tokens/erc20-descriptors.json.
type tokenEntry struct {
	ChainID  uint32 `json:"chain_id"`
	Ticker   string `json:"ticker"`
	Address  string `json:"address"`
	Decimals uint32 `json:"decimals"`
	Payload  string `json:"payload"`
}

type tokenKey struct {
	chain    uint32
	contract common.Address
}

var (
	builtinOnce   sync.Once
	builtinTokens map[tokenKey][]byte
	builtinErr    error
)

// builtinDescriptors are the Ledger-signed descriptors embedded from
// @ledgerhq/cryptoassets-evm-signatures (tokens/README.md), by chain and contract.
func builtinDescriptors() (map[tokenKey][]byte, error) {
	builtinOnce.Do(func() {
		var entries []tokenEntry
		if err := json.Unmarshal(embeddedDescriptors, &entries); err != nil {
			builtinErr = fmt.Errorf("ledger: embedded token descriptors: %w", err)
			return
		}
		builtinTokens = map[tokenKey][]byte{}
		for _, e := range entries {
			p, err := hex.DecodeString(e.Payload)
			if err != nil {
				builtinErr = fmt.Errorf("ledger: embedded token descriptor %s on chain %d: %w", e.Ticker, e.ChainID, err)
				return
			}
			d, err := ledgercal.Parse(p)
			if err != nil {
				builtinErr = fmt.Errorf("ledger: embedded token descriptor %s on chain %d: %w", e.Ticker, e.ChainID, err)
				return
			}
			builtinTokens[tokenKey{d.ChainID, d.Contract}] = p
		}
	})
	return builtinTokens, builtinErr
}

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
func (d *Driver) tokenDescriptor(tx *types.Transaction, chainID *big.Int) (TokenDescriptor, bool, error) {
	if tx.To() == nil || !isTokenCall(tx.Data()) || !chainID.IsUint64() || chainID.Uint64() > 0xFFFFFFFF {
		return TokenDescriptor{}, false, nil
	}
	key := tokenKey{uint32(chainID.Uint64()), *tx.To()}
	builtin, err := builtinDescriptors()
	if err != nil {
		return TokenDescriptor{}, false, err
	}
	p, ok := builtin[key]
	if !ok {
		for _, extra := range d.opts.TokenDescriptors {
			if x, err := ledgercal.Parse(extra); err == nil && x.ChainID == key.chain && x.Contract == key.contract {
				p, ok = extra, true
				break
			}
		}
	}
	if !ok {
		return TokenDescriptor{}, false, nil
	}
	x, err := ledgercal.Parse(p)
	if err != nil {
		return TokenDescriptor{}, false, fmt.Errorf("ledger: token descriptor for %s: %w", key.contract.Hex(), err)
	}
	return TokenDescriptor{Ticker: x.Ticker, Contract: x.Contract, Decimals: x.Decimals, ChainID: x.ChainID, Payload: p}, true, nil
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
	m, err := builtinDescriptors()
	if err != nil {
		return nil, err
	}
	out := make([]TokenDescriptor, 0, len(m))
	for _, p := range m {
		x, _ := ledgercal.Parse(p) // parsed once already
		out = append(out, TokenDescriptor{Ticker: x.Ticker, Contract: x.Contract, Decimals: x.Decimals, ChainID: x.ChainID, Payload: p})
	}
	return out, nil
}

// tokenAmount prints base units with the token's decimals ("2.5").
func tokenAmount(v *big.Int, dec uint32) string {
	s := v.String()
	n := int(dec)
	if len(s) <= n {
		s = strings.Repeat("0", n-len(s)+1) + s
	}
	whole, frac := s[:len(s)-n], strings.TrimRight(s[len(s)-n:], "0")
	if frac == "" {
		return whole
	}
	return whole + "." + frac
}
