package ledgeremu

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Status words, as the real apps and the OS return them (ledger.md §3).
const (
	swOK               uint16 = 0x9000
	swDeny             uint16 = 0x6985 // user rejected (BTC SW_DENY, ETH SWO_CONDITIONS_NOT_SATISFIED)
	swCommandNotAllow  uint16 = 0x6980 // ETH: continuation chunk without a started flow
	swIncorrectData    uint16 = 0x6A80
	swNotSupported     uint16 = 0x6A82
	swInsufficientMem  uint16 = 0x6A84
	swWrongP1P2BTC     uint16 = 0x6A86
	swWrongDataLength  uint16 = 0x6A87
	swWrongLength      uint16 = 0x6700 // ISO: wrong length (OS, ETH)
	swWrongP1P2        uint16 = 0x6B00 // ETH, SDK
	swINSNotSupported  uint16 = 0x6D00
	swCLANotSupported  uint16 = 0x6E00
	swAppNotOpen       uint16 = 0x6E01 // the dashboard answering an app CLA
	swTxTypeNotSupport uint16 = 0x6501 // ETH: unsupported transaction type
	swAppNotInstalled  uint16 = 0x6807
	swLocked           uint16 = 0x5515
	swBadState         uint16 = 0xB007
	swSignatureFail    uint16 = 0xB008
	swInterrupted      uint16 = 0xE000
)

// Class and instruction bytes.
const (
	claOS        = 0xB0
	insAppAndVer = 0x01
	insQuitApp   = 0xA7
	claDashboard = 0xE0
	insOpenApp   = 0xD8

	claBTC       = 0xE1
	claFramework = 0xF8
	insContinue  = 0x01

	claETH = 0xE0
)

// MaxAPDUData caps the data of one command APDU: a short APDU's Lc is one byte.
const MaxAPDUData = 255

// APDU is one decoded short command APDU: CLA INS P1 P2 Lc data. Le is never used by
// Ledger apps; a missing Lc (4-byte APDU) reads as no data.
type APDU struct {
	CLA, INS, P1, P2 byte
	Data             []byte
}

// errShortAPDU and errLcMismatch are the two ways a command APDU is malformed.
var (
	errShortAPDU  = errors.New("ledgeremu: apdu shorter than its 4-byte header")
	errLcMismatch = errors.New("ledgeremu: apdu length byte does not match its data")
)

// ParseAPDU decodes a command APDU. Layout:
//
//	| 0 CLA | 1 INS | 2 P1 | 3 P2 | 4 Lc | 5.. data (Lc bytes) |
//
// A 4-byte APDU has no data; otherwise Lc must equal the number of bytes that follow.
func ParseAPDU(b []byte) (APDU, error) {
	if len(b) < 4 {
		return APDU{}, errShortAPDU
	}
	a := APDU{CLA: b[0], INS: b[1], P1: b[2], P2: b[3]}
	if len(b) == 4 {
		return a, nil
	}
	if int(b[4]) != len(b)-5 {
		return APDU{}, fmt.Errorf("%w: lc %d, %d data bytes", errLcMismatch, b[4], len(b)-5)
	}
	a.Data = b[5:]
	return a, nil
}

// Bytes encodes the APDU with its Lc byte (always present, as ledgerjs sends it).
func (a APDU) Bytes() ([]byte, error) {
	if len(a.Data) > MaxAPDUData {
		return nil, fmt.Errorf("ledgeremu: apdu data of %d bytes (max %d)", len(a.Data), MaxAPDUData)
	}
	out := make([]byte, 5+len(a.Data))
	out[0], out[1], out[2], out[3], out[4] = a.CLA, a.INS, a.P1, a.P2, byte(len(a.Data))
	copy(out[5:], a.Data)
	return out, nil
}

// swError is a command outcome that is a status word, optionally with reply data (the
// Bitcoin app's 2-byte extended error codes).
type swError struct {
	sw   uint16
	data []byte
	msg  string
}

func (e *swError) Error() string {
	return fmt.Sprintf("ledgeremu: status %04x: %s", e.sw, e.msg)
}

// fail makes a status-word outcome.
func fail(sw uint16, format string, args ...any) error {
	return &swError{sw: sw, msg: fmt.Sprintf(format, args...)}
}

// failEC makes a status-word outcome carrying a Bitcoin app extended error code.
func failEC(sw uint16, ec uint16, format string, args ...any) error {
	return &swError{sw: sw, data: binary.BigEndian.AppendUint16(nil, ec), msg: fmt.Sprintf(format, args...)}
}

// reader reads the fields of an APDU payload or a client response.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) left() int { return len(r.b) }

func (r *reader) bytes(n int) []byte {
	if r.bad || n < 0 || len(r.b) < n {
		r.bad = true
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u8() byte {
	b := r.bytes(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (r *reader) u32() uint32 {
	b := r.bytes(4)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

func (r *reader) varint() uint64 {
	v, n, err := readVarint(r.b)
	if r.bad || err != nil {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

// path reads u8 n ‖ n×u32 BE, at most max steps.
func (r *reader) path(max int) ([]uint32, bool) {
	n := int(r.u8())
	if r.bad || n > max {
		return nil, false
	}
	p := make([]uint32, n)
	for i := range p {
		p[i] = r.u32()
	}
	return p, !r.bad
}

// readVarint decodes a Bitcoin CompactSize (non-canonical forms are accepted, as the app
// does).
func readVarint(b []byte) (uint64, int, error) {
	if len(b) == 0 {
		return 0, 0, errors.New("ledgeremu: varint: no bytes")
	}
	switch b[0] {
	case 0xFD:
		if len(b) < 3 {
			return 0, 0, errors.New("ledgeremu: varint: truncated")
		}
		return uint64(binary.LittleEndian.Uint16(b[1:])), 3, nil
	case 0xFE:
		if len(b) < 5 {
			return 0, 0, errors.New("ledgeremu: varint: truncated")
		}
		return uint64(binary.LittleEndian.Uint32(b[1:])), 5, nil
	case 0xFF:
		if len(b) < 9 {
			return 0, 0, errors.New("ledgeremu: varint: truncated")
		}
		return binary.LittleEndian.Uint64(b[1:]), 9, nil
	}
	return uint64(b[0]), 1, nil
}

// appendVarint appends a canonical CompactSize.
func appendVarint(b []byte, v uint64) []byte {
	switch {
	case v < 0xFD:
		return append(b, byte(v))
	case v <= 0xFFFF:
		return binary.LittleEndian.AppendUint16(append(b, 0xFD), uint16(v))
	case v <= 0xFFFFFFFF:
		return binary.LittleEndian.AppendUint32(append(b, 0xFE), uint32(v))
	}
	return binary.LittleEndian.AppendUint64(append(b, 0xFF), v)
}

func appendPath(b []byte, p []uint32) []byte {
	b = append(b, byte(len(p)))
	for _, v := range p {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}
