// Package device defines what hwbridge asks of a hardware wallet, whatever its family: the
// Device interface, the requests and results it carries, and the error taxonomy that runs
// from a device's own failure codes to the CLI's exit codes and the daemon's JSON-RPC errors.
//
// Drivers live in device/trezor and device/ledger; callers never switch on the family.
// Optional capabilities are reported in Features.Capabilities.
//
// # Errors
//
// Callers branch with errors.Is on ErrUserRejected (the user said no on the device),
// ErrLocked (PIN or passphrase needed), ErrDisconnected (the link went away mid-exchange),
// ErrLinkLost (the device stopped answering while no confirmation was pending: a lost packet;
// the driver re-syncs the link before the next call, so a retry works),
// ErrWrongApp (a Ledger runs another app), ErrBusy (another exchange holds the device),
// ErrNoDevice (nothing to talk to) and ErrBadSignature (the device returned a signature that
// does not verify). Capabilities a device lacks wrap errors.ErrUnsupported. A *Error keeps
// the raw Trezor FailureType or Ledger status word.
package device
