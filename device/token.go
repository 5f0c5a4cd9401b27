package device

import (
	"context"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
)

type tokenKey struct{}

// Token is the ERC-20 token a transaction calls, as the host resolved it from the contract
// (symbol and decimals) and the chain it is built for. A driver may use it to describe the
// token to the device; the device's own trust rules still decide what it shows.
type Token struct {
	ChainID  *big.Int
	Contract common.Address
	Symbol   string
	Decimals uint8
}

// WithToken returns a context whose signing calls know the token the transaction calls
// (the hub and wrappers pass the context on).
func WithToken(ctx context.Context, t Token) context.Context {
	return context.WithValue(ctx, tokenKey{}, t)
}

// TokenFrom returns the token WithToken put in ctx.
func TokenFrom(ctx context.Context) (Token, bool) {
	t, ok := ctx.Value(tokenKey{}).(Token)
	return t, ok
}
