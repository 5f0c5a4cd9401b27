package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hwbridge/hwbridge/chains/bitcoin"
	"github.com/hwbridge/hwbridge/chains/ethereum"
	"github.com/hwbridge/hwbridge/daemon/journal"
	"github.com/hwbridge/hwbridge/daemon/keys"
	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/transport"
)

// JSON-RPC error codes of hwbridged (the server range -32000..-32099). error.data.kind names
// the error precisely; the code groups kinds for clients that read only codes.
const (
	CodeInternal     = -32000
	CodeUnauthorized = -32001 // unknown app, bad key, revoked, expired, not approved, denied
	CodeLogin        = -32002 // the daemon needs the key again (hwbridge_v1Login)
	CodeBadRequest   = -32003 // bad MAC, stale timestamp, replayed nonce, bad auth object
	CodeForbidden    = -32004 // the app's scopes or limits do not allow it
	CodeRejected     = -32010 // the user rejected on the device
	CodeLocked       = -32011
	CodeDisconnected = -32012
	CodeWrongApp     = -32013
	CodeBusy         = -32014
	CodeNoDevice     = -32015
	CodeBadSignature = -32016
	CodeInvalidInput = -32017
	CodeProtocol     = -32018
	CodeUnsupported  = -32019
	CodeRequestID    = -32020 // request id in flight, interrupted, or reused
	CodeCanceled     = -32021 // the request was cancelled or timed out
	CodeLinkLost     = -32022 // a packet was lost on the device link: retry (the link is re-synced)
)

// kinds maps each error kind to its sentinel and code. The order matters: the first match
// wins, so specific kinds come before the general ones they wrap.
var kinds = []struct {
	name string
	err  error
	code int
}{
	{"user_rejected", device.ErrUserRejected, CodeRejected},
	{"locked", device.ErrLocked, CodeLocked},
	{"disconnected", device.ErrDisconnected, CodeDisconnected},
	{"link_lost", device.ErrLinkLost, CodeLinkLost},
	{"wrong_app", device.ErrWrongApp, CodeWrongApp},
	{"busy", device.ErrBusy, CodeBusy},
	{"busy", transport.ErrClaimed, CodeBusy}, // another program (Trezor Suite, trezord) holds the device
	{"no_device", device.ErrNoDevice, CodeNoDevice},
	{"several_devices", device.ErrSeveralDevices, CodeNoDevice},
	{"no_device", transport.ErrNoDevice, CodeNoDevice},
	{"bad_signature", device.ErrBadSignature, CodeBadSignature},
	{"protocol", device.ErrProtocol, CodeProtocol},
	{"unsupported", errors.ErrUnsupported, CodeUnsupported},
	{"login_required", keys.ErrLoginRequired, CodeLogin},
	{"unknown_app", keys.ErrUnknownApp, CodeUnauthorized},
	{"not_approved", keys.ErrNotApproved, CodeUnauthorized},
	{"revoked", keys.ErrRevoked, CodeUnauthorized},
	{"key_expired", keys.ErrKeyExpired, CodeUnauthorized},
	{"bad_key", keys.ErrBadKey, CodeUnauthorized},
	{"denied", keys.ErrDenied, CodeUnauthorized},
	{"pair_timeout", keys.ErrPairTimeout, CodeUnauthorized},
	{"bad_mac", keys.ErrBadMAC, CodeBadRequest},
	{"stale", keys.ErrStale, CodeBadRequest},
	{"replay", keys.ErrReplay, CodeBadRequest},
	{"bad_auth", keys.ErrAuth, CodeBadRequest},
	{"too_many_requests", keys.ErrTooMany, CodeBadRequest},
	{"forbidden", keys.ErrScope, CodeForbidden},
	{"in_flight", journal.ErrInFlight, CodeRequestID},
	{"journal_lost", journal.ErrLost, CodeRequestID},
	{"request_id_lost", journal.ErrLostRequest, CodeRequestID},
	{"journal_locked", journal.ErrLocked, CodeRequestID},
	{"request_id_reused", journal.ErrParamsMismatch, CodeRequestID},
	{"plan_changed", bitcoin.ErrPlanChanged, CodeRequestID},
	{"plan_changed", ethereum.ErrPlanChanged, CodeRequestID},
	{"canceled", context.Canceled, CodeCanceled},
	{"timeout", context.DeadlineExceeded, CodeCanceled},
	{"invalid_input", device.ErrInvalidInput, CodeInvalidInput},
}

// ErrorKind names the kind of err ("user_rejected", "no_device", "invalid_input", …, as in
// error.data.kind on the wire), or "error" when it is none of them. A *RemoteError has the
// kind the daemon gave it, so both sides of the socket name an error alike.
func ErrorKind(err error) string {
	var re *RemoteError
	if errors.As(err, &re) && re.Data.Kind != "" {
		return re.Data.Kind
	}
	for _, k := range kinds {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	return "error"
}

// ErrorData is error.data of an hwbridged JSON-RPC error.
type ErrorData struct {
	Kind          string `json:"kind"`                     // a name from the kinds table, or "error"
	Op            string `json:"op,omitempty"`             // device errors: what the driver was doing
	Family        string `json:"family,omitempty"`         // device errors: trezor, ledger
	DeviceCode    int    `json:"device_code,omitempty"`    // Trezor FailureType or Ledger status word
	DeviceMessage string `json:"device_message,omitempty"` // the device's own text
}

// rpcError is what handlers return: go-ethereum's rpc package puts ErrorCode and ErrorData
// into the JSON-RPC error object.
type rpcError struct {
	code int
	msg  string
	data ErrorData
	err  error
}

func (e *rpcError) Error() string          { return e.msg }
func (e *rpcError) ErrorCode() int         { return e.code }
func (e *rpcError) ErrorData() interface{} { return e.data }
func (e *rpcError) Unwrap() error          { return e.err }

// toRPC classifies err for the wire.
// WireError is err as hwbridged answers it (a JSON-RPC error with code and error.data);
// FromClientError rebuilds it on the client's side.
func WireError(err error) error { return toRPC(err) }

func toRPC(err error) error {
	if err == nil {
		return nil
	}
	var already *rpcError
	if errors.As(err, &already) {
		return err
	}
	e := &rpcError{code: CodeInternal, msg: err.Error(), data: ErrorData{Kind: "error"}, err: err}
	for _, k := range kinds {
		if errors.Is(err, k.err) {
			e.code, e.data.Kind = k.code, k.name
			break
		}
	}
	var de *device.Error
	if errors.As(err, &de) {
		e.data.Op, e.data.Family, e.data.DeviceCode, e.data.DeviceMessage = de.Op, string(de.Family), de.Code, de.Message
	}
	return e
}

// RemoteError is an error answered by hwbridged, rebuilt on the client: errors.Is matches
// the same sentinels as on the daemon's side, and errors.As finds a *device.Error when the
// device reported one.
type RemoteError struct {
	Code    int
	Message string
	Data    ErrorData
	kind    error
	dev     *device.Error
}

func (e *RemoteError) Error() string { return e.Message }

// Unwrap yields the sentinel and the device error.
func (e *RemoteError) Unwrap() []error {
	var out []error
	if e.dev != nil {
		out = append(out, e.dev)
	} else if e.kind != nil {
		out = append(out, e.kind)
	}
	return out
}

// fromRPC rebuilds an error from a JSON-RPC error object.
func fromRPC(code int, msg string, rawData any) error {
	re := &RemoteError{Code: code, Message: msg}
	if rawData != nil {
		b, err := json.Marshal(rawData)
		if err == nil {
			_ = json.Unmarshal(b, &re.Data)
		}
	}
	for _, k := range kinds {
		if k.name == re.Data.Kind {
			re.kind = k.err
			break
		}
	}
	if re.Data.Family != "" {
		re.dev = &device.Error{Op: re.Data.Op, Family: device.Family(re.Data.Family), Code: re.Data.DeviceCode,
			Message: re.Data.DeviceMessage, Kind: re.kind}
	}
	return re
}

// rpcErrorish is what go-ethereum's rpc client returns for a JSON-RPC error.
type rpcErrorish interface {
	Error() string
	ErrorCode() int
	ErrorData() interface{}
}

// FromClientError turns an error from a go-ethereum rpc.Client call into a *RemoteError
// when it is a JSON-RPC error answer; other errors (the socket) come back wrapped.
func FromClientError(err error) error {
	if err == nil {
		return nil
	}
	var re rpcErrorish
	if errors.As(err, &re) {
		return fromRPC(re.ErrorCode(), re.Error(), re.ErrorData())
	}
	return fmt.Errorf("hwbridged: %w", err)
}
