package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// U2F HID framing as the BitBox02 speaks it (FIDO U2F HID protocol v1.0 §2.4, "Message and
// packet structure"; bitbox02-firmware src/usb/usb_frame.c, bitbox-api-rs src/u2fframing.rs).
// The BitBox02 simulator carries the very same 64-byte reports over its TCP socket
// (bitbox02-firmware test/simulator/simulator.c reads and writes USB_HID_REPORT_OUT_SIZE
// bytes at a time), so one codec serves USB and the simulator.
//
// Every packet is exactly 64 bytes, all fields big-endian:
//
//	initialisation packet               continuation packet
//	0..3   channel id (CID)             0..3  channel id
//	4      command, high bit set        4     sequence 0..127 (high bit clear)
//	5..6   payload length               5..63 next ≤59 payload bytes, zero padded
//	7..63  first ≤57 payload bytes,
//	       zero padded
//
// A message of n bytes takes 1 + ceil(max(0, n-57)/59) packets, at most 129 (sequence
// numbers 0..127), so a payload is at most 57 + 128·59 = 7609 bytes.
const (
	U2FPacketSize = 64
	// U2FMaxMessageSize is the largest payload the framing can carry (129 packets).
	U2FMaxMessageSize = u2fInitPayload + 128*u2fContPayload

	// U2FCmdBitBox02 is the BitBox02's vendor command for its HWW API:
	// U2FHID_VENDOR_FIRST (0x40) + 1 with the init-packet bit (0x80).
	U2FCmdBitBox02 = 0x80 + 0x40 + 0x01
	// U2FCmdError is U2FHID_ERROR (0x3F | 0x80): the device refuses a packet.
	U2FCmdError = 0x80 | 0x3f
	// U2FBitBox02CID is the channel id BitBox's host libraries use without U2FHID_INIT
	// channel allocation (bitbox-api-rs generate_cid).
	U2FBitBox02CID = 0xff00ff00

	u2fInitPayload = U2FPacketSize - 7
	u2fContPayload = U2FPacketSize - 5
)

// Errors from the U2F HID codec. Callers branch on them with errors.Is; ErrShortPacket,
// ErrTooLarge and ErrTruncated are shared with the other codecs.
var (
	ErrU2FChannel  = errors.New("transport: u2f packet on another channel")
	ErrU2FSequence = errors.New("transport: u2f continuation packet out of sequence")
	ErrU2FCommand  = errors.New("transport: u2f packet is not an initialisation packet of the expected command")
)

// U2FPackets splits one message into 64-byte packets on channel cid with command cmd
// (the high bit must be set).
func U2FPackets(cid uint32, cmd byte, msg []byte) ([][]byte, error) {
	if len(msg) > U2FMaxMessageSize {
		return nil, fmt.Errorf("%w: %d bytes (max %d)", ErrTooLarge, len(msg), U2FMaxMessageSize)
	}
	if cmd&0x80 == 0 {
		return nil, fmt.Errorf("%w: command 0x%02x lacks the high bit", ErrU2FCommand, cmd)
	}
	p := make([]byte, U2FPacketSize)
	binary.BigEndian.PutUint32(p[0:4], cid)
	p[4] = cmd
	binary.BigEndian.PutUint16(p[5:7], uint16(len(msg)))
	rest := msg[copy(p[7:], msg):]
	pkts := [][]byte{p}
	for seq := byte(0); len(rest) > 0; seq++ {
		p = make([]byte, U2FPacketSize)
		binary.BigEndian.PutUint32(p[0:4], cid)
		p[4] = seq
		rest = rest[copy(p[5:], rest):]
		pkts = append(pkts, p)
	}
	return pkts, nil
}

// WriteU2F writes one message, one Write call per 64-byte packet (one HID report, or 64
// bytes on the simulator's TCP stream).
func WriteU2F(w io.Writer, cid uint32, cmd byte, msg []byte) error {
	pkts, err := U2FPackets(cid, cmd, msg)
	if err != nil {
		return err
	}
	for i, p := range pkts {
		if _, err := w.Write(p); err != nil {
			return fmt.Errorf("transport: write u2f packet %d of %d: %w", i+1, len(pkts), err)
		}
	}
	return nil
}

// U2FReader reassembles messages on one channel. Set CID (and Cmd to insist on one
// command; 0 takes any); then feed packets with Add.
type U2FReader struct {
	CID uint32
	Cmd byte

	cmd    byte
	want   int
	seq    byte
	body   []byte
	active bool
}

// Add feeds one packet. It returns done once a whole message has been collected; Message
// returns it and the reader is ready for the next.
func (r *U2FReader) Add(pkt []byte) (done bool, err error) {
	if len(pkt) != U2FPacketSize {
		r.Reset()
		return false, fmt.Errorf("%w: got %d", ErrShortPacket, len(pkt))
	}
	if cid := binary.BigEndian.Uint32(pkt[0:4]); cid != r.CID {
		r.Reset()
		return false, fmt.Errorf("%w: 0x%08x, want 0x%08x", ErrU2FChannel, cid, r.CID)
	}
	b := pkt[4]
	if !r.active {
		if b&0x80 == 0 || r.Cmd != 0 && b != r.Cmd {
			return false, fmt.Errorf("%w: got 0x%02x", ErrU2FCommand, b)
		}
		n := int(binary.BigEndian.Uint16(pkt[5:7]))
		if n > U2FMaxMessageSize {
			return false, fmt.Errorf("%w: %d bytes (max %d)", ErrTooLarge, n, U2FMaxMessageSize)
		}
		r.cmd, r.want, r.seq = b, n, 0
		r.body = append(make([]byte, 0, n), pkt[7:7+min(u2fInitPayload, n)]...)
		r.active = len(r.body) < r.want
		return !r.active, nil
	}
	if b != r.seq {
		r.Reset()
		return false, fmt.Errorf("%w: got 0x%02x, want %d", ErrU2FSequence, b, r.seq)
	}
	r.seq++
	r.body = append(r.body, pkt[5:5+min(u2fContPayload, r.want-len(r.body))]...)
	r.active = len(r.body) < r.want
	return !r.active, nil
}

// Reset drops a partly collected message.
func (r *U2FReader) Reset() { r.active, r.body, r.want, r.seq = false, nil, 0, 0 }

// Message returns the command and payload of the last completed message.
func (r *U2FReader) Message() (cmd byte, msg []byte) { return r.cmd, r.body }

// ReadU2F reads packets from r until one message on channel cid with command cmd is
// complete. r may be a packet link (each Read returns one report) or a byte stream (the
// simulator's TCP socket): packets are read whole with io.ReadFull.
func ReadU2F(r io.Reader, cid uint32, cmd byte) ([]byte, error) {
	rd := U2FReader{CID: cid, Cmd: cmd}
	buf := make([]byte, U2FPacketSize)
	for first := true; ; first = false {
		if _, err := io.ReadFull(r, buf); err != nil {
			if !first && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
				err = fmt.Errorf("%w: %w", ErrTruncated, err)
			}
			return nil, err
		}
		done, err := rd.Add(buf)
		if err != nil {
			return nil, err
		}
		if done {
			_, msg := rd.Message()
			return msg, nil
		}
	}
}
