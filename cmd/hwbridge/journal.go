package main

// hwbridge journal check | accept-loss: the request journal that makes a request id pay at
// most once (daemon/journal). A journal that no longer matches its head refuses every send;
// these commands let a person see what is known and start again once they have checked the
// chain.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/hwbridge/hwbridge/daemon"
	"github.com/hwbridge/hwbridge/daemon/audit"
	"github.com/hwbridge/hwbridge/daemon/journal"
)

var errJournalLost = errors.New("the request journal was lost")

func journalPath(e *env, dataDir string) (string, string) {
	dir := e.dataDir(dataDir)
	return dir, filepath.Join(dir, daemon.JournalFile)
}

func runJournalCheck(ctx context.Context, e *env, args []string) error {
	fs := e.flagSet("journal check")
	dataDir := fs.String("data-dir", "", "data directory (default $HWBRIDGE_DATA_DIR or ~/.hwbridge)")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	dir, path := journalPath(e, *dataDir)
	r, err := journal.Check(path, daemon.OtherState(dir))
	if err != nil {
		return err
	}
	lines := []string{fmt.Sprintf("journal: %s, %d lines", path, r.Lines)}
	if r.Loss != nil {
		lines = append(lines, fmt.Sprintf("a loss was accepted on %s: %s", r.Loss.Accepted.Format("2006-01-02 15:04:05Z"), r.Loss.Reason))
	}
	for _, k := range r.Unfinished {
		lines = append(lines, "not done (check it on the chain): "+k)
	}
	if r.OK {
		return e.print(r, append(lines, "ok: the journal matches its head")...)
	}
	lines = append(lines, "lost: "+r.Lost,
		"Before you accept the loss, check on the chain (your wallet's history, a block explorer)",
		"which payments of the lost requests went out; retrying their request ids afterwards would pay again.",
		"Then run: hwbridge journal accept-loss --reason \"what you checked\"")
	if err := e.print(r, lines...); err != nil {
		return err
	}
	return errJournalLost
}

func runJournalAcceptLoss(ctx context.Context, e *env, args []string) error {
	fs := e.flagSet("journal accept-loss")
	dataDir := fs.String("data-dir", "", "data directory (default $HWBRIDGE_DATA_DIR or ~/.hwbridge)")
	reason := fs.String("reason", "", "what you checked on the chain (kept in the journal and the audit log)")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if strings.TrimSpace(*reason) == "" {
		return usagef("journal accept-loss needs --reason \"what you checked\" (kept in the journal and the audit log)")
	}
	dir, path := journalPath(e, *dataDir)
	auditPath := filepath.Join(dir, daemon.AuditFile)
	prior, perr := daemon.PriorSends(auditPath)
	if perr != nil {
		fmt.Fprintf(e.stderr, "hwbridge: warning: the audit log could not be read to the end (%v): only the %d sends recorded before that point are refused from now on\n", perr, len(prior))
	}
	lr, err := journal.AcceptLoss(path, *reason, daemon.OtherState(dir), prior)
	if err != nil {
		return err
	}
	summary := fmt.Sprintf("request journal loss accepted: %s (%d readable lines kept, %d earlier request ids from the audit log refused", *reason, lr.Found, len(lr.Prior))
	if lr.MovedTo != "" {
		summary += ", damaged file kept at " + lr.MovedTo
	}
	summary += ")"
	al, err := audit.Open(auditPath)
	if err != nil {
		return fmt.Errorf("the loss was accepted, but the audit log could not record it: %w", err)
	}
	defer al.Close()
	if _, err := al.Append(audit.Entry{App: daemon.CLIAppID, Method: "journal accept-loss", Summary: summary, Result: "ok"}); err != nil {
		return fmt.Errorf("the loss was accepted, but the audit log could not record it: %w", err)
	}
	return e.print(lr, "ok: "+summary)
}
