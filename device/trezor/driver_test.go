package trezor

import (
	"context"
	"errors"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"
	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/internal/trezorpb"
	"github.com/hwbridge/hwbridge/transport"
)

// scripted is a fake device for the call loop: handle maps each message the host sends to
// the replies the device writes back. It exercises the driver's session machinery, not the
// signing flows (those run against the emulator in trezor_test.go).
type scripted struct {
	t    *testing.T
	conn net.Conn

	mu     sync.Mutex
	handle func(m proto.Message) []proto.Message
	seen   []string
}

func newScripted(t *testing.T, handle func(m proto.Message) []proto.Message) (*scripted, *Driver) {
	host, dev := net.Pipe()
	s := &scripted{t: t, conn: dev, handle: handle}
	go s.serve()
	d := New(host, Options{Timeout: 5 * time.Second})
	t.Cleanup(func() { _ = d.Close(); _ = dev.Close() })
	return s, d
}

func features() *trezorpb.Features {
	return &trezorpb.Features{
		Vendor: proto.String("trezor.io"), MajorVersion: proto.Uint32(2), MinorVersion: proto.Uint32(6), PatchVersion: proto.Uint32(0),
		Model: proto.String("T"), Initialized: proto.Bool(true), Unlocked: proto.Bool(true),
	}
}

func (s *scripted) serve() {
	for {
		typ, body, err := transport.ReadV1(s.conn)
		if err != nil {
			return
		}
		m, err := trezorpb.Unmarshal(trezorpb.MessageType(typ), body)
		if err != nil {
			s.t.Errorf("fake: host sent undecodable message %d: %v", typ, err)
			return
		}
		s.mu.Lock()
		s.seen = append(s.seen, string(m.ProtoReflect().Descriptor().Name()))
		h := s.handle
		s.mu.Unlock()
		var replies []proto.Message
		switch m.(type) {
		case *trezorpb.Initialize, *trezorpb.GetFeatures:
			replies = []proto.Message{features()}
		default:
			replies = h(m)
		}
		for _, r := range replies {
			id, b, err := trezorpb.Marshal(r)
			if err != nil {
				s.t.Errorf("fake: %v", err)
				return
			}
			if err := transport.WriteV1(s.conn, uint16(id), b); err != nil {
				return
			}
		}
	}
}

func (s *scripted) messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

func count(names []string, name string) int {
	n := 0
	for _, x := range names {
		if x == name {
			n++
		}
	}
	return n
}

func address(a string) *trezorpb.Address { return &trezorpb.Address{Address: proto.String(a)} }

var wpkh = device.AddressRequest{Chain: device.ChainBTC, Path: hdpath.MustParse("m/84'/0'/0'/0/0"), Script: device.ScriptWPKH}

func TestButtonRequestsAreAckedAndReported(t *testing.T) {
	_, d := newScripted(t, func(m proto.Message) []proto.Message {
		switch m.(type) {
		case *trezorpb.GetAddress:
			return []proto.Message{&trezorpb.ButtonRequest{Code: trezorpb.ButtonRequestType_ButtonRequest_Address.Enum()}}
		case *trezorpb.ButtonAck:
			return []proto.Message{address("bc1qexample")}
		}
		return []proto.Message{&trezorpb.Failure{Code: trezorpb.FailureType_Failure_UnexpectedMessage.Enum()}}
	})
	var codes []trezorpb.ButtonRequestType
	d.opts.OnButton = func(c trezorpb.ButtonRequestType) { codes = append(codes, c) }
	got, err := d.Address(t.Context(), wpkh)
	if err != nil || got != "bc1qexample" {
		t.Fatalf("address %q, %v", got, err)
	}
	if len(codes) != 1 || codes[0] != trezorpb.ButtonRequestType_ButtonRequest_Address {
		t.Errorf("OnButton saw %v", codes)
	}
}

func TestFailureMapping(t *testing.T) {
	tests := []struct {
		code trezorpb.FailureType
		want error
	}{
		{trezorpb.FailureType_Failure_ActionCancelled, device.ErrUserRejected},
		{trezorpb.FailureType_Failure_PinCancelled, device.ErrUserRejected},
		{trezorpb.FailureType_Failure_PinExpected, device.ErrLocked},
		{trezorpb.FailureType_Failure_PinInvalid, device.ErrLocked},
		{trezorpb.FailureType_Failure_Busy, device.ErrBusy},
		{trezorpb.FailureType_Failure_DataError, device.ErrInvalidInput},
		{trezorpb.FailureType_Failure_ProcessError, device.ErrProtocol},
		{trezorpb.FailureType_Failure_FirmwareError, device.ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.code.String(), func(t *testing.T) {
			fake, d := newScripted(t, func(m proto.Message) []proto.Message {
				return []proto.Message{&trezorpb.Failure{Code: tt.code.Enum(), Message: proto.String("said no")}}
			})
			_, err := d.Address(t.Context(), wpkh)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			var de *device.Error
			if !errors.As(err, &de) || de.Code != int(tt.code) || de.Family != device.FamilyTrezor || de.Message != "said no" || de.Op == "" {
				t.Errorf("device.Error %+v", de)
			}
			// A Failure leaves the session in step: no re-sync before the next call.
			if _, err := d.Address(t.Context(), wpkh); !errors.Is(err, tt.want) {
				t.Errorf("second call: %v", err)
			}
			if n := count(fake.messages(), "Initialize"); n != 1 {
				t.Errorf("%d Initialize messages, want 1: %v", n, fake.messages())
			}
		})
	}
}

func TestPINAndPassphrase(t *testing.T) {
	handler := func(m proto.Message) []proto.Message {
		switch r := m.(type) {
		case *trezorpb.GetAddress:
			return []proto.Message{&trezorpb.PinMatrixRequest{Type: trezorpb.PinMatrixRequestType_PinMatrixRequestType_Current.Enum()}}
		case *trezorpb.PinMatrixAck:
			if r.GetPin() != "1234" {
				return []proto.Message{&trezorpb.Failure{Code: trezorpb.FailureType_Failure_PinInvalid.Enum()}}
			}
			return []proto.Message{&trezorpb.PassphraseRequest{}}
		case *trezorpb.PassphraseAck:
			return []proto.Message{address("bc1q" + r.GetPassphrase())}
		case *trezorpb.Cancel:
			return []proto.Message{&trezorpb.Failure{Code: trezorpb.FailureType_Failure_ActionCancelled.Enum()}}
		}
		return []proto.Message{&trezorpb.Failure{Code: trezorpb.FailureType_Failure_UnexpectedMessage.Enum()}}
	}
	t.Run("no providers", func(t *testing.T) {
		fake, d := newScripted(t, handler)
		_, err := d.Address(t.Context(), wpkh)
		if !errors.Is(err, device.ErrLocked) {
			t.Fatalf("err %v, want device.ErrLocked", err)
		}
		if count(fake.messages(), "Cancel") != 1 {
			t.Errorf("host did not cancel the pin prompt: %v", fake.messages())
		}
	})
	t.Run("providers", func(t *testing.T) {
		_, d := newScripted(t, handler)
		d.opts.PIN = func(context.Context) (string, error) { return "1234", nil }
		d.opts.Passphrase = func(context.Context) (string, error) { return "secret", nil }
		got, err := d.Address(t.Context(), wpkh)
		if err != nil || got != "bc1qsecret" {
			t.Fatalf("address %q, %v", got, err)
		}
	})
	t.Run("wrong pin", func(t *testing.T) {
		_, d := newScripted(t, handler)
		d.opts.PIN = func(context.Context) (string, error) { return "9999", nil }
		if _, err := d.Address(t.Context(), wpkh); !errors.Is(err, device.ErrLocked) {
			t.Fatalf("err %v, want device.ErrLocked", err)
		}
	})
}

func TestRefusesOtherVendors(t *testing.T) {
	host, dev := net.Pipe()
	t.Cleanup(func() { _ = host.Close(); _ = dev.Close() })
	go func() {
		if _, _, err := transport.ReadV1(dev); err != nil {
			return
		}
		f := features()
		f.Vendor = proto.String("example.com")
		id, b, _ := trezorpb.Marshal(f)
		_ = transport.WriteV1(dev, uint16(id), b)
	}()
	_, err := New(host, Options{}).Fingerprint(t.Context())
	if !errors.Is(err, device.ErrProtocol) || !strings.Contains(err.Error(), `vendor "example.com"`) {
		t.Fatalf("err %v", err)
	}
}

// TestCancelSendsCancel: cancelling the context while the device waits for the user makes
// the driver send Cancel and read the Failure, so the next call needs no re-sync.
func TestCancelSendsCancel(t *testing.T) {
	fake, d := newScripted(t, func(m proto.Message) []proto.Message {
		switch m.(type) {
		case *trezorpb.SignMessage:
			return []proto.Message{&trezorpb.ButtonRequest{Code: trezorpb.ButtonRequestType_ButtonRequest_ProtectCall.Enum()}}
		case *trezorpb.ButtonAck:
			return nil // the user never presses
		case *trezorpb.Cancel:
			return []proto.Message{&trezorpb.Failure{Code: trezorpb.FailureType_Failure_ActionCancelled.Enum()}}
		case *trezorpb.GetAddress:
			return []proto.Message{address("bc1qafter")}
		}
		return nil
	})
	ctx, cancel := context.WithCancel(t.Context())
	d.opts.OnButton = func(trezorpb.ButtonRequestType) { cancel() }
	_, err := d.SignMessage(ctx, device.MessageRequest{Chain: device.ChainBTC, Path: wpkh.Path, Script: device.ScriptWPKH, Message: []byte("x")})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	got, err := d.Address(t.Context(), wpkh)
	if err != nil || got != "bc1qafter" {
		t.Fatalf("next call: %q, %v", got, err)
	}
	if count(fake.messages(), "Cancel") != 1 {
		t.Errorf("messages %v: want one Cancel", fake.messages())
	}
}

// TestResyncAfterLostReply: a reply that never comes times out with a clear error; a late
// reply to the abandoned request is not taken for the answer to the next one.
func TestResyncAfterLostReply(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	var fake *scripted
	fake, d := newScripted(t, func(m proto.Message) []proto.Message {
		switch m.(type) {
		case *trezorpb.GetAddress:
			mu.Lock()
			calls++
			n := calls
			mu.Unlock()
			if n == 1 {
				// Answer far too late, after the host has given up and re-synced.
				go func() {
					time.Sleep(300 * time.Millisecond)
					id, b, _ := trezorpb.Marshal(address("bc1qstale"))
					_ = transport.WriteV1(fake.conn, uint16(id), b)
				}()
				return nil
			}
			return []proto.Message{address("bc1qfresh")}
		}
		return nil // ignores Cancel: the host must re-sync with Initialize
	})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := d.Address(ctx, wpkh)
	// On a loaded machine the deadline may pass before GetAddress is even written (then
	// nothing is stale and the wording differs); either way it is the caller's deadline.
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want a deadline error", err)
	}
	time.Sleep(350 * time.Millisecond) // let the stale reply arrive
	got, err := d.Address(t.Context(), wpkh)
	if err != nil || got != "bc1qfresh" {
		t.Fatalf("next call: %q, %v (want bc1qfresh)", got, err)
	}
	if n := count(fake.messages(), "Initialize"); n < 2 && strings.Contains(err.Error(), "no reply from the device in time") {
		t.Errorf("messages %v: want a second Initialize (re-sync)", fake.messages())
	}
}

func TestDisconnectMidExchange(t *testing.T) {
	fake, d := newScripted(t, func(m proto.Message) []proto.Message { return nil })
	go func() {
		time.Sleep(50 * time.Millisecond)
		_ = fake.conn.Close()
	}()
	_, err := d.Address(t.Context(), wpkh)
	if !errors.Is(err, device.ErrDisconnected) {
		t.Fatalf("err %v, want device.ErrDisconnected", err)
	}
}

func TestUnexpectedReplyType(t *testing.T) {
	_, d := newScripted(t, func(m proto.Message) []proto.Message {
		return []proto.Message{&trezorpb.Success{Message: proto.String("?")}}
	})
	if _, err := d.Address(t.Context(), wpkh); !errors.Is(err, device.ErrProtocol) {
		t.Fatalf("err %v, want device.ErrProtocol", err)
	}
}

func TestEthTxSignatureV(t *testing.T) {
	r := make([]byte, 32)
	r[31] = 1
	tests := []struct {
		name    string
		v       uint32
		txType  uint8
		chainID int64
		recid   byte
		ok      bool
	}{
		{"eip155 chain 1", 37, types.LegacyTxType, 1, 0, true},
		{"eip155 chain 1 odd", 38, types.LegacyTxType, 1, 1, true},
		{"parity above the uint32 limit", 1, types.LegacyTxType, 3_000_000_000, 1, true},
		{"1559 parity", 0, types.DynamicFeeTxType, 1, 0, true},
		{"1559 full v is wrong", 37, types.DynamicFeeTxType, 1, 0, false},
		{"v for another chain", 39, types.LegacyTxType, 5, 0, false},
		{"pre-eip155 v", 27, types.LegacyTxType, 1, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig, err := ethTxSignature(&trezorpb.EthereumTxRequest{SignatureV: proto.Uint32(tt.v), SignatureR: r, SignatureS: r}, tt.txType, big.NewInt(tt.chainID))
			if (err == nil) != tt.ok {
				t.Fatalf("err %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && sig[64] != tt.recid {
				t.Errorf("recid %d, want %d", sig[64], tt.recid)
			}
		})
	}
}

// FuzzReply feeds arbitrary device replies to an address request: the driver must return
// an address or an error, never panic or hang.
func FuzzReply(f *testing.F) {
	for _, m := range []proto.Message{address("bc1qx"), &trezorpb.Failure{Code: trezorpb.FailureType_Failure_ActionCancelled.Enum()},
		&trezorpb.ButtonRequest{}, &trezorpb.PinMatrixRequest{}, features()} {
		id, b, _ := trezorpb.Marshal(m)
		f.Add(uint16(id), b)
	}
	f.Fuzz(func(t *testing.T, typ uint16, body []byte) {
		if len(body) > 4096 {
			return
		}
		host, dev := net.Pipe()
		defer dev.Close()
		go func() {
			first := true
			for {
				mt, _, err := transport.ReadV1(dev)
				if err != nil {
					return
				}
				var id trezorpb.MessageType
				var b []byte
				switch {
				case trezorpb.MessageType(mt) == trezorpb.MessageType_MessageType_Initialize:
					id, b, _ = trezorpb.Marshal(features())
				case first:
					first = false
					id, b = trezorpb.MessageType(typ), body
				default:
					id, b, _ = trezorpb.Marshal(&trezorpb.Failure{Code: trezorpb.FailureType_Failure_UnexpectedMessage.Enum()})
				}
				if err := transport.WriteV1(dev, uint16(id), b); err != nil {
					return
				}
			}
		}()
		d := New(host, Options{})
		defer d.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		addr, err := d.Address(ctx, wpkh)
		if err == nil && addr == "" {
			t.Fatal("no address and no error")
		}
	})
}
