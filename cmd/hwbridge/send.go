package main

// The sends (btc send, eth send, eth token-transfer) take one path in each mode, both through
// the journal so that a request id pays at most once: in daemon mode the daemon's v1BtcSend /
// v1EthSend (a preview first, unless --yes, then the send bound to what was shown); in direct
// mode daemon.RunBTCSend / RunETHSend with the device in-process and the data directory's
// journal (locked against a running hwbridged). The use cases are chains/bitcoin.Send and
// chains/ethereum.Send.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/hwbridge/hwbridge/chains/bitcoin"
	"github.com/hwbridge/hwbridge/chains/ethereum"
	"github.com/hwbridge/hwbridge/daemon"
	"github.com/hwbridge/hwbridge/daemon/journal"
	"github.com/hwbridge/hwbridge/device"
)

// sendFlags are the flags every journaled send takes.
type sendFlags struct {
	requestID string
	yes       bool
}

func (f *sendFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.requestID, "request-id", "", "id of this payment (default: a new one, printed): run the command again with the same id after a timeout or error, and it is paid at most once")
	fs.BoolVar(&f.yes, "yes", false, "do not ask for confirmation on this computer (the device still asks)")
}

// requestID returns --request-id, or a new one, and says it on stderr.
func (e *env) requestID(f *sendFlags) (string, error) {
	id := f.requestID
	if id == "" {
		b := make([]byte, 8)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		id = "cli-" + hex.EncodeToString(b)
	}
	fmt.Fprintf(e.stderr, "hwbridge: request id %s (if this send times out or fails, retry with --request-id %s: it is paid at most once)\n", id, id)
	return id, nil
}

// ask shows lines and asks the person unless yes.
func (e *env) confirmSend(lines []string, yes bool) error {
	fmt.Fprintln(e.stderr, "hwbridge: about to sign and broadcast:")
	for _, l := range lines {
		fmt.Fprintln(e.stderr, "  "+l)
	}
	if yes {
		return nil
	}
	fmt.Fprint(e.stderr, "send it? [y/N] ")
	line, rerr := bufio.NewReader(e.stdin).ReadString('\n')
	ans := strings.ToLower(strings.TrimSpace(line))
	if ans == "y" || ans == "yes" {
		return nil
	}
	if rerr != nil && ans == "" {
		return fmt.Errorf("%w: no answer on stdin (pass --yes to send without asking)", bitcoin.ErrNotConfirmed)
	}
	return bitcoin.ErrNotConfirmed
}

// sendClient is the daemon client in daemon mode, nil in direct mode.
func (e *env) sendClient(ctx context.Context) (*daemon.Client, error) {
	sock, err := e.daemonSocket()
	if err != nil || sock == "" {
		return nil, err
	}
	return e.daemonClient(ctx, sock, e.dataDir(""))
}

// openJournal opens the data directory's journal for a direct-mode send.
func (e *env) openJournal() (*journal.Journal, error) {
	j, err := daemon.OpenJournal(e.dataDir(""))
	if err != nil {
		return nil, err
	}
	e.opened = append(e.opened, j)
	return j, nil
}

func (e *env) selector() string {
	if e.device != "" {
		return e.device
	}
	return strings.TrimSpace(e.getenv("HWBRIDGE_DEVICE"))
}

// inputErr turns a refused order (device.ErrInvalidInput, not from a device) into a usage
// error (exit 2).
func inputErr(err error) error {
	var de *device.Error
	if errors.Is(err, device.ErrInvalidInput) && !errors.As(err, &de) {
		return &usageError{err.Error()}
	}
	return err
}

func (e *env) note(s string) { fmt.Fprintln(e.stderr, "hwbridge: "+s) }

func btcLines(r *bitcoin.SendResult) []string {
	lines := strings.Split(strings.TrimRight(r.Transaction.Text(), "\n"), "\n")
	for i, l := range lines {
		if l == "status: incomplete" { // a preview: nothing is signed before you confirm
			lines[i] = "status: not signed yet (the device signs once you confirm)"
		}
	}
	return lines
}

// sendBTC runs a Bitcoin payment in the mode that applies.
func (e *env) sendBTC(ctx context.Context, p daemon.BtcSendParams, yes bool) (*daemon.BtcSendResult, error) {
	if p.ImportPSBT == "" {
		if err := p.SendOrder.Check(); err != nil {
			return nil, inputErr(err)
		}
	}
	c, err := e.sendClient(ctx)
	if err != nil {
		return nil, err
	}
	if c != nil && (p.ExportPSBT || p.ImportPSBT != "") { // nothing to confirm here: an export signs nothing, an import was confirmed on the signer
		var res daemon.BtcSendResult
		if err := c.Call(ctx, "v1BtcSend", p, &res); err != nil {
			return nil, inputErr(err)
		}
		return &res, nil
	}
	if c != nil {
		return daemonSend(ctx, e, c, "v1BtcSend", p, yes,
			func(p daemon.BtcSendParams) daemon.BtcSendParams { p.Preview, p.RequestID = true, ""; return p },
			func(r *daemon.BtcSendResult) []string { return btcLines(&r.SendResult) },
			func(p daemon.BtcSendParams, r *daemon.BtcSendResult) daemon.BtcSendParams {
				p.PlanID = r.PlanID
				return p
			})
	}
	j, err := e.sendJournal()
	if err != nil {
		return nil, err
	}
	hooks := bitcoin.Hooks{Note: e.note, Show: func(_ context.Context, r *bitcoin.SendResult) error { return e.confirmSend(btcLines(r), yes) }}
	if p.ImportPSBT != "" || p.WalletExport != "" { // signatures in hand, or keys from a wallet export: no device is opened
		h := bitcoin.Hooks{Note: e.note}
		if p.WalletExport != "" {
			h.Show = exportShow(e)
		}
		res, err := daemon.RunBTCSend(ctx, j, daemon.CLIAppID, p, nil, nil, h)
		e.recordSend("btc send", daemon.BTCSendSummary(p, res, err), err)
		return res, inputErr(err)
	}
	if p.ExportPSBT {
		hooks.Show = exportShow(e)
	}
	dev, err := e.open(ctx)
	if err != nil {
		return nil, err
	}
	res, err := daemon.RunBTCSend(device.WithAppSwitch(ctx), j, daemon.CLIAppID, p, dev, dev, hooks)
	e.recordSend("btc send", daemon.BTCSendSummary(p, res, err), err)
	return res, inputErr(err)
}

// sendETH runs an Ethereum transfer in the mode that applies.
func (e *env) sendETH(ctx context.Context, p daemon.EthSendParams, yes bool) (*daemon.EthSendResult, error) {
	if err := p.SendOrder.Check(); err != nil {
		return nil, inputErr(err)
	}
	if p.RPC == "" {
		return nil, usagef("%s: --rpc URL is required (the node to build against and broadcast to)", e.cmd.name)
	}
	c, err := e.sendClient(ctx)
	if err != nil {
		return nil, err
	}
	if c != nil {
		return daemonSend(ctx, e, c, "v1EthSend", p, yes,
			func(p daemon.EthSendParams) daemon.EthSendParams { p.Preview, p.RequestID = true, ""; return p },
			func(r *daemon.EthSendResult) []string { return r.Summary.Lines() },
			func(p daemon.EthSendParams, r *daemon.EthSendResult) daemon.EthSendParams {
				cap := r.Summary.MaxFeeGwei
				if cap == "" {
					cap = r.Summary.GasPriceGwei
				}
				p.Confirm = &ethereum.Confirmation{PlanID: r.PlanID, FeeCap: cap}
				return p
			})
	}
	j, err := e.sendJournal()
	if err != nil {
		return nil, err
	}
	cl, err := e.dialETH(ctx, p.RPC)
	if err != nil {
		return nil, err
	}
	dev, err := e.open(ctx)
	if err != nil {
		return nil, err
	}
	hooks := ethereum.Hooks{Note: e.note, Show: func(_ context.Context, r *ethereum.SendResult) error { return e.confirmSend(r.Summary.Lines(), yes) }}
	res, err := daemon.RunETHSend(device.WithAppSwitch(ctx), j, daemon.CLIAppID, p, cl, dev, hooks)
	e.recordSend("eth send", daemon.ETHSendSummary(p, res, err), err)
	return res, inputErr(err)
}

// exportShow prints a payment about to be exported unsigned (nothing to confirm: nothing is
// signed).
func exportShow(e *env) func(context.Context, *bitcoin.SendResult) error {
	return func(_ context.Context, r *bitcoin.SendResult) error {
		fmt.Fprintln(e.stderr, "hwbridge: exporting, unsigned:")
		for _, l := range btcLines(r) {
			fmt.Fprintln(e.stderr, "  "+l)
		}
		return nil
	}
}

// daemonSend is a send through hwbridged: unless yes, a preview (nothing signed) is shown and
// confirmed first, and the send is bound to the plan shown (bind).
func daemonSend[P, R any](ctx context.Context, e *env, c *daemon.Client, method string, p P, yes bool,
	preview func(P) P, lines func(*R) []string, bind func(P, *R) P) (*R, error) {
	if !yes {
		var prev R
		if err := c.Call(ctx, method, preview(p), &prev); err != nil {
			return nil, inputErr(err)
		}
		if err := e.confirmSend(lines(&prev), false); err != nil {
			return nil, err
		}
		p = bind(p, &prev)
	}
	var res R
	if err := c.Call(ctx, method, p, &res); err != nil {
		return nil, inputErr(err)
	}
	return &res, nil
}

// sendJournal opens the request journal for a send in direct mode; a lost journal refuses.
func (e *env) sendJournal() (*journal.Journal, error) {
	j, err := e.openJournal()
	if err != nil {
		return nil, err
	}
	if err := j.Lost(); err != nil {
		return nil, err // e.opened closes it
	}
	return j, nil
}

// recordSend writes a direct-mode send to the audit log, as hwbridged does for its own; a
// failure to do so is said, not fatal (the payment, if any, is made and journaled).
func (e *env) recordSend(method, summary string, err error) {
	if aerr := daemon.RecordDirectSend(e.dataDir(""), method, summary, err); aerr != nil {
		fmt.Fprintf(e.stderr, "hwbridge: warning: the send was not written to the audit log: %v\n", aerr)
	}
}
