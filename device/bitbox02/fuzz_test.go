package bitbox02

import (
	"bytes"
	"crypto/rand"
	"io"
	"testing"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"

	"github.com/flynn/noise"
	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/devicetest"
	bb02emu "github.com/hwbridge/hwbridge/emulator/bitbox02"
	pb "github.com/hwbridge/hwbridge/internal/bitbox02pb"
)

// FuzzParseInfo decodes arbitrary 'i' replies; whatever decodes re-encodes to the same.
func FuzzParseInfo(f *testing.F) {
	f.Add(append(append([]byte{7}, "v9.21.0"...), 0, 0, 1, 1))
	f.Add(append(append([]byte{7}, "v9.19.0"...), 0, 1, 0))
	f.Add([]byte{0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := parseInfo(b)
		if err != nil {
			return
		}
		again := append([]byte{byte(len(in.Version))}, in.Version...)
		again = append(again, in.Platform, in.Edition, boolByte(in.Unlocked), boolByte(in.Initialized))
		in2, err := parseInfo(again)
		if err != nil || in2 != in {
			t.Fatalf("round trip: %+v %+v %v", in, in2, err)
		}
	})
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

func seedResponses() [][]byte {
	var out [][]byte
	for _, r := range []*pb.Response{
		{Response: &pb.Response_Pub{Pub: &pb.PubResponse{Pub: "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"}}},
		{Response: &pb.Response_Error{Error: &pb.Error{Code: 104, Message: "aborted by the user"}}},
		{Response: &pb.Response_BtcSignNext{BtcSignNext: &pb.BTCSignNextResponse{Type: pb.BTCSignNextResponse_HOST_NONCE, Index: 1,
			AntiKleptoSignerCommitment: &pb.AntiKleptoSignerCommitment{Commitment: bytes.Repeat([]byte{2}, 33)}}}},
		{Response: &pb.Response_Eth{Eth: &pb.ETHResponse{Response: &pb.ETHResponse_Sign{Sign: &pb.ETHSignResponse{Signature: make([]byte, 65)}}}}},
	} {
		b, _ := proto.Marshal(r)
		out = append(out, b)
	}
	return out
}

// FuzzParseResponse decodes arbitrary decrypted responses; whatever decodes must encode and
// decode to an equal message.
func FuzzParseResponse(f *testing.F) {
	for _, s := range seedResponses() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseResponse(b)
		if err != nil {
			return
		}
		again, err := proto.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := parseResponse(again)
		if err != nil || !proto.Equal(r, r2) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// noisePair runs a Noise XX handshake in memory and returns the host's receive state and
// the device's send state.
func noisePair(t testing.TB) (hostRecv, devSend *noise.CipherState) {
	t.Helper()
	mk := func(init bool) *noise.HandshakeState {
		kp, _ := noiseSuite.GenerateKeypair(rand.Reader)
		hs, err := noise.NewHandshakeState(noise.Config{CipherSuite: noiseSuite, Random: rand.Reader, Pattern: noise.HandshakeXX, Prologue: noisePrologue, Initiator: init, StaticKeypair: kp})
		if err != nil {
			t.Fatal(err)
		}
		return hs
	}
	h, d := mk(true), mk(false)
	m1, _, _, _ := h.WriteMessage(nil, nil)
	if _, _, _, err := d.ReadMessage(nil, m1); err != nil {
		t.Fatal(err)
	}
	m2, _, _, _ := d.WriteMessage(nil, nil)
	if _, _, _, err := h.ReadMessage(nil, m2); err != nil {
		t.Fatal(err)
	}
	m3, _, hr, _ := h.WriteMessage(nil, nil)
	_, _, ds, err := d.ReadMessage(nil, m3)
	if err != nil {
		t.Fatal(err)
	}
	return hr, ds
}

// FuzzNoiseResponse feeds the driver's Noise decoder: arbitrary ciphertext must fail
// cleanly, and a device-encrypted plaintext must decode as parseResponse decodes it.
func FuzzNoiseResponse(f *testing.F) {
	for _, s := range seedResponses() {
		f.Add(s, false)
	}
	f.Add([]byte("garbage"), true)
	// One handshake; each input starts from copies of its cipher states (nonce 0).
	hr0, ds0 := noisePair(f)
	f.Fuzz(func(t *testing.T, b []byte, raw bool) {
		hrc, dsc := *hr0, *ds0
		hr, ds := &hrc, &dsc
		ct := b
		if !raw {
			var err error
			if ct, err = ds.Encrypt(nil, nil, b); err != nil {
				t.Fatal(err)
			}
		}
		r, err := decodeResponse(hr, ct)
		if raw {
			if err == nil {
				t.Fatalf("forged ciphertext decrypted to %v", r)
			}
			return
		}
		want, werr := parseResponse(b)
		if (err == nil) != (werr == nil) || err == nil && !proto.Equal(r, want) {
			t.Fatalf("decrypted %v (%v), plain %v (%v)", r, err, want, werr)
		}
	})
}

// FuzzTypedValue answers arbitrary value requests (root and path from the device) against
// the conformance suite's EIP-712 document: a path that leads nowhere is an error, never a
// panic, and every value found fits the framing.
func FuzzTypedValue(f *testing.F) {
	td, err := devicetest.ParseTypedData()
	if err != nil {
		f.Fatal(err)
	}
	structs := map[string]bool{}
	for n := range td.Data.Types {
		structs[n] = true
	}
	f.Add(int32(1), []byte{2})
	f.Add(int32(2), []byte{1, 0, 1, 0})
	f.Add(int32(2), []byte{0, 1, 1})
	f.Fuzz(func(t *testing.T, root int32, raw []byte) {
		path := make([]uint32, 0, len(raw))
		for _, b := range raw {
			path = append(path, uint32(b))
		}
		v, err := typedValue(td, structs, pb.ETHTypedMessageValueResponse_RootObject(root), path)
		if err == nil && len(v) > 1<<16 {
			t.Fatalf("value of %d bytes", len(v))
		}
	})
}

// FuzzNewPlan converts arbitrary PSBTs (a file from anywhere) into signing steps: it may
// refuse them, never panic, and every step it plans refers to an input, output or script
// config that exists.
func FuzzNewPlan(f *testing.F) {
	// Seeds: the conformance suite's spends of every single-sig type, as a wallet builds them.
	emu := bb02emu.NewForTest(f, bb02emu.Config{})
	d := New(emu.Pipe(), Options{})
	defer d.Close()
	for _, in := range [][]device.ScriptType{{device.ScriptWPKH}, {device.ScriptSHWPKH, device.ScriptTR}, {device.ScriptTR}} {
		p := devicetest.NewSpend(f, f.Context(), d, &chaincfg.MainNetParams, in, devicetest.SpendOptions{OpReturn: []byte("x")})
		var buf bytes.Buffer
		if err := p.Serialize(&buf); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, err := psbt.NewFromRawBytes(bytes.NewReader(raw), false)
		if err != nil {
			return
		}
		pl, err := newPlan(p, &chaincfg.MainNetParams, device.Fingerprint(0x73c5da0a))
		if err != nil {
			return
		}
		for _, in := range pl.inputs {
			if int(in.req.GetScriptConfigIndex()) >= len(pl.init.GetScriptConfigs()) {
				t.Fatalf("input refers to script config %d of %d", in.req.GetScriptConfigIndex(), len(pl.init.GetScriptConfigs()))
			}
		}
		if len(pl.inputs) != int(pl.init.GetNumInputs()) || len(pl.outputs) != int(pl.init.GetNumOutputs()) {
			t.Fatalf("plan of %d/%d steps for %d/%d", len(pl.inputs), len(pl.outputs), pl.init.GetNumInputs(), pl.init.GetNumOutputs())
		}
	})
}

// FuzzSignSteps plays a device that answers the signing steps with arbitrary responses
// (the input: length-prefixed protobuf Responses, one per request): the driver must refuse
// what makes no sense, never panic, never ask for more than its step bound, and return a
// signature for every input only when the exchange ends with DONE.
func FuzzSignSteps(f *testing.F) {
	emu := bb02emu.NewForTest(f, bb02emu.Config{})
	d := New(emu.Pipe(), Options{})
	defer d.Close()
	p := devicetest.NewSpend(f, f.Context(), d, &chaincfg.MainNetParams, []device.ScriptType{device.ScriptWPKH, device.ScriptTR}, devicetest.SpendOptions{})
	pl, err := newPlan(p, &chaincfg.MainNetParams, devicetest.VectorFingerprint)
	if err != nil {
		f.Fatal(err)
	}
	frame := func(rs ...*pb.Response) []byte {
		var out []byte
		for _, r := range rs {
			b, _ := proto.Marshal(r)
			out = append(out, byte(len(b)>>8), byte(len(b)))
			out = append(out, b...)
		}
		return out
	}
	next := func(t pb.BTCSignNextResponse_Type, i, prev uint32) *pb.Response {
		return &pb.Response{Response: &pb.Response_BtcSignNext{BtcSignNext: &pb.BTCSignNextResponse{Type: t, Index: i, PrevIndex: prev}}}
	}
	f.Add(frame(next(pb.BTCSignNextResponse_INPUT, 0, 0), next(pb.BTCSignNextResponse_PREVTX_INIT, 0, 0), next(pb.BTCSignNextResponse_PREVTX_INPUT, 0, 0),
		next(pb.BTCSignNextResponse_PREVTX_OUTPUT, 0, 1), next(pb.BTCSignNextResponse_OUTPUT, 0, 0), next(pb.BTCSignNextResponse_INPUT, 1, 0),
		next(pb.BTCSignNextResponse_HOST_NONCE, 0, 0), next(pb.BTCSignNextResponse_DONE, 0, 0)))
	f.Add(frame(next(pb.BTCSignNextResponse_DONE, 0, 0)))
	f.Add(frame(next(pb.BTCSignNextResponse_PREVTX_OUTPUT, 7, 99)))
	f.Fuzz(func(t *testing.T, script []byte) {
		steps := 0
		exchange := func(*pb.Request) (*pb.Response, error) {
			steps++
			if steps > maxSteps(pl)+2 {
				t.Fatalf("more than %d requests", maxSteps(pl)+2)
			}
			if len(script) < 2 {
				return nil, io.EOF
			}
			n := int(script[0])<<8 | int(script[1])
			if len(script) < 2+n {
				return nil, io.EOF
			}
			b := script[2 : 2+n]
			script = script[2+n:]
			r, err := parseResponse(b)
			if err != nil {
				return nil, err
			}
			return r, nil
		}
		sigs, err := runSign(exchange, pl)
		if err == nil && len(sigs) != len(pl.inputs) {
			t.Fatalf("%d signatures for %d inputs", len(sigs), len(pl.inputs))
		}
	})
}
