package bitbox02

import (
	"crypto/rand"
	"encoding/base32"

	"github.com/flynn/noise"
	"google.golang.org/protobuf/proto"

	pb "github.com/hwbridge/hwbridge/internal/bitbox02pb"
)

// OP codes inside a HWW request and their status bytes (bitbox02-firmware
// src/rust/bitbox02-rust/src/hww.rs and hww/noise.rs).
const (
	opUnlock       = 'u'
	opAttestation  = 'a'
	opHandshake    = 'h'
	opHandshakeMsg = 'H'
	opPairing      = 'v'
	opNoise        = 'n'

	opStatusSuccess = 0x00
	opStatusFailure = 0x01
)

var noiseSuite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashSHA256)

// noisePrologue: both sides pass the protocol name as the Noise prologue as well
// (bitbox02-firmware bitbox-noise noise_xx.rs and bitbox-api-rs lib.rs call
// noise_protocol's HandshakeState::new with b"Noise_XX_25519_ChaChaPoly_SHA256" as the
// prologue argument), so it is mixed into the handshake hash and the pairing code.
var noisePrologue = []byte("Noise_XX_25519_ChaChaPoly_SHA256")

// noiseState is the device side of the Noise XX channel (responder), as
// bitbox_noise::State: nothing → handshaking → done; the channel carries API requests only
// once the pairing is verified (the host key was confirmed before, or now with 'v').
type noiseState struct {
	hs       *noise.HandshakeState
	step     int // handshake messages read
	hash     []byte
	remote   []byte
	send     *noise.CipherState
	recv     *noise.CipherState
	verified bool
}

func (n *noiseState) reset() { *n = noiseState{} }

// maxNoise caps a Noise message (the Noise spec's 65535 bytes).
const maxNoise = 65535

// process runs one OP request and returns its reply (status byte and data).
func (cn *conn) process(j *job, req []byte) []byte {
	fail := []byte{opStatusFailure}
	if len(req) == 0 {
		return fail
	}
	n := cn.noise
	op, rest := req[0], req[1:]
	switch op {
	case opUnlock:
		if len(rest) != 0 {
			return fail
		}
		// The emulator is always seeded and unlocked: no password screen.
		return []byte{opStatusSuccess}
	case opAttestation:
		// The emulator holds no attestation certificate from the factory.
		return fail
	case opHandshake:
		if len(rest) != 0 {
			return fail
		}
		n.reset()
		hs, err := noise.NewHandshakeState(noise.Config{
			CipherSuite: noiseSuite, Random: rand.Reader, Pattern: noise.HandshakeXX, Prologue: noisePrologue,
			Initiator: false, StaticKeypair: cn.d.static,
		})
		if err != nil {
			return fail
		}
		n.hs = hs
		return []byte{opStatusSuccess}
	case opHandshakeMsg:
		return cn.handshake(rest)
	case opPairing:
		if len(rest) != 0 || n.send == nil {
			return fail
		}
		ok, err := cn.ask(j, "Pairing code", pairingCode(n.hash))
		if err != nil || !ok {
			n.reset()
			return fail
		}
		n.verified = true
		cn.d.addPaired(n.remote)
		return []byte{opStatusSuccess}
	case opNoise:
		if n.send == nil || !n.verified || len(rest) > maxNoise {
			return fail
		}
		plain, err := n.recv.Decrypt(nil, nil, rest)
		if err != nil {
			return fail
		}
		resp := cn.api.handle(j, plain)
		b, err := proto.Marshal(resp)
		if err != nil {
			return fail
		}
		ct, err := n.send.Encrypt([]byte{opStatusSuccess}, nil, b)
		if err != nil {
			return fail
		}
		return ct
	}
	return fail
}

// handshake takes message 1 (→ e) and answers message 2 (← e, ee, s, es), then takes
// message 3 (→ s, se) and answers whether the person must confirm the pairing code.
func (cn *conn) handshake(msg []byte) []byte {
	n := cn.noise
	fail := []byte{opStatusFailure}
	if n.hs == nil || len(msg) > maxNoise {
		return fail
	}
	switch n.step {
	case 0:
		if _, _, _, err := n.hs.ReadMessage(nil, msg); err != nil {
			n.reset()
			return fail
		}
		out, _, _, err := n.hs.WriteMessage([]byte{opStatusSuccess}, nil)
		if err != nil {
			n.reset()
			return fail
		}
		n.step = 1
		return out
	case 1:
		_, recv, send, err := n.hs.ReadMessage(nil, msg)
		if err != nil || send == nil {
			n.reset()
			return fail
		}
		n.hash, n.remote = n.hs.ChannelBinding(), n.hs.PeerStatic()
		n.send, n.recv, n.hs, n.step = send, recv, nil, 2
		if cn.d.isPaired(n.remote) {
			n.verified = true
			return []byte{opStatusSuccess, 0x00}
		}
		return []byte{opStatusSuccess, 0x01}
	}
	return fail
}

// pairingCode is the screen text for a handshake hash (workflow/pairing.rs format_hash).
func pairingCode(hash []byte) string {
	e := base32.StdEncoding.EncodeToString(hash)
	return e[0:5] + " " + e[5:10] + "\n" + e[10:15] + " " + e[15:20]
}

// errorResponse is the API's Error response (hww/api/error.rs make_error).
func errorResponse(code int32) *pb.Response {
	msg := map[int32]string{
		codeInvalidInput: "invalid input", codeGeneric: "generic error", codeUserAbort: "aborted by the user",
		codeInvalidState: "can't call this endpoint: wrong state", codeDisabled: "function disabled",
	}[code]
	return &pb.Response{Response: &pb.Response_Error{Error: &pb.Error{Code: code, Message: msg}}}
}

const (
	codeInvalidInput = 101
	codeGeneric      = 103
	codeUserAbort    = 104
	codeInvalidState = 105
	codeDisabled     = 106
)
