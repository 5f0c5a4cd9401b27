package transport

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/btcsuite/btcd/btcec/v2"
)

// Coldcard USB framing (ckcc-protocol PROTOCOL.md and ckcc/client.py; firmware
// shared/usb.py). Hand-written from those documents: no Go implementation exists.
//
// Every packet is 64 bytes, a framing byte then 63 payload bytes (zero padded):
//
//	bits 0..5  length of this packet's payload (0..63)
//	bit 6      0x40: the message is encrypted (set on the last packet)
//	bit 7      0x80: last packet of the message
//
// A message (request or reply) starts with a 4-byte ASCII code. A zero-length packet resets
// the device's reassembly and gets no reply (client.py's resync sends 0x80 then 63 × 0xFF).
// Over USB each packet is one HID report; over the simulator's unix datagram socket each
// packet is one 64-byte datagram.
const (
	ColdcardPacketSize = 64
	// ColdcardMaxRequest is the firmware's MAX_MSG_LEN: 4+4+4+MAX_BLK_LEN (2048).
	ColdcardMaxRequest = 4 + 4 + 4 + 2048
	// ColdcardMaxReply bounds a reply the host reassembles: the firmware's largest is a
	// 2048-byte download block or a JSON status report, far below this.
	ColdcardMaxReply = 1 << 16

	ccPayload   = ColdcardPacketSize - 1
	ccLast      = 0x80
	ccEncrypted = 0x40
	ccLenMask   = 0x3f
)

// Errors of the Coldcard codec.
var (
	ErrColdcardFraming = errors.New("transport: coldcard framing error")
)

// ColdcardPackets splits msg into 64-byte packets, the last flagged (and, if encrypted,
// flagged encrypted). msg must be 1..max bytes; the codec never sends empty messages.
func ColdcardPackets(msg []byte, encrypted bool) ([][]byte, error) {
	if len(msg) == 0 {
		return nil, fmt.Errorf("%w: empty message", ErrColdcardFraming)
	}
	if len(msg) > ColdcardMaxReply {
		return nil, fmt.Errorf("%w: %d bytes (max %d)", ErrTooLarge, len(msg), ColdcardMaxReply)
	}
	pkts := make([][]byte, 0, (len(msg)+ccPayload-1)/ccPayload)
	for rest := msg; len(rest) > 0; {
		p := make([]byte, ColdcardPacketSize)
		n := copy(p[1:], rest)
		rest = rest[n:]
		p[0] = byte(n)
		if len(rest) == 0 {
			p[0] |= ccLast
			if encrypted {
				p[0] |= ccEncrypted
			}
		}
		pkts = append(pkts, p)
	}
	return pkts, nil
}

// ColdcardReassembler collects packets into one message, as the firmware's usb_hid_recv
// does: a zero-length packet drops what was collected, the last packet completes it.
type ColdcardReassembler struct {
	// Max bounds the message length (ColdcardMaxRequest on the device side,
	// ColdcardMaxReply on the host side); 0 means ColdcardMaxReply.
	Max int
	buf []byte
}

// Add takes one packet. It returns the whole message when pkt was its last packet, with
// whether it was flagged encrypted. An error (wrong size, too long, shorter than the 4-byte
// code) also drops what was collected.
func (r *ColdcardReassembler) Add(pkt []byte) (msg []byte, encrypted, done bool, err error) {
	if len(pkt) != ColdcardPacketSize {
		r.buf = r.buf[:0]
		return nil, false, false, fmt.Errorf("%w: packet of %d bytes, want %d", ErrColdcardFraming, len(pkt), ColdcardPacketSize)
	}
	limit := r.Max
	if limit <= 0 {
		limit = ColdcardMaxReply
	}
	flag := pkt[0]
	n := int(flag & ccLenMask)
	if n == 0 {
		r.buf = r.buf[:0]
		return nil, false, false, nil
	}
	if len(r.buf)+n > limit {
		r.buf = r.buf[:0]
		return nil, false, false, fmt.Errorf("%w: message longer than %d bytes", ErrColdcardFraming, limit)
	}
	r.buf = append(r.buf, pkt[1:1+n]...)
	if flag&ccLast == 0 {
		return nil, false, false, nil
	}
	msg = r.buf
	r.buf = nil
	if len(msg) < 4 {
		return nil, false, false, fmt.Errorf("%w: message of %d bytes has no 4-byte code", ErrColdcardFraming, len(msg))
	}
	return msg, flag&ccEncrypted != 0, true, nil
}

// WriteColdcard sends msg as packets on w, one Write per packet.
func WriteColdcard(w io.Writer, msg []byte, encrypted bool) error {
	pkts, err := ColdcardPackets(msg, encrypted)
	if err != nil {
		return err
	}
	for _, p := range pkts {
		if _, err := w.Write(p); err != nil {
			return fmt.Errorf("transport: coldcard write: %w", err)
		}
	}
	return nil
}

// ReadColdcard reads packets from r (one per Read) until a message is complete.
func ReadColdcard(r io.Reader) (msg []byte, encrypted bool, err error) {
	ra := ColdcardReassembler{Max: ColdcardMaxReply}
	buf := make([]byte, udpMaxDatagram)
	for {
		n, err := r.Read(buf)
		if err != nil {
			return nil, false, fmt.Errorf("transport: coldcard read: %w", err)
		}
		msg, enc, done, err := ra.Add(buf[:n])
		if err != nil {
			return nil, false, err
		}
		if done {
			return msg, enc, nil
		}
	}
}

// ColdcardResync is the packet client.py's resync writes: zero length, last, 0xFF padding.
// The device drops any partial message and sends nothing back.
func ColdcardResync() []byte {
	p := make([]byte, ColdcardPacketSize)
	p[0] = ccLast
	for i := 1; i < len(p); i++ {
		p[i] = 0xff
	}
	return p
}

// ColdcardSession is the link encryption set up by the 'ncry' command: AES-256-CTR keyed
// with the ECDH session key, one keystream per direction, each with the counter starting at
// zero (a 128-bit big-endian block counter, pyaes.Counter(0) on the host and the
// firmware's aes256ctr) and running on across messages.
type ColdcardSession struct {
	Key     [32]byte
	out, in cipher.Stream
	mu      sync.Mutex
}

// NewColdcardSession starts both keystreams at counter zero.
func NewColdcardSession(key [32]byte) *ColdcardSession {
	return &ColdcardSession{Key: key, out: ctr(key), in: ctr(key)}
}

func ctr(key [32]byte) cipher.Stream {
	b, err := aes.NewCipher(key[:])
	if err != nil {
		panic(err) // a 32-byte key is always valid
	}
	return cipher.NewCTR(b, make([]byte, aes.BlockSize))
}

// Seal encrypts a message this side sends.
func (s *ColdcardSession) Seal(msg []byte) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]byte, len(msg))
	s.out.XORKeyStream(out, msg)
	return out
}

// Open decrypts a message this side received.
func (s *ColdcardSession) Open(msg []byte) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]byte, len(msg))
	s.in.XORKeyStream(out, msg)
	return out
}

// ColdcardSessionKey is the session key both sides derive: SHA-256 of the shared secp256k1
// point, serialised as X‖Y (32 bytes each). peer is the other side's 64-byte uncompressed
// public key without its 04 prefix, as 'ncry' and 'mypb' carry it; it must be on the curve.
func ColdcardSessionKey(priv *btcec.PrivateKey, peer []byte) ([32]byte, error) {
	if len(peer) != 64 {
		return [32]byte{}, fmt.Errorf("%w: session public key of %d bytes, want 64", ErrColdcardFraming, len(peer))
	}
	pub, err := btcec.ParsePubKey(append([]byte{0x04}, peer...))
	if err != nil {
		return [32]byte{}, fmt.Errorf("%w: session public key: %w", ErrColdcardFraming, err)
	}
	var p, r btcec.JacobianPoint
	pub.AsJacobian(&p)
	btcec.ScalarMultNonConst(&priv.Key, &p, &r)
	r.ToAffine()
	var xy [64]byte
	r.X.PutBytesUnchecked(xy[:32])
	r.Y.PutBytesUnchecked(xy[32:])
	return sha256.Sum256(xy[:]), nil
}

// ColdcardPubKey64 is pub in the 64-byte form 'ncry' and 'mypb' carry (uncompressed, no
// 04 prefix).
func ColdcardPubKey64(pub *btcec.PublicKey) []byte { return pub.SerializeUncompressed()[1:] }

// The Coldcard simulator's socket (ckcc-protocol client.py UnixSimulatorPipe; firmware
// unix/ simulator): a unix datagram socket at a path (DefaultColdcardSimulator unless the
// simulator was started with another). The client binds its own socket to a path of its
// choosing, connects to the simulator's, and sends each 64-byte packet as one datagram; the
// simulator answers each packet of the reply as one 64-byte datagram to the client's path.

// DefaultColdcardSimulator is where the Coldcard simulator (and hwemu --coldcard) listens.
const DefaultColdcardSimulator = "/tmp/ckcc-simulator.sock"

var unixClientSeq atomic.Uint64

// UnixgramLink is a client socket connected to a Coldcard simulator. Each Write sends one
// datagram and each Read returns one.
type UnixgramLink struct {
	*net.UnixConn
	local string
	once  sync.Once
}

// DialColdcardSim connects to the simulator's socket at path, binding a client socket in
// the temporary directory (removed again by Close). Nothing listening gives ErrNoDevice.
func DialColdcardSim(ctx context.Context, path string) (*UnixgramLink, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dir := os.TempDir()
	if len(dir) > 60 { // sun_path holds 108 bytes; macOS temp dirs are long
		dir = "/tmp"
	}
	local := filepath.Join(dir, fmt.Sprintf("ckcc-client-hwbridge-%d-%d.sock", os.Getpid(), unixClientSeq.Add(1)))
	_ = os.Remove(local)
	c, err := net.DialUnix("unixgram", &net.UnixAddr{Name: local, Net: "unixgram"}, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		_ = os.Remove(local)
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			return nil, fmt.Errorf("transport: nothing listening on unix:%s (start hwemu --coldcard or the coldcard simulator, or check the path): %w: %w", path, ErrNoDevice, err)
		}
		return nil, fmt.Errorf("transport: dial unix:%s: %w", path, err)
	}
	return &UnixgramLink{UnixConn: c, local: local}, nil
}

// Read returns one datagram.
func (l *UnixgramLink) Read(b []byte) (int, error) {
	n, err := l.UnixConn.Read(b)
	return n, goneErr("unix read", err)
}

// Write sends b as one datagram.
func (l *UnixgramLink) Write(b []byte) (int, error) {
	n, err := l.UnixConn.Write(b)
	if errors.Is(err, syscall.ENOENT) {
		err = fmt.Errorf("%w: %w", syscall.ECONNREFUSED, err)
	}
	return n, goneErr("unix write", err)
}

// Close closes the socket and removes its path.
func (l *UnixgramLink) Close() error {
	var err error
	l.once.Do(func() {
		err = l.UnixConn.Close()
		_ = os.Remove(l.local)
	})
	return err
}
