package trezoremu

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/emulator"
	pb "github.com/hwbridge/hwbridge/internal/trezorpb"
)

// txJob is a transaction for the test host to stream, as trezorlib's btc.sign_tx does.
type txJob struct {
	coin      string
	version   uint32
	lockTime  uint32
	serialize *bool
	inputs    []*pb.TxInputType
	outputs   []*pb.TxOutputType
	prev      map[string]*pb.TransactionType // key: prev_hash hex, display order
	prevOut   map[wire.OutPoint]*wire.TxOut  // for script checks
	// mutate lets a test change what the host answers (request, answer).
	mutate func(*pb.TxRequest, *pb.TransactionType)
}

type txResult struct {
	serialized []byte
	sigs       map[uint32][]byte
	requests   []*pb.TxRequest
	failure    *pb.Failure
}

func (c *testClient) signTx(job *txJob) txResult {
	c.tb.Helper()
	res := txResult{sigs: map[uint32][]byte{}}
	coin := job.coin
	if coin == "" {
		coin = "Bitcoin"
	}
	msg := &pb.SignTx{InputsCount: proto.Uint32(uint32(len(job.inputs))), OutputsCount: proto.Uint32(uint32(len(job.outputs))), CoinName: proto.String(coin), Version: proto.Uint32(job.version), LockTime: proto.Uint32(job.lockTime), Serialize: job.serialize}
	r := c.call(msg)
	for {
		switch m := r.(type) {
		case *pb.Failure:
			res.failure = m
			return res
		case *pb.TxRequest:
			res.requests = append(res.requests, m)
			if m.Details == nil || m.Serialized == nil {
				c.tb.Fatalf("TxRequest without details or serialized: %v", m)
			}
			res.serialized = append(res.serialized, m.Serialized.SerializedTx...)
			if m.Serialized.SignatureIndex != nil {
				if _, dup := res.sigs[m.Serialized.GetSignatureIndex()]; dup {
					c.tb.Fatalf("signature %d twice", m.Serialized.GetSignatureIndex())
				}
				res.sigs[m.Serialized.GetSignatureIndex()] = m.Serialized.Signature
			}
			if m.GetRequestType() == pb.RequestType_TXFINISHED {
				return res
			}
			ans := job.answer(c.tb, m)
			if job.mutate != nil {
				job.mutate(m, ans)
			}
			r = c.call(&pb.TxAck{Tx: ans})
		default:
			c.tb.Fatalf("unexpected %T during SignTx", r)
		}
	}
}

func (job *txJob) answer(tb testing.TB, m *pb.TxRequest) *pb.TransactionType {
	idx := m.Details.GetRequestIndex()
	if h := m.Details.TxHash; h != nil {
		prev, ok := job.prev[hex.EncodeToString(h)]
		if !ok {
			tb.Fatalf("no prev tx %x", h)
		}
		switch m.GetRequestType() {
		case pb.RequestType_TXMETA:
			return &pb.TransactionType{Version: prev.Version, LockTime: prev.LockTime, InputsCnt: proto.Uint32(uint32(len(prev.Inputs))), OutputsCnt: proto.Uint32(uint32(len(prev.BinOutputs))), ExtraDataLen: proto.Uint32(0)}
		case pb.RequestType_TXINPUT:
			return &pb.TransactionType{Inputs: []*pb.TxInputType{prev.Inputs[idx]}}
		case pb.RequestType_TXOUTPUT:
			return &pb.TransactionType{BinOutputs: []*pb.TxOutputBinType{prev.BinOutputs[idx]}}
		}
		tb.Fatalf("request %v", m)
	}
	switch m.GetRequestType() {
	case pb.RequestType_TXINPUT:
		return &pb.TransactionType{Inputs: []*pb.TxInputType{job.inputs[idx]}}
	case pb.RequestType_TXOUTPUT:
		return &pb.TransactionType{Outputs: []*pb.TxOutputType{job.outputs[idx]}}
	}
	tb.Fatalf("request %v", m)
	return nil
}

// fundingTx builds a self-consistent previous transaction paying amount to script at vout.
func fundingTx(seed byte, vout int, amount int64, script []byte) *wire.MsgTx {
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: chainhash.Hash{seed, 1, 2, 3}, Index: uint32(seed)}, []byte{0x51}, nil))
	for k := 0; k <= vout; k++ {
		if k == vout {
			tx.AddTxOut(wire.NewTxOut(amount, script))
		} else {
			tx.AddTxOut(wire.NewTxOut(int64(1000+k), []byte{txscript.OP_TRUE}))
		}
	}
	return tx
}

func toTransactionType(tx *wire.MsgTx) *pb.TransactionType {
	t := &pb.TransactionType{Version: proto.Uint32(uint32(tx.Version)), LockTime: proto.Uint32(tx.LockTime)}
	for _, in := range tx.TxIn {
		t.Inputs = append(t.Inputs, &pb.TxInputType{PrevHash: reversedBytes(in.PreviousOutPoint.Hash[:]), PrevIndex: proto.Uint32(in.PreviousOutPoint.Index), ScriptSig: in.SignatureScript, Sequence: proto.Uint32(in.Sequence)})
	}
	for _, o := range tx.TxOut {
		t.BinOutputs = append(t.BinOutputs, &pb.TxOutputBinType{Amount: proto.Uint64(uint64(o.Value)), ScriptPubkey: o.PkScript})
	}
	return t
}

func reversedBytes(b []byte) []byte {
	r := slices.Clone(b)
	slices.Reverse(r)
	return r
}

var kindOf = map[pb.InputScriptType]emulator.ScriptKind{
	pb.InputScriptType_SPENDADDRESS:     emulator.P2PKH,
	pb.InputScriptType_SPENDP2SHWITNESS: emulator.P2SHP2WPKH,
	pb.InputScriptType_SPENDWITNESS:     emulator.P2WPKH,
	pb.InputScriptType_SPENDTAPROOT:     emulator.P2TR,
}

// addInput funds a key of the default wallet and adds the input spending it.
func (job *txJob) addInput(tb testing.TB, w *emulator.Wallet, p string, st pb.InputScriptType, amount int64) {
	tb.Helper()
	pub, err := w.PubKey(path(p))
	if err != nil {
		tb.Fatal(err)
	}
	script, err := emulator.PkScript(pub, kindOf[st])
	if err != nil {
		tb.Fatal(err)
	}
	n := len(job.inputs)
	vout := n % 3
	prev := fundingTx(byte(n), vout, amount, script)
	h := prev.TxHash()
	if job.prev == nil {
		job.prev, job.prevOut = map[string]*pb.TransactionType{}, map[wire.OutPoint]*wire.TxOut{}
	}
	job.prev[h.String()] = toTransactionType(prev)
	job.prevOut[wire.OutPoint{Hash: h, Index: uint32(vout)}] = prev.TxOut[vout]
	job.inputs = append(job.inputs, &pb.TxInputType{AddressN: path(p), PrevHash: reversedBytes(h[:]), PrevIndex: proto.Uint32(uint32(vout)), Amount: proto.Uint64(uint64(amount)), ScriptType: st.Enum(), Sequence: proto.Uint32(0xfffffffd)})
}

// verifySigned runs btcd's script engine over every input of the signed transaction.
func verifySigned(tb testing.TB, raw []byte, prevOut map[wire.OutPoint]*wire.TxOut) *wire.MsgTx {
	tb.Helper()
	tx := wire.NewMsgTx(0)
	if err := tx.Deserialize(bytes.NewReader(raw)); err != nil {
		tb.Fatalf("signed tx does not parse: %v\n%x", err, raw)
	}
	fetcher := txscript.NewMultiPrevOutFetcher(prevOut)
	hashes := txscript.NewTxSigHashes(tx, fetcher)
	for i, in := range tx.TxIn {
		po := prevOut[in.PreviousOutPoint]
		vm, err := txscript.NewEngine(po.PkScript, tx, i, txscript.StandardVerifyFlags, nil, hashes, po.Value, fetcher)
		if err != nil {
			tb.Fatal(err)
		}
		if err := vm.Execute(); err != nil {
			tb.Fatalf("input %d does not verify: %v", i, err)
		}
	}
	return tx
}

func TestSignTxAllScriptTypes(t *testing.T) {
	d := newDevice(t, Options{})
	c := newClient(t, d)
	w, _ := emulator.NewWallet(emulator.DefaultMnemonic, "")
	job := &txJob{version: 2}
	job.addInput(t, w, "m/44'/0'/0'/0/0", pb.InputScriptType_SPENDADDRESS, 50_000)
	job.addInput(t, w, "m/49'/0'/0'/0/1", pb.InputScriptType_SPENDP2SHWITNESS, 60_000)
	job.addInput(t, w, "m/84'/0'/0'/0/2", pb.InputScriptType_SPENDWITNESS, 70_000)
	job.addInput(t, w, "m/86'/0'/0'/0/3", pb.InputScriptType_SPENDTAPROOT, 80_000)
	job.outputs = []*pb.TxOutputType{
		{Address: proto.String("bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g"), Amount: proto.Uint64(100_000), ScriptType: pb.OutputScriptType_PAYTOADDRESS.Enum()},
		{AddressN: path("m/84'/0'/0'/1/0"), Amount: proto.Uint64(150_000), ScriptType: pb.OutputScriptType_PAYTOWITNESS.Enum()},
		{OpReturnData: []byte("hwbridge"), Amount: proto.Uint64(0), ScriptType: pb.OutputScriptType_PAYTOOPRETURN.Enum()},
	}
	res := c.signTx(job)
	if res.failure != nil {
		t.Fatal(res.failure)
	}
	if len(res.sigs) != 4 {
		t.Fatalf("signatures %v", res.sigs)
	}
	if len(res.sigs[3]) != 64 {
		t.Fatalf("taproot signature length %d", len(res.sigs[3]))
	}
	tx := verifySigned(t, res.serialized, job.prevOut)
	if len(tx.TxOut) != 3 || tx.TxOut[1].Value != 150_000 {
		t.Fatal("outputs")
	}
	// Screens: every output, the OP_RETURN, the total. The m/84' output is not change:
	// with inputs of four script types and accounts nothing matches all of them (core's
	// sign_tx/matchcheck.py; the Trezor One's firmware shows it too, see
	// device/trezor/testdata/trezor-one-1.13.1/sign-psbt.txt).
	var titles []string
	for _, e := range d.Approver().Transcript() {
		titles = append(titles, e.Title)
	}
	if strings.Join(titles, ",") != "Confirm output,Confirm output,Confirm OP_RETURN,Confirm transaction" {
		t.Fatalf("screens %v", titles)
	}
	last := lastScreen(t, d)
	if !slices.Contains(last.Lines, "Total amount: 0.0026 BTC") || !slices.Contains(last.Lines, "Including fee: 0.0001 BTC") {
		t.Fatalf("total screen %v", last.Lines)
	}
	if want := []pb.ButtonRequestType{pb.ButtonRequestType_ButtonRequest_ConfirmOutput, pb.ButtonRequestType_ButtonRequest_ConfirmOutput, pb.ButtonRequestType_ButtonRequest_ConfirmOutput, pb.ButtonRequestType_ButtonRequest_SignTx}; !slices.Equal(c.buttons, want) {
		t.Fatalf("buttons %v", c.buttons)
	}
	// Every input's previous transaction was streamed (mixed inputs).
	metas := 0
	for _, r := range res.requests {
		if r.GetRequestType() == pb.RequestType_TXMETA {
			metas++
		}
	}
	if metas != 4 {
		t.Fatalf("TXMETA requests %d", metas)
	}
}

func TestSignTxTaprootOnlySkipsPrevTx(t *testing.T) {
	d := newDevice(t, Options{})
	c := newClient(t, d)
	w, _ := emulator.NewWallet(emulator.DefaultMnemonic, "")
	job := &txJob{version: 2, coin: "Regtest"}
	job.addInput(t, w, "m/86'/1'/0'/0/0", pb.InputScriptType_SPENDTAPROOT, 100_000)
	job.addInput(t, w, "m/86'/1'/0'/0/1", pb.InputScriptType_SPENDTAPROOT, 20_000)
	pub, _ := w.PubKey(path("m/86'/1'/0'/0/5"))
	to, _ := emulator.Address(pub, emulator.P2TR, &chaincfg.RegressionNetParams)
	job.outputs = []*pb.TxOutputType{{Address: proto.String(to.EncodeAddress()), Amount: proto.Uint64(110_000), ScriptType: pb.OutputScriptType_PAYTOADDRESS.Enum()}}
	job.prev = nil // the device must not ask
	res := c.signTx(job)
	if res.failure != nil {
		t.Fatal(res.failure)
	}
	for _, r := range res.requests {
		if r.Details.TxHash != nil {
			t.Fatalf("taproot-only tx streamed a previous tx: %v", r)
		}
	}
	verifySigned(t, res.serialized, job.prevOut)
}

func TestSignTxNoSerialize(t *testing.T) {
	d := newDevice(t, Options{})
	c := newClient(t, d)
	w, _ := emulator.NewWallet(emulator.DefaultMnemonic, "")
	job := &txJob{version: 2, serialize: proto.Bool(false)}
	job.addInput(t, w, "m/84'/0'/0'/0/0", pb.InputScriptType_SPENDWITNESS, 100_000)
	job.addInput(t, w, "m/44'/0'/0'/0/0", pb.InputScriptType_SPENDADDRESS, 100_000)
	job.outputs = []*pb.TxOutputType{{Address: proto.String("1LqBGSKuX5yYUonjxT5qGfpUsXKYYWeabA"), Amount: proto.Uint64(190_000)}}
	res := c.signTx(job)
	if res.failure != nil || len(res.serialized) != 0 || len(res.sigs) != 2 {
		t.Fatalf("failure %v serialized %d sigs %d", res.failure, len(res.serialized), len(res.sigs))
	}
}

func TestSignTxRefusals(t *testing.T) {
	w, _ := emulator.NewWallet(emulator.DefaultMnemonic, "")
	base := func() *txJob {
		job := &txJob{version: 2}
		job.addInput(t, w, "m/84'/0'/0'/0/0", pb.InputScriptType_SPENDWITNESS, 100_000)
		job.outputs = []*pb.TxOutputType{{Address: proto.String("bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g"), Amount: proto.Uint64(90_000)}}
		return job
	}
	for _, tc := range []struct {
		name string
		edit func(*txJob)
		code pb.FailureType
		msg  string
	}{
		{"prev txid", func(j *txJob) {
			for _, p := range j.prev {
				p.Version = proto.Uint32(1)
			}
		}, pb.FailureType_Failure_DataError, "Encountered invalid prev_hash"},
		{"amount", func(j *txJob) { j.inputs[0].Amount = proto.Uint64(100_001) }, pb.FailureType_Failure_DataError, "Invalid amount specified"},
		{"script", func(j *txJob) { j.inputs[0].AddressN = path("m/84'/0'/0'/0/1") }, pb.FailureType_Failure_DataError, "Input does not match scriptPubKey"},
		{"funds", func(j *txJob) { j.outputs[0].Amount = proto.Uint64(200_000) }, pb.FailureType_Failure_NotEnoughFunds, "Not enough funds"},
		{"address", func(j *txJob) { j.outputs[0].Address = proto.String("tb1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g") }, pb.FailureType_Failure_DataError, "Invalid address"},
		{"no amount", func(j *txJob) { j.inputs[0].Amount = nil }, pb.FailureType_Failure_DataError, "Missing amount field"},
		{"changed", func(j *txJob) {
			n := 0
			j.mutate = func(r *pb.TxRequest, a *pb.TransactionType) {
				if r.GetRequestType() == pb.RequestType_TXINPUT && r.Details.TxHash == nil {
					if n++; n == 2 {
						in := proto.Clone(a.Inputs[0]).(*pb.TxInputType)
						in.Sequence = proto.Uint32(1)
						a.Inputs[0] = in
					}
				}
			}
		}, pb.FailureType_Failure_DataError, "Transaction has changed during signing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDevice(t, Options{})
			c := newClient(t, d)
			job := base()
			tc.edit(job)
			res := c.signTx(job)
			if res.failure == nil || res.failure.GetCode() != tc.code || res.failure.GetMessage() != tc.msg {
				t.Fatalf("got %v", res.failure)
			}
			// The device answers normally afterwards.
			callAs[*pb.Success](c, &pb.Ping{})
		})
	}
	// A rejected output is ActionCancelled.
	d := newDevice(t, Options{Approver: emulator.NewApprover(emulator.PolicyReject)})
	res := newClient(t, d).signTx(base())
	if res.failure == nil || res.failure.GetCode() != pb.FailureType_Failure_ActionCancelled {
		t.Fatalf("reject: %v", res.failure)
	}
}

// p2wpkhJob builds an n-input p2wpkh spend.
func p2wpkhJob(tb testing.TB, w *emulator.Wallet, n int) *txJob {
	job := &txJob{version: 2}
	for i := range n {
		job.addInput(tb, w, fmt.Sprintf("m/84'/0'/0'/0/%d", i), pb.InputScriptType_SPENDWITNESS, 10_000)
	}
	job.outputs = []*pb.TxOutputType{
		{Address: proto.String("bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"), Amount: proto.Uint64(uint64(n) * 9_000)},
		{AddressN: path("m/84'/0'/0'/1/0"), Amount: proto.Uint64(500), ScriptType: pb.OutputScriptType_PAYTOWITNESS.Enum()},
	}
	return job
}

func TestSignTxManyInputs(t *testing.T) {
	d := newDevice(t, Options{})
	c := newClient(t, d)
	w, _ := emulator.NewWallet(emulator.DefaultMnemonic, "")
	job := p2wpkhJob(t, w, 20)
	res := c.signTx(job)
	if res.failure != nil {
		t.Fatal(res.failure)
	}
	verifySigned(t, res.serialized, job.prevOut)
}
