package daemon

// The journaled sends: v1BtcSend and v1EthSend, and the same runs for the CLI in direct mode
// (RunBTCSend, RunETHSend with the device in-process and the data directory's journal). The
// use cases are chains/bitcoin.Send and chains/ethereum.Send; this file only routes them
// through the journal, so that a request id pays at most once whichever path a retry takes.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/hwbridge/hwbridge/chains/bitcoin"
	"github.com/hwbridge/hwbridge/chains/ethereum"
	"github.com/hwbridge/hwbridge/daemon/audit"
	"github.com/hwbridge/hwbridge/daemon/journal"
	"github.com/hwbridge/hwbridge/daemon/keys"
	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// errPreview stops a send after it was built and shown: nothing is signed or journaled.
var errPreview = errors.New("preview only")

// BtcSendParams is a payment to build, sign and broadcast once (v1BtcSend).
type BtcSendParams struct {
	RequestID string `json:"request_id,omitempty"` // a retry with the same id never signs or pays twice
	Device    string `json:"device,omitempty"`
	// Preview builds and describes the payment only: nothing is signed, sent or journaled,
	// and no request id is needed. Send it again with order.plan_id set to the preview's
	// plan_id to sign exactly what was shown.
	Preview bool `json:"preview,omitempty"`
	// ExportPSBT builds and checks the payment and stops: nothing is signed; the result's psbt
	// is the unsigned PSBT for an air-gapped signer (a Coldcard's microSD card), journaled
	// under the request id (a retry returns the same PSBT).
	ExportPSBT bool `json:"export_psbt,omitempty"`
	// ImportPSBT finishes the payment exported under the same request id with what the
	// signer gave back: the signed or finalized PSBT (base64, hex or binary BIP-174), or the
	// final network transaction (hex, or binary carried as base64; a Coldcard's
	// <name>-final.txn): it must be the exported transaction,
	// every signature is verified, and it is broadcast once. The order needs only its chain
	// (rpc or esplora); the rest is the exported one.
	ImportPSBT string `json:"import_psbt,omitempty"`
	// WalletExport, with ExportPSBT, is a Coldcard's Generic JSON wallet export or a QR
	// signer's UR account export (ur:crypto-account, crypto-hdkey or crypto-output parts, one
	// a line): the payment is built from its xpubs and no device is asked (a watch-only
	// wallet of an air-gapped signer).
	WalletExport string `json:"wallet_export,omitempty"`
	bitcoin.SendOrder
}

// BtcSendResult is a broadcast payment (or, with Preview, the payment built).
type BtcSendResult struct {
	RequestID string `json:"request_id,omitempty"`
	bitcoin.SendResult
	Preview bool `json:"preview,omitempty"`
	// PSBT is the unsigned PSBT of an export, base64 (nothing was signed or sent).
	PSBT string `json:"psbt,omitempty"`
	// Replayed: the recorded result of an earlier run with this request id (nothing was
	// signed or sent this time); Resumed: the signed transaction of an interrupted run was
	// broadcast again.
	Replayed bool `json:"replayed,omitempty"`
	Resumed  bool `json:"resumed,omitempty"`
}

// ErrExported: a request id whose payment was exported as a PSBT is finished only by
// importing the signed PSBT.
var ErrExported = errors.New("this request id was exported as an unsigned PSBT: finish it with --import-psbt FILE (import_psbt) and the same request id, or use a new request id")

// exportKey is the journal key of a request's PSBT export; the import runs under JournalKey.
func exportKey(appID, requestID string) string { return JournalKey(appID, requestID) + "#export-psbt" }

// exportRecord is what the journal keeps of an export for its import.
type exportRecord struct {
	bitcoin.Exported
	Order bitcoin.SendOrder `json:"order"` // without credentials
}

// EthSendParams is an ETH or ERC-20 transfer to build, sign and broadcast once (v1EthSend).
type EthSendParams struct {
	RequestID string `json:"request_id,omitempty"`
	Device    string `json:"device,omitempty"`
	Preview   bool   `json:"preview,omitempty"` // as BtcSendParams.Preview (confirm with order.confirm)
	ethereum.SendOrder
}

// EthSendResult is a broadcast transfer (or, with Preview, the transfer built).
type EthSendResult struct {
	RequestID string `json:"request_id,omitempty"`
	ethereum.SendResult
	Preview  bool `json:"preview,omitempty"`
	Replayed bool `json:"replayed,omitempty"`
	Resumed  bool `json:"resumed,omitempty"`
}

// JournalKey is the journal key of an app's request id (the CLI's app id is CLIAppID in both
// modes, so its retries meet the same record).
func JournalKey(appID, requestID string) string { return appID + "/" + requestID }

// RunBTCSend runs p for app appID: a preview, or the journaled send (bitcoin.Send).
func RunBTCSend(ctx context.Context, j *journal.Journal, appID string, p BtcSendParams, keys bitcoin.KeySource, signer bitcoin.Signer, hooks bitcoin.Hooks) (*BtcSendResult, error) {
	switch {
	case p.ImportPSBT != "" && (p.ExportPSBT || p.Preview):
		return nil, fmt.Errorf("%w: import_psbt finishes an export: give it alone, with the export's request id", device.ErrInvalidInput)
	case p.ImportPSBT != "":
		return runBTCImport(ctx, j, appID, p, hooks)
	case p.ExportPSBT && p.Preview:
		return nil, fmt.Errorf("%w: export_psbt already signs nothing: drop preview", device.ErrInvalidInput)
	case p.WalletExport != "" && !p.ExportPSBT:
		return nil, fmt.Errorf("%w: a wallet export holds no keys to sign with: give it with export_psbt", device.ErrInvalidInput)
	case p.WalletExport != "":
		ex, label, err := bitcoin.ParseWalletExport([]byte(p.WalletExport))
		if err != nil {
			return nil, err
		}
		keys, p.Device, p.WalletExport = ex, label, ""
	}
	if err := p.SendOrder.Check(); err != nil {
		return nil, err
	}
	if p.Preview {
		var shown *bitcoin.SendResult
		hooks.Show = func(_ context.Context, r *bitcoin.SendResult) error { shown = r; return errPreview }
		if _, err := bitcoin.Send(ctx, p.SendOrder, keys, signer, hooks, nil); !errors.Is(err, errPreview) {
			return nil, err
		}
		return &BtcSendResult{SendResult: *shown, Preview: true}, nil
	}
	if err := needRequestID(p.RequestID); err != nil {
		return nil, err
	}
	if p.ExportPSBT {
		return runBTCExport(ctx, j, appID, p, keys, hooks)
	}
	if _, exported := j.Result(exportKey(appID, p.RequestID)); exported {
		return nil, ErrExported
	}
	identity := struct {
		Device string
		Order  bitcoin.SendOrder
	}{p.Device, p.SendOrder.Identity()}
	res := &BtcSendResult{RequestID: p.RequestID}
	outcome, err := journal.Do(ctx, j, JournalKey(appID, p.RequestID), identity,
		func(ctx context.Context, resume json.RawMessage, checkpoint func(json.RawMessage) error) (*bitcoin.SendResult, error) {
			h := hooks
			h.Checkpoint = checkpoint
			return bitcoin.Send(ctx, p.SendOrder, keys, signer, h, resume)
		}, &res.SendResult)
	res.Replayed, res.Resumed = outcome == journal.Replayed, outcome == journal.Resumed
	if err != nil {
		return nil, err
	}
	return res, nil
}

// runBTCExport builds p's payment and journals it, unsigned, under exportKey: a retry with
// the same request id and order answers the same PSBT.
func runBTCExport(ctx context.Context, j *journal.Journal, appID string, p BtcSendParams, keys bitcoin.KeySource, hooks bitcoin.Hooks) (*BtcSendResult, error) {
	identity := struct {
		Device string
		Order  bitcoin.SendOrder
		Export bool
	}{p.Device, p.SendOrder.Identity(), true}
	var rec exportRecord
	outcome, err := journal.Do(ctx, j, exportKey(appID, p.RequestID), identity,
		func(ctx context.Context, _ json.RawMessage, _ func(json.RawMessage) error) (*exportRecord, error) {
			ex, err := bitcoin.Export(ctx, p.SendOrder, keys, hooks)
			if err != nil {
				return nil, err
			}
			return &exportRecord{Exported: *ex, Order: p.SendOrder.Identity()}, nil
		}, &rec)
	if err != nil {
		return nil, err
	}
	return &BtcSendResult{RequestID: p.RequestID, SendResult: rec.SendResult, PSBT: rec.PSBT, Replayed: outcome == journal.Replayed}, nil
}

// runBTCImport finishes the export journaled for p's request id with the signed PSBT, under
// the request's own journal key, bound to the exported plan: it pays at most once.
func runBTCImport(ctx context.Context, j *journal.Journal, appID string, p BtcSendParams, hooks bitcoin.Hooks) (*BtcSendResult, error) {
	if err := needRequestID(p.RequestID); err != nil {
		return nil, err
	}
	if err := j.Lost(); err != nil {
		return nil, err
	}
	raw, ok := j.Result(exportKey(appID, p.RequestID))
	if !ok {
		return nil, fmt.Errorf("%w: request id %q has no exported PSBT: export it first (btc send --export-psbt FILE --request-id %s)", device.ErrInvalidInput, p.RequestID, p.RequestID)
	}
	var rec exportRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("the journaled export of request %q: %w", p.RequestID, err)
	}
	signed, err := bitcoin.DecodeSigned([]byte(p.ImportPSBT))
	if err != nil {
		return nil, fmt.Errorf("import_psbt: %w", err)
	}
	if signed.PlanID() != rec.PlanID { // also on a retry: a replay answers only the exported transaction
		return nil, bitcoin.ErrNotExported
	}
	order := rec.Order
	if p.RPC != "" || p.Esplora != "" {
		order.RPC, order.Esplora = p.RPC, p.Esplora
	}
	identity := struct{ ImportPlan string }{rec.PlanID}
	res := &BtcSendResult{RequestID: p.RequestID}
	outcome, err := journal.Do(ctx, j, JournalKey(appID, p.RequestID), identity,
		func(ctx context.Context, resume json.RawMessage, checkpoint func(json.RawMessage) error) (*bitcoin.SendResult, error) {
			h := hooks
			h.Checkpoint = checkpoint
			return bitcoin.Import(ctx, order, &rec.Exported, signed, h, resume)
		}, &res.SendResult)
	res.Replayed, res.Resumed = outcome == journal.Replayed, outcome == journal.Resumed
	if err != nil {
		return nil, err
	}
	return res, nil
}

// RunETHSend runs p for app appID against the node behind c: a preview, or the journaled
// send (ethereum.Send).
func RunETHSend(ctx context.Context, j *journal.Journal, appID string, p EthSendParams, c *ethereum.Client, signer ethereum.Signer, hooks ethereum.Hooks) (*EthSendResult, error) {
	if err := p.SendOrder.Check(); err != nil {
		return nil, err
	}
	if p.Preview {
		var shown *ethereum.SendResult
		hooks.Show = func(_ context.Context, r *ethereum.SendResult) error { shown = r; return errPreview }
		if _, err := ethereum.Send(ctx, c, p.SendOrder, signer, hooks, nil); !errors.Is(err, errPreview) {
			return nil, err
		}
		return &EthSendResult{SendResult: *shown, Preview: true}, nil
	}
	if err := needRequestID(p.RequestID); err != nil {
		return nil, err
	}
	identity := struct {
		Device string
		Order  ethereum.SendOrder
	}{p.Device, p.SendOrder.Identity()}
	res := &EthSendResult{RequestID: p.RequestID}
	outcome, err := journal.Do(ctx, j, JournalKey(appID, p.RequestID), identity,
		func(ctx context.Context, resume json.RawMessage, checkpoint func(json.RawMessage) error) (*ethereum.SendResult, error) {
			h := hooks
			h.Checkpoint = checkpoint
			r, err := ethereum.Send(ctx, c, p.SendOrder, signer, h, resume)
			if r != nil && err != nil {
				return nil, err // a receipt that did not come or reverted: the journal keeps the checkpoint
			}
			return r, err
		}, &res.SendResult)
	res.Replayed, res.Resumed = outcome == journal.Replayed, outcome == journal.Resumed
	if err != nil {
		return nil, err
	}
	return res, nil
}

func needRequestID(id string) error {
	if id == "" || len(id) > journal.MaxKey-64 {
		return fmt.Errorf("%w: request_id is required (1 to %d bytes, any unique string; reuse it to retry safely)", device.ErrInvalidInput, journal.MaxKey-64)
	}
	return nil
}

// OpenJournal opens the request journal of a data directory as hwbridged does; the CLI in
// direct mode opens it the same way (and fails with journal.ErrLocked while hwbridged runs).
func OpenJournal(dataDir string) (*journal.Journal, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	return journal.Open(filepath.Join(dataDir, JournalFile), journal.Options{
		EncodeError: encodeJournalError, DecodeError: decodeJournalError, OtherState: OtherState(dataDir)})
}

// OtherState reports whether dataDir holds state only a used journal sits beside: an audit
// log with records, or paired apps.
func OtherState(dataDir string) func() bool {
	return func() bool {
		// The audit log's head and sealed segments count too: right after a segment is
		// sealed the active audit.jsonl can be empty.
		for _, f := range []string{AuditFile, AppsFile, audit.HeadPath(AuditFile)} {
			if fi, err := os.Stat(filepath.Join(dataDir, f)); err == nil && fi.Size() > 0 {
				return true
			}
		}
		segs, _ := filepath.Glob(filepath.Join(dataDir, AuditFile+".[0-9]*"))
		return len(segs) > 0
	}
}

// hubDevice is a device served through the hub's queue, one operation at a time: what the
// send pipelines sign with inside the daemon.
type hubDevice struct {
	c    *call
	path string
}

func (h hubDevice) Fingerprint(ctx context.Context) (device.Fingerprint, error) {
	return h.c.d.cfg.Hub.Fingerprint(ctx, h.path)
}

func (h hubDevice) XPub(ctx context.Context, req device.XPubRequest) (string, error) {
	return h.c.d.cfg.Hub.XPub(ctx, h.path, h.c.label(), req)
}

func (h hubDevice) SignPSBT(ctx context.Context, p *psbt.Packet, net *chaincfg.Params) error {
	return h.c.do(ctx, h.path, func(ctx context.Context, d device.Device) error { return h.c.d.signPSBT(ctx, d, p, net) })
}

func (h hubDevice) Address(ctx context.Context, req device.AddressRequest) (a string, err error) {
	err = h.c.do(ctx, h.path, func(ctx context.Context, d device.Device) error { a, err = d.Address(ctx, req); return err })
	return a, err
}

func (h hubDevice) SignEthTx(ctx context.Context, path hdpath.Path, tx *types.Transaction, chainID *big.Int) (s *types.Transaction, err error) {
	err = h.c.do(ctx, h.path, func(ctx context.Context, d device.Device) error {
		s, err = d.SignEthTx(ctx, path, tx, chainID)
		return err
	})
	return s, err
}

func (h hubDevice) SignMessage(ctx context.Context, req device.MessageRequest) (s device.MessageSignature, err error) {
	err = h.c.do(ctx, h.path, func(ctx context.Context, d device.Device) error { s, err = d.SignMessage(ctx, req); return err })
	return s, err
}

func (h hubDevice) SignTypedHash(ctx context.Context, path hdpath.Path, dom [32]byte, msg []byte) (s []byte, err error) {
	err = h.c.do(ctx, h.path, func(ctx context.Context, d device.Device) error {
		s, err = d.SignTypedHash(ctx, path, dom, msg)
		return err
	})
	return s, err
}

// SignTypedData gives the device the whole document where it takes one (device.SignTypedData).
func (h hubDevice) SignTypedData(ctx context.Context, path hdpath.Path, td *device.TypedData) (s []byte, err error) {
	err = h.c.do(ctx, h.path, func(ctx context.Context, d device.Device) error {
		s, err = device.SignTypedData(ctx, d, path, td)
		return err
	})
	return s, err
}

// V1BtcSend builds a payment from the device's account (watch-only scan of the backend),
// signs it on the device, checks it and broadcasts it, once per request id.
func (a *API) V1BtcSend(ctx context.Context, auth keys.Auth, raw json.RawMessage) (*BtcSendResult, error) {
	ctx, done := a.d.conns.bind(ctx)
	defer done()
	var p BtcSendParams
	c, err := a.d.begin(ctx, "v1BtcSend", auth, raw, &p)
	if err != nil {
		return nil, toRPC(err)
	}
	res, err := func() (*BtcSendResult, error) {
		if err := c.chain(device.ChainBTC); err != nil {
			return nil, err
		}
		if err := a.d.sendable(p.Preview); err != nil {
			return nil, err
		}
		if p.ImportPSBT != "" || p.WalletExport != "" { // signatures in hand, or keys from a wallet export: no device is asked
			return RunBTCSend(ctx, a.d.journal, c.app.ID, p, nil, nil, bitcoin.Hooks{Note: c.note})
		}
		dev, err := c.device(ctx, p.Device)
		if err != nil {
			return nil, err
		}
		hd := hubDevice{c, dev}
		return RunBTCSend(device.WithAppSwitch(ctx), a.d.journal, c.app.ID, p, hd, hd, bitcoin.Hooks{Note: c.note})
	}()
	summary := BTCSendSummary(p, res, err)
	if err := c.finish(summary, err); err != nil {
		return nil, err
	}
	return res, nil
}

// V1EthSend builds, signs and broadcasts an ETH or ERC-20 transfer, once per request id.
func (a *API) V1EthSend(ctx context.Context, auth keys.Auth, raw json.RawMessage) (*EthSendResult, error) {
	ctx, done := a.d.conns.bind(ctx)
	defer done()
	var p EthSendParams
	c, err := a.d.begin(ctx, "v1EthSend", auth, raw, &p)
	if err != nil {
		return nil, toRPC(err)
	}
	res, err := func() (*EthSendResult, error) {
		if err := c.chain(device.ChainETH); err != nil {
			return nil, err
		}
		if err := a.d.sendable(p.Preview); err != nil {
			return nil, err
		}
		cl, err := a.d.chains.ethClient(ctx, p.RPC)
		if err != nil {
			return nil, err
		}
		dev, err := c.device(ctx, p.Device)
		if err != nil {
			return nil, err
		}
		return RunETHSend(device.WithAppSwitch(ctx), a.d.journal, c.app.ID, p, cl, hubDevice{c, dev}, ethereum.Hooks{Note: c.note})
	}()
	summary := ETHSendSummary(p, res, err)
	if err := c.finish(summary, err); err != nil {
		return nil, err
	}
	return res, nil
}

// sendable refuses a send (not a preview) at once while the journal is lost, before any
// device or node is looked for: the answer does not depend on what is attached.
func (d *Daemon) sendable(preview bool) error {
	if preview {
		return nil
	}
	return d.journal.Lost()
}

// The audit summaries of sends, the same in hwbridged and in the CLI's direct mode; they
// start with "btc send request ID" or "eth send request ID" (ID quoted), which PriorSends
// reads back after a journal loss.
const (
	btcSendPrefix = "btc send request "
	ethSendPrefix = "eth send request "
	previewMark   = ": preview, plan "
)

// BTCSendSummary is the audit summary of a Bitcoin send and its outcome.
func BTCSendSummary(p BtcSendParams, res *BtcSendResult, err error) string {
	s := fmt.Sprintf("%s%q %s BTC to %s (%s account %d, fee rate %q) via %s%s", btcSendPrefix, p.RequestID, p.Amount, p.To,
		p.Type, p.Account, p.FeeRate, ethereum.RedactURL(p.RPC), p.Esplora)
	if p.ImportPSBT != "" {
		s = fmt.Sprintf("%s%q import of the signed PSBT exported under this id, via %s%s", btcSendPrefix, p.RequestID, ethereum.RedactURL(p.RPC), p.Esplora)
	}
	switch {
	case err != nil:
	case res.Preview:
		s += previewMark + res.PlanID + " (nothing signed)"
	case p.ExportPSBT:
		s += ": exported unsigned, plan " + res.PlanID + " (nothing signed or sent)"
	case res.Replayed:
		s += ": answered from the journal (nothing signed or sent): txid " + res.TxID
	case p.ImportPSBT != "":
		s += fmt.Sprintf(": plan %s: txid %s fee %d sat", res.PlanID, res.TxID, res.Fee)
	default:
		s += fmt.Sprintf(": txid %s fee %d sat", res.TxID, res.Fee)
	}
	return s
}

// ETHSendSummary is the audit summary of an Ethereum send and its outcome.
func ETHSendSummary(p EthSendParams, res *EthSendResult, err error) string {
	s := fmt.Sprintf("%s%q to %s value %s token %s amount %s via %s", ethSendPrefix, p.RequestID, p.To, p.Value, p.Token, p.Amount, ethereum.RedactURL(p.RPC))
	switch {
	case err != nil:
	case res.Preview:
		s += previewMark + res.PlanID + " (nothing signed)"
	case res.Replayed:
		s += ": answered from the journal (nothing signed or sent): tx " + res.Hash
	default:
		s += fmt.Sprintf(": tx %s nonce %d from %s", res.Hash, res.Nonce, res.From)
	}
	return s
}

// RecordDirectSend appends the audit record of a send the CLI ran in direct mode, as
// hwbridged records its own, so that a lost journal can be checked against the audit log
// whichever path paid. method is "btc send" or "eth send".
func RecordDirectSend(dataDir, method, summary string, sendErr error) error {
	al, err := audit.Open(filepath.Join(dataDir, AuditFile))
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	result := "ok"
	if sendErr != nil {
		result = "error: " + sendErr.Error()
	}
	_, err = al.Append(audit.Entry{App: CLIAppID, Method: method, Summary: summary, Result: result})
	return errors.Join(err, al.Close())
}

// PriorSends reads the audit log at path for sends made before a journal loss: the journal
// key of each request id that was not a mere preview, with the record as evidence. It reads
// what it can: on a damaged log it returns the sends found before the damage, and the error.
func PriorSends(path string) (map[string]string, error) {
	prior := map[string]string{}
	_, err := audit.VerifyEach(path, func(r audit.Record) error {
		var rest string
		switch {
		case strings.HasPrefix(r.Summary, btcSendPrefix):
			rest = r.Summary[len(btcSendPrefix):]
		case strings.HasPrefix(r.Summary, ethSendPrefix):
			rest = r.Summary[len(ethSendPrefix):]
		default:
			return nil
		}
		q, err := strconv.QuotedPrefix(rest)
		if err != nil || strings.Contains(r.Summary, previewMark) {
			return nil
		}
		id, _ := strconv.Unquote(q)
		ev := fmt.Sprintf("audit record %d at %s: %s; result: %s", r.Seq, r.Time.UTC().Format(time.RFC3339), r.Summary, r.Result)
		if len(ev) > 600 {
			ev = ev[:600] + "…"
		}
		prior[JournalKey(r.App, id)] = ev
		return nil
	})
	return prior, err
}
