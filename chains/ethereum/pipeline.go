package ethereum

// The send use case, once for every caller (the CLI in direct mode, hwbridged's v1EthSend,
// which the CLI calls in daemon mode): order → build → show → sign → verify → checkpoint →
// broadcast → receipt. Callers decode, authorize and route; the journal (run at most once
// per request id) wraps Send through its resume and checkpoint arguments.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/hwbridge/hwbridge/device"
)

// Pipeline errors callers branch on.
var (
	// ErrPlanChanged: the transaction built now is not the one the person saw in the preview.
	ErrPlanChanged = errors.New("the transaction changed since the preview (nonce, gas or a higher fee): nothing was signed; review it again")
	// ErrNotConfirmed: the person said no on this computer; nothing was signed.
	ErrNotConfirmed = errors.New("not sent: you did not confirm")
)

// MaxReceiptWait caps how long a send waits for its receipt.
const MaxReceiptWait = time.Hour

// SendOrder is an ETH or ERC-20 transfer as a person types it or an app sends it (the
// v1EthSend params): text, parsed here once, so that the CLI and the daemon accept and refuse
// the same.
type SendOrder struct {
	RPC   string `json:"rpc"`             // the node's JSON-RPC URL
	Index uint32 `json:"index,omitempty"` // account m/44'/60'/0'/0/index
	To    string `json:"to"`
	Value string `json:"value,omitempty"` // ETH, decimal (ETH transfers)
	// Token is an ERC-20 contract address, or a known symbol (USDC, USDT on mainnet); Amount
	// is then in the token's units.
	Token   string `json:"token,omitempty"`
	Amount  string `json:"amount,omitempty"`
	ChainID string `json:"chain_id,omitempty"` // refuse unless the node is on this chain
	// Fee overrides, gwei (decimal); empty suggests. GasPrice makes a legacy transaction.
	GasLimit    uint64 `json:"gas_limit,omitempty"`
	MaxFee      string `json:"max_fee_gwei,omitempty"`
	PriorityFee string `json:"priority_fee_gwei,omitempty"`
	GasPrice    string `json:"gas_price_gwei,omitempty"`
	// ReceiptTimeout is how long to wait for the receipt, in seconds (0: do not wait).
	ReceiptTimeout int64 `json:"receipt_timeout_seconds,omitempty"`
	// Confirm, when set, is what the person saw in a preview: anything else is refused
	// before signing (ErrPlanChanged). It is not part of the request's identity.
	Confirm *Confirmation `json:"confirm,omitempty"`
}

// Confirmation ties a send to its preview.
type Confirmation struct {
	PlanID string `json:"plan_id"`      // SendResult.PlanID of the preview
	FeeCap string `json:"fee_cap_gwei"` // the most per gas the preview showed
}

// Identity is the order without its confirmation: what a request id stands for.
func (o SendOrder) Identity() SendOrder {
	o.Confirm = nil
	return o
}

type ethParsed struct {
	to       string
	value    *big.Int
	chainID  *big.Int
	fees     FeeOptions
	wait     time.Duration
	feeCap   *big.Int
	isToken  bool
	pathIdx  uint32
	tokenAmt string
}

func (o SendOrder) parse() (*ethParsed, error) {
	p := &ethParsed{pathIdx: o.Index, isToken: o.Token != "", tokenAmt: o.Amount}
	if _, err := DerivationPath(o.Index); err != nil {
		return nil, err
	}
	if _, err := ParseAddress(o.To); err != nil {
		return nil, fmt.Errorf("%w: to: %w", device.ErrInvalidInput, err)
	}
	p.to = o.To
	var err error
	switch {
	case p.isToken && o.Value != "":
		return nil, fmt.Errorf("%w: a token transfer carries no ETH value: give amount, not value", device.ErrInvalidInput)
	case p.isToken && o.Amount == "":
		return nil, fmt.Errorf("%w: amount is required (token units, e.g. 12.5)", device.ErrInvalidInput)
	case !p.isToken && o.Amount != "":
		return nil, fmt.Errorf("%w: amount is for token transfers: give value (ETH) or name the token", device.ErrInvalidInput)
	case !p.isToken:
		if o.Value == "" {
			return nil, fmt.Errorf("%w: value is required (ETH, e.g. 0.25)", device.ErrInvalidInput)
		}
		if p.value, err = ParseEther(o.Value); err != nil {
			return nil, fmt.Errorf("%w: value: %w", device.ErrInvalidInput, err)
		}
	}
	if o.ChainID != "" {
		if p.chainID, err = ParseChainID(o.ChainID); err != nil {
			return nil, fmt.Errorf("%w: %w", device.ErrInvalidInput, err)
		}
	}
	p.fees.GasLimit = o.GasLimit
	for _, f := range []struct {
		name, val string
		dst       **big.Int
	}{{"max fee", o.MaxFee, &p.fees.MaxFeePerGas}, {"priority fee", o.PriorityFee, &p.fees.MaxPriorityFeePerGas}, {"gas price", o.GasPrice, &p.fees.GasPrice}} {
		if f.val == "" {
			continue
		}
		if *f.dst, err = ParseGwei(f.val); err != nil {
			return nil, fmt.Errorf("%w: %s (gwei): %w", device.ErrInvalidInput, f.name, err)
		}
	}
	if o.ReceiptTimeout < 0 || time.Duration(o.ReceiptTimeout) > MaxReceiptWait/time.Second {
		return nil, fmt.Errorf("%w: receipt timeout %d s: give 0 to %d", device.ErrInvalidInput, o.ReceiptTimeout, int64(MaxReceiptWait/time.Second))
	}
	p.wait = time.Duration(o.ReceiptTimeout) * time.Second
	if c := o.Confirm; c != nil {
		if p.feeCap, err = ParseGwei(c.FeeCap); err != nil {
			return nil, fmt.Errorf("%w: confirm fee cap: %w", device.ErrInvalidInput, err)
		}
	}
	return p, nil
}

// Check parses the order without touching a node or a device.
func (o SendOrder) Check() error {
	_, err := o.parse()
	return err
}

// Hooks are the caller's parts of a send.
type Hooks struct {
	// Show gets the built transaction before anything is signed (print it, ask the person);
	// an error stops the send with nothing signed.
	Show func(ctx context.Context, r *SendResult) error
	// Checkpoint durably records the signed transaction before it is broadcast (a journal).
	Checkpoint func(data json.RawMessage) error
	// Note reports progress worth telling (broadcast, waiting for the receipt).
	Note func(string)
}

func (h Hooks) note(s string) {
	if h.Note != nil {
		h.Note(s)
	}
}

// SendResult is a transfer built (a preview) or sent.
type SendResult struct {
	Hash    string  `json:"hash,omitempty"`
	From    string  `json:"from"`
	Nonce   uint64  `json:"nonce"`
	Summary Summary `json:"transaction"`
	PlanID  string  `json:"plan_id"`
	// Set once the receipt came (ReceiptTimeout > 0).
	Block   uint64 `json:"block,omitempty"`
	Status  string `json:"status,omitempty"` // "ok", "reverted" or "pending" (no receipt within the wait)
	GasUsed uint64 `json:"gas_used,omitempty"`
	// Raw is the signed transaction (set once signed).
	Raw hexutil.Bytes `json:"raw,omitempty"`
}

// Send runs order against the node behind c: with resume (the checkpoint of an earlier run of
// the same request) it broadcasts that signed transaction again and never signs; otherwise it
// opens the account on signer, prepares the transfer, shows it, has it signed, checks the
// recovered sender, checkpoints, broadcasts and waits for the receipt.
func Send(ctx context.Context, c *Client, order SendOrder, signer Signer, hooks Hooks, resume json.RawMessage) (*SendResult, error) {
	p, err := order.parse()
	if err != nil {
		return nil, err
	}
	if resume != nil {
		return c.rebroadcast(ctx, resume, p.wait, hooks)
	}
	if _, err := c.CheckChain(ctx, p.chainID); err != nil {
		return nil, err
	}
	path, _ := DerivationPath(p.pathIdx)
	acct, err := OpenAccount(ctx, signer, path)
	if err != nil {
		return nil, err
	}
	to, _ := ParseAddress(p.to)
	var prep *Prepared
	if p.isToken {
		tok, err := c.ResolveToken(ctx, order.Token)
		if errors.Is(err, ErrInvalidAddress) {
			return nil, fmt.Errorf("%w: token: %w", device.ErrInvalidInput, err)
		}
		if err != nil {
			return nil, err
		}
		amount, err := ParseUnits(p.tokenAmt, tok.Decimals)
		if err != nil {
			return nil, fmt.Errorf("%w: amount: %w (%s has %d decimals)", device.ErrInvalidInput, err, tok.Symbol, tok.Decimals)
		}
		prep, err = c.PrepareTokenTransfer(ctx, TokenTransfer{From: acct.Address, Token: tok, To: to, Amount: amount, ChainID: p.chainID, Fees: p.fees})
		if err != nil {
			return nil, err
		}
	} else {
		prep, err = c.Prepare(ctx, TxRequest{From: acct.Address, To: to, Value: p.value, ChainID: p.chainID, Fees: p.fees})
		if err != nil {
			return nil, err
		}
	}
	defer prep.Release() // gives the nonce back unless the transaction was broadcast
	res := &SendResult{From: acct.Address.Hex(), Nonce: prep.Tx.Nonce(), Summary: prep.Summary(), PlanID: PlanID(prep)}
	if cf := order.Confirm; cf != nil && (!strings.EqualFold(cf.PlanID, res.PlanID) || prep.Fees.PerGas().Cmp(p.feeCap) > 0) {
		return nil, ErrPlanChanged
	}
	if hooks.Show != nil {
		if err := hooks.Show(ctx, res); err != nil {
			return nil, err
		}
	}
	signCtx := ctx
	if prep.Token != nil {
		signCtx = device.WithToken(ctx, device.Token{ChainID: prep.ChainID, Contract: prep.Token.Address, Symbol: prep.Token.Symbol, Decimals: prep.Token.Decimals})
	}
	signed, err := acct.SignTx(signCtx, prep)
	if err != nil {
		return nil, err
	}
	if res.Raw, err = signed.MarshalBinary(); err != nil {
		return nil, err
	}
	res.Hash = signed.Hash().Hex()
	if hooks.Checkpoint != nil {
		cp, err := json.Marshal(res)
		if err != nil {
			return nil, err
		}
		if err := hooks.Checkpoint(cp); err != nil {
			return nil, fmt.Errorf("journal the signed transaction (nothing was sent): %w", err)
		}
	}
	if _, err := c.Broadcast(ctx, prep, signed); err != nil {
		if hooks.Checkpoint != nil {
			return nil, fmt.Errorf("%w (the signed transaction %s is journaled: retry with the same request id to broadcast it again; nothing new is signed)", err, res.Hash)
		}
		return nil, err
	}
	return c.receipt(ctx, res, p.wait, hooks)
}

// PlanID names what a preview showed: chain, sender, nonce, recipient, value, data and gas
// limit (not the fee, which moves with every block; a confirmation caps it instead).
func PlanID(p *Prepared) string {
	tx := p.Tx
	h := sha256.New()
	fmt.Fprintf(h, "%s|%s|%d|%s|%s|%x|%d", p.ChainID, p.From.Hex(), tx.Nonce(), tx.To().Hex(), tx.Value(), tx.Data(), tx.Gas())
	return hex.EncodeToString(h.Sum(nil))
}

// rebroadcast resumes a journaled send with the same signed transaction.
func (c *Client) rebroadcast(ctx context.Context, resume json.RawMessage, wait time.Duration, hooks Hooks) (*SendResult, error) {
	var res SendResult
	if err := json.Unmarshal(resume, &res); err != nil || len(res.Raw) == 0 {
		return nil, fmt.Errorf("the journal's checkpoint for this request does not hold a signed transaction: %v", err)
	}
	tx := new(types.Transaction)
	if err := tx.UnmarshalBinary(res.Raw); err != nil {
		return nil, fmt.Errorf("the journal's signed transaction does not decode: %w", err)
	}
	hooks.note("broadcasting the journaled transaction " + tx.Hash().Hex() + " again (nothing new is signed)")
	if _, err := c.Broadcast(ctx, nil, tx); err != nil {
		return nil, fmt.Errorf("%w (the signed transaction %s stays journaled: retry with the same request id)", err, tx.Hash().Hex())
	}
	res.Hash = tx.Hash().Hex()
	return c.receipt(ctx, &res, wait, hooks)
}

// receipt waits up to wait for the transaction's receipt and records it in res.
func (c *Client) receipt(ctx context.Context, res *SendResult, wait time.Duration, hooks Hooks) (*SendResult, error) {
	if wait <= 0 {
		return res, nil
	}
	hooks.note("broadcast " + res.Hash + "; waiting for the receipt")
	h := common.HexToHash(res.Hash)
	r, err := c.WaitReceipt(ctx, h, WaitOptions{Timeout: wait, Progress: func(p Progress) {
		if p.State == "pending" {
			hooks.note("in the node's pool, not mined yet")
		}
	}})
	switch {
	case r == nil && errors.Is(err, ErrReceiptTimeout):
		res.Status = "pending"
		return res, fmt.Errorf("%w after %s: %s was broadcast and may still be mined (retry with the same request id to look again)", err, wait, res.Hash)
	case r == nil:
		return res, err
	}
	res.Block, res.GasUsed, res.Status = r.BlockNumber.Uint64(), r.GasUsed, "ok"
	if r.Status != types.ReceiptStatusSuccessful {
		res.Status = "reverted"
		return res, err
	}
	return res, nil
}
