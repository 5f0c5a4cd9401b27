// Package hwi answers the command-line contract Bitcoin Core's -signer runs (Bitcoin Core
// src/external_signer.cpp, doc/external-signer.md), as HWI implements it (bitcoin-core/HWI
// hwilib/_cli.py, commands.py): global flags before the command, one line of JSON on
// stdout, errors as {"error": MSG, "code": N} with HWI's codes and exit status 0 (Core
// reads only the first stdout line and treats a non-zero exit as a failure that hides the
// message), usage errors as *UsageError (exit status 2).
//
//	hwbridge hwi [--fingerprint FP] [--chain main|test|testnet4|signet|regtest] [--stdin] COMMAND
//	  enumerate
//	  getmasterxpub [--addr-type legacy|sh_wit|wit|tap] [--account N]
//	  getxpub PATH
//	  signmessage MESSAGE PATH
//	  getkeypool [--keypool|--nokeypool] [--internal] [--addr-type T|--all] [--account N] [--path P] START END
//	  getdescriptors [--account N]
//	  displayaddress (--desc DESC | --path P [--addr-type T] | --registration R --index N [--multipath-index N|--change])
//	  registerdescriptor NAME DESCRIPTOR
//	  signtx PSBT
//	  promptpin | sendpin PIN | togglepassphrase | installudevrules
//
// Descriptors are parsed by chains/bitcoin (ParseDescriptor) and networks named by its
// table (CoreChain); this package holds only HWI's argument forms, JSON shapes and codes.
// The caller (cmd/hwbridge) decides how devices are found and opened: directly, or through
// hwbridged, which also keeps what HWI cannot (registered Ledger policies, a Trezor
// passphrase session).
package hwi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/transport"
)

// HWI's error codes (hwilib/errors.py).
const (
	CodeNoDeviceType         = -1
	CodeMissingArguments     = -2
	CodeDeviceConnError      = -3
	CodeUnknownDeviceType    = -4
	CodeInvalidTx            = -5
	CodeNoPassword           = -6
	CodeBadArgument          = -7
	CodeNotImplemented       = -8
	CodeUnavailableAction    = -9
	CodeDeviceAlreadyInit    = -10
	CodeDeviceAlreadyUnlock  = -11
	CodeDeviceNotReady       = -12
	CodeUnknownError         = -13
	CodeActionCanceled       = -14
	CodeDeviceBusy           = -15
	CodeNeedToBeRoot         = -16
	CodeHelpText             = -17
	CodeDeviceNotInitialized = -18
)

// codedError is an error with an HWI code.
type codedError struct {
	code int
	msg  string
}

func (e *codedError) Error() string { return e.msg }

func errorf(code int, format string, args ...any) *codedError {
	return &codedError{code: code, msg: fmt.Sprintf(format, args...)}
}

// UsageError is a command line HWI's argparse refuses (exit status 2); its JSON answer has
// been printed already.
type UsageError struct{ Msg string }

func (u *UsageError) Error() string { return u.Msg }

func isNoDevice(err error) bool {
	return errors.Is(err, device.ErrNoDevice) || errors.Is(err, transport.ErrNoDevice)
}

// Code maps an error onto HWI's codes through the device error taxonomy.
func Code(err error) int {
	var he *codedError
	switch {
	case errors.As(err, &he):
		return he.code
	case errors.Is(err, device.ErrUserRejected):
		return CodeActionCanceled
	case errors.Is(err, device.ErrBusy):
		return CodeDeviceBusy
	case errors.Is(err, device.ErrLocked), errors.Is(err, device.ErrWrongApp):
		return CodeDeviceNotReady
	case isNoDevice(err), errors.Is(err, device.ErrDisconnected), errors.Is(err, device.ErrLinkLost):
		return CodeDeviceConnError
	case errors.Is(err, device.ErrInvalidInput):
		return CodeBadArgument
	case errors.Is(err, errors.ErrUnsupported):
		return CodeUnavailableAction
	}
	return CodeUnknownError
}

// HWI's fixed emulator addresses, which --emulators probes (hwilib/devices/trezor.py's
// UdpTransport default, ledger.py's SIMULATOR_PATH and coldcard.py's CC_SIMULATOR_SOCK, the
// Coldcard simulator's socket: transport.DefaultColdcardSimulator).
const (
	TrezorEmulatorPath   = "udp:127.0.0.1:21324"
	LedgerEmulatorPath   = "tcp:127.0.0.1:9999"
	ColdcardEmulatorPath = "unix:/tmp/ckcc-simulator.sock"
)

// Candidate is a device enumerate reports and --fingerprint searches.
type Candidate struct {
	Path  string
	Model string // the transport's model ("nanosp", "trezor1"), or ""
	probe bool   // an emulator address tried for --emulators: left out when nothing answers
}

// Signer runs one HWI command line.
type Signer struct {
	Out  io.Writer // the one line of JSON
	Warn io.Writer // stderr: notes that are not part of the JSON answer (nil: dropped)
	// Candidates lists the devices enumerate reports and --fingerprint searches.
	Candidates func(ctx context.Context) ([]Candidate, error)
	// Open opens a device path.
	Open func(ctx context.Context, path string) (device.Device, error)
	// Unlock, when set, gives an opened device the passphrase of -p/--password for a
	// session that outlives this call (hwbridged keeps it). Without it the passphrase
	// serves this call only, as with HWI.
	Unlock func(ctx context.Context, d device.Device, passphrase string) error

	net         *chaincfg.Params
	fingerprint string // lower-case hex, or ""
	path        string // --device-path / --device, or ""
	emulators   bool   // --emulators: also probe HWI's fixed emulator addresses
	passphrase  *string
}

func parseFingerprint(s string) (device.Fingerprint, bool) {
	if len(s) != 8 {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 16, 32)
	return device.Fingerprint(v), err == nil
}
