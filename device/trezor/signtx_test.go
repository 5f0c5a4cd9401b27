package trezor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"testing"

	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/tyler-smith/go-bip39"
	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/devicetest"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/internal/trezorpb"
)

// keySource is the part of a device devicetest.NewSpend uses (fingerprint and xpubs), from
// the test mnemonic. It lets the streaming test build PSBTs without an emulator.
type keySource struct {
	device.Device // nil: only the methods below are called
	master        *hdkeychain.ExtendedKey
}

func newKeySource(t *testing.T) *keySource {
	m, err := hdkeychain.NewMaster(bip39.NewSeed(devicetest.Mnemonic, ""), &chaincfg.MainNetParams)
	if err != nil {
		t.Fatal(err)
	}
	return &keySource{master: m}
}

func (k *keySource) Fingerprint(context.Context) (device.Fingerprint, error) {
	return devicetest.VectorFingerprint, nil
}

func (k *keySource) XPub(_ context.Context, req device.XPubRequest) (string, error) {
	x := k.master
	for _, s := range req.Path {
		var err error
		if x, err = x.Derive(s); err != nil {
			return "", err
		}
	}
	n, err := x.Neuter()
	if err != nil {
		return "", err
	}
	if req.Network != nil {
		n.SetNet(req.Network)
	}
	return n.String(), nil
}

// streamingFake plays the firmware's side of SignTx (trezor.md §6.1) with fixed
// signatures, and checks every answer the host gives: the inputs it is asked to sign, and
// the previous transactions, which it reassembles and hashes as the firmware does.
type streamingFake struct {
	t       *testing.T
	taproot map[int]bool // inputs that get 64-byte signatures

	mu      sync.Mutex
	queue   []*trezorpb.TxRequest
	pending *trezorpb.TxRequest
	check   []func() error
	prev    map[string]*wire.MsgTx // being reassembled, by display hash
	inputs  []*trezorpb.TxInputType
	outputs []*trezorpb.TxOutputType
	errs    []error
	buttons int

	signTxCount int
}

func req(rt trezorpb.RequestType, idx int, hash []byte) *trezorpb.TxRequest {
	return &trezorpb.TxRequest{RequestType: rt.Enum(), Details: &trezorpb.TxRequestDetailsType{RequestIndex: proto.Uint32(uint32(idx)), TxHash: hash},
		Serialized: &trezorpb.TxRequestSerializedType{}}
}

func (f *streamingFake) fail(format string, args ...any) {
	f.errs = append(f.errs, fmt.Errorf(format, args...))
}

func (f *streamingFake) handle(m proto.Message) []proto.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r := m.(type) {
	case *trezorpb.GetPublicKey:
		return []proto.Message{&trezorpb.PublicKey{Node: &trezorpb.HDNodeType{Fingerprint: proto.Uint32(uint32(devicetest.VectorFingerprint))}, Xpub: proto.String("unused")}}
	case *trezorpb.SignTx:
		n, mOut := int(r.GetInputsCount()), int(r.GetOutputsCount())
		if r.GetSerialize() {
			f.fail("SignTx without serialize=false")
		}
		f.signTxCount++
		f.queue, f.pending, f.prev = nil, nil, nil // a new workflow
		f.inputs, f.outputs = make([]*trezorpb.TxInputType, n), make([]*trezorpb.TxOutputType, mOut)
		for i := range n {
			f.queue = append(f.queue, req(trezorpb.RequestType_TXINPUT, i, nil))
		}
		for j := range mOut {
			f.queue = append(f.queue, req(trezorpb.RequestType_TXOUTPUT, j, nil))
		}
		f.queue = append(f.queue, nil) // the confirmation screen
		return f.next()
	case *trezorpb.ButtonAck:
		f.buttons++
		return f.next()
	case *trezorpb.TxAck:
		f.answer(r.GetTx())
		return f.next()
	}
	f.fail("unexpected %T", m)
	return []proto.Message{&trezorpb.Failure{Code: trezorpb.FailureType_Failure_UnexpectedMessage.Enum()}}
}

// answer checks the host's TxAck against the pending request.
func (f *streamingFake) answer(tx *trezorpb.TransactionType) {
	r := f.pending
	idx := int(r.GetDetails().GetRequestIndex())
	h := r.GetDetails().GetTxHash()
	switch {
	case h == nil && r.GetRequestType() == trezorpb.RequestType_TXINPUT:
		if len(tx.GetInputs()) != 1 {
			f.fail("input %d: %d inputs in TxAck", idx, len(tx.GetInputs()))
			return
		}
		f.inputs[idx] = tx.GetInputs()[0]
	case h == nil && r.GetRequestType() == trezorpb.RequestType_TXOUTPUT:
		if len(tx.GetOutputs()) != 1 {
			f.fail("output %d: %d outputs in TxAck", idx, len(tx.GetOutputs()))
			return
		}
		f.outputs[idx] = tx.GetOutputs()[0]
	case r.GetRequestType() == trezorpb.RequestType_TXMETA:
		p := wire.NewMsgTx(int32(tx.GetVersion()))
		p.LockTime = tx.GetLockTime()
		f.prev[string(h)] = p
		var want chainhash.Hash
		for i := range want {
			want[i] = h[31-i]
		}
		f.check = append(f.check, func() error {
			if got := p.TxHash(); got != want {
				return fmt.Errorf("previous tx reassembles to %s, want %s", got, want)
			}
			return nil
		})
		var more []*trezorpb.TxRequest // streamed right after the meta
		for k := range int(tx.GetInputsCnt()) {
			more = append(more, req(trezorpb.RequestType_TXINPUT, k, h))
		}
		for k := range int(tx.GetOutputsCnt()) {
			more = append(more, req(trezorpb.RequestType_TXOUTPUT, k, h))
		}
		f.queue = append(more, f.queue...)
	case r.GetRequestType() == trezorpb.RequestType_TXINPUT:
		in := tx.GetInputs()[0]
		var ph chainhash.Hash
		for i := range ph {
			ph[i] = in.GetPrevHash()[31-i]
		}
		if in.ScriptSig == nil || in.Sequence == nil {
			f.fail("previous input without script_sig or sequence")
		}
		f.prev[string(h)].AddTxIn(&wire.TxIn{PreviousOutPoint: *wire.NewOutPoint(&ph, in.GetPrevIndex()), SignatureScript: in.GetScriptSig(), Sequence: in.GetSequence()})
	case r.GetRequestType() == trezorpb.RequestType_TXOUTPUT:
		out := tx.GetBinOutputs()[0]
		p := f.prev[string(h)]
		p.AddTxOut(wire.NewTxOut(int64(out.GetAmount()), out.GetScriptPubkey()))
	}
}

// next pops the next request; after the first two stages it plans the previous-tx and
// signing stages from what the host sent.
func (f *streamingFake) next() []proto.Message {
	for len(f.queue) == 0 {
		if f.prev == nil {
			f.prev = map[string]*wire.MsgTx{}
			allTaproot := true
			for _, in := range f.inputs {
				allTaproot = allTaproot && in.GetScriptType() == trezorpb.InputScriptType_SPENDTAPROOT
			}
			seen := map[string]bool{}
			for i, in := range f.inputs {
				if allTaproot || seen[string(in.GetPrevHash())] {
					continue
				}
				seen[string(in.GetPrevHash())] = true
				f.queue = append(f.queue, req(trezorpb.RequestType_TXINPUT, i, nil), req(trezorpb.RequestType_TXMETA, 0, in.GetPrevHash()))
			}
			for i := range f.inputs {
				f.queue = append(f.queue, req(trezorpb.RequestType_TXINPUT, i, nil))
			}
			f.queue = append(f.queue, req(trezorpb.RequestType_TXFINISHED, 0, nil))
			continue
		}
		return nil
	}
	r := f.queue[0]
	f.queue = f.queue[1:]
	if r == nil {
		return []proto.Message{&trezorpb.ButtonRequest{Code: trezorpb.ButtonRequestType_ButtonRequest_SignTx.Enum()}}
	}
	// A signature rides on the request after its input was streamed in the signing stage:
	// sign input i when the request before this one was the final TXINPUT(i).
	if p := f.pending; p != nil && f.prev != nil && p.GetDetails().GetTxHash() == nil && p.GetRequestType() == trezorpb.RequestType_TXINPUT && f.signingStage(r) {
		i := int(p.GetDetails().GetRequestIndex())
		sig := bytes.Repeat([]byte{byte(0x30 + i + 16*f.signTxCount)}, 70)
		if f.taproot[i] {
			sig = bytes.Repeat([]byte{byte(0x50 + i)}, 64)
		}
		r.Serialized = &trezorpb.TxRequestSerializedType{SignatureIndex: proto.Uint32(uint32(i)), Signature: sig}
	}
	f.pending = r
	return []proto.Message{r}
}

// signingStage: the remaining queue holds only current-tx TXINPUTs and TXFINISHED.
func (f *streamingFake) signingStage(r *trezorpb.TxRequest) bool {
	for _, q := range append([]*trezorpb.TxRequest{r}, f.queue...) {
		if q == nil || q.GetDetails().GetTxHash() != nil || q.GetRequestType() == trezorpb.RequestType_TXMETA {
			return false
		}
	}
	return true
}

func TestSignTxStreaming(t *testing.T) {
	ks := newKeySource(t)
	tests := []struct {
		name   string
		net    *chaincfg.Params
		inputs []device.ScriptType
		opts   devicetest.SpendOptions
		coin   string
	}{
		{"wpkh", &chaincfg.MainNetParams, []device.ScriptType{device.ScriptWPKH, device.ScriptWPKH}, devicetest.SpendOptions{}, "Bitcoin"},
		{"mixed testnet", &chaincfg.TestNet3Params, []device.ScriptType{device.ScriptPKH, device.ScriptSHWPKH, device.ScriptWPKH, device.ScriptTR}, devicetest.SpendOptions{OpReturn: []byte("hi")}, "Testnet"},
		{"taproot only", &chaincfg.RegressionNetParams, []device.ScriptType{device.ScriptTR}, devicetest.SpendOptions{OmitNonWitnessUTXO: true}, "Regtest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := devicetest.NewSpend(t, t.Context(), ks, tt.net, tt.inputs, tt.opts)
			fake := &streamingFake{t: t, taproot: map[int]bool{}}
			for i, st := range tt.inputs {
				fake.taproot[i] = st == device.ScriptTR
			}
			_, d := newScripted(t, fake.handle)
			if err := d.SignPSBT(t.Context(), p, tt.net); err != nil {
				t.Fatalf("sign: %v (fake saw: %v)", err, fake.errs)
			}
			for _, c := range fake.check {
				if err := c(); err != nil {
					t.Error(err)
				}
			}
			for _, err := range fake.errs {
				t.Error(err)
			}
			// What the host said about each input.
			for i, st := range tt.inputs {
				in := fake.inputs[i]
				wantType := map[device.ScriptType]trezorpb.InputScriptType{
					device.ScriptPKH: trezorpb.InputScriptType_SPENDADDRESS, device.ScriptSHWPKH: trezorpb.InputScriptType_SPENDP2SHWITNESS,
					device.ScriptWPKH: trezorpb.InputScriptType_SPENDWITNESS, device.ScriptTR: trezorpb.InputScriptType_SPENDTAPROOT,
				}[st]
				if in.GetScriptType() != wantType || in.GetAmount() != uint64(100_000+1_000*i) || len(in.GetAddressN()) != 5 {
					t.Errorf("input %d: %v", i, in)
				}
				if st == device.ScriptTR {
					if len(p.Inputs[i].TaprootKeySpendSig) != 64 {
						t.Errorf("input %d: taproot sig %x", i, p.Inputs[i].TaprootKeySpendSig)
					}
					continue
				}
				if len(p.Inputs[i].PartialSigs) != 1 || !bytes.Equal(p.Inputs[i].PartialSigs[0].Signature, append(bytes.Repeat([]byte{byte(0x30 + i + 16)}, 70), 1)) {
					t.Errorf("input %d: partial sigs %v", i, p.Inputs[i].PartialSigs)
				}
			}
			// Outputs: the payee by address, change by path, OP_RETURN by data.
			if a := fake.outputs[0].GetAddress(); a == "" || fake.outputs[0].GetScriptType() != trezorpb.OutputScriptType_PAYTOADDRESS {
				t.Errorf("payee output %v", fake.outputs[0])
			}
			if c := fake.outputs[1]; len(c.GetAddressN()) != 5 || c.GetAddress() != "" || c.GetScriptType() == trezorpb.OutputScriptType_PAYTOADDRESS && tt.inputs[0] != device.ScriptPKH {
				t.Errorf("change output %v", c)
			}
			if tt.opts.OpReturn != nil {
				if o := fake.outputs[2]; o.GetScriptType() != trezorpb.OutputScriptType_PAYTOOPRETURN || string(o.GetOpReturnData()) != "hi" {
					t.Errorf("op_return output %v", o)
				}
			}
		})
	}
}

func TestSignPSBTRefusals(t *testing.T) {
	ks := newKeySource(t)
	tests := []struct {
		name   string
		mutate func(p *psbt.Packet)
		want   error
		text   string
	}{
		{"no prev tx for segwit", func(p *psbt.Packet) { p.Inputs[0].NonWitnessUtxo = nil }, device.ErrInvalidInput, "non_witness_utxo"},
		{"prev tx does not match", func(p *psbt.Packet) { p.Inputs[0].NonWitnessUtxo = wire.NewMsgTx(1) }, device.ErrInvalidInput, "non_witness_utxo is transaction"},
		{"no utxo", func(p *psbt.Packet) { p.Inputs[0].NonWitnessUtxo, p.Inputs[0].WitnessUtxo = nil, nil }, device.ErrInvalidInput, "utxoupdatepsbt"},
		{"foreign key", func(p *psbt.Packet) { p.Inputs[0].Bip32Derivation[0].MasterKeyFingerprint++ }, device.ErrInvalidInput, "fingerprint 73c5da0a"},
		{"sighash none", func(p *psbt.Packet) { p.Inputs[0].SighashType = 2 }, errors.ErrUnsupported, "sighash type 0x02"},
		{"finalized", func(p *psbt.Packet) { p.Inputs[0].FinalScriptWitness = []byte{0} }, device.ErrInvalidInput, "already finalized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := devicetest.NewSpend(t, t.Context(), ks, &chaincfg.MainNetParams, []device.ScriptType{device.ScriptWPKH}, devicetest.SpendOptions{})
			tt.mutate(p)
			fake, d := newScripted(t, (&streamingFake{t: t}).handle)
			err := d.SignPSBT(t.Context(), p, &chaincfg.MainNetParams)
			if !errors.Is(err, tt.want) || !bytes.Contains([]byte(err.Error()), []byte(tt.text)) {
				t.Fatalf("err %v, want %v mentioning %q", err, tt.want, tt.text)
			}
			if count(fake.messages(), "SignTx") != 0 {
				t.Error("SignTx was sent for a refused psbt")
			}
		})
	}
}

// TestEthereumChunking: calldata goes out 1024 bytes at a time as the device asks.
func TestEthereumChunking(t *testing.T) {
	data := make([]byte, 2500)
	for i := range data {
		data[i] = byte(i)
	}
	var got []byte
	r := make([]byte, 32)
	r[31] = 7
	_, d := newScripted(t, func(m proto.Message) []proto.Message {
		switch x := m.(type) {
		case *trezorpb.EthereumSignTx:
			if x.GetDataLength() != 2500 || x.GetChainId() != 1 || x.GetTo() == "" {
				t.Errorf("EthereumSignTx %v", x)
			}
			got = append(got, x.GetDataInitialChunk()...)
		case *trezorpb.EthereumTxAck:
			got = append(got, x.GetDataChunk()...)
		default:
			return []proto.Message{&trezorpb.Failure{Code: trezorpb.FailureType_Failure_UnexpectedMessage.Enum()}}
		}
		if left := 2500 - len(got); left > 0 {
			return []proto.Message{&trezorpb.EthereumTxRequest{DataLength: proto.Uint32(uint32(min(left, 1024)))}}
		}
		return []proto.Message{&trezorpb.EthereumTxRequest{SignatureV: proto.Uint32(38), SignatureR: r, SignatureS: r}}
	})
	to := common.Address{1}
	tx := types.NewTx(&types.LegacyTx{Nonce: 1, GasPrice: big.NewInt(1), Gas: 100000, To: &to, Value: big.NewInt(0), Data: data})
	signed, err := d.SignEthTx(t.Context(), hdpath.MustParse("m/44'/60'/0'/0/0"), tx, big.NewInt(1))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("device got %d calldata bytes, want the 2500 sent", len(got))
	}
	if v, _, _ := signed.RawSignatureValues(); v.Int64() != 38 {
		t.Errorf("v %d, want 38", v)
	}
}

// TestMultisigMapping: a 2-of-2 whose keys are both the device's is signed in two passes,
// each naming one key; the multisig field lists the keys in script order as the global
// xpubs' nodes plus the rest of the path; multisig change goes by path.
func TestMultisigMapping(t *testing.T) {
	ks := newKeySource(t)
	for _, tt := range []struct {
		kind devicetest.MultisigKind
		in   trezorpb.InputScriptType
		out  trezorpb.OutputScriptType
	}{
		{devicetest.MultisigWSH, trezorpb.InputScriptType_SPENDWITNESS, trezorpb.OutputScriptType_PAYTOWITNESS},
		{devicetest.MultisigSHWSH, trezorpb.InputScriptType_SPENDP2SHWITNESS, trezorpb.OutputScriptType_PAYTOP2SHWITNESS},
	} {
		t.Run(string(tt.kind), func(t *testing.T) {
			p := devicetest.NewMultisigSpend(t, t.Context(), ks, &chaincfg.TestNet3Params, tt.kind)
			fake := &streamingFake{t: t, taproot: map[int]bool{}}
			var seen [][]uint32
			handle := func(m proto.Message) []proto.Message {
				if ack, ok := m.(*trezorpb.TxAck); ok && fake.pending.GetDetails().GetTxHash() == nil &&
					fake.pending.GetRequestType() == trezorpb.RequestType_TXINPUT && fake.pending.GetDetails().GetRequestIndex() == 0 {
					seen = append(seen, ack.GetTx().GetInputs()[0].GetAddressN())
				}
				return fake.handle(m)
			}
			_, d := newScripted(t, handle)
			if err := d.SignPSBT(t.Context(), p, &chaincfg.TestNet3Params); err != nil {
				t.Fatalf("sign: %v %v", err, fake.errs)
			}
			for _, err := range fake.errs {
				t.Error(err)
			}
			if fake.signTxCount != 2 {
				t.Errorf("%d SignTx workflows, want 2 (one per key of the device)", fake.signTxCount)
			}
			if n := len(p.Inputs[0].PartialSigs); n != 2 || bytes.Equal(p.Inputs[0].PartialSigs[0].PubKey, p.Inputs[0].PartialSigs[1].PubKey) {
				t.Errorf("partial sigs %v: want one per key", p.Inputs[0].PartialSigs)
			}
			in := fake.inputs[0]
			ms := in.GetMultisig()
			if in.GetScriptType() != tt.in || ms.GetM() != 2 || len(ms.GetPubkeys()) != 2 || len(ms.GetSignatures()) != 2 {
				t.Fatalf("input %v", in)
			}
			for i, pk := range ms.GetPubkeys() {
				if pk.GetNode().GetDepth() != 4 || len(pk.GetNode().GetChainCode()) != 32 || len(pk.GetAddressN()) != 2 {
					t.Errorf("multisig key %d: %v (want the account xpub's node and /0/0)", i, pk)
				}
			}
			if c := fake.outputs[1]; c.GetScriptType() != tt.out || c.GetMultisig() == nil || len(c.GetAddressN()) != 6 {
				t.Errorf("change output %v", c)
			}
			if len(seen) < 2 || slices.Equal(seen[0], seen[len(seen)-1]) {
				t.Errorf("signing passes named keys %v: want two different paths", seen)
			}
		})
	}
}
