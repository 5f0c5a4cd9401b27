package ledger

// APDUs and status words: ISO 7816 short APDUs as the Ledger OS and apps speak them.
// Spec: /work/shared/protocols/ledger.md §3 (status words), §4 (OS / dashboard), §5.1
// (Bitcoin app v2), §6 (Ethereum app).

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// Limits on what goes to and comes from the device.
const (
	// maxAPDUData is the most data one command APDU carries (Lc is one byte).
	maxAPDUData = 255
	// maxReply caps the data of one reply this driver accepts (the HID length field allows
	// 65533; no command of the apps answers more than a few hundred bytes).
	maxReply = 4096
	// maxPathDepth is the longest derivation path the apps accept (Bitcoin app: 10 steps on
	// device; Ethereum app: 10).
	maxPathDepth = 10
)

// Status words (ledger.md §3).
const (
	swOK                 uint16 = 0x9000
	swInterrupted        uint16 = 0xE000 // Bitcoin app: reply data is a client command
	swDeny               uint16 = 0x6985 // user rejected on the device
	swOSRefused          uint16 = 0x5501 // user refused at OS level (open app)
	swLocked             uint16 = 0x5515 // device locked (PIN screen)
	swSecurityStatus     uint16 = 0x6982 // older firmware: locked
	swLockedOld          uint16 = 0x6B0C // older firmware: locked
	swIncorrectData      uint16 = 0x6A80
	swNotSupported       uint16 = 0x6A82
	swWrongP1P2          uint16 = 0x6A86
	swWrongDataLength    uint16 = 0x6A87
	swINSNotSupported    uint16 = 0x6D00
	swCLANotSupported    uint16 = 0x6E00
	swAppNotOpen         uint16 = 0x6E01 // dashboard answering an app CLA
	swWrongAppOld        uint16 = 0x6511
	swAppNotInstalled    uint16 = 0x6807
	swBadState           uint16 = 0xB007 // Bitcoin app: CONTINUE with nothing pending
	swSignatureFail      uint16 = 0xB008 // Bitcoin app: wallet policy HMAC does not verify
	swEthUnsupportedType uint16 = 0x6501 // Ethereum app: transaction type not supported
)

// OS and app command bytes.
const (
	claOS        byte = 0xB0
	insAppInfo   byte = 0x01 // B0 01 GET_APP_AND_VERSION
	insQuitApp   byte = 0xA7 // B0 A7 QUIT_APP
	claDashboard byte = 0xE0
	insOpenApp   byte = 0xD8 // E0 D8 OPEN_APP (dashboard only)

	claBTC          byte = 0xE1
	claFramework    byte = 0xF8
	insContinue     byte = 0x01 // F8 01 CONTINUE_INTERRUPTED
	btcProtocolP2   byte = 0x01 // P2 of every Bitcoin app command: protocol version 1
	insGetXPub      byte = 0x00
	insRegister     byte = 0x02
	insWalletAddr   byte = 0x03
	insSignPSBT     byte = 0x04
	insFingerprint  byte = 0x05
	insSignMessage  byte = 0x10
	claETH          byte = 0xE0
	insEthAddress   byte = 0x02
	insEthSignTx    byte = 0x04
	insEthConfig    byte = 0x06
	insEthPersonal  byte = 0x08
	insEthEIP712    byte = 0x0C
	p1EthFirst      byte = 0x00
	p1EthMore       byte = 0x80
	p1EthDisplay    byte = 0x01
	p2EthEIP712Hash byte = 0x00
)

// command is one command APDU.
type command struct {
	cla, ins, p1, p2 byte
	data             []byte
	// screen: the reply may come only after the person acts on a screen (the app shows a
	// review, an address or a key and answers once confirmed or rejected), so it waits for
	// the operation's deadline rather than the link timeout.
	screen bool
}

// encode returns CLA INS P1 P2 Lc data. Lc is always present (as ledgerjs sends it), also
// for empty data.
func (c command) encode() ([]byte, error) {
	if len(c.data) > maxAPDUData {
		return nil, fmt.Errorf("%w: apdu data of %d bytes (max %d)", device.ErrInvalidInput, len(c.data), maxAPDUData)
	}
	b := make([]byte, 5, 5+len(c.data))
	b[0], b[1], b[2], b[3], b[4] = c.cla, c.ins, c.p1, c.p2, byte(len(c.data))
	return append(b, c.data...), nil
}

// splitReply splits data‖SW1 SW2.
func splitReply(resp []byte) (data []byte, sw uint16, err error) {
	if len(resp) < 2 {
		return nil, 0, fmt.Errorf("%w: reply of %d bytes has no status word", device.ErrProtocol, len(resp))
	}
	if len(resp)-2 > maxReply {
		return nil, 0, fmt.Errorf("%w: reply of %d bytes (max %d)", device.ErrProtocol, len(resp)-2, maxReply)
	}
	n := len(resp) - 2
	return resp[:n], binary.BigEndian.Uint16(resp[n:]), nil
}

// encodePath is u8 n ‖ n × u32 BE, the path encoding of both apps.
func encodePath(p hdpath.Path) ([]byte, error) {
	if len(p) > maxPathDepth {
		return nil, fmt.Errorf("%w: path %s has %d steps (a ledger takes at most %d)", device.ErrInvalidInput, p, len(p), maxPathDepth)
	}
	b := make([]byte, 1, 1+4*len(p))
	b[0] = byte(len(p))
	for _, s := range p {
		b = binary.BigEndian.AppendUint32(b, s)
	}
	return b, nil
}

// appInfo is the reply to B0 01.
type appInfo struct {
	Name    string
	Version string
	Flags   []byte
}

// dashboardName is what the OS reports in B0 01 when no app is open.
const dashboardName = "BOLOS"

// parseAppInfo decodes 0x01 ‖ u8 nameLen ‖ name ‖ u8 verLen ‖ version [‖ u8 flagsLen ‖ flags].
func parseAppInfo(b []byte) (appInfo, error) {
	bad := func(what string) (appInfo, error) {
		return appInfo{}, fmt.Errorf("%w: app info reply %x: %s", device.ErrProtocol, b, what)
	}
	if len(b) < 1 || b[0] != 0x01 {
		return bad("format byte is not 1")
	}
	r := b[1:]
	next := func() ([]byte, bool) {
		if len(r) < 1 || len(r) < 1+int(r[0]) {
			return nil, false
		}
		f := r[1 : 1+int(r[0])]
		r = r[1+int(r[0]):]
		return f, true
	}
	name, ok := next()
	if !ok {
		return bad("name cut short")
	}
	ver, ok := next()
	if !ok {
		return bad("version cut short")
	}
	var info appInfo
	info.Name, info.Version = string(name), string(ver)
	if len(r) > 0 {
		flags, ok := next()
		if !ok {
			return bad("flags cut short")
		}
		info.Flags = flags
	}
	if len(r) != 0 {
		return bad("trailing bytes")
	}
	if !printable(info.Name) || !printable(info.Version) {
		return bad("name or version is not printable ascii")
	}
	return info, nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// ErrBlindSigningDisabled: the Ethereum app refused a transaction with contract data or
// an EIP-712 hash because its "Blind signing" setting is off.
var ErrBlindSigningDisabled = errors.New(`ledger: the ethereum app refused to blind-sign: enable "Blind signing" in the Ethereum app's settings on the device and retry`)

// ErrInvalidERC20Data: the Ethereum app refused call data that starts with the ERC-20
// transfer or approve selector but is not a call its ERC-20 parser takes (a transfer is
// 68 bytes: selector, address, amount, with no ether sent); blind signing does not help.
var ErrInvalidERC20Data = errors.New("ledger: the ethereum app refused the transaction: its data starts with the ERC-20 transfer/approve selector but is not a valid call (68 bytes: selector, address, amount; at most 64 bytes more; no ether value): fix the call data")

// statusError turns a status word into a *device.Error for op. app is the app the command
// needs ("" for OS commands), used to say what to open. extra is the reply data (the
// Bitcoin app puts a 2-byte extended error code before some status words).
func statusError(op, app string, sw uint16, extra []byte) error {
	e := &device.Error{Op: op, Family: device.FamilyLedger, Code: int(sw)}
	switch sw {
	case swDeny, swOSRefused:
		e.Kind = device.ErrUserRejected
	case swLocked, swSecurityStatus, swLockedOld:
		e.Kind = device.ErrLocked
		e.Message = "unlock the ledger with its PIN and retry"
	case swCLANotSupported, swAppNotOpen, swINSNotSupported, swWrongAppOld:
		e.Kind = device.ErrWrongApp
		if app != "" {
			e.Message = openAppMessage(app)
		}
	case swAppNotInstalled:
		e.Kind = device.ErrWrongApp
		e.Message = fmt.Sprintf("the %s app is not installed: install it with Ledger Live", app)
	case swNotSupported:
		e.Kind = device.ErrInvalidInput
		e.Message = "the app does not support this request (non-standard path or too many inputs?)"
	case swSignatureFail:
		e.Kind = device.ErrInvalidInput
		e.Message = "the wallet policy's registration (hmac) does not verify on this device: register the wallet again"
	case swIncorrectData:
		e.Kind = device.ErrInvalidInput
		e.Message = "the app refused the request's data"
	case swEthUnsupportedType:
		e.Kind = errors.ErrUnsupported
		e.Message = "the ethereum app does not sign this transaction type: update the app"
	default:
		e.Kind = device.ErrProtocol
	}
	if len(extra) == 2 {
		if m := extendedError(op, binary.BigEndian.Uint16(extra)); m != "" {
			e.Message = m
		}
	}
	return e
}

// openAppMessage says which app to open.
func openAppMessage(app string) string {
	return fmt.Sprintf("open the %s app on your Ledger and retry", app)
}

// extendedError explains the Bitcoin app's 2-byte extended error codes (ledger.md §5.8).
func extendedError(op string, code uint16) string {
	switch op {
	case opRegister:
		switch code {
		case 0x0000:
			return "the wallet name is not acceptable (1-64 printable ascii, no leading or trailing space)"
		case 0x0001:
			return "the wallet policy is not sane"
		case 0x0002:
			return "the wallet policy has no key of this device"
		}
	case opSignPSBT:
		switch code {
		case 0x0000:
			return "a non-default wallet policy was sent without its registration hmac"
		case 0x0001:
			return "a default wallet policy was sent with a name"
		case 0x0002:
			return "no input of the psbt belongs to the device's wallet policy"
		case 0x0003:
			return "an input has neither witness_utxo nor non_witness_utxo"
		case 0x0004:
			return "an input's non_witness_utxo does not hash to its previous txid"
		case 0x0005:
			return "an input's witness_utxo disagrees with its non_witness_utxo"
		case 0x0006:
			return "a legacy input lacks non_witness_utxo or carries witness_utxo"
		case 0x0007:
			return "a segwit input lacks witness_utxo"
		case 0x0008:
			return "SIGHASH_SINGLE on an input without a matching output"
		case 0x0009:
			return "too many change outputs"
		case 0x000A:
			return "an input's witness script does not match its utxo"
		case 0x000B:
			return "an input's redeem script does not match its utxo"
		case 0x000C:
			return "too many keys of the device in the wallet policy"
		}
	}
	return ""
}
