package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Ledger USB HID APDU framing, as in the Ledger SDK (io_usb_hid_receive/send) and
// ledgerjs devices/hid-framing. See /work/shared/protocols/ledger.md §1.2.
//
// Both directions use 64-byte reports:
//
//	offset size field
//	0      2    channel, u16 BE (hosts use 0x0101; the device echoes the request's channel)
//	2      1    tag, 0x05 = APDU
//	3      2    sequence index, u16 BE, 0 for the first packet, +1 per packet
//	5      2    first packet only: total length of the message, u16 BE
//	5 or 7 rest payload: 57 bytes in the first packet, 59 in the others; the last is zero padded
//
// The message is a command APDU (CLA INS P1 P2 Lc data) host to device, and data‖SW1 SW2
// device to host. The report-id byte that hidapi wants in front of every write belongs to
// the HID link (HIDLink), not to this codec.
const (
	LedgerHIDPacketSize = 64
	// LedgerDefaultChannel is the channel hosts have always used (geth, HWI, older ledgerjs).
	LedgerDefaultChannel uint16 = 0x0101
	// LedgerTagAPDU is the only tag hosts send; the SDK's other tags (version, allocate
	// channel, ping, abort) are not used by any client.
	LedgerTagAPDU = 0x05

	// LedgerMaxCommand caps a command APDU: a 5-byte header and at most 255 data bytes,
	// the size of the device's APDU buffer.
	LedgerMaxCommand = 5 + 255
	// LedgerMaxResponse caps a reply (data‖SW): the most the 16-bit HID length can say.
	// Real replies are a few hundred bytes.
	LedgerMaxResponse = 0xFFFF

	ledgerHeader      = 5
	ledgerFirstHeader = ledgerHeader + 2
	ledgerFirstChunk  = LedgerHIDPacketSize - ledgerFirstHeader // 57
	ledgerContChunk   = LedgerHIDPacketSize - ledgerHeader      // 59
)

// Errors from the Ledger HID codec (besides ErrShortPacket, ErrTooLarge and ErrTruncated).
var (
	ErrBadChannel  = errors.New("transport: ledger hid packet on another channel")
	ErrBadTag      = errors.New("transport: ledger hid packet tag is not apdu (0x05)")
	ErrBadSequence = errors.New("transport: ledger hid packet out of sequence")
)

// LedgerHIDPackets splits one message (a command APDU or a data‖SW reply) into 64-byte
// reports on channel.
func LedgerHIDPackets(channel uint16, payload []byte) ([][]byte, error) {
	if len(payload) > LedgerMaxResponse {
		return nil, fmt.Errorf("%w: %d bytes (max %d)", ErrTooLarge, len(payload), LedgerMaxResponse)
	}
	n := 1
	if len(payload) > ledgerFirstChunk {
		n += (len(payload) - ledgerFirstChunk + ledgerContChunk - 1) / ledgerContChunk
	}
	pkts := make([][]byte, 0, n)
	buf := make([]byte, n*LedgerHIDPacketSize)
	rest := payload
	for seq := range n {
		p := buf[seq*LedgerHIDPacketSize : (seq+1)*LedgerHIDPacketSize : (seq+1)*LedgerHIDPacketSize]
		binary.BigEndian.PutUint16(p[0:2], channel)
		p[2] = LedgerTagAPDU
		binary.BigEndian.PutUint16(p[3:5], uint16(seq))
		off := ledgerHeader
		if seq == 0 {
			binary.BigEndian.PutUint16(p[5:7], uint16(len(payload)))
			off = ledgerFirstHeader
		}
		rest = rest[copy(p[off:], rest):]
		pkts = append(pkts, p)
	}
	return pkts, nil
}

// WriteLedgerHID writes one message on channel, one Write call per 64-byte report.
func WriteLedgerHID(w io.Writer, channel uint16, payload []byte) error {
	pkts, err := LedgerHIDPackets(channel, payload)
	if err != nil {
		return err
	}
	for i, p := range pkts {
		if _, err := w.Write(p); err != nil {
			return fmt.Errorf("transport: write ledger hid packet %d of %d: %w", i+1, len(pkts), err)
		}
	}
	return nil
}

// LedgerHIDReader reassembles one message from 64-byte reports.
//
// The zero value is the device side: it accepts the first packet on any channel, then
// requires that channel until the message is complete (Channel reports it, so the reply can
// echo it), and caps the message at LedgerMaxResponse unless Max is set. NewLedgerHIDReader
// gives the host side, which accepts only its own channel.
//
// Any error resets the reader, like the SDK drops a partial APDU on a bad packet.
type LedgerHIDReader struct {
	// Max caps the total length a first packet may declare; zero means LedgerMaxResponse.
	Max int

	fixed   bool // only accept channel
	channel uint16
	seq     uint16
	want    int
	msg     []byte
	active  bool
}

// NewLedgerHIDReader returns a reader that accepts only packets on channel (the host side,
// reading replies to what it sent on channel).
func NewLedgerHIDReader(channel uint16) *LedgerHIDReader {
	return &LedgerHIDReader{fixed: true, channel: channel}
}

// Add feeds one report. It returns done once the whole message has been collected; Message
// then returns it and the next Add starts a new message.
func (r *LedgerHIDReader) Add(pkt []byte) (done bool, err error) {
	if len(pkt) != LedgerHIDPacketSize {
		r.Reset()
		return false, fmt.Errorf("%w: got %d", ErrShortPacket, len(pkt))
	}
	ch := binary.BigEndian.Uint16(pkt[0:2])
	seq := binary.BigEndian.Uint16(pkt[3:5])
	if (r.fixed || r.active) && ch != r.channel {
		r.Reset()
		return false, fmt.Errorf("%w: got %#04x, want %#04x", ErrBadChannel, ch, r.channel)
	}
	if pkt[2] != LedgerTagAPDU {
		r.Reset()
		return false, fmt.Errorf("%w: got %#02x", ErrBadTag, pkt[2])
	}
	if !r.active {
		if seq != 0 {
			return false, fmt.Errorf("%w: message starts with packet %d", ErrBadSequence, seq)
		}
		return r.start(ch, pkt)
	}
	if seq != r.seq+1 {
		want := r.seq + 1
		r.Reset()
		return false, fmt.Errorf("%w: got packet %d, want %d", ErrBadSequence, seq, want)
	}
	r.seq = seq
	r.msg = append(r.msg, pkt[ledgerHeader:ledgerHeader+min(ledgerContChunk, r.want-len(r.msg))]...)
	r.active = len(r.msg) < r.want
	return !r.active, nil
}

func (r *LedgerHIDReader) start(ch uint16, pkt []byte) (bool, error) {
	limit := r.Max
	if limit <= 0 || limit > LedgerMaxResponse {
		limit = LedgerMaxResponse
	}
	n := int(binary.BigEndian.Uint16(pkt[5:7]))
	if n > limit {
		r.Reset()
		return false, fmt.Errorf("%w: %d bytes (max %d)", ErrTooLarge, n, limit)
	}
	r.channel, r.seq, r.want = ch, 0, n
	r.msg = make([]byte, 0, n)
	r.msg = append(r.msg, pkt[ledgerFirstHeader:ledgerFirstHeader+min(ledgerFirstChunk, n)]...)
	r.active = len(r.msg) < r.want
	return !r.active, nil
}

// Reset drops a partly collected message. A reader from NewLedgerHIDReader keeps its
// channel.
func (r *LedgerHIDReader) Reset() {
	r.active, r.msg, r.want, r.seq = false, nil, 0, 0
}

// Pending reports whether a message is partly collected.
func (r *LedgerHIDReader) Pending() bool { return r.active }

// Message returns the last completed message.
func (r *LedgerHIDReader) Message() []byte { return r.msg }

// Channel returns the channel of the current or last message (or the fixed channel of a
// host-side reader). A device replies on this channel.
func (r *LedgerHIDReader) Channel() uint16 { return r.channel }

// ReadLedgerHID reads reports from r until one reply on channel is complete (the host
// side). Each Read must return exactly one report, as a HID read does.
func ReadLedgerHID(r io.Reader, channel uint16) ([]byte, error) {
	rd := NewLedgerHIDReader(channel)
	return readLedgerHID(r, rd)
}

// ReadLedgerHIDCommand reads one command APDU, on whatever channel the host picked, capped
// at LedgerMaxCommand (the device side). Reply with WriteLedgerHID on the returned channel.
func ReadLedgerHIDCommand(r io.Reader) (apdu []byte, channel uint16, err error) {
	rd := &LedgerHIDReader{Max: LedgerMaxCommand}
	apdu, err = readLedgerHID(r, rd)
	return apdu, rd.Channel(), err
}

func readLedgerHID(r io.Reader, rd *LedgerHIDReader) ([]byte, error) {
	buf := make([]byte, LedgerHIDPacketSize+1)
	for {
		n, err := r.Read(buf)
		if err != nil {
			if rd.Pending() && errors.Is(err, io.EOF) {
				err = ErrTruncated
			}
			return nil, fmt.Errorf("transport: read ledger hid packet: %w", err)
		}
		done, err := rd.Add(buf[:n])
		if err != nil {
			return nil, err
		}
		if done {
			return rd.Message(), nil
		}
	}
}
