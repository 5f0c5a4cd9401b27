package bitbox02

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/flynn/noise"
	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/emulator"
	pb "github.com/hwbridge/hwbridge/internal/bitbox02pb"
	"github.com/hwbridge/hwbridge/transport"
)

// testHost is a bare host for the emulator's own tests (the driver lives under device/ and
// may not be imported here): U2F HID framing, HWW requests, a Noise XX initiator.
type testHost struct {
	t    testing.TB
	c    net.Conn
	send *noise.CipherState
	recv *noise.CipherState
	code []byte // handshake hash
}

func newHost(t testing.TB, d *Device) *testHost {
	c := d.Pipe().(net.Conn)
	t.Cleanup(func() { c.Close() })
	return &testHost{t: t, c: c}
}

func (h *testHost) raw(msg []byte) []byte {
	h.t.Helper()
	_ = h.c.SetDeadline(time.Now().Add(30 * time.Second))
	if err := transport.WriteU2F(h.c, transport.U2FBitBox02CID, transport.U2FCmdBitBox02, msg); err != nil {
		h.t.Fatal(err)
	}
	r, err := transport.ReadU2F(h.c, transport.U2FBitBox02CID, transport.U2FCmdBitBox02)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// hww sends a NEW request and polls RETRY while the device answers NOT_READY.
func (h *testHost) hww(payload []byte) []byte {
	h.t.Helper()
	r := h.raw(append([]byte{hwwReqNew}, payload...))
	for len(r) == 1 && r[0] == hwwRspNotReady {
		r = h.raw([]byte{hwwReqRetry})
	}
	if len(r) == 0 || r[0] != hwwRspAck {
		h.t.Fatalf("hww reply %x", r)
	}
	return r[1:]
}

// pair unlocks, handshakes and confirms the pairing code when asked.
func (h *testHost) pair() {
	h.t.Helper()
	if r := h.hww([]byte{opUnlock}); !bytes.Equal(r, []byte{0}) {
		h.t.Fatalf("unlock %x", r)
	}
	kp, _ := noiseSuite.GenerateKeypair(rand.Reader)
	hs, err := noise.NewHandshakeState(noise.Config{CipherSuite: noiseSuite, Random: rand.Reader, Pattern: noise.HandshakeXX, Prologue: noisePrologue, Initiator: true, StaticKeypair: kp})
	if err != nil {
		h.t.Fatal(err)
	}
	if r := h.hww([]byte{opHandshake}); !bytes.Equal(r, []byte{0}) {
		h.t.Fatalf("handshake start %x", r)
	}
	m1, _, _, _ := hs.WriteMessage(nil, nil)
	r := h.hww(append([]byte{opHandshakeMsg}, m1...))
	if r[0] != 0 {
		h.t.Fatalf("message 2 %x", r)
	}
	if _, _, _, err := hs.ReadMessage(nil, r[1:]); err != nil {
		h.t.Fatal(err)
	}
	m3, send, recv, _ := hs.WriteMessage(nil, nil)
	r = h.hww(append([]byte{opHandshakeMsg}, m3...))
	if len(r) != 2 || r[0] != 0 {
		h.t.Fatalf("message 3 reply %x", r)
	}
	h.send, h.recv, h.code = send, recv, hs.ChannelBinding()
	if r[1] == 1 {
		if v := h.hww([]byte{opPairing}); !bytes.Equal(v, []byte{0}) {
			h.t.Fatalf("pairing %x", v)
		}
	}
}

// call sends one API request and returns the decrypted response.
func (h *testHost) call(req *pb.Request) *pb.Response {
	h.t.Helper()
	b, err := proto.Marshal(req)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.callRaw(b)
}

func (h *testHost) callRaw(plain []byte) *pb.Response {
	h.t.Helper()
	ct, _ := h.send.Encrypt([]byte{opNoise}, nil, plain)
	r := h.hww(ct)
	if r[0] != 0 {
		h.t.Fatalf("noise message refused %x", r)
	}
	p, err := h.recv.Decrypt(nil, nil, r[1:])
	if err != nil {
		h.t.Fatal(err)
	}
	resp := new(pb.Response)
	if err := proto.Unmarshal(p, resp); err != nil || resp.Response == nil {
		h.t.Fatalf("response %x: %v", p, err)
	}
	return resp
}

func TestHWWFraming(t *testing.T) {
	appr := emulator.NewApprover(emulator.PolicyPrompt)
	d := NewForTest(t, Config{Approver: appr})
	h := newHost(t, d)
	// 'i' comes back without a status byte.
	if got := h.raw([]byte{hwwReqInfo}); !bytes.Equal(got, append(append([]byte{byte(len(Version))}, Version...), 0, 0, 1, 1)) {
		t.Fatalf("info %x", got)
	}
	// RETRY with nothing outstanding, an empty request, an unknown request: NACK.
	for _, m := range [][]byte{{hwwReqRetry}, {}, {0x77}} {
		if got := h.raw(m); !bytes.Equal(got, []byte{hwwRspNack}) {
			t.Errorf("%x: %x, want nack", m, got)
		}
	}
	// Unknown OP codes and noise messages before a handshake fail with status 1.
	for _, m := range [][]byte{{'z'}, {opNoise, 1, 2, 3}, {opPairing}, {opHandshakeMsg, 1}} {
		if got := h.hww(m); !bytes.Equal(got, []byte{opStatusFailure}) {
			t.Errorf("op %x: %x", m, got)
		}
	}
	// The pairing screen waits for the person: NOT_READY, BUSY for a new request meanwhile,
	// then the answer once pressed.
	h.hww([]byte{opUnlock})
	h.hww([]byte{opHandshake})
	kp, _ := noiseSuite.GenerateKeypair(rand.Reader)
	hs, _ := noise.NewHandshakeState(noise.Config{CipherSuite: noiseSuite, Random: rand.Reader, Pattern: noise.HandshakeXX, Prologue: noisePrologue, Initiator: true, StaticKeypair: kp})
	m1, _, _, _ := hs.WriteMessage(nil, nil)
	r := h.hww(append([]byte{opHandshakeMsg}, m1...))
	hs.ReadMessage(nil, r[1:])
	m3, _, _, _ := hs.WriteMessage(nil, nil)
	if r := h.hww(append([]byte{opHandshakeMsg}, m3...)); !bytes.Equal(r, []byte{0, 1}) {
		t.Fatalf("a new host must pair: %x", r)
	}
	if r := h.raw([]byte{hwwReqNew, opPairing}); !bytes.Equal(r, []byte{hwwRspNotReady}) {
		t.Fatalf("pairing screen: %x, want not ready", r)
	}
	if r := h.raw([]byte{hwwReqNew, opUnlock}); !bytes.Equal(r, []byte{hwwRspBusy}) {
		t.Fatalf("request during a screen: %x, want busy", r)
	}
	go func() {
		for {
			if _, ok := appr.Pending(); ok {
				appr.Press(false)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	r = h.raw([]byte{hwwReqRetry})
	for bytes.Equal(r, []byte{hwwRspNotReady}) { // polled until the press
		time.Sleep(time.Millisecond)
		r = h.raw([]byte{hwwReqRetry})
	}
	if !bytes.Equal(r, []byte{hwwRspAck, opStatusFailure}) {
		t.Fatalf("rejected pairing: %x", r)
	}
	if r := h.hww([]byte{opNoise, 0}); !bytes.Equal(r, []byte{opStatusFailure}) {
		t.Fatalf("noise after a rejected pairing: %x", r)
	}
	// A packet of another U2F command gets U2FHID_ERROR.
	if err := transport.WriteU2F(h.c, transport.U2FBitBox02CID, 0x83, []byte{1}); err != nil {
		t.Fatal(err)
	}
	if r, err := transport.ReadU2F(h.c, transport.U2FBitBox02CID, transport.U2FCmdError); err != nil || !bytes.Equal(r, []byte{u2fErrInvalidCmd}) {
		t.Fatalf("u2f error: %x %v", r, err)
	}
}

func TestAPIErrors(t *testing.T) {
	d := NewForTest(t, Config{})
	h := newHost(t, d)
	h.pair()
	for name, req := range map[string][]byte{
		"garbage":                  {0xff, 0xff, 0xff},
		"empty":                    nil,
		"prevtx outside a signing": mustMarshal(t, &pb.Request{Request: &pb.Request_Btc{Btc: &pb.BTCRequest{Request: &pb.BTCRequest_PrevtxInit{PrevtxInit: &pb.BTCPrevTxInitRequest{}}}}}),
		"litecoin":                 mustMarshal(t, &pb.Request{Request: &pb.Request_BtcPub{BtcPub: &pb.BTCPubRequest{Coin: pb.BTCCoin_LTC, Keypath: []uint32{84 + hardened, 2 + hardened, hardened}, Output: &pb.BTCPubRequest_XpubType{XpubType: pb.BTCPubRequest_XPUB}}}}),
		"time locktime":            mustMarshal(t, &pb.Request{Request: &pb.Request_BtcSignInit{BtcSignInit: &pb.BTCSignInitRequest{Version: 2, NumInputs: 1, NumOutputs: 1, Locktime: 500000000}}}),
		"eth xpub":                 mustMarshal(t, &pb.Request{Request: &pb.Request_Eth{Eth: &pb.ETHRequest{Request: &pb.ETHRequest_Pub{Pub: &pb.ETHPubRequest{Keypath: []uint32{44 + hardened, 60 + hardened, hardened}, OutputType: pb.ETHPubRequest_XPUB}}}}}),
	} {
		r := h.callRaw(req)
		if e := r.GetError(); e == nil || e.GetCode() != codeInvalidInput {
			t.Errorf("%s: %v, want invalid input", name, r)
		}
	}
	// The channel still works, and the fingerprint is the test mnemonic's.
	if fp := h.call(&pb.Request{Request: &pb.Request_Fingerprint{Fingerprint: &pb.RootFingerprintRequest{}}}).GetFingerprint().GetFingerprint(); !bytes.Equal(fp, []byte{0x73, 0xc5, 0xda, 0x0a}) {
		t.Fatalf("fingerprint %x", fp)
	}
}

func mustMarshal(t testing.TB, m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzDeviceStream feeds arbitrary bytes to a connection as a host would send them: the
// device must not panic or hang, and must end the connection when the host hangs up.
func FuzzDeviceStream(f *testing.F) {
	for _, m := range [][]byte{{hwwReqInfo}, {hwwReqNew, opUnlock}, {hwwReqNew, opHandshake}, {hwwReqRetry}, {hwwReqNew, opNoise, 1, 2}} {
		pkts, _ := transport.U2FPackets(transport.U2FBitBox02CID, transport.U2FCmdBitBox02, m)
		f.Add(bytes.Join(pkts, nil))
	}
	d := NewForTest(f, Config{})
	f.Fuzz(func(t *testing.T, stream []byte) {
		c := d.Pipe().(net.Conn)
		got := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(c)
			got <- b
		}()
		_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(stream); err != nil && !errors.Is(err, io.ErrClosedPipe) {
			t.Fatal(err)
		}
		// Replies are read until the hang-up; the device must neither panic nor hang on any
		// stream (its packets may be cut by the hang-up itself, so their count is not checked).
		c.Close()
		<-got
	})
}

// FuzzAPIRequest sends arbitrary plaintext through a paired Noise channel: every request
// gets a response that decrypts and decodes (an Error for what the device refuses).
func FuzzAPIRequest(f *testing.F) {
	for _, m := range []proto.Message{
		&pb.Request{Request: &pb.Request_DeviceInfo{DeviceInfo: &pb.DeviceInfoRequest{}}},
		&pb.Request{Request: &pb.Request_BtcPub{BtcPub: &pb.BTCPubRequest{Keypath: []uint32{84 + hardened, hardened, hardened, 0, 0}, Output: &pb.BTCPubRequest_ScriptConfig{ScriptConfig: &pb.BTCScriptConfig{Config: &pb.BTCScriptConfig_SimpleType_{SimpleType: pb.BTCScriptConfig_P2WPKH}}}}}},
		&pb.Request{Request: &pb.Request_BtcSignInit{BtcSignInit: &pb.BTCSignInitRequest{Version: 2, NumInputs: 1, NumOutputs: 1,
			ScriptConfigs: []*pb.BTCScriptConfigWithKeypath{{ScriptConfig: &pb.BTCScriptConfig{Config: &pb.BTCScriptConfig_SimpleType_{SimpleType: pb.BTCScriptConfig_P2WPKH}}, Keypath: []uint32{84 + hardened, hardened, hardened}}}}}},
		&pb.Request{Request: &pb.Request_Eth{Eth: &pb.ETHRequest{Request: &pb.ETHRequest_SignMsg{SignMsg: &pb.ETHSignMessageRequest{Keypath: []uint32{44 + hardened, 60 + hardened, hardened, 0, 0}, Msg: []byte("x"), HostNonceCommitment: &pb.AntiKleptoHostNonceCommitment{Commitment: make([]byte, 32)}}}}}},
	} {
		b, _ := proto.Marshal(m)
		f.Add(b)
	}
	d := NewForTest(f, Config{})
	// One paired channel for the whole run (a handshake per input would be most of the
	// time): a request that starts a flow leaves the next input to answer its step, which
	// the device must handle as well.
	h := newHost(f, d)
	h.pair()
	f.Fuzz(func(t *testing.T, plain []byte) {
		if len(plain) > 4096 {
			return
		}
		h.t = t
		h.callRaw(plain)
	})
}
