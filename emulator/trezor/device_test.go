package trezoremu

import (
	"bytes"
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil/base58"
	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	pb "github.com/hwbridge/hwbridge/internal/trezorpb"
)

func path(s string) []uint32 { return hdpath.MustParse(s) }

func TestFeaturesAndSession(t *testing.T) {
	d := newDevice(t, Options{})
	c := newClient(t, d)
	f := callAs[*pb.Features](c, &pb.Initialize{})
	if f.GetVendor() != "trezor.io" || f.GetModel() != "T" || f.GetInternalModel() != "T2T1" || f.GetMajorVersion() != 2 || f.GetMinorVersion() < 4 {
		t.Fatalf("features %v", f)
	}
	if len(f.SessionId) != 32 || !strings.HasPrefix(f.GetDeviceId(), "EMU") || !f.GetInitialized() || !f.GetUnlocked() || f.GetPinProtection() {
		t.Fatalf("features %v", f)
	}
	// Resume keeps the id; an unknown id gets a new one; GetFeatures changes nothing.
	f2 := callAs[*pb.Features](c, &pb.Initialize{SessionId: f.SessionId})
	if !bytes.Equal(f2.SessionId, f.SessionId) {
		t.Fatal("session not resumed")
	}
	// GetFeatures carries no session id (core handle_GetFeatures, legacy fsm_msgGetFeatures)
	// and keeps the session.
	if f3 := callAs[*pb.Features](c, &pb.GetFeatures{}); f3.SessionId != nil {
		t.Fatal("GetFeatures sent a session id")
	}
	if f3 := callAs[*pb.Features](c, &pb.Initialize{SessionId: f.SessionId}); !bytes.Equal(f3.SessionId, f.SessionId) {
		t.Fatal("GetFeatures changed the session")
	}
	f4 := callAs[*pb.Features](c, &pb.Initialize{SessionId: bytes.Repeat([]byte{1}, 32)})
	if bytes.Equal(f4.SessionId, f.SessionId) {
		t.Fatal("foreign session id resumed")
	}
	callAs[*pb.Success](c, &pb.EndSession{})
	callAs[*pb.Success](c, &pb.LockDevice{})
}

func TestPingAndButtons(t *testing.T) {
	d := newDevice(t, Options{})
	c := newClient(t, d)
	if s := callAs[*pb.Success](c, &pb.Ping{Message: proto.String("hello")}); s.GetMessage() != "hello" || len(c.buttons) != 0 {
		t.Fatalf("ping %v %v", s, c.buttons)
	}
	if s := callAs[*pb.Success](c, &pb.Ping{Message: proto.String("hi"), ButtonProtection: proto.Bool(true)}); s.GetMessage() != "hi" {
		t.Fatal(s)
	}
	if len(c.buttons) != 1 || c.buttons[0] != pb.ButtonRequestType_ButtonRequest_ProtectCall {
		t.Fatalf("buttons %v", c.buttons)
	}
	if e := lastScreen(t, d); e.Title != "Confirm ping" || e.Outcome != emulator.OutcomeApproved || e.Device != "trezor" {
		t.Fatalf("screen %+v", e)
	}

	// Reject policy: ActionCancelled after the ack.
	d.Approver().SetPolicy(emulator.PolicyReject)
	f := failureOf(c, &pb.Ping{Message: proto.String("x"), ButtonProtection: proto.Bool(true)})
	if f.GetCode() != pb.FailureType_Failure_ActionCancelled {
		t.Fatal(f)
	}
	d.Approver().SetPolicy(emulator.PolicyAuto)

	// Cancel instead of ButtonAck.
	c.write(&pb.Ping{ButtonProtection: proto.Bool(true)})
	if _, ok := mustRead(t, c).(*pb.ButtonRequest); !ok {
		t.Fatal("no button request")
	}
	c.write(&pb.Cancel{})
	if f, ok := mustRead(t, c).(*pb.Failure); !ok || f.GetCode() != pb.FailureType_Failure_ActionCancelled {
		t.Fatal("cancel not answered with ActionCancelled")
	}
	// Cancel at idle, a message out of place, an unknown id.
	if f := failureOf(c, &pb.Cancel{}); f.GetCode() != pb.FailureType_Failure_ActionCancelled {
		t.Fatal(f)
	}
	if f := failureOf(c, &pb.ButtonAck{}); f.GetCode() != pb.FailureType_Failure_UnexpectedMessage {
		t.Fatal(f)
	}
	c.link.SetDeadline(time.Now().Add(5 * time.Second))
	writeRaw(t, c, 999, []byte{1, 2, 3})
	if f, ok := mustRead(t, c).(*pb.Failure); !ok || f.GetCode() != pb.FailureType_Failure_UnexpectedMessage {
		t.Fatal("unknown id not refused")
	}
	// Undecodable body of a known id.
	writeRaw(t, c, uint16(pb.MessageType_MessageType_GetAddress), []byte{0x0a, 0xff})
	if f, ok := mustRead(t, c).(*pb.Failure); !ok || f.GetCode() != pb.FailureType_Failure_DataError {
		t.Fatal("bad body not refused")
	}
}

func TestPromptWithCancelWhileWaiting(t *testing.T) {
	d := newDevice(t, Options{Approver: emulator.NewApprover(emulator.PolicyPrompt)})
	c := newClient(t, d)
	c.write(&pb.Ping{ButtonProtection: proto.Bool(true)})
	mustRead(t, c)
	c.write(&pb.ButtonAck{})
	waitPending(t, d.Approver())
	c.write(&pb.Cancel{})
	if f, ok := mustRead(t, c).(*pb.Failure); !ok || f.GetCode() != pb.FailureType_Failure_ActionCancelled {
		t.Fatal("cancel during prompt")
	}
	// And a press approves.
	c.write(&pb.Ping{Message: proto.String("p"), ButtonProtection: proto.Bool(true)})
	mustRead(t, c)
	c.write(&pb.ButtonAck{})
	waitPending(t, d.Approver())
	d.Approver().Press(true)
	if s, ok := mustRead(t, c).(*pb.Success); !ok || s.GetMessage() != "p" {
		t.Fatal("press did not approve")
	}
}

func waitPending(t *testing.T, a *emulator.Approver) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if _, ok := a.Pending(); ok {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("no screen pending")
}

func mustRead(t *testing.T, c *testClient) proto.Message {
	t.Helper()
	m, err := c.read()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func writeRaw(t *testing.T, c *testClient, typ uint16, body []byte) {
	t.Helper()
	pkts, _ := transportPackets(typ, body)
	for _, p := range pkts {
		if _, err := c.link.Write(p); err != nil {
			t.Fatal(err)
		}
	}
}

// Published vectors (emulator/testdata/vectors) for the default mnemonic.
const (
	zpub84 = "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs"
	xpub44 = "xpub6BosfCnifzxcFwrSzQiqu2DBVTshkCXacvNsWGYJVVhhawA7d4R5WSWGFNbi8Aw6ZRc1brxMyWMzG3DSSSSoekkudhUd9yLb6qx39T9nMdj"
	ypub49 = "ypub6Ww3ibxVfGzLrAH1PNcjyAWenMTbbAosGNB6VvmSEgytSER9azLDWCxoJwW7Ke7icmizBMXrzBx9979FfaHxHcrArf3zbeJJJUZPf663zsP"
	xpub86 = "xpub6BgBgsespWvERF3LHQu6CnqdvfEvtMcQjYrcRzx53QJjSxarj2afYWcLteoGVky7D3UKDP9QyrLprQ3VCECoY49yfdDEHGCtMMj92pReUsQ"
)

func TestGetPublicKey(t *testing.T) {
	d := newDevice(t, Options{})
	c := newClient(t, d)
	for _, tc := range []struct {
		path   string
		st     pb.InputScriptType
		ignore bool
		want   string
	}{
		{"m/84'/0'/0'", pb.InputScriptType_SPENDWITNESS, false, zpub84},
		{"m/44'/0'/0'", pb.InputScriptType_SPENDADDRESS, false, xpub44},
		{"m/49'/0'/0'", pb.InputScriptType_SPENDP2SHWITNESS, false, ypub49},
		{"m/86'/0'/0'", pb.InputScriptType_SPENDTAPROOT, false, xpub86},
		{"m/84'/0'/0'", pb.InputScriptType_SPENDWITNESS, true, rekey(t, zpub84, "0488b21e")},
	} {
		pk := callAs[*pb.PublicKey](c, &pb.GetPublicKey{AddressN: path(tc.path), CoinName: proto.String("Bitcoin"), ScriptType: tc.st.Enum(), IgnoreXpubMagic: proto.Bool(tc.ignore), ShowDisplay: proto.Bool(false)})
		if pk.GetXpub() != tc.want {
			t.Errorf("%s %v: got %s want %s", tc.path, tc.st, pk.GetXpub(), tc.want)
		}
		if pk.GetRootFingerprint() != 0x73c5da0a || pk.Node.GetDepth() != 3 || pk.Node.GetChildNum() != 0x80000000 || len(pk.Node.PublicKey) != 33 || len(pk.Node.ChainCode) != 32 {
			t.Errorf("node %v", pk)
		}
	}
	// HWI reads the master fingerprint as the parent fingerprint of m/0'.
	pk := callAs[*pb.PublicKey](c, &pb.GetPublicKey{AddressN: path("m/0'")})
	if pk.Node.GetFingerprint() != 0x73c5da0a {
		t.Fatalf("parent fingerprint %08x", pk.Node.GetFingerprint())
	}
	// Testnet gets vpub; show_display goes through a PublicKey button.
	pk = callAs[*pb.PublicKey](c, &pb.GetPublicKey{AddressN: path("m/84'/1'/0'"), CoinName: proto.String("Testnet"), ScriptType: pb.InputScriptType_SPENDWITNESS.Enum(), ShowDisplay: proto.Bool(true)})
	if !strings.HasPrefix(pk.GetXpub(), "vpub") || len(c.buttons) != 1 || c.buttons[0] != pb.ButtonRequestType_ButtonRequest_PublicKey {
		t.Fatalf("testnet %s %v", pk.GetXpub(), c.buttons)
	}
	if f := failureOf(c, &pb.GetPublicKey{AddressN: path("m/0'"), CoinName: proto.String("Dogecoin")}); f.GetCode() != pb.FailureType_Failure_DataError {
		t.Fatal(f)
	}
	if f := failureOf(c, &pb.GetPublicKey{AddressN: path("m/0'"), EcdsaCurveName: proto.String("ed25519")}); f.GetCode() != pb.FailureType_Failure_DataError {
		t.Fatal(f)
	}
}

// rekey swaps the version bytes of an extended key.
func rekey(t *testing.T, key, version string) string {
	raw, ver, err := base58.CheckDecode(key)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := hex.DecodeString(version)
	full := append([]byte{ver}, raw...)
	copy(full[:4], v)
	return base58.CheckEncode(full[1:], full[0])
}

func TestGetAddress(t *testing.T) {
	d := newDevice(t, Options{})
	c := newClient(t, d)
	for _, tc := range []struct {
		coin, path string
		st         pb.InputScriptType
		want       string
	}{
		{"Bitcoin", "m/44'/0'/0'/0/0", pb.InputScriptType_SPENDADDRESS, "1LqBGSKuX5yYUonjxT5qGfpUsXKYYWeabA"},
		{"Bitcoin", "m/49'/0'/0'/0/0", pb.InputScriptType_SPENDP2SHWITNESS, "37VucYSaXLCAsxYyAPfbSi9eh4iEcbShgf"},
		{"Bitcoin", "m/84'/0'/0'/0/0", pb.InputScriptType_SPENDWITNESS, "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"},
		{"Bitcoin", "m/86'/0'/0'/0/0", pb.InputScriptType_SPENDTAPROOT, "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr"},
		{"Testnet", "m/84'/1'/0'/0/0", pb.InputScriptType_SPENDWITNESS, "tb1q6rz28mcfaxtmd6v789l9rrlrusdprr9pqcpvkl"},
		{"Regtest", "m/84'/1'/0'/0/0", pb.InputScriptType_SPENDWITNESS, "bcrt1q6rz28mcfaxtmd6v789l9rrlrusdprr9pz3cppk"},
	} {
		a := callAs[*pb.Address](c, &pb.GetAddress{AddressN: path(tc.path), CoinName: proto.String(tc.coin), ScriptType: tc.st.Enum(), ShowDisplay: proto.Bool(false)})
		if a.GetAddress() != tc.want {
			t.Errorf("%s %s: got %s want %s", tc.coin, tc.path, a.GetAddress(), tc.want)
		}
	}
	a := callAs[*pb.Address](c, &pb.GetAddress{AddressN: path("m/84'/0'/0'/0/0"), ScriptType: pb.InputScriptType_SPENDWITNESS.Enum(), ShowDisplay: proto.Bool(true)})
	if len(c.buttons) != 1 || c.buttons[0] != pb.ButtonRequestType_ButtonRequest_Address {
		t.Fatalf("buttons %v", c.buttons)
	}
	if e := lastScreen(t, d); e.Lines[0] != a.GetAddress() || e.Title != "Receive address" {
		t.Fatalf("screen %+v", e)
	}
	if f := failureOf(c, &pb.GetAddress{AddressN: path("m/0"), Multisig: &pb.MultisigRedeemScriptType{M: proto.Uint32(1)}}); f.GetCode() != pb.FailureType_Failure_DataError {
		t.Fatal(f)
	}
	if f := failureOf(c, &pb.GetAddress{AddressN: path("m/0"), ScriptType: pb.InputScriptType(77).Enum()}); f.GetCode() != pb.FailureType_Failure_DataError {
		t.Fatal(f)
	}
}
