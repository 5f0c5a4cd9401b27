package device

import (
	"errors"
	"fmt"
)

// Sentinel errors callers branch on.
var (
	ErrUserRejected   = errors.New("rejected on the device")
	ErrLocked         = errors.New("device is locked: unlock it (PIN/passphrase) and retry")
	ErrDisconnected   = errors.New("device disconnected: reconnect it and retry")
	ErrWrongApp       = errors.New("wrong app open on the device")
	ErrBusy           = errors.New("device is busy with another request: retry when it is done")
	ErrNoDevice       = errors.New("no device found: connect and unlock a device, or name one with --device")
	ErrSeveralDevices = errors.New("several devices are attached: name one with --device (hwbridge devices lists them)")
	ErrBadSignature   = errors.New("device returned a signature that does not verify: nothing was used")
	ErrInvalidInput   = errors.New("invalid request")
	ErrProtocol       = errors.New("device protocol error")
	// ErrLinkLost: the device stopped answering in the middle of an exchange while no
	// confirmation was pending on it (a lost or garbled packet or frame). The driver
	// re-synchronises the link before its next exchange, so the next call works: retry.
	ErrLinkLost = errors.New("the device stopped answering while no confirmation was pending on it (a packet was lost on the link): the next call re-syncs the link, retry")
)

// Error is a failure reported by a device, with its raw code kept.
type Error struct {
	Op      string // what the driver was doing, e.g. "sign tx"
	Family  Family
	Code    int    // Trezor FailureType, or Ledger status word
	Message string // the device's own text, if any
	Kind    error  // one of the sentinels above, or nil
}

func (e *Error) Error() string {
	var s string
	switch e.Family {
	case FamilyLedger:
		s = fmt.Sprintf("%s: %s: status 0x%04X", e.Family, e.Op, e.Code)
	case FamilyColdcard: // its errors are text only
		s = fmt.Sprintf("%s: %s", e.Family, e.Op)
	default:
		s = fmt.Sprintf("%s: %s: failure %d", e.Family, e.Op, e.Code)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Kind != nil {
		s += " (" + e.Kind.Error() + ")"
	}
	return s
}

// Unwrap lets errors.Is see the sentinel.
func (e *Error) Unwrap() error { return e.Kind }
