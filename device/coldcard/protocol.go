package coldcard

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"

	"github.com/hwbridge/hwbridge/device"
)

// The Coldcard USB commands, as ckcc-protocol's CCProtocolPacker packs them and the
// firmware's shared/usb.py reads them (ckcc/protocol.py, constants.py at ckcc-protocol
// abf0407, firmware 02bd428): a 4-byte ASCII code, then arguments packed little-endian.
// Hand-written from those sources; there is no Go implementation.

// Address formats (ckcc/constants.py AF_*): bit flags AFC_PUBKEY 0x01, AFC_SEGWIT 0x02,
// AFC_BECH32 0x04, AFC_SCRIPT 0x08, AFC_WRAPPED 0x10, AFC_BECH32M 0x20.
const (
	afClassic    = 0x01 // p2pkh
	afP2WPKH     = 0x07 // PUBKEY|SEGWIT|BECH32
	afP2WPKHP2SH = 0x13 // WRAPPED|PUBKEY|SEGWIT
	afP2TR       = 0x23 // PUBKEY|SEGWIT|BECH32M
)

const (
	ncryV1 = 1 // USB_NCRY_V1: encryption optional per message, re-keying allowed
	// maxBlock is MAX_BLK_LEN, the largest upload/download block.
	maxBlock = 2048
	// maxMessage is MSG_SIGNING_MAX_LENGTH.
	maxMessage = 240
	// maxTxn is MAX_TXN_LEN_MK4, the largest PSBT (or result) a Mk4 takes; a Mk3 refuses
	// more than 384 KiB itself ('badlen').
	maxTxn = 2 << 20
)

func addrFormat(st device.ScriptType) (uint32, error) {
	switch st {
	case device.ScriptPKH:
		return afClassic, nil
	case device.ScriptWPKH:
		return afP2WPKH, nil
	case device.ScriptSHWPKH:
		return afP2WPKHP2SH, nil
	case device.ScriptTR:
		return afP2TR, nil
	}
	return 0, fmt.Errorf("%w: script type %q", device.ErrInvalidInput, st)
}

func le32(v ...uint32) []byte {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, x)
	}
	return b
}

func cmd(code string, parts ...[]byte) []byte {
	b := []byte(code)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// ncry: '<4sI64s' version, host session pubkey.
func reqEncryptStart(pub64 []byte) []byte { return cmd("ncry", le32(ncryV1), pub64) }

// upld: '<4sII' offset, total size, then the block.
func reqUpload(offset, total uint32, data []byte) []byte {
	return cmd("upld", le32(offset, total), data)
}

// dwld: '<4sIII' offset, length, file number (1: the signing result).
func reqDownload(offset, length, file uint32) []byte {
	return cmd("dwld", le32(offset, length, file))
}

// stxn: '<4sII32s' length, flags, sha256 of the upload.
func reqSignTx(length, flags uint32, sha [32]byte) []byte {
	return cmd("stxn", le32(length, flags), sha[:])
}

// smsg: '<4sIII' address format, len(subpath), len(msg), then subpath and message.
func reqSignMessage(af uint32, subpath string, msg []byte) []byte {
	return cmd("smsg", le32(af, uint32(len(subpath)), uint32(len(msg))), []byte(subpath), msg)
}

// show: '<4sI' address format, then the text subpath.
func reqShow(af uint32, subpath string) []byte { return cmd("show", le32(af), []byte(subpath)) }

func reqXPub(subpath string) []byte { return cmd("xpub", []byte(subpath)) }

// reply is a decoded reply: its 4-byte signature and the bytes after it.
type reply struct {
	code string
	body []byte
}

// errorKind maps the reply signatures that are errors (CCProtocolUnpacker: fram, err_,
// refu, busy) onto the device sentinels.
func decodeReply(op string, msg []byte) (reply, error) {
	if len(msg) < 4 {
		return reply{}, fmt.Errorf("coldcard: %s: %w: reply of %d bytes", op, device.ErrProtocol, len(msg))
	}
	r := reply{code: string(msg[:4]), body: msg[4:]}
	switch r.code {
	case "okay":
		if len(r.body) != 0 {
			return reply{}, fmt.Errorf("coldcard: %s: %w: okay with %d bytes", op, device.ErrProtocol, len(r.body))
		}
	case "biny", "asci", "int1", "int2", "int3", "mypb", "smrx", "strx":
	case "refu":
		return reply{}, &device.Error{Op: op, Family: device.FamilyColdcard, Message: "refused on the device", Kind: device.ErrUserRejected}
	case "busy":
		return reply{}, &device.Error{Op: op, Family: device.FamilyColdcard, Message: "busy with another request", Kind: device.ErrBusy}
	case "fram":
		return reply{}, &device.Error{Op: op, Family: device.FamilyColdcard, Message: "framing error: " + text(r.body), Kind: device.ErrProtocol}
	case "err_":
		return reply{}, &device.Error{Op: op, Family: device.FamilyColdcard, Message: text(r.body), Kind: errKind(op)}
	default:
		return reply{}, fmt.Errorf("coldcard: %s: %w: unknown reply signature %q", op, device.ErrProtocol, r.code)
	}
	return r, nil
}

// errKind: an err_ reply to a request the device checked (a PSBT, a message, a path) is
// invalid input; the firmware's error texts name the problem.
func errKind(op string) error {
	switch op {
	case opSignTx, opSignMessage, opXPub, opAddress:
		return device.ErrInvalidInput
	}
	return device.ErrProtocol
}

// text is printable device text, at most 200 runes.
func text(b []byte) string {
	s := []rune{}
	for len(b) > 0 && len(s) < 200 {
		r, n := utf8.DecodeRune(b)
		b = b[n:]
		if r == utf8.RuneError || r < 0x20 && r != '\n' {
			r = '?'
		}
		s = append(s, r)
	}
	return string(s)
}

func (r reply) want(op, code string) error {
	if r.code != code {
		return fmt.Errorf("coldcard: %s: %w: reply %q, want %q", op, device.ErrProtocol, r.code, code)
	}
	return nil
}

// mypb: '64sII' the device's session pubkey, master fingerprint (little-endian, as stored
// in PSBTs), xpub length; the master xpub is the last xpub-length bytes.
func decodeMyPub(r reply) (pub64 []byte, xfp uint32, xpub string, err error) {
	if err := r.want("start encryption", "mypb"); err != nil {
		return nil, 0, "", err
	}
	if len(r.body) < 72 {
		return nil, 0, "", fmt.Errorf("coldcard: start encryption: %w: mypb of %d bytes", device.ErrProtocol, len(r.body))
	}
	n := binary.LittleEndian.Uint32(r.body[68:72])
	if uint64(n) > uint64(len(r.body)-72) || n > 200 {
		return nil, 0, "", fmt.Errorf("coldcard: start encryption: %w: xpub length %d", device.ErrProtocol, n)
	}
	x := r.body[len(r.body)-int(n):]
	for _, c := range x {
		if c < 0x21 || c > 0x7e {
			return nil, 0, "", fmt.Errorf("coldcard: start encryption: %w: xpub is not base58 text", device.ErrProtocol)
		}
	}
	return r.body[:64], binary.LittleEndian.Uint32(r.body[64:68]), string(x), nil
}

// asci: text for computers (xpubs, addresses, the version lines).
func decodeASCII(op string, r reply) (string, error) {
	if err := r.want(op, "asci"); err != nil {
		return "", err
	}
	for _, c := range r.body {
		if c > 0x7e || c < 0x20 && c != '\n' {
			return "", fmt.Errorf("coldcard: %s: %w: asci reply holds byte 0x%02x", op, device.ErrProtocol, c)
		}
	}
	return string(r.body), nil
}

func decodeInt1(op string, r reply) (uint32, error) {
	if err := r.want(op, "int1"); err != nil {
		return 0, err
	}
	if len(r.body) < 4 {
		return 0, fmt.Errorf("coldcard: %s: %w: int1 of %d bytes", op, device.ErrProtocol, len(r.body))
	}
	return binary.LittleEndian.Uint32(r.body), nil
}

// strx: '<I32s' length and sha256 of the result file. okay means still waiting.
func decodeSignedTx(r reply) (length uint32, sha [32]byte, done bool, err error) {
	if r.code == "okay" {
		return 0, sha, false, nil
	}
	if err := r.want(opSignTx, "strx"); err != nil {
		return 0, sha, false, err
	}
	if len(r.body) < 36 {
		return 0, sha, false, fmt.Errorf("coldcard: %s: %w: strx of %d bytes", opSignTx, device.ErrProtocol, len(r.body))
	}
	copy(sha[:], r.body[4:36])
	return binary.LittleEndian.Uint32(r.body), sha, true, nil
}

// smrx: '<I' address length, the address, then the 65-byte signature. okay means still
// waiting.
func decodeSignedMessage(r reply) (addr string, sig []byte, done bool, err error) {
	if r.code == "okay" {
		return "", nil, false, nil
	}
	if err := r.want(opSignMessage, "smrx"); err != nil {
		return "", nil, false, err
	}
	if len(r.body) < 4 {
		return "", nil, false, fmt.Errorf("coldcard: %s: %w: smrx of %d bytes", opSignMessage, device.ErrProtocol, len(r.body))
	}
	n := binary.LittleEndian.Uint32(r.body)
	if uint64(n) > uint64(len(r.body)-4) {
		return "", nil, false, fmt.Errorf("coldcard: %s: %w: address length %d", opSignMessage, device.ErrProtocol, n)
	}
	a, s := r.body[4:4+n], r.body[4+n:]
	if len(s) != 65 {
		return "", nil, false, fmt.Errorf("coldcard: %s: %w: signature of %d bytes, want 65", opSignMessage, device.ErrProtocol, len(s))
	}
	for _, c := range a {
		if c < 0x21 || c > 0x7e {
			return "", nil, false, fmt.Errorf("coldcard: %s: %w: address is not text", opSignMessage, device.ErrProtocol)
		}
	}
	return string(a), s, true, nil
}

// knownReply: msg starts with a reply signature the firmware sends.
func knownReply(msg []byte) bool {
	if len(msg) < 4 {
		return false
	}
	switch string(msg[:4]) {
	case "okay", "biny", "asci", "int1", "int2", "int3", "mypb", "smrx", "strx", "refu", "busy", "fram", "err_":
		return true
	}
	return false
}
