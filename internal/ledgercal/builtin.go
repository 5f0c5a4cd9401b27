package ledgercal

import (
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/ethereum/go-ethereum/common"
)

// The Ledger-signed descriptors of USDT and USDC, from @ledgerhq/cryptoassets-evm-signatures
// (tokens/README.md): data the driver sends to the Ethereum app and the preview names.
//
//go:embed tokens/erc20-descriptors.json
var embeddedDescriptors []byte

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
	builtinOnce sync.Once
	builtin     map[tokenKey][]byte
	builtinErr  error
)

func loadBuiltin() (map[tokenKey][]byte, error) {
	builtinOnce.Do(func() {
		var entries []tokenEntry
		if err := json.Unmarshal(embeddedDescriptors, &entries); err != nil {
			builtinErr = fmt.Errorf("ledgercal: embedded token descriptors: %w", err)
			return
		}
		m := map[tokenKey][]byte{}
		for _, e := range entries {
			p, err := hex.DecodeString(e.Payload)
			if err != nil {
				builtinErr = fmt.Errorf("ledgercal: embedded token descriptor %s on chain %d: %w", e.Ticker, e.ChainID, err)
				return
			}
			d, err := Parse(p)
			if err != nil {
				builtinErr = fmt.Errorf("ledgercal: embedded token descriptor %s on chain %d: %w", e.Ticker, e.ChainID, err)
				return
			}
			m[tokenKey{d.ChainID, d.Contract}] = p
		}
		builtin = m
	})
	return builtin, builtinErr
}

// Builtin returns the embedded Ledger-signed descriptor of a token (E0 0A payload), if any.
func Builtin(chainID uint32, contract common.Address) ([]byte, bool) {
	m, err := loadBuiltin()
	if err != nil {
		return nil, false
	}
	p, ok := m[tokenKey{chainID, contract}]
	return p, ok
}

// BuiltinAll returns every embedded descriptor.
func BuiltinAll() ([][]byte, error) {
	m, err := loadBuiltin()
	if err != nil {
		return nil, err
	}
	out := make([][]byte, 0, len(m))
	for _, p := range m {
		out = append(out, p)
	}
	return out, nil
}
