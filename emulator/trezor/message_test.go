package trezoremu

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/hwbridge/hwbridge/internal/trezorpb"
)

func TestSignVerifyMessage(t *testing.T) {
	d := newDevice(t, Options{})
	c := newClient(t, d)
	for _, tc := range []struct {
		path     string
		st       pb.InputScriptType
		noScript bool
		lo, hi   byte
		addr     string
	}{
		{"m/44'/0'/0'/0/0", pb.InputScriptType_SPENDADDRESS, false, 31, 34, "1LqBGSKuX5yYUonjxT5qGfpUsXKYYWeabA"},
		{"m/49'/0'/0'/0/0", pb.InputScriptType_SPENDP2SHWITNESS, false, 35, 38, "37VucYSaXLCAsxYyAPfbSi9eh4iEcbShgf"},
		{"m/84'/0'/0'/0/0", pb.InputScriptType_SPENDWITNESS, false, 39, 42, "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"},
		{"m/84'/0'/0'/0/0", pb.InputScriptType_SPENDWITNESS, true, 31, 34, "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"},
	} {
		sig := callAs[*pb.MessageSignature](c, &pb.SignMessage{AddressN: path(tc.path), Message: []byte("hello"), CoinName: proto.String("Bitcoin"), ScriptType: tc.st.Enum(), NoScriptType: proto.Bool(tc.noScript)})
		if sig.GetAddress() != tc.addr || len(sig.Signature) != 65 || sig.Signature[0] < tc.lo || sig.Signature[0] > tc.hi {
			t.Fatalf("%s: %v", tc.path, sig)
		}
		callAs[*pb.Success](c, &pb.VerifyMessage{Address: sig.Address, Signature: sig.Signature, Message: []byte("hello")})
		if f := failureOf(c, &pb.VerifyMessage{Address: sig.Address, Signature: sig.Signature, Message: []byte("hello!")}); f.GetCode() != pb.FailureType_Failure_InvalidSignature {
			t.Fatal(f)
		}
	}
	if f := failureOf(c, &pb.SignMessage{AddressN: path("m/86'/0'/0'/0/0"), Message: []byte("x"), ScriptType: pb.InputScriptType_SPENDTAPROOT.Enum()}); f.GetCode() != pb.FailureType_Failure_ProcessError {
		t.Fatal(f)
	}
	if f := failureOf(c, &pb.VerifyMessage{Address: proto.String("bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"), Signature: []byte{1, 2}, Message: []byte("x")}); f.GetCode() != pb.FailureType_Failure_DataError {
		t.Fatal(f)
	}
}

func TestPinAndPassphrase(t *testing.T) {
	d := newDevice(t, Options{PIN: "1234", PassphraseProtection: true, Passphrase: "on-device"})
	c := newClient(t, d)
	f := callAs[*pb.Features](c, &pb.Initialize{})
	// Locked: core keeps passphrase_protection private (trezor-firmware #1807).
	if !f.GetPinProtection() || f.GetUnlocked() || f.PassphraseProtection != nil || !slices.Contains(f.Capabilities, pb.Capability_Capability_PassphraseEntry) {
		t.Fatalf("features %v", f)
	}
	get := &pb.GetAddress{AddressN: path("m/84'/0'/0'/0/0"), ScriptType: pb.InputScriptType_SPENDWITNESS.Enum()}

	// Wrong PIN.
	if req, ok := c.call(get).(*pb.PinMatrixRequest); !ok || req.GetType() != pb.PinMatrixRequestType_PinMatrixRequestType_Current {
		t.Fatal("no pin request")
	}
	if f := failureOf(c, &pb.PinMatrixAck{Pin: proto.String("4321")}); f.GetCode() != pb.FailureType_Failure_PinInvalid {
		t.Fatal(f)
	}
	// Cancel at the PIN.
	c.call(get)
	if f := failureOf(c, &pb.Cancel{}); f.GetCode() != pb.FailureType_Failure_PinCancelled {
		t.Fatal(f)
	}
	// Right PIN, then host passphrase.
	c.call(get)
	if _, ok := c.call(&pb.PinMatrixAck{Pin: proto.String("1234")}).(*pb.PassphraseRequest); !ok {
		t.Fatal("no passphrase request")
	}
	a := callAs[*pb.Address](c, &pb.PassphraseAck{Passphrase: proto.String("secret"), OnDevice: proto.Bool(false)})
	if a.GetAddress() == "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu" {
		t.Fatal("passphrase ignored")
	}
	// Cached for the session: no second request, same address.
	if a2 := callAs[*pb.Address](c, get); a2.GetAddress() != a.GetAddress() {
		t.Fatal("session cache")
	}
	// A new session asks again; on-device entry gives the configured passphrase; the
	// empty passphrase gives the vector.
	callAs[*pb.Features](c, &pb.Initialize{})
	c.call(get)
	dev := callAs[*pb.Address](c, &pb.PassphraseAck{OnDevice: proto.Bool(true)})
	if dev.GetAddress() == a.GetAddress() || dev.GetAddress() == "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu" {
		t.Fatal("on-device passphrase")
	}
	callAs[*pb.Features](c, &pb.Initialize{})
	c.call(get)
	if e := callAs[*pb.Address](c, &pb.PassphraseAck{Passphrase: proto.String("")}); e.GetAddress() != "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu" {
		t.Fatal("empty passphrase")
	}
	// LockDevice asks for the PIN again.
	callAs[*pb.Success](c, &pb.LockDevice{})
	if _, ok := c.call(get).(*pb.PinMatrixRequest); !ok {
		t.Fatal("not locked")
	}
	if _, err := New(Options{PIN: "12a"}); err == nil {
		t.Fatal("bad pin accepted")
	}
}
