package bitcoin

// PSBT files: the send pipeline split in two around an air-gapped signer (a Coldcard reading
// a microSD card). Export runs order → build → show and stops with the unsigned PSBT; Import
// takes the signed PSBT back, refuses anything but the transaction exported, checks every
// signature as for a device's (psbt.Check, then finalize and btcd's script engine), and
// goes on to checkpoint → broadcast → confirm.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/wire"

	hwpsbt "github.com/hwbridge/hwbridge/psbt"
)

// ErrNotExported: the PSBT given back is not the transaction that was exported for this
// request (other outputs, other coins, another transaction); nothing was broadcast.
var ErrNotExported = errors.New("this PSBT is not the transaction exported for this request (its outputs or inputs differ): nothing was broadcast; sign the file written by --export-psbt, unchanged")

// Exported is a payment built and checked but not signed: the PSBT for the signer and what
// the import checks the signed PSBT against.
type Exported struct {
	SendResult
	// PSBT is the unsigned PSBT, base64 (BIP-174).
	PSBT string `json:"psbt"`
	// Descriptor is the account the coins and the change belong to (public keys only).
	Descriptor string `json:"descriptor"`
	// Payments are the outputs the person asked for.
	Payments []hwpsbt.Payment `json:"payments"`
}

// Export builds order's payment from keys' account, shows it (hooks.Show) and returns it
// unsigned; nothing is signed, checkpointed or broadcast.
func Export(ctx context.Context, order SendOrder, keys KeySource, hooks Hooks) (*Exported, error) {
	p, err := order.parse()
	if err != nil {
		return nil, err
	}
	w, plan, err := build(ctx, order, p, keys, hooks)
	if err != nil {
		return nil, err
	}
	res, err := w.show(ctx, plan, hooks)
	if err != nil {
		return nil, err
	}
	b64, err := hwpsbt.EncodeBase64(plan.PSBT)
	if err != nil {
		return nil, err
	}
	return &Exported{SendResult: *res, PSBT: b64, Descriptor: w.Desc.String(), Payments: plan.Expect.Payments}, nil
}

// Import finishes an exported payment with signed, what the signer gave back (DecodeSigned:
// a partially signed PSBT, a finalized PSBT or the final network transaction): with resume
// (the checkpoint of an earlier import of the same request) it broadcasts that transaction
// again if needed; otherwise it refuses anything whose unsigned transaction is not exp's
// (ErrNotExported), puts the signatures on the exported PSBT (whose recorded prevouts and
// derivations the checks use, whatever the signer's file claims), checks the inputs,
// outputs, fee and every signature against exp, runs every input's final script through
// btcd's script engine with the recorded prevouts, checkpoints the transaction and
// broadcasts it. order names the chain (its rpc or esplora URL and network).
func Import(ctx context.Context, order SendOrder, exp *Exported, signed *Signed, hooks Hooks, resume json.RawMessage) (*SendResult, error) {
	p, err := order.parse()
	if err != nil {
		return nil, err
	}
	if resume != nil {
		return rebroadcast(ctx, p.backend, resume, hooks)
	}
	tx, desc, err := CheckImport(exp, signed)
	if err != nil {
		return nil, err
	}
	w := &Wallet{Desc: desc, Net: p.net, Backend: p.backend}
	res := exp.SendResult
	return w.broadcastSigned(ctx, tx, &res, hooks)
}

// CheckImport is Import's checks without a chain: the verified network transaction signed
// gives for exp, and exp's account.
func CheckImport(exp *Exported, signed *Signed) (*wire.MsgTx, *Descriptor, error) {
	unsigned, err := hwpsbt.Decode([]byte(exp.PSBT))
	if err != nil {
		return nil, nil, fmt.Errorf("the exported PSBT of this request: %w", err)
	}
	merged, err := signed.asPSBT(unsigned)
	if err != nil {
		return nil, nil, err
	}
	desc, err := ParseDescriptor(exp.Descriptor)
	if err != nil {
		return nil, nil, fmt.Errorf("the exported account of this request: %w", err)
	}
	inputs := make([]wire.OutPoint, len(unsigned.UnsignedTx.TxIn))
	for i, in := range unsigned.UnsignedTx.TxIn {
		inputs[i] = in.PreviousOutPoint
	}
	tx, err := FinalizeChecked(merged, hwpsbt.Expect{Inputs: inputs, Payments: exp.Payments, Fee: exp.Fee, Owner: desc})
	if err != nil {
		return nil, nil, err
	}
	if signed.Tx != nil && !sameTx(tx, signed.Tx) {
		return nil, nil, fmt.Errorf("refusing to broadcast: %w: the checked transaction differs from the one given", hwpsbt.ErrMismatch)
	}
	return tx, desc, nil
}
