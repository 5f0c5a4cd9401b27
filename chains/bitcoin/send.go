package bitcoin

import (
	"context"
	"fmt"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	hwpsbt "github.com/hwbridge/hwbridge/psbt"
)

// Signer signs a PSBT in place (device.Device satisfies it; wrap devices with device.Verify).
type Signer interface {
	SignPSBT(ctx context.Context, p *psbt.Packet, net *chaincfg.Params) error
}

// Sign has each signer sign the plan's PSBT, then runs the checks before broadcast
// (psbt.Check against what was requested and computed) and returns the finalized, verified
// network transaction. Nothing is broadcast.
func (w *Wallet) Sign(ctx context.Context, plan *Plan, signers ...Signer) (*wire.MsgTx, error) {
	for i, s := range signers {
		if err := s.SignPSBT(ctx, plan.PSBT, w.Net); err != nil {
			if len(signers) > 1 {
				return nil, fmt.Errorf("signer %d: %w", i+1, err)
			}
			return nil, err
		}
	}
	return FinalizeChecked(plan.PSBT, plan.Expect)
}

// FinalizeChecked runs psbt.Check on a signed PSBT and finalizes and extracts it.
func FinalizeChecked(p *psbt.Packet, exp hwpsbt.Expect) (*wire.MsgTx, error) {
	if err := hwpsbt.Check(p, exp); err != nil {
		return nil, fmt.Errorf("refusing to broadcast: %w", err)
	}
	tx, err := hwpsbt.FinalizeAndExtract(p)
	if err != nil {
		return nil, fmt.Errorf("refusing to broadcast: %w", err)
	}
	return tx, nil
}

// Broadcast submits tx through the wallet's backend.
func (w *Wallet) Broadcast(ctx context.Context, tx *wire.MsgTx) (chainhash.Hash, error) {
	return w.Backend.Broadcast(ctx, tx)
}
