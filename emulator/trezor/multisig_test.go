package trezoremu

import (
	"bytes"
	"crypto/sha256"
	"slices"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	pb "github.com/hwbridge/hwbridge/internal/trezorpb"
)

// Cosigner seeds (BIP-39 test vectors): the device under test holds the first.
var cosignerMnemonics = []string{
	emulator.DefaultMnemonic,
	"legal winner thank year wave sausage worth useful legal winner thank yellow",
	"letter advice cage absurd amount doctor acoustic avoid letter advice cage above",
}

// msCosigner is one multisig key holder: its BIP-48 account key (public) at msAcct.
type msCosigner struct {
	acct *hdkeychain.ExtendedKey
}

func msAcct(net *chaincfg.Params) string {
	if net == &chaincfg.MainNetParams {
		return "m/48'/0'/0'/2'"
	}
	return "m/48'/1'/0'/2'"
}

func msCosigners(tb testing.TB, net *chaincfg.Params) []msCosigner {
	tb.Helper()
	var out []msCosigner
	for _, m := range cosignerMnemonics {
		w, err := emulator.NewWallet(m, "")
		if err != nil {
			tb.Fatal(err)
		}
		k, err := w.Public(path(msAcct(net)), net.HDPublicKeyID[:])
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, msCosigner{acct: k})
	}
	return out
}

// node is the HDNodeType of an account key, as a host sends it.
func node(tb testing.TB, k *hdkeychain.ExtendedKey) *pb.HDNodeType {
	tb.Helper()
	pub, err := k.ECPubKey()
	if err != nil {
		tb.Fatal(err)
	}
	return &pb.HDNodeType{Depth: proto.Uint32(uint32(k.Depth())), Fingerprint: proto.Uint32(k.ParentFingerprint()), ChildNum: proto.Uint32(k.ChildIndex()), ChainCode: k.ChainCode(), PublicKey: pub.SerializeCompressed()}
}

// msField is the multisig field for the cosigners (in the order given) at /change/index,
// in HWI's form: one HDNodePathType per key, empty signatures.
func msField(tb testing.TB, cos []msCosigner, m int, change, index uint32) *pb.MultisigRedeemScriptType {
	ms := &pb.MultisigRedeemScriptType{M: proto.Uint32(uint32(m))}
	for _, c := range cos {
		ms.Pubkeys = append(ms.Pubkeys, &pb.HDNodePathType{Node: node(tb, c.acct), AddressN: []uint32{change, index}})
		ms.Signatures = append(ms.Signatures, []byte{})
	}
	return ms
}

// btcdScript computes, with btcd only, the multisig script and the output script of the
// cosigners' keys at /change/index for an input script type.
func btcdScript(tb testing.TB, cos []msCosigner, m int, change, index uint32, st pb.InputScriptType, net *chaincfg.Params) (ms []byte, addr btcutil.Address) {
	tb.Helper()
	var keys []*btcutil.AddressPubKey
	for _, c := range cos {
		k, err := c.acct.Derive(change)
		if err == nil {
			k, err = k.Derive(index)
		}
		if err != nil {
			tb.Fatal(err)
		}
		pub, _ := k.ECPubKey()
		ak, err := btcutil.NewAddressPubKey(pub.SerializeCompressed(), net)
		if err != nil {
			tb.Fatal(err)
		}
		keys = append(keys, ak)
	}
	ms, err := txscript.MultiSigScript(keys, m)
	if err != nil {
		tb.Fatal(err)
	}
	h := sha256.Sum256(ms)
	switch st {
	case pb.InputScriptType_SPENDMULTISIG, pb.InputScriptType_SPENDADDRESS:
		addr, err = btcutil.NewAddressScriptHash(ms, net)
	case pb.InputScriptType_SPENDWITNESS:
		addr, err = btcutil.NewAddressWitnessScriptHash(h[:], net)
	case pb.InputScriptType_SPENDP2SHWITNESS:
		addr, err = btcutil.NewAddressScriptHash(append([]byte{0, 32}, h[:]...), net)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return ms, addr
}

var msScriptTypes = []pb.InputScriptType{pb.InputScriptType_SPENDMULTISIG, pb.InputScriptType_SPENDWITNESS, pb.InputScriptType_SPENDP2SHWITNESS}

// TestGetAddressMultisig: multisig addresses of the three script types, the keys in the
// order sent (not sorted), in both the pubkeys and the nodes form, match btcd's.
func TestGetAddressMultisig(t *testing.T) {
	d := newDevice(t, Options{})
	c := newClient(t, d)
	for _, net := range []*chaincfg.Params{&chaincfg.MainNetParams, &chaincfg.TestNet3Params, &chaincfg.RegressionNetParams} {
		coinName := map[*chaincfg.Params]string{&chaincfg.MainNetParams: "Bitcoin", &chaincfg.TestNet3Params: "Testnet", &chaincfg.RegressionNetParams: "Regtest"}[net]
		base := msCosigners(t, net)
		for _, order := range [][]int{{0, 1, 2}, {2, 0, 1}, {1, 2, 0}} {
			var cos []msCosigner
			for _, i := range order {
				cos = append(cos, base[i])
			}
			for _, st := range msScriptTypes {
				for _, m := range []int{1, 2, 3} {
					const change, index = 0, 7
					own := path(msAcct(net) + "/0/7")
					_, want := btcdScript(t, cos, m, change, index, st, net)
					got := callAs[*pb.Address](c, &pb.GetAddress{AddressN: own, CoinName: proto.String(coinName), ScriptType: st.Enum(), Multisig: msField(t, cos, m, change, index)})
					if got.GetAddress() != want.EncodeAddress() {
						t.Errorf("%s %v %d-of-3 order %v: got %s, btcd %s", coinName, st, m, order, got.GetAddress(), want)
					}
					// The nodes form: the account nodes and one shared path.
					nodes := &pb.MultisigRedeemScriptType{M: proto.Uint32(uint32(m)), AddressN: []uint32{change, index}}
					for _, c := range cos {
						nodes.Nodes = append(nodes.Nodes, node(t, c.acct))
					}
					got = callAs[*pb.Address](c, &pb.GetAddress{AddressN: own, CoinName: proto.String(coinName), ScriptType: st.Enum(), Multisig: nodes})
					if got.GetAddress() != want.EncodeAddress() {
						t.Errorf("%s %v nodes form: got %s, btcd %s", coinName, st, got.GetAddress(), want)
					}
				}
			}
		}
	}
	// SPENDADDRESS with the multisig field is p2sh multisig too, as in the firmware.
	cos := msCosigners(t, &chaincfg.MainNetParams)
	_, want := btcdScript(t, cos, 2, 0, 0, pb.InputScriptType_SPENDADDRESS, &chaincfg.MainNetParams)
	got := callAs[*pb.Address](c, &pb.GetAddress{AddressN: path("m/48'/0'/0'/2'/0/0"), Multisig: msField(t, cos, 2, 0, 0)})
	if got.GetAddress() != want.EncodeAddress() {
		t.Errorf("SPENDADDRESS multisig: got %s, btcd %s", got.GetAddress(), want)
	}
}

// TestGetAddressMultisigDisplay: the screen says "Multisig m of n" and lists the
// cosigners' keys with the multisig version bytes, the device's marked.
func TestGetAddressMultisigDisplay(t *testing.T) {
	d := newDevice(t, Options{})
	c := newClient(t, d)
	net := &chaincfg.TestNet3Params
	base := msCosigners(t, net)
	cos := []msCosigner{base[1], base[0], base[2]} // the device's key second
	for _, tc := range []struct {
		st     pb.InputScriptType
		prefix string
	}{
		{pb.InputScriptType_SPENDWITNESS, "Vpub"},
		{pb.InputScriptType_SPENDP2SHWITNESS, "Upub"},
		{pb.InputScriptType_SPENDMULTISIG, "tpub"},
	} {
		a := callAs[*pb.Address](c, &pb.GetAddress{AddressN: path("m/48'/1'/0'/2'/0/3"), CoinName: proto.String("Testnet"), ScriptType: tc.st.Enum(), Multisig: msField(t, cos, 2, 0, 3), ShowDisplay: proto.Bool(true)})
		e := lastScreen(t, d)
		if e.Title != "Multisig 2 of 3" || e.Lines[0] != a.GetAddress() || e.Lines[1] != "m/48'/1'/0'/2'/0/3" {
			t.Fatalf("%v: screen %+v", tc.st, e.Screen)
		}
		xpubs := e.Lines[3:]
		if len(xpubs) != 3 {
			t.Fatalf("%v: xpub lines %q", tc.st, xpubs)
		}
		for i, l := range xpubs {
			who := "(cosigner)"
			if i == 1 {
				who = "(yours)"
			}
			want := rekey(t, cos[i].acct.String(), map[string]string{"Vpub": "02575483", "Upub": "024289ef", "tpub": "043587cf"}[tc.prefix])
			if !strings.HasPrefix(l, "XPUB #") || !strings.Contains(l, who) || !strings.HasSuffix(l, ": "+want) || !strings.HasPrefix(want, tc.prefix) {
				t.Errorf("%v: xpub line %d %q, want %s %s", tc.st, i, l, who, want)
			}
		}
	}
	if want := slices.Repeat([]pb.ButtonRequestType{pb.ButtonRequestType_ButtonRequest_Address}, 3); !slices.Equal(c.buttons, want) {
		t.Fatalf("buttons %v", c.buttons)
	}
}

func TestGetAddressMultisigRefusals(t *testing.T) {
	d := newDevice(t, Options{})
	c := newClient(t, d)
	cos := msCosigners(t, &chaincfg.MainNetParams)
	own := path("m/48'/0'/0'/2'/0/0")
	for _, tc := range []struct {
		name string
		msg  func() *pb.GetAddress
		code pb.FailureType
		text string
	}{
		{"not a cosigner", func() *pb.GetAddress {
			return &pb.GetAddress{AddressN: own, ScriptType: pb.InputScriptType_SPENDWITNESS.Enum(), Multisig: msField(t, cos[1:], 2, 0, 0)}
		}, pb.FailureType_Failure_DataError, "Pubkey not found in multisig script"},
		{"other index", func() *pb.GetAddress {
			return &pb.GetAddress{AddressN: own, ScriptType: pb.InputScriptType_SPENDWITNESS.Enum(), Multisig: msField(t, cos, 2, 0, 1)}
		}, pb.FailureType_Failure_DataError, "Pubkey not found in multisig script"},
		{"hardened", func() *pb.GetAddress {
			ms := msField(t, cos, 2, 0, 0)
			ms.Pubkeys[2].AddressN = []uint32{hdpath.Hardened, 0}
			return &pb.GetAddress{AddressN: own, ScriptType: pb.InputScriptType_SPENDWITNESS.Enum(), Multisig: ms}
		}, pb.FailureType_Failure_DataError, "Cannot perform hardened derivation from XPUB"},
		{"m > n", func() *pb.GetAddress {
			return &pb.GetAddress{AddressN: own, ScriptType: pb.InputScriptType_SPENDWITNESS.Enum(), Multisig: msField(t, cos, 4, 0, 0)}
		}, pb.FailureType_Failure_DataError, "Invalid multisig parameters"},
		{"m = 0", func() *pb.GetAddress {
			return &pb.GetAddress{AddressN: own, ScriptType: pb.InputScriptType_SPENDWITNESS.Enum(), Multisig: msField(t, cos, 0, 0, 0)}
		}, pb.FailureType_Failure_DataError, "Invalid multisig parameters"},
		{"bad chain code", func() *pb.GetAddress {
			ms := msField(t, cos, 2, 0, 0)
			ms.Pubkeys[1].Node.ChainCode = ms.Pubkeys[1].Node.ChainCode[:31]
			return &pb.GetAddress{AddressN: own, ScriptType: pb.InputScriptType_SPENDWITNESS.Enum(), Multisig: ms}
		}, pb.FailureType_Failure_DataError, "Invalid multisig parameters"},
		{"taproot", func() *pb.GetAddress {
			return &pb.GetAddress{AddressN: own, ScriptType: pb.InputScriptType_SPENDTAPROOT.Enum(), Multisig: msField(t, cos, 2, 0, 0)}
		}, pb.FailureType_Failure_ProcessError, "Multisig not supported for taproot"},
		{"no details", func() *pb.GetAddress {
			return &pb.GetAddress{AddressN: own, ScriptType: pb.InputScriptType_SPENDMULTISIG.Enum()}
		}, pb.FailureType_Failure_ProcessError, "Multisig details required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := failureOf(c, tc.msg())
			if f.GetCode() != tc.code || f.GetMessage() != tc.text {
				t.Fatalf("got %v %q, want %v %q", f.GetCode(), f.GetMessage(), tc.code, tc.text)
			}
		})
	}
}

// msJob is a spend of one 2-of-3 multisig output of the cosigners (script order as given)
// to an outside address, with multisig change.
type msJob struct {
	job    *txJob
	ws     []byte // the multisig script (redeem or witness script)
	change *pb.TxOutputType
}

func newMSJob(tb testing.TB, cos []msCosigner, st pb.InputScriptType, ownAcct string) *msJob {
	tb.Helper()
	net := &chaincfg.MainNetParams
	ws, addr := btcdScript(tb, cos, 2, 0, 4, st, net)
	pk, err := txscript.PayToAddrScript(addr)
	if err != nil {
		tb.Fatal(err)
	}
	prev := fundingTx(9, 1, 500_000, pk)
	h := prev.TxHash()
	job := &txJob{version: 2, prev: map[string]*pb.TransactionType{h.String(): toTransactionType(prev)}, prevOut: map[wire.OutPoint]*wire.TxOut{{Hash: h, Index: 1}: prev.TxOut[1]}}
	job.inputs = []*pb.TxInputType{{AddressN: path(ownAcct + "/0/4"), PrevHash: reversedBytes(h[:]), PrevIndex: proto.Uint32(1), Amount: proto.Uint64(500_000), ScriptType: st.Enum(), Sequence: proto.Uint32(0xfffffffd), Multisig: msField(tb, cos, 2, 0, 4)}}
	outST := map[pb.InputScriptType]pb.OutputScriptType{pb.InputScriptType_SPENDMULTISIG: pb.OutputScriptType_PAYTOMULTISIG, pb.InputScriptType_SPENDWITNESS: pb.OutputScriptType_PAYTOWITNESS, pb.InputScriptType_SPENDP2SHWITNESS: pb.OutputScriptType_PAYTOP2SHWITNESS}[st]
	change := &pb.TxOutputType{AddressN: path(ownAcct + "/1/2"), Amount: proto.Uint64(180_000), ScriptType: outST.Enum(), Multisig: msField(tb, cos, 2, 1, 2)}
	job.outputs = []*pb.TxOutputType{
		{Address: proto.String("bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g"), Amount: proto.Uint64(300_000), ScriptType: pb.OutputScriptType_PAYTOADDRESS.Enum()},
		change,
	}
	return &msJob{job: job, ws: ws, change: change}
}

// sigOf returns the single signature a SignTx pass returned, for input 0.
func sigOf(tb testing.TB, res txResult) []byte {
	tb.Helper()
	if res.failure != nil {
		tb.Fatal(res.failure)
	}
	if len(res.sigs) != 1 || len(res.sigs[0]) == 0 {
		tb.Fatalf("signatures %v", res.sigs)
	}
	return res.sigs[0]
}

// TestSignTxMultisig: a 2-of-3 input of each script type signed by two emulated devices in
// turn. The first device's serialized transaction carries its signature alone (OP_0 first,
// no placeholder), the second's, given the first signature in multisig.signatures, is
// complete and passes btcd's script engine, and so does the transaction built here from
// the two returned signatures. Multisig change is not shown.
func TestSignTxMultisig(t *testing.T) {
	net := &chaincfg.MainNetParams
	base := msCosigners(t, net)
	cos := []msCosigner{base[2], base[0], base[1]} // script order: C, A, B
	const idxA, idxB = 1, 2
	for _, st := range msScriptTypes {
		t.Run(st.String(), func(t *testing.T) {
			devA := newDevice(t, Options{Mnemonic: cosignerMnemonics[0]})
			devB := newDevice(t, Options{Mnemonic: cosignerMnemonics[1]})
			a := newMSJob(t, cos, st, msAcct(net))
			resA := newClient(t, devA).signTx(a.job)
			sigA := sigOf(t, resA)

			// A's own serialization: the signature in slot A only.
			txA := wire.NewMsgTx(0)
			if err := txA.Deserialize(bytes.NewReader(resA.serialized)); err != nil {
				t.Fatalf("A's serialized tx: %v", err)
			}
			ownSig := append(slices.Clone(sigA), byte(txscript.SigHashAll))
			switch st {
			case pb.InputScriptType_SPENDMULTISIG:
				want, _ := txscript.NewScriptBuilder().AddOp(txscript.OP_0).AddData(ownSig).AddData(a.ws).Script()
				if !bytes.Equal(txA.TxIn[0].SignatureScript, want) || len(txA.TxIn[0].Witness) != 0 {
					t.Fatalf("A's scriptSig %x", txA.TxIn[0].SignatureScript)
				}
			default:
				if w := txA.TxIn[0].Witness; len(w) != 3 || len(w[0]) != 0 || !bytes.Equal(w[1], ownSig) || !bytes.Equal(w[2], a.ws) {
					t.Fatalf("A's witness %x", w)
				}
			}

			// B signs the same transaction, given A's signature in A's slot.
			b := newMSJob(t, cos, st, msAcct(net))
			b.job.inputs[0].Multisig.Signatures[idxA] = sigA
			resB := newClient(t, devB).signTx(b.job)
			sigB := sigOf(t, resB)
			full := verifySigned(t, resB.serialized, b.job.prevOut)

			// The two signatures combined here, in script order, pass the engine too.
			tx := txA.Copy()
			sigs := [][]byte{nil, nil, nil}
			sigs[idxA], sigs[idxB] = ownSig, append(slices.Clone(sigB), byte(txscript.SigHashAll))
			stack := wire.TxWitness{{}}
			for _, s := range sigs {
				if s != nil {
					stack = append(stack, s)
				}
			}
			stack = append(stack, a.ws)
			h := sha256.Sum256(a.ws)
			switch st {
			case pb.InputScriptType_SPENDMULTISIG:
				bld := txscript.NewScriptBuilder()
				for _, item := range stack {
					bld.AddData(item)
				}
				tx.TxIn[0].SignatureScript, _ = bld.Script()
				tx.TxIn[0].Witness = nil
			case pb.InputScriptType_SPENDWITNESS:
				tx.TxIn[0].Witness = stack
			case pb.InputScriptType_SPENDP2SHWITNESS:
				tx.TxIn[0].SignatureScript, _ = txscript.NewScriptBuilder().AddData(append([]byte{0, 32}, h[:]...)).Script()
				tx.TxIn[0].Witness = stack
			}
			var raw bytes.Buffer
			if err := tx.Serialize(&raw); err != nil {
				t.Fatal(err)
			}
			verifySigned(t, raw.Bytes(), a.job.prevOut)
			if tx.TxHash() != full.TxHash() || tx.WitnessHash() != full.WitnessHash() {
				t.Errorf("B's serialization %s differs from the combined transaction %s", full.WitnessHash(), tx.WitnessHash())
			}

			// The change (multisig, same wallet) is never shown; the outside payee is.
			for _, d := range []*Device{devA, devB} {
				var titles []string
				for _, e := range d.Approver().Transcript() {
					titles = append(titles, e.Title)
				}
				if strings.Join(titles, ",") != "Confirm output,Confirm transaction" {
					t.Errorf("screens %v", titles)
				}
			}
			// The change pays the 2-of-3 at 1/2, as btcd derives it.
			_, caddr := btcdScript(t, cos, 2, 1, 2, st, net)
			cpk, _ := txscript.PayToAddrScript(caddr)
			if !bytes.Equal(full.TxOut[1].PkScript, cpk) || full.TxOut[1].Value != 180_000 {
				t.Errorf("change output %x %d", full.TxOut[1].PkScript, full.TxOut[1].Value)
			}
			// Segwit v0 multisig inputs still stream their previous transaction.
			metas := 0
			for _, r := range resA.requests {
				if r.GetRequestType() == pb.RequestType_TXMETA {
					metas++
				}
			}
			if metas != 1 {
				t.Errorf("TXMETA requests %d, want 1", metas)
			}
		})
	}
}

// TestSignTxMultisigChange: a multisig output is change only for the inputs' wallet (same
// cosigners, same m, same account, same script type); otherwise it is shown like any
// external output. A multisig output without the device's key is refused.
func TestSignTxMultisigChange(t *testing.T) {
	net := &chaincfg.MainNetParams
	cos := msCosigners(t, net)
	st := pb.InputScriptType_SPENDWITNESS
	for _, tc := range []struct {
		name  string
		edit  func(*msJob)
		shown bool
	}{
		{"same wallet", func(*msJob) {}, false},
		{"other m", func(j *msJob) { j.change.Multisig.M = proto.Uint32(1) }, true},
		{"other key order", func(j *msJob) {
			ks := j.change.Multisig.Pubkeys
			ks[1], ks[2] = ks[2], ks[1]
		}, true},
		{"other script type", func(j *msJob) { j.change.ScriptType = pb.OutputScriptType_PAYTOP2SHWITNESS.Enum() }, true},
		{"index too large", func(j *msJob) {
			j.change.AddressN[len(j.change.AddressN)-1] = 1_000_001
			for _, k := range j.change.Multisig.Pubkeys {
				k.AddressN[1] = 1_000_001
			}
		}, true},
		{"single-key input", func(j *msJob) {
			// A second, single-key input: the inputs are no longer all of the wallet.
			j.job.addInput(t, mustWallet(t), "m/84'/0'/0'/0/0", pb.InputScriptType_SPENDWITNESS, 10_000)
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDevice(t, Options{})
			j := newMSJob(t, cos, st, msAcct(net))
			tc.edit(j)
			res := newClient(t, d).signTx(j.job)
			if res.failure != nil {
				t.Fatal(res.failure)
			}
			n := 0
			for _, e := range d.Approver().Transcript() {
				if e.Title == "Confirm output" {
					n++
				}
			}
			if shown := n == 2; shown != tc.shown {
				t.Errorf("change shown %v, want %v (%d outputs on screen)", shown, tc.shown, n)
			}
		})
	}
	t.Run("not a cosigner", func(t *testing.T) {
		d := newDevice(t, Options{})
		c := newClient(t, d)
		j := newMSJob(t, cos, st, msAcct(net))
		j.change.Multisig = msField(t, cos[1:], 2, 1, 2)
		res := c.signTx(j.job)
		if res.failure == nil || res.failure.GetCode() != pb.FailureType_Failure_DataError || res.failure.GetMessage() != "Pubkey not found in multisig script" {
			t.Fatalf("got %v", res.failure)
		}
		callAs[*pb.Success](c, &pb.Ping{})
	})
}

func mustWallet(tb testing.TB) *emulator.Wallet {
	w, err := emulator.NewWallet(emulator.DefaultMnemonic, "")
	if err != nil {
		tb.Fatal(err)
	}
	return w
}

func TestSignTxMultisigRefusals(t *testing.T) {
	net := &chaincfg.MainNetParams
	cos := msCosigners(t, net)
	for _, tc := range []struct {
		name string
		st   pb.InputScriptType
		edit func(*msJob)
		code pb.FailureType
		msg  string
	}{
		{"multisig on p2pkh", pb.InputScriptType_SPENDWITNESS, func(j *msJob) { j.job.inputs[0].ScriptType = pb.InputScriptType_SPENDADDRESS.Enum() }, pb.FailureType_Failure_DataError, "Multisig field provided but not expected."},
		{"multisig on taproot", pb.InputScriptType_SPENDWITNESS, func(j *msJob) { j.job.inputs[0].ScriptType = pb.InputScriptType_SPENDTAPROOT.Enum() }, pb.FailureType_Failure_DataError, "Multisig field provided but not expected."},
		{"no details", pb.InputScriptType_SPENDMULTISIG, func(j *msJob) { j.job.inputs[0].Multisig = nil }, pb.FailureType_Failure_DataError, "Multisig details required."},
		{"change without details", pb.InputScriptType_SPENDMULTISIG, func(j *msJob) { j.change.Multisig = nil }, pb.FailureType_Failure_DataError, "Multisig details required."},
		{"multisig on p2pkh change", pb.InputScriptType_SPENDWITNESS, func(j *msJob) { j.change.ScriptType = pb.OutputScriptType_PAYTOADDRESS.Enum() }, pb.FailureType_Failure_DataError, "Multisig field provided but not expected."},
		{"not a cosigner", pb.InputScriptType_SPENDWITNESS, func(j *msJob) { j.job.inputs[0].AddressN = path(msAcct(net) + "/0/5") }, pb.FailureType_Failure_DataError, "Pubkey not found in multisig script"},
		{"wrong script", pb.InputScriptType_SPENDWITNESS, func(j *msJob) { j.job.inputs[0].ScriptType = pb.InputScriptType_SPENDP2SHWITNESS.Enum() }, pb.FailureType_Failure_DataError, "Input does not match scriptPubKey"},
		{"own slot signed", pb.InputScriptType_SPENDWITNESS, func(j *msJob) { j.job.inputs[0].Multisig.Signatures[0] = []byte{0x30, 0x01} }, pb.FailureType_Failure_DataError, "Invalid multisig parameters"},
		{"p2sh short signature list", pb.InputScriptType_SPENDMULTISIG, func(j *msJob) { j.job.inputs[0].Multisig.Signatures = nil }, pb.FailureType_Failure_FirmwareError, "Firmware error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDevice(t, Options{})
			c := newClient(t, d)
			j := newMSJob(t, cos, tc.st, msAcct(net))
			tc.edit(j)
			res := c.signTx(j.job)
			if res.failure == nil || res.failure.GetCode() != tc.code || res.failure.GetMessage() != tc.msg {
				t.Fatalf("got %v", res.failure)
			}
			callAs[*pb.Success](c, &pb.Ping{})
		})
	}
	// Without serialization the device signs and builds no scriptSig, so a short
	// signature list is not looked at (the firmware indexes it only to serialize).
	d := newDevice(t, Options{})
	j := newMSJob(t, cos, pb.InputScriptType_SPENDMULTISIG, msAcct(net))
	j.job.inputs[0].Multisig.Signatures = nil
	j.job.serialize = proto.Bool(false)
	if res := newClient(t, d).signTx(j.job); res.failure != nil || len(res.sigs) != 1 || len(res.serialized) != 0 {
		t.Fatalf("failure %v, %d signatures, %d bytes", res.failure, len(res.sigs), len(res.serialized))
	}
}
