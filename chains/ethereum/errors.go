package ethereum

import (
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"

	"github.com/hwbridge/hwbridge/device"
)

// Errors callers branch on (see the package documentation).
var (
	ErrInvalidAddress    = errors.New("invalid ethereum address")
	ErrInvalidAmount     = errors.New("invalid amount")
	ErrTooManyDecimals   = errors.New("amount has more decimal places than the token")
	ErrUnknownToken      = errors.New("unknown token")
	ErrWrongChain        = errors.New("wrong chain")
	ErrInsufficientFunds = errors.New("insufficient funds")
	ErrWouldRevert       = errors.New("the transaction would revert")
	ErrReverted          = errors.New("transaction reverted on chain")
	ErrSenderMismatch    = fmt.Errorf("signature does not recover to the device's address: %w", device.ErrBadSignature)
	ErrReceiptTimeout    = errors.New("no receipt yet")
)

// RevertError is a mined transaction whose receipt has status 0.
type RevertError struct {
	Hash    common.Hash
	Block   uint64
	GasUsed uint64
	Reason  string // the revert reason replayed with eth_call, if the node gave one
}

func (e *RevertError) Error() string {
	s := fmt.Sprintf("transaction %s reverted in block %d (gas used %d)", e.Hash.Hex(), e.Block, e.GasUsed)
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s + "; the fee was paid, the transfer did not happen"
}

// Is makes errors.Is(err, ErrReverted) hold.
func (e *RevertError) Is(target error) bool { return target == ErrReverted }
