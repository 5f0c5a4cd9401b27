package ledgeremu

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/transport"
)

// kv is one PSBT key-value pair (key = keytype ‖ keydata, no length prefixes).
type kv struct{ k, v []byte }

// psbtV2 converts a PSBT v0 to v2 maps the way ledger-bitcoin's normalizeToV2 does:
// UNSIGNED_TX goes, TX_VERSION, FALLBACK_LOCKTIME, counts and PSBT_VERSION come in, and
// every input/output gets its outpoint, sequence, amount and script fields.
func psbtV2(t testing.TB, p *psbt.Packet) (global []kv, inputs, outputs [][]kv) {
	t.Helper()
	var buf bytes.Buffer
	if err := p.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(buf.Bytes()[5:])
	readMap := func() []kv {
		var m []kv
		for {
			kl, err := wire.ReadVarInt(r, 0)
			if err != nil {
				t.Fatal(err)
			}
			if kl == 0 {
				return m
			}
			k := make([]byte, kl)
			r.Read(k)
			vl, _ := wire.ReadVarInt(r, 0)
			v := make([]byte, vl)
			r.Read(v)
			m = append(m, kv{k, v})
		}
	}
	u32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	tx := p.UnsignedTx
	for _, e := range readMap() {
		if e.k[0] != 0x00 {
			global = append(global, e)
		}
	}
	global = append(global,
		kv{[]byte{0x02}, u32(uint32(tx.Version))}, kv{[]byte{0x03}, u32(tx.LockTime)},
		kv{[]byte{0x04}, appendVarint(nil, uint64(len(tx.TxIn)))}, kv{[]byte{0x05}, appendVarint(nil, uint64(len(tx.TxOut)))},
		kv{[]byte{0xFB}, u32(2)})
	for _, in := range tx.TxIn {
		m := readMap()
		m = append(m, kv{[]byte{0x0E}, in.PreviousOutPoint.Hash[:]}, kv{[]byte{0x0F}, u32(in.PreviousOutPoint.Index)}, kv{[]byte{0x10}, u32(in.Sequence)})
		inputs = append(inputs, m)
	}
	for _, out := range tx.TxOut {
		m := readMap()
		m = append(m, kv{[]byte{0x03}, binary.LittleEndian.AppendUint64(nil, uint64(out.Value))}, kv{[]byte{0x04}, out.PkScript})
		outputs = append(outputs, m)
	}
	return global, inputs, outputs
}

// commit merkleises one map into the interpreter and returns its commitment.
func commit(it *interp, m []kv) []byte {
	m = slices.Clone(m)
	slices.SortFunc(m, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
	var ks, vs [][]byte
	for _, e := range m {
		ks = append(ks, e.k)
		vs = append(vs, e.v)
	}
	kr, vr := it.addList(ks), it.addList(vs)
	out := appendVarint(nil, uint64(len(m)))
	out = append(out, kr[:]...)
	return append(out, vr[:]...)
}

// signPSBT runs SIGN_PSBT for a v0 packet and returns the yielded payloads and the number
// of client commands answered.
func signPSBT(t testing.TB, c *testClient, p *psbt.Packet, pol testPolicy, mac []byte) ([][]byte, uint16, int) {
	t.Helper()
	ys, sw, n, err := trySignPSBT(t, c, p, pol, mac)
	if err != nil {
		t.Fatal(err)
	}
	return ys, sw, n
}

func trySignPSBT(t testing.TB, c *testClient, p *psbt.Packet, pol testPolicy, mac []byte) ([][]byte, uint16, int, error) {
	t.Helper()
	global, inputs, outputs := psbtV2(t, p)
	it := newInterp()
	pol.addTo(it)
	data := commit(it, global)
	var inC, outC [][]byte
	for _, m := range inputs {
		inC = append(inC, commit(it, m))
	}
	for _, m := range outputs {
		outC = append(outC, commit(it, m))
	}
	inRoot, outRoot := it.addList(inC), it.addList(outC)
	data = appendVarint(data, uint64(len(inC)))
	data = append(data, inRoot[:]...)
	data = appendVarint(data, uint64(len(outC)))
	data = append(data, outRoot[:]...)
	id := pol.id()
	data = append(data, id[:]...)
	if mac == nil {
		mac = make([]byte, 32)
	}
	data = append(data, mac...)
	_, sw, err := c.tryBTC(insSignPSBT, data, it)
	return it.yielded, sw, it.commands, err
}

// spendFixture is a PSBT spending coins of one of our scripts, with change back.
type spendFixture struct {
	pkt    *psbt.Packet
	prevs  []*wire.TxOut
	net    *chaincfg.Params
	scheme string
}

// fprLE is the master fingerprint as btcutil/psbt stores it (little-endian uint32 of the
// four fingerprint bytes).
func fprLE(w *emulator.Wallet) uint32 {
	return binary.LittleEndian.Uint32(binary.BigEndian.AppendUint32(nil, w.Fingerprint()))
}

// buildSpend makes a PSBT with nIn inputs of `scheme` (wpkh, tr, pkh, sh-wpkh) at
// account/0/i, one external output and one change output at account/1/0.
func buildSpend(t testing.TB, w *emulator.Wallet, scheme string, coin uint32, nIn int) *spendFixture {
	t.Helper()
	purpose := map[string]uint32{"pkh": 44, "sh-wpkh": 49, "wpkh": 84, "tr": 86}[scheme]
	net := &chaincfg.MainNetParams
	if coin == 1 {
		net = &chaincfg.TestNet3Params
	}
	acct := hdpath.Path{purpose | hardened, coin | hardened, hardened}
	script := func(pub *btcec.PublicKey) []byte {
		h := btcutil.Hash160(pub.SerializeCompressed())
		var s []byte
		switch scheme {
		case "pkh":
			s, _ = txscript.NewScriptBuilder().AddOp(txscript.OP_DUP).AddOp(txscript.OP_HASH160).AddData(h).AddOp(txscript.OP_EQUALVERIFY).AddOp(txscript.OP_CHECKSIG).Script()
		case "wpkh":
			s, _ = txscript.NewScriptBuilder().AddOp(txscript.OP_0).AddData(h).Script()
		case "sh-wpkh":
			w, _ := txscript.NewScriptBuilder().AddOp(txscript.OP_0).AddData(h).Script()
			s, _ = txscript.NewScriptBuilder().AddOp(txscript.OP_HASH160).AddData(btcutil.Hash160(w)).AddOp(txscript.OP_EQUAL).Script()
		case "tr":
			s, _ = txscript.PayToTaprootScript(txscript.ComputeTaprootKeyNoScript(pub))
		}
		return s
	}
	key := func(change, idx uint32) (*btcec.PublicKey, hdpath.Path) {
		p := append(slices.Clone(acct), change, idx)
		pub, err := w.PubKey(p)
		if err != nil {
			t.Fatal(err)
		}
		return pub, p
	}
	prev := wire.NewMsgTx(2)
	prev.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Index: 7}, Sequence: 0xffffffff, SignatureScript: []byte{0x51}})
	for i := range nIn {
		pub, _ := key(0, uint32(i))
		prev.AddTxOut(wire.NewTxOut(100000+int64(i), script(pub)))
	}
	tx := wire.NewMsgTx(2)
	tx.LockTime = 100
	var total int64
	for i := range nIn {
		tx.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Hash: prev.TxHash(), Index: uint32(i)}, Sequence: 0xfffffffd})
		total += prev.TxOut[i].Value
	}
	ext, _ := txscript.NewScriptBuilder().AddOp(txscript.OP_0).AddData(bytes.Repeat([]byte{0x11}, 20)).Script()
	tx.AddTxOut(wire.NewTxOut(50000, ext))
	cpub, cpath := key(1, 0)
	tx.AddTxOut(wire.NewTxOut(total-50000-1000, script(cpub)))
	pkt, err := psbt.NewFromUnsignedTx(tx)
	if err != nil {
		t.Fatal(err)
	}
	f := &spendFixture{pkt: pkt, net: net, scheme: scheme}
	for i := range nIn {
		pub, p := key(0, uint32(i))
		in := &pkt.Inputs[i]
		f.prevs = append(f.prevs, prev.TxOut[i])
		if scheme != "tr" {
			in.NonWitnessUtxo = prev
		}
		if scheme != "pkh" {
			in.WitnessUtxo = prev.TxOut[i]
		}
		if scheme == "sh-wpkh" {
			in.RedeemScript, _ = txscript.NewScriptBuilder().AddOp(txscript.OP_0).AddData(btcutil.Hash160(pub.SerializeCompressed())).Script()
		}
		if scheme == "tr" {
			in.TaprootInternalKey = schnorr.SerializePubKey(pub)
			in.TaprootBip32Derivation = []*psbt.TaprootBip32Derivation{{XOnlyPubKey: schnorr.SerializePubKey(pub), MasterKeyFingerprint: fprLE(w), Bip32Path: p}}
		} else {
			in.Bip32Derivation = []*psbt.Bip32Derivation{{PubKey: pub.SerializeCompressed(), MasterKeyFingerprint: fprLE(w), Bip32Path: p}}
		}
	}
	out := &pkt.Outputs[1]
	if scheme == "tr" {
		out.TaprootBip32Derivation = []*psbt.TaprootBip32Derivation{{XOnlyPubKey: schnorr.SerializePubKey(cpub), MasterKeyFingerprint: fprLE(w), Bip32Path: cpath}}
	} else {
		out.Bip32Derivation = []*psbt.Bip32Derivation{{PubKey: cpub.SerializeCompressed(), MasterKeyFingerprint: fprLE(w), Bip32Path: cpath}}
	}
	return f
}

// finalizeAndVerify puts one signature per input into the transaction and runs btcd's
// script engine on every input.
func (f *spendFixture) finalizeAndVerify(t testing.TB, sigs map[int][2][]byte) {
	t.Helper()
	tx := f.pkt.UnsignedTx.Copy()
	fetcher := txscript.NewMultiPrevOutFetcher(nil)
	for i, in := range tx.TxIn {
		fetcher.AddPrevOut(in.PreviousOutPoint, f.prevs[i])
	}
	for i := range tx.TxIn {
		s, ok := sigs[i]
		if !ok {
			t.Fatalf("input %d not signed", i)
		}
		pub, sig := s[0], s[1]
		switch f.scheme {
		case "wpkh":
			tx.TxIn[i].Witness = wire.TxWitness{sig, pub}
		case "sh-wpkh":
			tx.TxIn[i].Witness = wire.TxWitness{sig, pub}
			tx.TxIn[i].SignatureScript, _ = txscript.NewScriptBuilder().AddData(f.pkt.Inputs[i].RedeemScript).Script()
		case "pkh":
			tx.TxIn[i].SignatureScript, _ = txscript.NewScriptBuilder().AddData(sig).AddData(pub).Script()
		case "tr":
			tx.TxIn[i].Witness = wire.TxWitness{sig}
		}
	}
	hashes := txscript.NewTxSigHashes(tx, fetcher)
	for i := range tx.TxIn {
		vm, err := txscript.NewEngine(f.prevs[i].PkScript, tx, i, txscript.StandardVerifyFlags, nil, hashes, f.prevs[i].Value, fetcher)
		if err != nil {
			t.Fatal(err)
		}
		if err := vm.Execute(); err != nil {
			t.Fatalf("input %d does not verify: %v", i, err)
		}
	}
}

// parseYield splits a protocol-1 yield: varint input ‖ u8 len ‖ pubkey ‖ signature.
func parseYield(t testing.TB, y []byte) (int, []byte, []byte) {
	t.Helper()
	idx, n, err := readVarint(y)
	if err != nil || len(y) < n+1 {
		t.Fatalf("bad yield %x", y)
	}
	pl := int(y[n])
	return int(idx), y[n+1 : n+1+pl], y[n+1+pl:]
}

func TestSignPSBTDefaultPolicies(t *testing.T) {
	for _, tc := range []struct {
		scheme, template, path string
	}{
		{"wpkh", "wpkh(@0/**)", "m/84'/0'/0'"},
		{"tr", "tr(@0/**)", "m/86'/0'/0'"},
		{"sh-wpkh", "sh(wpkh(@0/**))", "m/49'/0'/0'"},
		{"pkh", "pkh(@0/**)", "m/44'/0'/0'"},
	} {
		t.Run(tc.scheme, func(t *testing.T) {
			d := newDevice(t, Config{})
			c := newTestClient(t, d)
			f := buildSpend(t, d.Wallet(), tc.scheme, 0, 2)
			pol := defaultPolicy(t, c, tc.template, tc.path)
			ys, sw, _ := signPSBT(t, c, f.pkt, pol, nil)
			if sw != swOK || len(ys) != 2 {
				t.Fatalf("sign psbt: %04x, %d yields", sw, len(ys))
			}
			sigs := map[int][2][]byte{}
			for _, y := range ys {
				i, pub, sig := parseYield(t, y)
				sigs[i] = [2][]byte{pub, sig}
				// Taproot key path: the x-only output key; otherwise the compressed key.
				if spk := f.prevs[i].PkScript; tc.scheme == "tr" && !bytes.Equal(pub, spk[2:]) {
					t.Fatalf("input %d: yielded key %x, output key %x", i, pub, spk[2:])
				}
				if tc.scheme != "tr" && len(pub) != 33 {
					t.Fatalf("input %d: yielded key %x", i, pub)
				}
			}
			f.finalizeAndVerify(t, sigs)
			tr := d.Approver().Transcript()
			last := tr[len(tr)-1]
			if last.Title != "Sign transaction" || len(last.Lines) != 3 || last.Lines[2] != "fee: 0.00001 BTC" {
				t.Fatalf("review screen %+v", last)
			}
		})
	}
}

func TestSignPSBTRefusals(t *testing.T) {
	d := newDevice(t, Config{})
	c := newTestClient(t, d)
	pol := defaultPolicy(t, c, "wpkh(@0/**)", "m/84'/0'/0'")

	f := buildSpend(t, d.Wallet(), "wpkh", 0, 1)
	f.pkt.Inputs[0].WitnessUtxo = nil
	f.pkt.Inputs[0].NonWitnessUtxo = nil
	if _, sw := signPSBTData(t, c, f, pol); sw != swIncorrectData {
		t.Fatalf("no utxo: %04x", sw)
	}
	f = buildSpend(t, d.Wallet(), "wpkh", 0, 1)
	f.pkt.Inputs[0].WitnessUtxo = nil
	if _, sw := signPSBTData(t, c, f, pol); sw != swIncorrectData {
		t.Fatalf("segwit without witness utxo: %04x", sw)
	}
	f = buildSpend(t, d.Wallet(), "wpkh", 0, 1)
	f.pkt.Inputs[0].Bip32Derivation = nil
	if _, sw := signPSBTData(t, c, f, pol); sw != swIncorrectData {
		t.Fatalf("no internal input: %04x", sw)
	}
	f = buildSpend(t, d.Wallet(), "wpkh", 0, 1)
	d.Approver().SetPolicy(emulator.PolicyReject)
	if _, sw := signPSBTData(t, c, f, pol); sw != swDeny {
		t.Fatalf("rejected: %04x", sw)
	}
	d.Approver().SetPolicy(emulator.PolicyAuto)

	// A disconnect in the middle of the exchange: the host sees the link close, and the
	// next connection works.
	d.Faults().DisconnectAt(20)
	c2 := newTestClient(t, d)
	if _, _, _, err := trySignPSBT(t, c2, f.pkt, pol, nil); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("disconnect mid sign psbt: %v", err)
	}
	c3 := newTestClient(t, d)
	ys, sw, _ := signPSBT(t, c3, f.pkt, pol, nil)
	if sw != swOK || len(ys) != 1 {
		t.Fatalf("after disconnect: %04x %d", sw, len(ys))
	}
	// Any APDU other than CONTINUE during an interruption aborts the command with 0x6A80.
	out, sw := c3.send(claBTC, insGetWalletAddress, 0, 1, append(append([]byte{0}, make([]byte, 64)...), 0, 0, 0, 0, 0))
	if sw != swInterrupted {
		t.Fatalf("get wallet address: %x %04x", out, sw)
	}
	if _, sw := c3.send(claBTC, insGetMasterFpr, 0, 1, nil); sw != swIncorrectData {
		t.Fatalf("apdu during interruption: %04x, want 6a80", sw)
	}
	c3.mustOK(claBTC, insGetMasterFpr, 0, 1, nil)
}

func signPSBTData(t testing.TB, c *testClient, f *spendFixture, pol testPolicy) ([][]byte, uint16) {
	ys, sw, _ := signPSBT(t, c, f.pkt, pol, nil)
	return ys, sw
}
