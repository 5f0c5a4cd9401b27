// Package erc20 embeds the compiled test token (TestToken.sol, 6 decimals; see README.md for
// how TestToken.bin and TestToken.abi were made) so that tests deploy it without npm.
package erc20

import (
	_ "embed"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
)

//go:embed TestToken.bin
var binHex string

//go:embed TestToken.abi
var abiJSON string

// Decimals is the token's decimals() value.
const Decimals = 6

// ABI returns the token's parsed ABI.
func ABI() (abi.ABI, error) {
	a, err := abi.JSON(strings.NewReader(abiJSON))
	if err != nil {
		return abi.ABI{}, fmt.Errorf("erc20: abi: %w", err)
	}
	return a, nil
}

// Bytecode returns the creation bytecode without constructor arguments.
func Bytecode() ([]byte, error) {
	b, err := hex.DecodeString(strings.TrimSpace(binHex))
	if err != nil {
		return nil, fmt.Errorf("erc20: bytecode: %w", err)
	}
	return b, nil
}

// DeployData returns the contract-creation input: the bytecode followed by the ABI-encoded
// constructor arguments (name, symbol, supply in base units, holder of the supply).
func DeployData(name, symbol string, supply *big.Int, holder common.Address) ([]byte, error) {
	a, err := ABI()
	if err != nil {
		return nil, err
	}
	code, err := Bytecode()
	if err != nil {
		return nil, err
	}
	args, err := a.Pack("", name, symbol, supply, holder)
	if err != nil {
		return nil, fmt.Errorf("erc20: constructor arguments: %w", err)
	}
	return append(code, args...), nil
}
