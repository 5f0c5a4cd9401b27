package bitcoin

// The send use case, once for every caller (the CLI in direct mode, hwbridged's v1BtcSend,
// which the CLI calls in daemon mode): order → build → show → sign → verify → checkpoint →
// broadcast → confirm. Callers decode, authorize and route; the journal (run at most once per
// request id) wraps Send through its resume and checkpoint arguments.

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	hwpsbt "github.com/hwbridge/hwbridge/psbt"
)

// Pipeline errors callers branch on.
var (
	// ErrPlanChanged: the transaction built now is not the one the person saw in the preview.
	ErrPlanChanged = errors.New("the transaction changed since the preview (new coins, fees or change): nothing was signed; review it again")
	// ErrNotConfirmed: the person said no on this computer; nothing was signed.
	ErrNotConfirmed = errors.New("not sent: you did not confirm")
)

// DefaultFeeTarget is the confirmation target, in blocks, of the backend's fee estimate.
const DefaultFeeTarget = 6

// SendOrder is a payment as a person types it or an app sends it (the v1BtcSend params):
// text, parsed here once, so that the CLI and the daemon accept and refuse the same.
type SendOrder struct {
	// The chain: a node's JSON-RPC URL (http://user:pass@host:port) or an Esplora base URL.
	RPC     string `json:"rpc,omitempty"`
	Esplora string `json:"esplora,omitempty"`
	Network string `json:"network,omitempty"` // mainnet (default), testnet, signet, regtest
	// The account: script type wpkh (default), tr, sh-wpkh, pkh; BIP-44/49/84/86 account.
	Type    string `json:"type,omitempty"`
	Account uint32 `json:"account,omitempty"`
	Gap     int    `json:"gap,omitempty"` // gap limit of the scan (0: DefaultGap)

	To     string `json:"to"`
	Amount string `json:"amount"` // BTC, decimal
	// FeeRate in sat/vB; empty asks the backend for FeeTarget blocks (regtest without an
	// estimate: 1 sat/vB).
	FeeRate   string `json:"fee_rate,omitempty"`
	FeeTarget int    `json:"fee_target,omitempty"`
	MaxFee    string `json:"max_fee,omitempty"` // BTC; refuse a larger fee (default 0.01) unless Force
	Force     bool   `json:"force,omitempty"`
	// MinConf is the confirmations a coin needs to be spent (nil: 1; 0 allows mempool coins).
	MinConf *int64 `json:"min_conf,omitempty"`
	NoRBF   bool   `json:"no_rbf,omitempty"`
	// PlanID, when set, is the txid of the unsigned transaction the person saw in a preview:
	// anything else is refused before signing (ErrPlanChanged).
	PlanID string `json:"plan_id,omitempty"`
}

// Identity is the order without its plan id: what a request id stands for (a retry shows a
// new preview, whose plan id may differ).
func (o SendOrder) Identity() SendOrder {
	o.PlanID = ""
	o.RPC = withoutCredentials(o.RPC) // a cookie changes at each node start; the node does not
	return o
}

// withoutCredentials is a URL without its user info.
func withoutCredentials(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	u.User = nil
	return u.String()
}

// parsed is an order checked against its network, before any device or node is asked.
type parsed struct {
	net     *chaincfg.Params
	backend Backend
	script  device.ScriptType
	req     SendRequest
	target  int
}

func (o SendOrder) parse() (*parsed, error) {
	net, err := Network(o.Network)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", device.ErrInvalidInput, err)
	}
	p := &parsed{net: net, script: device.ScriptWPKH, target: o.FeeTarget}
	switch {
	case o.RPC != "" && o.Esplora != "":
		return nil, fmt.Errorf("%w: give an rpc or an esplora URL, not both", device.ErrInvalidInput)
	case o.RPC != "":
		if p.backend, err = NewRPC(o.RPC, net); err != nil {
			return nil, fmt.Errorf("%w: rpc: %v", device.ErrInvalidInput, err)
		}
	case o.Esplora != "":
		p.backend = NewEsplora(o.Esplora, net)
	default:
		return nil, fmt.Errorf("%w: name the chain: an rpc URL (http://user:pass@host:port) or an esplora URL", device.ErrInvalidInput)
	}
	if o.Type != "" {
		p.script = device.ScriptType(strings.ToLower(o.Type))
	}
	if _, err := KindOf(p.script); err != nil {
		return nil, fmt.Errorf("%w: type %q: use wpkh, tr, sh-wpkh or pkh", device.ErrInvalidInput, o.Type)
	}
	if o.Account >= hdpath.Hardened {
		return nil, fmt.Errorf("%w: account %d out of range", device.ErrInvalidInput, o.Account)
	}
	if o.Gap < 0 || o.Gap > MaxGap {
		return nil, fmt.Errorf("%w: gap %d: give 1 to %d", device.ErrInvalidInput, o.Gap, MaxGap)
	}
	if o.FeeTarget < 0 || o.FeeTarget > 1008 {
		return nil, fmt.Errorf("%w: fee target %d blocks: give 1 to 1008", device.ErrInvalidInput, o.FeeTarget)
	}
	if p.target == 0 {
		p.target = DefaultFeeTarget
	}
	to, err := DecodeAddress(o.To, net)
	if err != nil {
		return nil, fmt.Errorf("%w: to: %w", device.ErrInvalidInput, err)
	}
	amount, err := ParseBTC(o.Amount)
	if err != nil {
		return nil, fmt.Errorf("%w: amount: %w", device.ErrInvalidInput, err)
	}
	p.req = SendRequest{Payments: []Payment{{Address: to, Amount: int64(amount)}}, Force: o.Force, MinConf: 1, NoRBF: o.NoRBF}
	if o.MinConf != nil {
		if *o.MinConf < 0 || *o.MinConf > 1_000_000 {
			return nil, fmt.Errorf("%w: min_conf %d: give 0 or more", device.ErrInvalidInput, *o.MinConf)
		}
		p.req.MinConf = *o.MinConf
	}
	if o.FeeRate != "" {
		if p.req.FeeRate, err = ParseFeeRate(o.FeeRate); err != nil {
			return nil, fmt.Errorf("%w: fee rate: %w", device.ErrInvalidInput, err)
		}
	}
	if o.MaxFee != "" {
		v, err := ParseBTC(o.MaxFee)
		if err != nil {
			return nil, fmt.Errorf("%w: max fee: %w", device.ErrInvalidInput, err)
		}
		p.req.MaxFee = int64(v)
	}
	return p, nil
}

// Check parses the order without touching a node or a device: what a caller runs before
// asking anything of anyone.
func (o SendOrder) Check() error {
	_, err := o.parse()
	return err
}

// NetParams is the order's network (mainnet when unnamed); an error for an unknown name.
func (o SendOrder) NetParams() (*chaincfg.Params, error) {
	n, err := Network(o.Network)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", device.ErrInvalidInput, err)
	}
	return n, nil
}

// EstimateFeeRate asks the backend for a rate to confirm within target blocks; regtest, where
// nodes have no estimate, falls back to 1 sat/vB (said through note).
func EstimateFeeRate(ctx context.Context, be Backend, net *chaincfg.Params, target int, note func(string)) (FeeRate, error) {
	rate, err := be.FeeRate(ctx, target)
	if errors.Is(err, ErrNoFeeEstimate) && net.Net == chaincfg.RegressionNetParams.Net {
		if note != nil {
			note("the node has no fee estimate; regtest uses 1 sat/vB")
		}
		return SatPerVB(1), nil
	}
	return rate, err
}

// Hooks are the caller's parts of a send.
type Hooks struct {
	// Show gets the built transaction before anything is signed (print it, ask the person);
	// an error stops the send with nothing signed.
	Show func(ctx context.Context, r *SendResult) error
	// Checkpoint durably records the signed transaction (a journal) before it is broadcast;
	// nil keeps nothing. data is what Send needs to resume.
	Checkpoint func(data json.RawMessage) error
	// Note reports a step worth telling (a fallback fee, a rebroadcast).
	Note func(string)
}

func (h Hooks) note(s string) {
	if h.Note != nil {
		h.Note(s)
	}
}

// SendResult is a payment built (a preview) or sent.
type SendResult struct {
	TxID        string          `json:"txid"`
	Fee         int64           `json:"fee_sat"`
	VSize       int64           `json:"vsize"`
	FeeRate     string          `json:"fee_rate"`
	Selection   string          `json:"coin_selection"`
	Change      *ChangeInfo     `json:"change,omitempty"`
	Transaction *hwpsbt.Summary `json:"transaction"`
	// PlanID is the txid of the unsigned transaction (what a preview is confirmed by).
	PlanID string `json:"plan_id"`
	// Confirmations is what the backend reports right after the broadcast (0: in the mempool).
	Confirmations int64 `json:"confirmations"`
	// Raw is the signed transaction, hex (set once signed).
	Raw string `json:"raw,omitempty"`
}

// ChangeInfo is the change output of a payment.
type ChangeInfo struct {
	Output  int    `json:"output"`
	Amount  int64  `json:"amount_sat"`
	Address string `json:"address"`
	Path    string `json:"path"`
}

// Send runs order: with resume (the checkpoint of an earlier run of the same request) it
// broadcasts that signed transaction again, if the backend does not have it, and never signs
// anything; otherwise it builds the payment from keys' account (a watch-only scan of the
// backend), shows it, has signer sign it, checks and finalizes it, checkpoints it, broadcasts
// it and asks the backend for it.
func Send(ctx context.Context, order SendOrder, keys KeySource, signer Signer, hooks Hooks, resume json.RawMessage) (*SendResult, error) {
	p, err := order.parse()
	if err != nil {
		return nil, err
	}
	if resume != nil {
		return rebroadcast(ctx, p.backend, resume, hooks)
	}
	w, plan, err := build(ctx, order, p, keys, hooks)
	if err != nil {
		return nil, err
	}
	return w.Complete(ctx, plan, signer, hooks)
}

// build scans the order's account and builds the payment, bound to order.PlanID if set.
func build(ctx context.Context, order SendOrder, p *parsed, keys KeySource, hooks Hooks) (*Wallet, *Plan, error) {
	var err error
	if p.req.FeeRate == 0 {
		if p.req.FeeRate, err = EstimateFeeRate(ctx, p.backend, p.net, p.target, hooks.Note); err != nil {
			return nil, nil, err
		}
	}
	desc, err := AccountDescriptor(ctx, keys, p.script, p.net, order.Account)
	if err != nil {
		return nil, nil, err
	}
	w := &Wallet{Desc: desc, Net: p.net, Backend: p.backend, Gap: order.Gap}
	st, err := w.Scan(ctx)
	if err != nil {
		return nil, nil, err
	}
	plan, err := w.BuildSend(ctx, st, p.req)
	if err != nil {
		return nil, nil, err
	}
	if order.PlanID != "" && !strings.EqualFold(order.PlanID, plan.PSBT.UnsignedTx.TxHash().String()) {
		return nil, nil, ErrPlanChanged
	}
	return w, plan, nil
}

// show describes plan and hands it to hooks.Show (an error stops the send, nothing signed).
func (w *Wallet) show(ctx context.Context, plan *Plan, hooks Hooks) (*SendResult, error) {
	res, err := w.describe(plan)
	if err != nil {
		return nil, err
	}
	if hooks.Show != nil {
		if err := hooks.Show(ctx, res); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// Complete runs a built plan to the end: show → sign → verify → checkpoint → broadcast →
// confirm (bump-fee enters here with its replacement).
func (w *Wallet) Complete(ctx context.Context, plan *Plan, signer Signer, hooks Hooks) (*SendResult, error) {
	res, err := w.show(ctx, plan, hooks)
	if err != nil {
		return nil, err
	}
	tx, err := w.Sign(ctx, plan, signer)
	if err != nil {
		return nil, err
	}
	return w.broadcastSigned(ctx, tx, res, hooks)
}

// broadcastSigned checkpoints a signed and checked transaction, broadcasts it and asks the
// backend for it.
func (w *Wallet) broadcastSigned(ctx context.Context, tx *wire.MsgTx, res *SendResult, hooks Hooks) (*SendResult, error) {
	var buf bytes.Buffer
	if err := tx.Serialize(&buf); err != nil {
		return nil, err
	}
	res.Raw = hex.EncodeToString(buf.Bytes())
	res.TxID = tx.TxHash().String()
	if hooks.Checkpoint != nil {
		cp, err := json.Marshal(res)
		if err != nil {
			return nil, err
		}
		if err := hooks.Checkpoint(cp); err != nil {
			return nil, fmt.Errorf("journal the signed transaction (nothing was sent): %w", err)
		}
	}
	id, err := w.Backend.Broadcast(ctx, tx)
	if err != nil {
		if hooks.Checkpoint != nil {
			return nil, fmt.Errorf("%w (the signed transaction %s is journaled: retry with the same request id to broadcast it again; nothing new is signed)", err, res.TxID)
		}
		return nil, err
	}
	res.TxID = id.String()
	return confirm(ctx, w.Backend, res)
}

// describe is the preview of a plan: fee, change, the transaction for humans.
func (w *Wallet) describe(plan *Plan) (*SendResult, error) {
	sum, err := hwpsbt.Describe(plan.PSBT, w.Net)
	if err != nil {
		return nil, err
	}
	res := &SendResult{Fee: plan.Fee, VSize: plan.VSize, FeeRate: plan.FeeRate.String(), Selection: plan.Method,
		Transaction: sum, PlanID: plan.PSBT.UnsignedTx.TxHash().String()}
	if c := plan.Change; c != nil {
		s, err := w.Desc.Derive(c.Branch, c.Child)
		if err != nil {
			return nil, err
		}
		res.Change = &ChangeInfo{Output: c.Index, Amount: c.Amount, Address: c.Address, Path: hdpath.Path(s.Keys[0].Path).String()}
	}
	return res, nil
}

// rebroadcast resumes a journaled send: the same signed transaction, sent unless the backend
// already has it.
func rebroadcast(ctx context.Context, be Backend, resume json.RawMessage, hooks Hooks) (*SendResult, error) {
	var res SendResult
	if err := json.Unmarshal(resume, &res); err != nil || res.Raw == "" {
		return nil, fmt.Errorf("the journal's checkpoint for this request does not hold a signed transaction: %v", err)
	}
	tx, err := DecodeTx(res.Raw)
	if err != nil {
		return nil, err
	}
	if _, err := be.Confirmations(ctx, tx.TxHash()); err != nil {
		if !errors.Is(err, ErrTxNotFound) {
			return nil, err
		}
		hooks.note("broadcasting the journaled transaction " + tx.TxHash().String() + " again (nothing new is signed)")
		if _, err := be.Broadcast(ctx, tx); err != nil {
			return nil, fmt.Errorf("%w (the signed transaction %s stays journaled: retry with the same request id)", err, tx.TxHash())
		}
	}
	res.TxID = tx.TxHash().String()
	return confirm(ctx, be, &res)
}

// confirm asks the backend for the transaction just sent: in its mempool or mined.
func confirm(ctx context.Context, be Backend, res *SendResult) (*SendResult, error) {
	id, err := chainhash.NewHashFromStr(res.TxID)
	if err != nil {
		return nil, err
	}
	n, err := be.Confirmations(ctx, *id)
	if err != nil {
		return nil, fmt.Errorf("broadcast %s, but the backend does not report it: %w", res.TxID, err)
	}
	res.Confirmations = n
	return res, nil
}

// DecodeTx reads the hex of a network transaction (witnesses included).
func DecodeTx(s string) (*wire.MsgTx, error) {
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) > MaxTxBytes {
		return nil, fmt.Errorf("%w: give the hex of a transaction (at most %d bytes)", device.ErrInvalidInput, MaxTxBytes)
	}
	tx := wire.NewMsgTx(wire.TxVersion)
	if err := tx.Deserialize(bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("%w: transaction: %v", device.ErrInvalidInput, err)
	}
	return tx, nil
}

// MaxTxBytes is the largest transaction read (a block's weight limit in bytes).
const MaxTxBytes = 4_000_000
