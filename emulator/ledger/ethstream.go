package ledgeremu

import (
	"bytes"
	"encoding/hex"
)

// The Ethereum app checks a transaction's call data while it streams in, at the APDU that
// carries the start of the data field, not once the transaction is complete (app-ethereum
// 1.22.0 src/features/sign_tx/logic_sign_tx.c custom_processor, src/plugins/erc20/
// erc20_plugin.c). Those refusals answer 0x6A80 to that chunk:
//   - a call (a recipient and ≥ 4 bytes of data) whose first 4 data bytes are not all in
//     that APDU ("Missing function selector");
//   - a call with the ERC-20 transfer or approve selector, which the app's ERC-20 parser
//     takes over whatever the blind-signing setting: refused when ether is sent with it,
//     and when the data is longer than the selector, two arguments and two 32-byte chunks
//     of extra data (at the APDU that completes the fifth 32-byte chunk);
//   - any other call while blind signing is off (the "Blind signing" error screen).
// Contract creations and data shorter than 4 bytes are checked for blind signing when
// the transaction is complete (finalize_parsing), as are ERC-20 calls the parser accepted
// but cannot show without token information.

// erc20Selectors are transfer(address,uint256) and approve(address,uint256).
var erc20Selectors = [][]byte{{0xa9, 0x05, 0x9c, 0xbb}, {0x09, 0x5e, 0xa7, 0xb3}}

// erc20MaxData is the longest call data the ERC-20 parser takes.
const erc20MaxData = 4 + 4*32

// isERC20Call reports whether data goes to the app's ERC-20 parser.
func isERC20Call(to, data []byte) bool {
	if len(to) == 0 || len(data) < 4 {
		return false
	}
	for _, s := range erc20Selectors {
		if bytes.Equal(data[:4], s) {
			return true
		}
	}
	return false
}

// rlpItem reads the header of the RLP string at b[0:]: the offset of its content and its
// length; ok is false while the header has not fully arrived.
func rlpItem(b []byte) (off, n int, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	switch h := b[0]; {
	case h < 0x80:
		return 0, 1, true
	case h <= 0xB7:
		return 1, int(h - 0x80), true
	case h <= 0xBF:
		l := int(h - 0xB7)
		if len(b) < 1+l {
			return 0, 0, false
		}
		for _, c := range b[1 : 1+l] {
			n = n<<8 | int(c)
			if n > maxEthTx {
				return 1 + l, maxEthTx + 1, true
			}
		}
		return 1 + l, n, true
	}
	return 0, 0, false // a list where a string belongs: decodeEthTx refuses it later
}

// streamCheck looks at the transaction bytes received so far (buf, the type byte first
// for typed transactions) and the end offsets of its APDU chunks, and returns the refusal
// the app answers to the latest chunk, or nil.
func (cn *conn) streamCheck(buf []byte, chunkEnds []int) error {
	body, base := buf, 0
	if len(buf) > 0 && buf[0] <= 0x7F {
		body, base = buf[1:], 1
	}
	// skip the list header
	if len(body) == 0 || body[0] < 0xC0 {
		return nil
	}
	pos := 1
	if body[0] > 0xF7 {
		pos += int(body[0] - 0xF7)
	}
	before := 5 // nonce, gas price, gas, to, value
	switch base {
	case 1:
		switch buf[0] {
		case 0x01:
			before = 6 // chain id first
		case 0x02:
			before = 7 // chain id, nonce, tip, max fee, gas, to, value
		}
	}
	var to, value []byte
	for i := 0; i < before; i++ {
		if pos >= len(body) {
			return nil
		}
		off, n, ok := rlpItem(body[pos:])
		if !ok || pos+off+n > len(body) {
			return nil
		}
		switch i {
		case before - 2:
			to = body[pos+off : pos+off+n]
		case before - 1:
			value = body[pos+off : pos+off+n]
		}
		pos += off + n
	}
	if pos >= len(body) {
		return nil
	}
	off, n, ok := rlpItem(body[pos:])
	if !ok || len(to) == 0 || n < 4 {
		return nil // creations and short data: checked when the transaction is complete
	}
	start := base + pos + off // offset of the data's first byte in buf
	if start >= len(buf) {
		return nil
	}
	chunkEnd := 0
	for _, e := range chunkEnds {
		if e > start {
			chunkEnd = e
			break
		}
	}
	if chunkEnd == len(buf) && chunkEnd-start < 4 {
		return fail(swIncorrectData, "missing function selector: the first 4 data bytes are split across APDUs")
	}
	if chunkEnd-start < 4 {
		return nil // checked at that chunk already
	}
	data := buf[start:min(len(buf), start+n)]
	atStart := chunkEnd == len(buf) // this chunk carries the data's first byte
	if isERC20Call(to, data) {
		if atStart && !allZero(value) {
			return fail(swIncorrectData, "erc-20 call with an ether value")
		}
		if n > erc20MaxData {
			last := start + min(n, erc20MaxData+32) - 1 // completes the fifth argument chunk
			if last >= prevEnd(chunkEnds) && last < len(buf) {
				return fail(swIncorrectData, "erc-20 call data longer than %d bytes", erc20MaxData)
			}
		}
		return nil
	}
	if atStart && !cn.d.blind {
		cn.show("Blind signing", "this transaction cannot be clear-signed",
			"enable blind signing in the Ethereum app settings", "selector: "+hex.EncodeToString(data[:4]))
		return fail(swIncorrectData, "blind signing is disabled")
	}
	return nil
}

func prevEnd(ends []int) int {
	if len(ends) < 2 {
		return 0
	}
	return ends[len(ends)-2]
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
