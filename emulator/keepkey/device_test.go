package keepkeyemu

import (
	"bytes"
	"context"
	"encoding/hex"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/emulator"
	pb "github.com/hwbridge/hwbridge/internal/keepkeypb"
	"github.com/hwbridge/hwbridge/transport"
)

// host is a minimal KeepKey host for protocol tests: it writes messages and reads answers,
// acknowledging ButtonRequests on the way.
type host struct {
	t    *testing.T
	link interface {
		Read([]byte) (int, error)
		Write([]byte) (int, error)
		SetDeadline(time.Time) error
	}
}

func newHost(t *testing.T, d *Device) *host {
	l := d.Pipe()
	t.Cleanup(func() { l.Close() })
	return &host{t: t, link: l}
}

func (h *host) write(m proto.Message) {
	h.t.Helper()
	id, b, err := pb.Marshal(m)
	if err != nil {
		h.t.Fatal(err)
	}
	h.link.SetDeadline(time.Now().Add(5 * time.Second))
	if err := transport.WriteV1(h.link, uint16(id), b); err != nil {
		h.t.Fatal(err)
	}
}

func (h *host) read() proto.Message {
	h.t.Helper()
	h.link.SetDeadline(time.Now().Add(5 * time.Second))
	typ, body, err := transport.ReadV1(h.link)
	if err != nil {
		h.t.Fatalf("read: %v", err)
	}
	m, err := pb.Unmarshal(pb.MessageType(typ), body)
	if err != nil {
		h.t.Fatal(err)
	}
	return m
}

// call writes m and returns the first answer that is not a ButtonRequest (each one acked).
func (h *host) call(m proto.Message) proto.Message {
	h.t.Helper()
	h.write(m)
	for {
		r := h.read()
		if _, ok := r.(*pb.ButtonRequest); ok {
			h.write(&pb.ButtonAck{})
			continue
		}
		return r
	}
}

func wantFailure(t *testing.T, m proto.Message, code pb.FailureType, text string) {
	t.Helper()
	f, ok := m.(*pb.Failure)
	if !ok || f.GetCode() != code || f.GetMessage() != text {
		t.Fatalf("answer %v, want Failure %v %q", m, code, text)
	}
}

func TestUnknownMessages(t *testing.T) {
	h := newHost(t, NewForTest(t, Options{}))
	// Ethereum712TypesValues (114), EIP-712 documents: not emulated, answered as a
	// firmware without the handler answers.
	h.write(&pb.Initialize{})
	if f, ok := h.read().(*pb.Features); !ok || f.GetVendor() != "keepkey.com" {
		t.Fatal("no features")
	}
	h.link.SetDeadline(time.Now().Add(5 * time.Second))
	if err := transport.WriteV1(h.link, 114, []byte{0x12, 0x00}); err != nil {
		t.Fatal(err)
	}
	wantFailure(t, h.read(), pb.FailureType_Failure_UnexpectedMessage, "Unknown message")
	wantFailure(t, h.call(&pb.ButtonAck{}), pb.FailureType_Failure_UnexpectedMessage, "Unknown message")
}

// TestTaprootRefused: KeepKey 7.10 has no taproot inputs ("Wrong input script type") and no
// taproot addresses of its own keys.
func TestTaprootRefused(t *testing.T) {
	h := newHost(t, NewForTest(t, Options{}))
	wantFailure(t, h.call(&pb.GetAddress{AddressN: path("m/86'/0'/0'/0/0"), ScriptType: pb.InputScriptType_SPENDTAPROOT.Enum()}),
		pb.FailureType_Failure_SyntaxError, "Invalid script type")
	r := h.call(&pb.SignTx{InputsCount: proto.Uint32(1), OutputsCount: proto.Uint32(1)})
	if _, ok := r.(*pb.TxRequest); !ok {
		t.Fatalf("answer %v", r)
	}
	wantFailure(t, h.call(&pb.TxAck{Tx: &pb.TransactionType{Inputs: []*pb.TxInputType{{AddressN: path("m/86'/0'/0'/0/0"),
		PrevHash: make([]byte, 32), Amount: proto.Uint64(1000), ScriptType: pb.InputScriptType_SPENDTAPROOT.Enum()}}}}),
		pb.FailureType_Failure_SyntaxError, "Wrong input script type")
}

func TestEthRefusals(t *testing.T) {
	h := newHost(t, NewForTest(t, Options{}))
	base := func() *pb.EthereumSignTx {
		return &pb.EthereumSignTx{AddressN: path("m/44'/60'/0'/0/0"), Nonce: []byte{}, GasLimit: []byte{0x52, 0x08}, To: make([]byte, 20),
			MaxFeePerGas: []byte{2}, MaxPriorityFeePerGas: []byte{1}, ChainId: proto.Uint32(300), Type: proto.Uint32(2)}
	}
	m := base()
	wantFailure(t, h.call(m), pb.FailureType_Failure_SyntaxError, "EIP-1559 chain id 300 is unsupported (KeepKey 7.10 hashes one byte of it)")
	m = base()
	m.Type = proto.Uint32(1)
	wantFailure(t, h.call(m), pb.FailureType_Failure_SyntaxError, "Ethereum tx type out of bounds")
	m = base()
	m.ChainId = proto.Uint32(0)
	wantFailure(t, h.call(m), pb.FailureType_Failure_SyntaxError, "Chain Id out of bounds")
	m = base()
	m.DataLength = proto.Uint32(10)
	wantFailure(t, h.call(m), pb.FailureType_Failure_Other, "Data length provided, but no initial chunk")
}

// TestRejected: NO on a screen is ActionCancelled with the firmware's text, and the device
// answers the next request.
func TestRejected(t *testing.T) {
	h := newHost(t, NewForTest(t, Options{Approver: emulator.NewApprover(emulator.PolicyReject)}))
	wantFailure(t, h.call(&pb.GetAddress{AddressN: path("m/84'/0'/0'/0/0"), ScriptType: pb.InputScriptType_SPENDWITNESS.Enum(), ShowDisplay: proto.Bool(true)}),
		pb.FailureType_Failure_ActionCancelled, "Show address cancelled")
	wantFailure(t, h.call(&pb.SignMessage{AddressN: path("m/84'/0'/0'/0/0"), Message: []byte("x"), ScriptType: pb.InputScriptType_SPENDWITNESS.Enum()}),
		pb.FailureType_Failure_ActionCancelled, "Sign message cancelled")
	if a, ok := h.call(&pb.GetAddress{AddressN: path("m/84'/0'/0'/0/0"), ScriptType: pb.InputScriptType_SPENDWITNESS.Enum()}).(*pb.Address); !ok || a.GetAddress() != hdwalletVectors[2].address {
		t.Fatal("no address after the rejections")
	}
}

// TestDebugLinkDecision: under the prompt policy, a DebugLinkDecision on the debug port
// (wire port + 1) answers the screen, as KeepKey's debug link does.
func TestDebugLinkDecision(t *testing.T) {
	d := NewForTest(t, Options{Approver: emulator.NewApprover(emulator.PolicyPrompt)})
	srv := serveUDP(t, d)
	link, err := transport.DialUDP(t.Context(), srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer link.Close()
	h := &host{t: t, link: link}
	h.write(&pb.GetAddress{AddressN: path("m/49'/0'/0'/0/0"), ScriptType: pb.InputScriptType_SPENDP2SHWITNESS.Enum(), ShowDisplay: proto.Bool(true)})
	if _, ok := h.read().(*pb.ButtonRequest); !ok {
		t.Fatal("no button request")
	}
	h.write(&pb.ButtonAck{})
	dbg, err := net.Dial("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(srv.Addr().Port+1)))
	if err != nil {
		t.Fatal(err)
	}
	defer dbg.Close()
	id, b, _ := pb.Marshal(&pb.DebugLinkDecision{YesNo: proto.Bool(true)})
	if err := transport.WriteV1(dbg, uint16(id), b); err != nil {
		t.Fatal(err)
	}
	if a, ok := h.read().(*pb.Address); !ok || a.GetAddress() != hdwalletVectors[1].address {
		t.Fatalf("address after the decision: %v", a)
	}
}

// TestSignTxMixed: a p2pkh and a p2wpkh input (mixing is on in 7.10) with change: the
// serialized chunks the device streams make the signed transaction, whose inputs verify in
// btcd's script engine; a previous transaction that does not hash to prev_hash is refused.
func TestSignTxMixed(t *testing.T) {
	d := NewForTest(t, Options{})
	h := newHost(t, d)
	legacy := fundingTx(t, "mixed p2pkh", hdwalletVectors[0].address)
	segwit := fundingTx(t, "mixed p2wpkh", hdwalletVectors[2].address)
	ins := []*pb.TxInputType{
		{AddressN: path("m/44'/0'/0'/0/0"), PrevHash: reversed(hashBytes(legacy.TxHash())), PrevIndex: proto.Uint32(0), ScriptType: pb.InputScriptType_SPENDADDRESS.Enum()},
		{AddressN: path("m/84'/0'/0'/0/0"), PrevHash: reversed(hashBytes(segwit.TxHash())), PrevIndex: proto.Uint32(0), ScriptType: pb.InputScriptType_SPENDWITNESS.Enum(), Amount: proto.Uint64(100000)},
	}
	outs := []*pb.TxOutputType{
		{Address: proto.String(hdwalletPayTo), Amount: proto.Uint64(150000), ScriptType: pb.OutputScriptType_PAYTOADDRESS.Enum()},
		{AddressN: path("m/84'/0'/0'/1/0"), Amount: proto.Uint64(40000), ScriptType: pb.OutputScriptType_PAYTOWITNESS.Enum(), AddressType: pb.OutputAddressType_CHANGE.Enum()},
	}
	prev := map[string]*wire.MsgTx{hex.EncodeToString(reversed(hashBytes(legacy.TxHash()))): legacy}
	var ser bytes.Buffer
	sigs := map[uint32][]byte{}
	r := h.call(&pb.SignTx{InputsCount: proto.Uint32(2), OutputsCount: proto.Uint32(2), Version: proto.Uint32(2)})
	for {
		req, ok := r.(*pb.TxRequest)
		if !ok {
			t.Fatalf("answer %v", r)
		}
		if s := req.GetSerialized(); s != nil {
			ser.Write(s.GetSerializedTx())
			if s.SignatureIndex != nil {
				sigs[s.GetSignatureIndex()] = s.GetSignature()
			}
		}
		if req.GetRequestType() == pb.RequestType_TXFINISHED {
			break
		}
		det := req.GetDetails()
		i := det.GetRequestIndex()
		var tx *pb.TransactionType
		if h := det.GetTxHash(); h != nil {
			p := prev[hex.EncodeToString(h)]
			switch req.GetRequestType() {
			case pb.RequestType_TXMETA:
				tx = &pb.TransactionType{Version: proto.Uint32(uint32(p.Version)), LockTime: proto.Uint32(p.LockTime), InputsCnt: proto.Uint32(uint32(len(p.TxIn))), OutputsCnt: proto.Uint32(uint32(len(p.TxOut)))}
			case pb.RequestType_TXINPUT:
				in := p.TxIn[i]
				tx = &pb.TransactionType{Inputs: []*pb.TxInputType{{PrevHash: reversed(hashBytes(in.PreviousOutPoint.Hash)), PrevIndex: proto.Uint32(in.PreviousOutPoint.Index), ScriptSig: in.SignatureScript, Sequence: proto.Uint32(in.Sequence)}}}
			case pb.RequestType_TXOUTPUT:
				tx = &pb.TransactionType{BinOutputs: []*pb.TxOutputBinType{{Amount: proto.Uint64(uint64(p.TxOut[i].Value)), ScriptPubkey: p.TxOut[i].PkScript}}}
			}
		} else if req.GetRequestType() == pb.RequestType_TXINPUT {
			tx = &pb.TransactionType{Inputs: []*pb.TxInputType{ins[i]}}
		} else {
			tx = &pb.TransactionType{Outputs: []*pb.TxOutputType{outs[i]}}
		}
		r = h.call(&pb.TxAck{Tx: tx})
	}
	if len(sigs) != 2 {
		t.Fatalf("%d signatures", len(sigs))
	}
	var tx wire.MsgTx
	if err := tx.Deserialize(bytes.NewReader(ser.Bytes())); err != nil {
		t.Fatalf("serialized %x: %v", ser.Bytes(), err)
	}
	fetch := txscript.NewMultiPrevOutFetcher(nil)
	fetch.AddPrevOut(tx.TxIn[0].PreviousOutPoint, legacy.TxOut[0])
	fetch.AddPrevOut(tx.TxIn[1].PreviousOutPoint, segwit.TxOut[0])
	hashes := txscript.NewTxSigHashes(&tx, fetch)
	for i, po := range []*wire.TxOut{legacy.TxOut[0], segwit.TxOut[0]} {
		vm, err := txscript.NewEngine(po.PkScript, &tx, i, txscript.StandardVerifyFlags, nil, hashes, po.Value, fetch)
		if err != nil {
			t.Fatal(err)
		}
		if err := vm.Execute(); err != nil {
			t.Errorf("input %d: %v", i, err)
		}
	}
	change, _ := btcutil.DecodeAddress("bc1q8c6fshw2dlwun7ekn9qwf37cu2rn755upcp6el", &chaincfg.MainNetParams) // m/84'/0'/0'/1/0 (BIP-84 vector)
	if cs, _ := txscript.PayToAddrScript(change); !bytes.Equal(tx.TxOut[1].PkScript, cs) {
		t.Errorf("change output script %x", tx.TxOut[1].PkScript)
	}

	// The same with a previous transaction that is not the one prev_hash names.
	bad := legacy.Copy()
	bad.TxOut[0].Value++
	prev[hex.EncodeToString(reversed(hashBytes(legacy.TxHash())))] = bad
	r = h.call(&pb.SignTx{InputsCount: proto.Uint32(1), OutputsCount: proto.Uint32(1)})
	for {
		req, ok := r.(*pb.TxRequest)
		if !ok {
			wantFailure(t, r, pb.FailureType_Failure_SyntaxError, "Encountered invalid prevhash")
			break
		}
		det := req.GetDetails()
		var tx *pb.TransactionType
		switch p := bad; {
		case det.GetTxHash() == nil:
			tx = &pb.TransactionType{Inputs: []*pb.TxInputType{ins[0]}}
		case req.GetRequestType() == pb.RequestType_TXMETA:
			tx = &pb.TransactionType{Version: proto.Uint32(uint32(p.Version)), InputsCnt: proto.Uint32(1), OutputsCnt: proto.Uint32(1)}
		case req.GetRequestType() == pb.RequestType_TXINPUT:
			in := p.TxIn[0]
			tx = &pb.TransactionType{Inputs: []*pb.TxInputType{{PrevHash: reversed(hashBytes(in.PreviousOutPoint.Hash)), PrevIndex: proto.Uint32(0), ScriptSig: in.SignatureScript, Sequence: proto.Uint32(in.Sequence)}}}
		default:
			tx = &pb.TransactionType{BinOutputs: []*pb.TxOutputBinType{{Amount: proto.Uint64(uint64(p.TxOut[0].Value)), ScriptPubkey: p.TxOut[0].PkScript}}}
		}
		r = h.call(&pb.TxAck{Tx: tx})
	}
}

func hashBytes(h chainhash.Hash) []byte { return h[:] }

// TestCancelWhileScreenUp: a host Cancel while a screen waits (prompt policy) ends the
// workflow with ActionCancelled and the screen is recorded as cancelled.
func TestCancelWhileScreenUp(t *testing.T) {
	d := NewForTest(t, Options{Approver: emulator.NewApprover(emulator.PolicyPrompt)})
	h := newHost(t, d)
	h.write(&pb.SignMessage{AddressN: path("m/84'/0'/0'/0/0"), Message: []byte("x"), ScriptType: pb.InputScriptType_SPENDWITNESS.Enum()})
	if _, ok := h.read().(*pb.ButtonRequest); !ok {
		t.Fatal("no button request")
	}
	h.write(&pb.ButtonAck{})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for {
		if _, ok := d.Approver().Pending(); ok || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	h.write(&pb.Cancel{})
	wantFailure(t, h.read(), pb.FailureType_Failure_ActionCancelled, "Cancelled")
	tr := d.Approver().Transcript()
	if len(tr) != 1 || tr[0].Outcome != emulator.OutcomeCancelled || tr[0].Device != "keepkey" {
		t.Fatalf("transcript %+v", tr)
	}
}

// TestPINProtocol: pin_sm.c's answers: PinCancelled for a host Cancel and for positions
// that are not 1-9, PinInvalid for a wrong PIN, and no second request once it is cached.
func TestPINProtocol(t *testing.T) {
	d := NewForTest(t, Options{PIN: "7"})
	h := newHost(t, d)
	get := &pb.GetAddress{AddressN: path("m/84'/0'/0'/0/0"), ScriptType: pb.InputScriptType_SPENDWITNESS.Enum()}
	ask := func() {
		t.Helper()
		if r, ok := h.call(get).(*pb.PinMatrixRequest); !ok || r.GetType() != pb.PinMatrixRequestType_PinMatrixRequestType_Current {
			t.Fatalf("no pin request: %v", r)
		}
	}
	ask()
	wantFailure(t, h.call(&pb.Cancel{}), pb.FailureType_Failure_PinCancelled, "PIN Cancelled")
	ask()
	wantFailure(t, h.call(&pb.PinMatrixAck{Pin: proto.String("70")}), pb.FailureType_Failure_PinCancelled, "PIN must be at least 1 digit consisting of numbers from 1 to 9")
	ask()
	wantFailure(t, h.call(&pb.PinMatrixAck{Pin: proto.String("8")}), pb.FailureType_Failure_PinInvalid, "Invalid PIN")
	if f, ok := h.call(&pb.GetFeatures{}).(*pb.Features); !ok || !f.GetPinProtection() || f.GetPinCached() {
		t.Fatalf("features of a locked device: %v", f)
	}
	ask()
	if a, ok := h.call(&pb.PinMatrixAck{Pin: proto.String("7")}).(*pb.Address); !ok || a.GetAddress() != hdwalletVectors[2].address {
		t.Fatalf("address after the pin: %v", a)
	}
	if _, ok := h.call(get).(*pb.Address); !ok {
		t.Fatal("the cached pin was asked again")
	}
	h.call(&pb.ClearSession{})
	ask()
	if _, err := New(Options{PIN: "1230"}); err == nil {
		t.Fatal("a pin with 0 was accepted")
	}
}
