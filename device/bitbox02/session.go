package bitbox02

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/flynn/noise"
	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/device"
	pb "github.com/hwbridge/hwbridge/internal/bitbox02pb"
	"github.com/hwbridge/hwbridge/transport"
)

// The HWW framing inside each U2F HID message (bitbox02-firmware src/hww.c, since firmware
// 7.0.0). A request is one request byte and its payload; a reply is one status byte and,
// after ACK, the payload. 'i' (info) is answered directly, without a status byte.
const (
	hwwReqNew   = 0x00
	hwwReqRetry = 0x01
	hwwReqInfo  = 'i'

	hwwRspAck      = 0x00
	hwwRspNotReady = 0x01 // the request runs on (a screen is up): poll with hwwReqRetry
	hwwRspBusy     = 0x02 // another request runs: send the same request again later
	hwwRspNack     = 0x03
)

// The OP codes inside a HWW request (bitbox02-firmware src/rust/bitbox02-rust/src/hww.rs
// and hww/noise.rs) and their one-byte status replies.
const (
	opUnlock       = 'u'
	opHandshake    = 'h' // start a Noise XX handshake
	opHandshakeMsg = 'H' // one handshake message
	opPairing      = 'v' // show the pairing code and wait for the person
	opNoise        = 'n' // one Noise transport message carrying a protobuf Request

	opStatusSuccess       = 0x00
	opStatusFailure       = 0x01
	opStatusUninitialized = 0x02
)

// noiseSuite is Noise_XX_25519_ChaChaPoly_SHA256, as both sides name it.
var noiseSuite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashSHA256)

// noisePrologue: both sides pass the protocol name as the Noise prologue as well
// (bitbox02-firmware bitbox-noise noise_xx.rs and bitbox-api-rs lib.rs call
// noise_protocol's HandshakeState::new with b"Noise_XX_25519_ChaChaPoly_SHA256" as the
// prologue argument), so it is mixed into the handshake hash and the pairing code.
var noisePrologue = []byte("Noise_XX_25519_ChaChaPoly_SHA256")

// Timing of the HWW polling loop. bitbox-api polls NOT_READY every 200 ms and retries BUSY
// after 1 s; a shorter poll costs a packet per tick while a screen is up.
const (
	pollInterval = 50 * time.Millisecond
	busyRetry    = 250 * time.Millisecond
	maxReply     = transport.U2FMaxMessageSize
)

// info is the device's answer to 'i'.
type info struct {
	Version     string // "v9.21.0"
	Platform    byte   // 0x00 BitBox02, 0x02 BitBox02 Nova
	Edition     byte   // 0x00 multi, 0x01 Bitcoin-only
	Unlocked    bool
	Initialized bool // false before firmware 9.20 reported it
}

// parseInfo decodes the 'i' reply: len‖version‖platform‖edition‖unlocked[‖initialized].
func parseInfo(b []byte) (info, error) {
	if len(b) < 1 || len(b) < int(b[0])+4 {
		return info{}, fmt.Errorf("%w: info reply of %d bytes", device.ErrProtocol, len(b))
	}
	n := int(b[0])
	in := info{Version: string(b[1 : 1+n]), Platform: b[1+n], Edition: b[2+n], Initialized: true}
	switch u := b[n+3]; u {
	case 0, 1:
		in.Unlocked = u == 1
	default:
		return info{}, fmt.Errorf("%w: info unlocked byte 0x%02x", device.ErrProtocol, u)
	}
	if len(b) > n+4 {
		switch v := b[n+4]; v {
		case 0, 1:
			in.Initialized = v == 1
		default:
			return info{}, fmt.Errorf("%w: info initialized byte 0x%02x", device.ErrProtocol, v)
		}
	}
	if len(in.Version) < 2 || in.Version[0] != 'v' {
		return info{}, fmt.Errorf("%w: info version %q", device.ErrProtocol, in.Version)
	}
	return in, nil
}

// PairingCode formats a Noise handshake hash as the BitBox02 shows it: the first 20
// characters of its base32 (RFC 4648, padded) in four groups of five, two per line
// (bitbox02-firmware workflow/pairing.rs format_hash).
func PairingCode(hash []byte) string {
	e := base32.StdEncoding.EncodeToString(hash)
	if len(e) < 20 {
		return e
	}
	return e[0:5] + " " + e[5:10] + "\n" + e[10:15] + " " + e[15:20]
}

// channel is one open connection to a BitBox02: U2F HID framing on a link, the HWW
// framing, and (after handshake) the Noise transport ciphers.
type channel struct {
	link transport.Link
	send *noise.CipherState
	recv *noise.CipherState
	// onScreen is called when the device answers NOT_READY: a screen waits for the person.
	onScreen    func()
	linkTimeout time.Duration
}

// raw sends one U2F message and reads the reply, bounded by ctx and by the link timeout:
// the BitBox02 answers every HWW request at once (NOT_READY while a screen waits), so a
// reply that does not come is a lost packet or a dead link, never the person.
func (c *channel) raw(ctx context.Context, msg []byte) ([]byte, error) {
	var reply []byte
	lctx, cancel := context.WithTimeout(ctx, c.linkTimeout)
	defer cancel()
	err := transport.DoContext(lctx, c.link, func() error {
		if err := transport.WriteU2F(c.link, transport.U2FBitBox02CID, transport.U2FCmdBitBox02, msg); err != nil {
			return err
		}
		var err error
		reply, err = transport.ReadU2F(c.link, transport.U2FBitBox02CID, transport.U2FCmdBitBox02)
		return err
	})
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, transport.ErrClosed) {
			return nil, fmt.Errorf("%w: %w", device.ErrDisconnected, err)
		}
		// The link deadline is the earlier one unless the caller's ends first; the I/O
		// timeout can fire a moment before either context reports it.
		linkDL, _ := lctx.Deadline()
		parentDL, bounded := ctx.Deadline()
		if (!bounded || linkDL.Before(parentDL)) && ctx.Err() == nil &&
			(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded)) {
			return nil, fmt.Errorf("%w: no reply within %s: %w", device.ErrLinkLost, c.linkTimeout, err)
		}
		return nil, err
	}
	return reply, nil
}

// info asks 'i' (no HWW status byte on the reply).
func (c *channel) info(ctx context.Context) (info, error) {
	b, err := c.raw(ctx, []byte{hwwReqInfo})
	if err != nil {
		return info{}, fmt.Errorf("info: %w", err)
	}
	return parseInfo(b)
}

// hww runs one HWW request: NEW, then RETRY while the device answers NOT_READY (a screen
// is up), resending while it answers BUSY. It returns the payload after ACK.
func (c *channel) hww(ctx context.Context, payload []byte) ([]byte, error) {
	req := append([]byte{hwwReqNew}, payload...)
	shown := false
	for {
		r, err := c.raw(ctx, req)
		if err != nil {
			return nil, err
		}
		if len(r) == 0 {
			return nil, fmt.Errorf("%w: empty hww reply", device.ErrProtocol)
		}
		switch r[0] {
		case hwwRspAck:
			return r[1:], nil
		case hwwRspBusy:
			if err := sleep(ctx, busyRetry); err != nil {
				return nil, fmt.Errorf("%w: %w", device.ErrBusy, err)
			}
			req = append([]byte{hwwReqNew}, payload...)
			continue
		case hwwRspNotReady:
			if !shown && c.onScreen != nil {
				c.onScreen()
			}
			shown = true
			if err := sleep(ctx, pollInterval); err != nil {
				return nil, err
			}
			req = []byte{hwwReqRetry}
			continue
		case hwwRspNack:
			return nil, fmt.Errorf("%w: the device refused the request (hww nack)", device.ErrProtocol)
		}
		return nil, fmt.Errorf("%w: hww status 0x%02x", device.ErrProtocol, r[0])
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// drain collects the result of a request an earlier session abandoned: RETRY answers ACK
// with it (dropped), NACK when there is none, NOT_READY while its screen is still up.
func (c *channel) drain(ctx context.Context) error {
	r, err := c.raw(ctx, []byte{hwwReqRetry})
	if err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	if len(r) > 0 && r[0] == hwwRspNotReady {
		return fmt.Errorf("%w: an interrupted request still shows a screen on the BitBox02: confirm or reject it there, then retry", device.ErrBusy)
	}
	return nil
}

// op runs an OP code whose reply is a single status byte plus data.
func (c *channel) op(ctx context.Context, code byte, data []byte) ([]byte, error) {
	r, err := c.hww(ctx, append([]byte{code}, data...))
	if err != nil {
		return nil, err
	}
	if len(r) == 0 {
		return nil, fmt.Errorf("%w: empty reply to op %q", device.ErrProtocol, code)
	}
	return r, nil
}

// Pairing is what the driver needs to pair: a store for the keys, and a way to show the
// pairing code to the person (who compares it with the device's screen).
type Pairing struct {
	Store Store
	// ShowCode gets the pairing code while the device shows the same code and waits for
	// the person to confirm it there. nil: nobody is told (tests with an auto-confirming
	// device).
	ShowCode func(code string)
}

// handshake unlocks the device, runs Noise XX as initiator with the host's static key, and
// pairs when the device or the host asks for it: the handshake hash (the channel binding
// both sides computed) becomes a pairing code the device shows and the host prints; the
// person confirms that they match on the device. A device key seen before and a device that
// does not ask skip the confirmation, as bitbox-api does.
func (c *channel) handshake(ctx context.Context, p Pairing) error {
	r, err := c.op(ctx, opUnlock, nil)
	if err != nil {
		return fmt.Errorf("unlock: %w", err)
	}
	switch r[0] {
	case opStatusSuccess:
	case opStatusUninitialized:
		return fmt.Errorf("unlock: %w: the device has no seed yet (set it up with the BitBoxApp)", device.ErrLocked)
	default:
		return fmt.Errorf("unlock: %w: unlock status 0x%02x", device.ErrLocked, r[0])
	}
	keys, err := p.Store.Load()
	if err != nil {
		return fmt.Errorf("pairing store: %w", err)
	}
	host, err := keys.hostKey(p.Store)
	if err != nil {
		return fmt.Errorf("pairing store: %w", err)
	}
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite: noiseSuite, Random: rand.Reader, Pattern: noise.HandshakeXX, Prologue: noisePrologue,
		Initiator: true, StaticKeypair: host,
	})
	if err != nil {
		return fmt.Errorf("noise: %w", err)
	}
	if r, err := c.op(ctx, opHandshake, nil); err != nil {
		return fmt.Errorf("handshake: %w", err)
	} else if len(r) != 1 || r[0] != opStatusSuccess {
		return fmt.Errorf("handshake: %w: start refused (%x)", device.ErrProtocol, r)
	}
	m1, _, _, err := hs.WriteMessage(nil, nil)
	if err != nil {
		return fmt.Errorf("noise: %w", err)
	}
	r, err = c.op(ctx, opHandshakeMsg, m1)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	if r[0] != opStatusSuccess {
		return fmt.Errorf("handshake: %w: message 2 refused", device.ErrProtocol)
	}
	if _, _, _, err := hs.ReadMessage(nil, r[1:]); err != nil {
		return fmt.Errorf("handshake: %w: message 2: %w", device.ErrProtocol, err)
	}
	m3, send, recv, err := hs.WriteMessage(nil, nil)
	if err != nil {
		return fmt.Errorf("noise: %w", err)
	}
	r, err = c.op(ctx, opHandshakeMsg, m3)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	if len(r) != 2 || r[0] != opStatusSuccess || r[1] > 1 {
		return fmt.Errorf("handshake: %w: message 3 reply %x", device.ErrProtocol, r)
	}
	deviceKey := hs.PeerStatic()
	if r[1] == 1 || !keys.knows(deviceKey) {
		if p.ShowCode != nil {
			p.ShowCode(PairingCode(hs.ChannelBinding()))
		}
		v, err := c.op(ctx, opPairing, nil)
		if err != nil {
			return fmt.Errorf("pairing: %w", err)
		}
		if len(v) != 1 || v[0] != opStatusSuccess {
			return fmt.Errorf("pairing: the pairing code was not confirmed: %w", device.ErrUserRejected)
		}
		if err := p.Store.AddDevice(deviceKey); err != nil {
			return fmt.Errorf("pairing store: %w", err)
		}
	}
	c.send, c.recv = send, recv
	return nil
}

// maxNoise is the largest Noise transport message (the Noise spec's 65535 bytes).
const maxNoise = 65535

// call sends one protobuf request over the Noise channel and returns the response; an
// Error response becomes a *device.Error.
func (c *channel) call(ctx context.Context, op string, req *pb.Request) (*pb.Response, error) {
	if c.send == nil {
		return nil, fmt.Errorf("%w: no noise channel", device.ErrProtocol)
	}
	plain, err := proto.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", device.ErrInvalidInput, err)
	}
	// Checked before encrypting: an encryption not sent would put the nonces out of step.
	// HWW byte, OP byte, ciphertext and its 16-byte tag must fit the U2F framing.
	if n := 2 + len(plain) + 16; n > transport.U2FMaxMessageSize {
		return nil, fmt.Errorf("%w: request of %d bytes is too large (max %d)", device.ErrInvalidInput, n, transport.U2FMaxMessageSize)
	}
	ct, err := c.send.Encrypt([]byte{opNoise}, nil, plain)
	if err != nil {
		return nil, fmt.Errorf("noise encrypt: %w", err)
	}
	r, err := c.hww(ctx, ct)
	if err != nil {
		return nil, err
	}
	if len(r) < 2 || r[0] != opStatusSuccess {
		return nil, fmt.Errorf("%w: the device refused the noise message (status %x)", device.ErrProtocol, r[:min(1, len(r))])
	}
	resp, err := decodeResponse(c.recv, r[1:])
	if err != nil {
		return nil, err
	}
	if e := resp.GetError(); e != nil {
		return nil, apiError(op, e)
	}
	return resp, nil
}

// decodeResponse decrypts and unmarshals one Noise transport message. Its input comes from
// the device: FuzzDecodeResponse covers it.
func decodeResponse(cs *noise.CipherState, ct []byte) (*pb.Response, error) {
	if len(ct) > maxNoise {
		return nil, fmt.Errorf("%w: noise message of %d bytes", device.ErrProtocol, len(ct))
	}
	plain, err := cs.Decrypt(nil, nil, ct)
	if err != nil {
		return nil, fmt.Errorf("%w: noise decrypt: %w", device.ErrProtocol, err)
	}
	return parseResponse(plain)
}

// parseResponse decodes a decrypted API response (FuzzParseResponse).
func parseResponse(plain []byte) (*pb.Response, error) {
	resp := new(pb.Response)
	if err := proto.Unmarshal(plain, resp); err != nil {
		return nil, fmt.Errorf("%w: response: %w", device.ErrProtocol, err)
	}
	if resp.Response == nil {
		return nil, fmt.Errorf("%w: empty response", device.ErrProtocol)
	}
	return resp, nil
}

// API error codes (bitbox02-firmware hww/api/error.rs make_error).
const (
	codeInvalidInput = 101
	codeMemory       = 102
	codeGeneric      = 103
	codeUserAbort    = 104
	codeInvalidState = 105
	codeDisabled     = 106
	codeDuplicate    = 107
)

func apiError(op string, e *pb.Error) error {
	de := &device.Error{Op: op, Family: device.FamilyBitBox02, Code: int(e.GetCode()), Message: e.GetMessage()}
	switch e.GetCode() {
	case codeUserAbort:
		de.Kind = device.ErrUserRejected
	case codeInvalidInput:
		de.Kind = device.ErrInvalidInput
	case codeInvalidState:
		de.Kind = device.ErrLocked
	case codeDisabled:
		de.Kind = errors.ErrUnsupported
	default:
		de.Kind = device.ErrProtocol
	}
	return de
}
