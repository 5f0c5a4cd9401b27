package daemon

import "path/filepath"

// Default places (design.md "hwbridged (the daemon)"). getenv is os.Getenv in production.

// File names inside the data directory.
const (
	AuditFile   = "audit.jsonl"   // the hash-chained audit log (daemon/audit)
	JournalFile = "journal.jsonl" // the request journal (daemon/journal)
	AppsFile    = "apps.json"     // paired apps and key hashes (daemon/keys)
	CLIKeyFile  = "cli.key"       // the local CLI's own app key (admin), mode 0600
	LockFile    = "hwbridged.lock"
)

// DefaultDataDir is ~/.hwbridge.
func DefaultDataDir(getenv func(string) string) string {
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".hwbridge")
	}
	return ".hwbridge"
}

// DefaultSocket is $HWBRIDGE_SOCKET, else $XDG_RUNTIME_DIR/hwbridge/hwbridged.sock, else
// ~/.hwbridge/hwbridged.sock: hwbridged and the CLI agree on it.
func DefaultSocket(getenv func(string) string) string {
	if s := getenv("HWBRIDGE_SOCKET"); s != "" {
		return s
	}
	if d := getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "hwbridge", "hwbridged.sock")
	}
	return filepath.Join(DefaultDataDir(getenv), "hwbridged.sock")
}
