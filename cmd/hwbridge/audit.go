package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/hwbridge/hwbridge/daemon"
	"github.com/hwbridge/hwbridge/daemon/audit"
)

// auditErr marks a log that failed verification (exit 1, with the record named).
var errAuditBad = errors.New("the audit log does not verify: keep the file as evidence")

// runAuditVerify checks hwbridged's hash-chained audit log (design.md: hwbridge audit verify).
func runAuditVerify(ctx context.Context, e *env, args []string) error {
	fs := e.flagSet("audit verify")
	dataDir := fs.String("data-dir", "", "hwbridged's data directory (default $HWBRIDGE_DATA_DIR or ~/.hwbridge)")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	path := filepath.Join(e.dataDir(*dataDir), daemon.AuditFile)
	s, err := audit.Verify(path)
	if err != nil {
		return fmt.Errorf("%w: %w", errAuditBad, err)
	}
	return e.print(map[string]any{"ok": true, "path": path, "records": s.Records, "head": s.Head, "segments": s.Segments},
		fmt.Sprintf("ok: %s: %d records (%d sealed segments), head %s", path, s.Records, s.Segments, s.Head))
}

// dataDir resolves --data-dir: the flag, else $HWBRIDGE_DATA_DIR, else ~/.hwbridge.
func (e *env) dataDir(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if d := e.getenv("HWBRIDGE_DATA_DIR"); d != "" {
		return d
	}
	return daemon.DefaultDataDir(e.getenv)
}
