package ethereum

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"unicode"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
)

// erc20ABI is the part of EIP-20 this package calls.
const erc20ABI = `[
 {"type":"function","name":"name","stateMutability":"view","inputs":[],"outputs":[{"name":"","type":"string"}]},
 {"type":"function","name":"symbol","stateMutability":"view","inputs":[],"outputs":[{"name":"","type":"string"}]},
 {"type":"function","name":"decimals","stateMutability":"view","inputs":[],"outputs":[{"name":"","type":"uint8"}]},
 {"type":"function","name":"balanceOf","stateMutability":"view","inputs":[{"name":"owner","type":"address"}],"outputs":[{"name":"","type":"uint256"}]},
 {"type":"function","name":"allowance","stateMutability":"view","inputs":[{"name":"owner","type":"address"},{"name":"spender","type":"address"}],"outputs":[{"name":"","type":"uint256"}]},
 {"type":"function","name":"transfer","stateMutability":"nonpayable","inputs":[{"name":"to","type":"address"},{"name":"value","type":"uint256"}],"outputs":[{"name":"","type":"bool"}]},
 {"type":"function","name":"approve","stateMutability":"nonpayable","inputs":[{"name":"spender","type":"address"},{"name":"value","type":"uint256"}],"outputs":[{"name":"","type":"bool"}]},
 {"type":"event","name":"Transfer","anonymous":false,"inputs":[{"indexed":true,"name":"from","type":"address"},{"indexed":true,"name":"to","type":"address"},{"indexed":false,"name":"value","type":"uint256"}]}
]`

// erc20 is erc20ABI parsed; it is a constant, so parsing cannot fail at run time (a test
// checks it).
var erc20 = mustABI(erc20ABI)

func mustABI(s string) abi.ABI {
	a, err := abi.JSON(strings.NewReader(s))
	if err != nil {
		panic("ethereum: built-in erc20 abi: " + err.Error())
	}
	return a
}

// TransferData is the calldata of ERC-20 transfer(to, value).
func TransferData(to common.Address, value *big.Int) ([]byte, error) {
	if value == nil || value.Sign() < 0 || value.BitLen() > 256 {
		return nil, fmt.Errorf("%w: token amount must be between 0 and 2^256-1", ErrInvalidAmount)
	}
	return erc20.Pack("transfer", to, value)
}

// ApproveData is the calldata of ERC-20 approve(spender, value).
func ApproveData(spender common.Address, value *big.Int) ([]byte, error) {
	if value == nil || value.Sign() < 0 || value.BitLen() > 256 {
		return nil, fmt.Errorf("%w: allowance must be between 0 and 2^256-1", ErrInvalidAmount)
	}
	return erc20.Pack("approve", spender, value)
}

// TokenCall is an ERC-20 call decoded from calldata, for showing the user what a
// transaction does.
type TokenCall struct {
	Method string         // "transfer" or "approve"
	To     common.Address // recipient or spender
	Amount *big.Int       // base units
}

// DecodeTokenCall decodes transfer/approve calldata; ok is false for anything else.
func DecodeTokenCall(data []byte) (TokenCall, bool) {
	if len(data) != 4+64 {
		return TokenCall{}, false
	}
	for _, name := range []string{"transfer", "approve"} {
		m := erc20.Methods[name]
		if !bytes.Equal(data[:4], m.ID) {
			continue
		}
		vals, err := m.Inputs.Unpack(data[4:])
		if err != nil || len(vals) != 2 {
			return TokenCall{}, false
		}
		to, ok1 := vals[0].(common.Address)
		amt, ok2 := vals[1].(*big.Int)
		if !ok1 || !ok2 {
			return TokenCall{}, false
		}
		return TokenCall{Method: name, To: to, Amount: amt}, true
	}
	return TokenCall{}, false
}

// Token is an ERC-20 token as used for display and amounts.
type Token struct {
	Address  common.Address `json:"address"`
	Symbol   string         `json:"symbol"`
	Name     string         `json:"name,omitempty"`
	Decimals uint8          `json:"decimals"`
}

// knownTokens is the built-in list per chain id: well-known tokens a user may name by
// symbol. Their decimals are checked against the contract when used.
var knownTokens = map[uint64][]Token{
	1: {
		{Address: common.HexToAddress("0xdAC17F958D2ee523a2206206994597C13D831ec7"), Symbol: "USDT", Name: "Tether USD", Decimals: 6},
		{Address: common.HexToAddress("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"), Symbol: "USDC", Name: "USD Coin", Decimals: 6},
	},
}

// KnownTokens returns the built-in tokens for a chain (none for test and dev chains).
func KnownTokens(chainID *big.Int) []Token {
	if chainID == nil || !chainID.IsUint64() {
		return nil
	}
	return append([]Token(nil), knownTokens[chainID.Uint64()]...)
}

// ResolveToken turns a token argument (a built-in symbol such as USDC, or a contract
// address) into a Token, reading decimals and symbol from the contract on the node's chain.
func (c *Client) ResolveToken(ctx context.Context, spec string) (Token, error) {
	chainID, err := c.ChainID(ctx)
	if err != nil {
		return Token{}, err
	}
	var want *Token
	var addr common.Address
	if strings.HasPrefix(spec, "0x") || strings.HasPrefix(spec, "0X") {
		if addr, err = ParseAddress(spec); err != nil {
			return Token{}, fmt.Errorf("token: %w", err)
		}
		for _, t := range KnownTokens(chainID) {
			if t.Address == addr {
				want = &t
			}
		}
	} else {
		for _, t := range KnownTokens(chainID) {
			if strings.EqualFold(t.Symbol, spec) {
				want = &t
			}
		}
		if want == nil {
			return Token{}, fmt.Errorf("%w: %q is not in the built-in list for chain %s (%s): pass the token's contract address", ErrUnknownToken, spec, chainID, knownSymbols(chainID))
		}
		addr = want.Address
	}
	code, err := c.node.CodeAt(ctx, addr, nil)
	if err != nil {
		return Token{}, fmt.Errorf("token %s: read code: %w", addr.Hex(), err)
	}
	if len(code) == 0 {
		return Token{}, fmt.Errorf("%w: no contract at %s on chain %s (wrong network or address?)", ErrUnknownToken, addr.Hex(), chainID)
	}
	t := Token{Address: addr}
	var dec uint8
	if err := c.call(ctx, addr, &dec, "decimals"); err != nil {
		return Token{}, fmt.Errorf("%w: %s does not answer decimals() (is it an ERC-20 token?): %w", ErrUnknownToken, addr.Hex(), err)
	}
	if dec > maxDecimals {
		return Token{}, fmt.Errorf("%w: %s reports %d decimals", ErrUnknownToken, addr.Hex(), dec)
	}
	t.Decimals = dec
	t.Symbol, err = c.stringCall(ctx, addr, "symbol")
	if err != nil {
		return Token{}, fmt.Errorf("%w: %s does not answer symbol(): %w", ErrUnknownToken, addr.Hex(), err)
	}
	t.Name, _ = c.stringCall(ctx, addr, "name") // optional in EIP-20
	if want != nil {
		if want.Decimals != t.Decimals {
			return Token{}, fmt.Errorf("%w: %s at %s reports %d decimals, the built-in list says %d: refusing to guess amounts", ErrUnknownToken, want.Symbol, addr.Hex(), t.Decimals, want.Decimals)
		}
		if t.Symbol == "" {
			t.Symbol = want.Symbol
		}
	}
	return t, nil
}

func knownSymbols(chainID *big.Int) string {
	var s []string
	for _, t := range KnownTokens(chainID) {
		s = append(s, t.Symbol)
	}
	if len(s) == 0 {
		return "it has no built-in tokens"
	}
	return "built-in: " + strings.Join(s, ", ")
}

// TokenBalance returns holder's balance in base units.
func (c *Client) TokenBalance(ctx context.Context, token common.Address, holder common.Address) (*big.Int, error) {
	var v *big.Int
	if err := c.call(ctx, token, &v, "balanceOf", holder); err != nil {
		return nil, fmt.Errorf("token %s: balanceOf: %w", token.Hex(), err)
	}
	return v, nil
}

// call makes an eth_call of an ERC-20 view method and unpacks its single result into out.
func (c *Client) call(ctx context.Context, to common.Address, out any, method string, args ...any) error {
	data, err := erc20.Pack(method, args...)
	if err != nil {
		return err
	}
	res, err := c.node.CallContract(ctx, ethereum.CallMsg{To: &to, Data: data}, nil)
	if err != nil {
		return err
	}
	if len(res) == 0 {
		return errors.New("empty answer")
	}
	vals, err := erc20.Unpack(method, res)
	if err != nil {
		return err
	}
	if len(vals) != 1 {
		return fmt.Errorf("%d results", len(vals))
	}
	return abiCopy(out, vals[0])
}

func abiCopy(out, v any) error {
	switch o := out.(type) {
	case *uint8:
		x, ok := v.(uint8)
		if !ok {
			return fmt.Errorf("unexpected %T", v)
		}
		*o = x
	case **big.Int:
		x, ok := v.(*big.Int)
		if !ok {
			return fmt.Errorf("unexpected %T", v)
		}
		*o = x
	default:
		return fmt.Errorf("unsupported output %T", out)
	}
	return nil
}

// stringCall reads a string view (symbol, name); some old tokens return bytes32 instead.
func (c *Client) stringCall(ctx context.Context, to common.Address, method string) (string, error) {
	data, err := erc20.Pack(method)
	if err != nil {
		return "", err
	}
	res, err := c.node.CallContract(ctx, ethereum.CallMsg{To: &to, Data: data}, nil)
	if err != nil {
		return "", err
	}
	if len(res) == 32 {
		return printable(strings.TrimRight(string(res), "\x00")), nil
	}
	vals, err := erc20.Unpack(method, res)
	if err != nil {
		return "", err
	}
	s, _ := vals[0].(string)
	return printable(s), nil
}

// printable keeps what a contract says about itself safe to show: printable runes only,
// at most 32 of them.
func printable(s string) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == 32 {
			b.WriteRune('…')
			break
		}
		if unicode.IsPrint(r) {
			b.WriteRune(r)
			n++
		}
	}
	return b.String()
}
