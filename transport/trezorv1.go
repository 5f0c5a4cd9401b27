package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Trezor Codec v1 ("?##" framing), as in trezor-firmware common/protob/protocol.md.
//
// Every packet is exactly 64 bytes:
//
//	first packet         continuation packet
//	0..2  3F 23 23 "?##"  0     3F "?"
//	3..4  type, u16 BE    1..63 next body bytes, zero padded
//	5..8  length, u32 BE
//	9..63 first ≤55 body bytes, zero padded
//
// A message of n body bytes takes 1 + ceil(max(0, n-55)/63) packets.
const (
	V1PacketSize = 64
	// V1MaxMessageSize caps the length a peer may declare. Real firmware buffers are far
	// smaller; the largest thing we carry is a 1 KiB Ethereum data chunk or a
	// serialized-transaction chunk.
	V1MaxMessageSize = 1 << 20

	v1FirstPayload = V1PacketSize - 9
	v1ContPayload  = V1PacketSize - 1
)

// Errors from the v1 codec. Callers branch on them with errors.Is.
var (
	ErrBadMagic     = errors.New("transport: bad packet magic")
	ErrShortPacket  = errors.New("transport: packet is not 64 bytes")
	ErrTooLarge     = errors.New("transport: declared message length too large")
	ErrTruncated    = errors.New("transport: message truncated")
	ErrUnexpectedV1 = errors.New("transport: continuation packet without a message start")
)

// V1Packets splits one message into 64-byte packets.
func V1Packets(typ uint16, body []byte) ([][]byte, error) {
	if len(body) > V1MaxMessageSize {
		return nil, fmt.Errorf("%w: %d bytes (max %d)", ErrTooLarge, len(body), V1MaxMessageSize)
	}
	n := 1
	if len(body) > v1FirstPayload {
		n += (len(body) - v1FirstPayload + v1ContPayload - 1) / v1ContPayload
	}
	pkts := make([][]byte, 0, n)
	p := make([]byte, V1PacketSize)
	p[0], p[1], p[2] = '?', '#', '#'
	binary.BigEndian.PutUint16(p[3:5], typ)
	binary.BigEndian.PutUint32(p[5:9], uint32(len(body)))
	rest := body[copy(p[9:], body):]
	pkts = append(pkts, p)
	for len(rest) > 0 {
		p = make([]byte, V1PacketSize)
		p[0] = '?'
		rest = rest[copy(p[1:], rest):]
		pkts = append(pkts, p)
	}
	return pkts, nil
}

// WriteV1 writes one message, one Write call per packet (one HID report or UDP datagram).
func WriteV1(w io.Writer, typ uint16, body []byte) error {
	pkts, err := V1Packets(typ, body)
	if err != nil {
		return err
	}
	for i, p := range pkts {
		if _, err := w.Write(p); err != nil {
			return fmt.Errorf("transport: write packet %d of %d: %w", i+1, len(pkts), err)
		}
	}
	return nil
}

// V1Reader reassembles messages from packets. The zero value is ready to use.
type V1Reader struct {
	typ    uint16
	want   int
	body   []byte
	active bool
}

// Add feeds one packet. It returns done once a whole message has been collected; Message
// then returns it and the reader is ready for the next. As in the firmware, a packet that
// arrives mid-message is always a continuation: body bytes may look like "##". Callers that
// see a peer give up half-way (a new UDP source, a timeout) call Reset.
func (r *V1Reader) Add(pkt []byte) (done bool, err error) {
	if len(pkt) != V1PacketSize {
		r.Reset()
		return false, fmt.Errorf("%w: got %d", ErrShortPacket, len(pkt))
	}
	if pkt[0] != '?' {
		r.Reset()
		return false, fmt.Errorf("%w: packet starts %x", ErrBadMagic, pkt[:3])
	}
	if !r.active {
		if pkt[1] != '#' || pkt[2] != '#' {
			return false, fmt.Errorf("%w: packet starts %x", ErrUnexpectedV1, pkt[:3])
		}
		return r.start(pkt)
	}
	r.body = append(r.body, pkt[1:min(V1PacketSize, 1+r.want-len(r.body))]...)
	r.active = len(r.body) < r.want
	return !r.active, nil
}

// Reset drops a partly collected message.
func (r *V1Reader) Reset() { r.active, r.body, r.want = false, nil, 0 }

// Pending reports whether a message is partly collected.
func (r *V1Reader) Pending() bool { return r.active }

func (r *V1Reader) start(pkt []byte) (bool, error) {
	l := binary.BigEndian.Uint32(pkt[5:9])
	if l > V1MaxMessageSize {
		r.active = false
		return false, fmt.Errorf("%w: %d bytes (max %d)", ErrTooLarge, l, V1MaxMessageSize)
	}
	r.typ = binary.BigEndian.Uint16(pkt[3:5])
	r.want = int(l)
	r.body = make([]byte, 0, r.want)
	r.body = append(r.body, pkt[9:9+min(v1FirstPayload, r.want)]...)
	r.active = len(r.body) < r.want
	return !r.active, nil
}

// Message returns the last completed message.
func (r *V1Reader) Message() (typ uint16, body []byte) { return r.typ, r.body }

// ReadV1 reads packets from r until one message is complete. Each Read must return exactly
// one packet, as a HID report or a UDP datagram does.
func ReadV1(r io.Reader) (typ uint16, body []byte, err error) {
	var rd V1Reader
	buf := make([]byte, V1PacketSize+1)
	first := true
	for {
		n, err := r.Read(buf)
		if err != nil {
			if !first && errors.Is(err, io.EOF) {
				err = ErrTruncated
			}
			return 0, nil, err
		}
		if first && n == V1PacketSize && (buf[0] != '?' || buf[1] != '#' || buf[2] != '#') {
			return 0, nil, fmt.Errorf("%w: first packet starts %x, want 3f2323", ErrBadMagic, buf[:3])
		}
		done, err := rd.Add(buf[:n])
		if err != nil {
			return 0, nil, err
		}
		first = false
		if done {
			typ, body = rd.Message()
			return typ, body, nil
		}
	}
}
