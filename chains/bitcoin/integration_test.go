package bitcoin_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/hwbridge/hwbridge/chains/bitcoin"
	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/ledger"
	"github.com/hwbridge/hwbridge/device/trezor"
	ledgeremu "github.com/hwbridge/hwbridge/emulator/ledger"
	trezoremu "github.com/hwbridge/hwbridge/emulator/trezor"
	"github.com/hwbridge/hwbridge/internal/nodes"
	hwpsbt "github.com/hwbridge/hwbridge/psbt"
	"github.com/hwbridge/hwbridge/transport"
)

var regtest = &chaincfg.RegressionNetParams

// Second and third mnemonics for multisig cosigners (BIP-39 test vectors).
const (
	mnemonicB = "legal winner thank year wave sausage worth useful legal winner thank yellow"
	mnemonicC = "letter advice cage absurd amount doctor acoustic avoid letter advice cage above"
)

// newEmulated returns the Trezor driver over an in-process pipe to an emulated device,
// wrapped with signature verification.
func newEmulated(t *testing.T, mnemonic string) device.Device {
	t.Helper()
	emu, err := trezoremu.New(trezoremu.Options{Mnemonic: mnemonic})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	d := device.Verify(trezor.New(emu.Pipe(), trezor.Options{Emulator: true}))
	t.Cleanup(func() { d.Close() })
	return d
}

// outsideAddress is a p2wpkh address no test device holds.
func outsideAddress(t *testing.T, tag string) btcutil.Address {
	h := sha256.Sum256([]byte("hwbridge outside payee " + tag))
	a, err := btcutil.NewAddressWitnessPubKeyHash(h[:20], regtest)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

type chain struct {
	node *nodes.Btcd
	rpc  *bitcoin.RPC
}

func startChain(t *testing.T, mineTo btcutil.Address) *chain {
	t.Helper()
	node := nodes.StartBtcdT(t, mineTo.EncodeAddress())
	if _, err := node.Generate(t.Context(), 101); err != nil {
		t.Fatal(err)
	}
	rpc, err := bitcoin.NewRPC(node.URL(), regtest)
	if err != nil {
		t.Fatal(err)
	}
	return &chain{node: node, rpc: rpc}
}

func (c *chain) mine(t *testing.T) {
	t.Helper()
	if _, err := c.node.Generate(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
}

func (c *chain) mempool(t *testing.T) []string {
	t.Helper()
	ids, err := c.node.Mempool(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// txOut reads an unspent output through gettxout (value in satoshis, script hex).
func (c *chain) txOut(t *testing.T, txid chainhash.Hash, n int) (int64, string, int64) {
	t.Helper()
	raw, err := c.node.Call(t.Context(), "gettxout", txid.String(), n, false)
	if err != nil {
		t.Fatal(err)
	}
	var res *struct {
		Confirmations int64       `json:"confirmations"`
		Value         json.Number `json:"value"`
		ScriptPubKey  struct {
			Hex string `json:"hex"`
		} `json:"scriptPubKey"`
	}
	if err := json.Unmarshal(raw, &res); err != nil || res == nil {
		t.Fatalf("gettxout %s:%d: %s %v", txid, n, raw, err)
	}
	v, err := bitcoin.ParseBTC(res.Value.String())
	if err != nil {
		t.Fatal(err)
	}
	return int64(v), res.ScriptPubKey.Hex, res.Confirmations
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func send(t *testing.T, ctx context.Context, w *bitcoin.Wallet, signer bitcoin.Signer, to btcutil.Address, sat int64) (chainhash.Hash, *bitcoin.Plan) {
	t.Helper()
	st, err := w.Scan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := w.BuildSend(ctx, st, bitcoin.SendRequest{Payments: []bitcoin.Payment{{Address: to, Amount: sat}}, FeeRate: bitcoin.SatPerVB(2), MinConf: 1})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := w.Sign(ctx, plan, signer)
	if err != nil {
		t.Fatal(err)
	}
	id, err := w.Broadcast(ctx, tx)
	if err != nil {
		t.Fatal(err)
	}
	return id, plan
}

// TestSendEveryScriptType: coins are mined to the emulated device's wpkh address; the
// wallet funds the device's sh-wpkh, pkh and tr accounts, then each account pays an outside
// address; the node shows the payment and the change.
func TestSendEveryScriptType(t *testing.T) {
	ctx := ctxT(t)
	dev := newEmulated(t, "")
	wallets := map[device.ScriptType]*bitcoin.Wallet{}
	for _, st := range []device.ScriptType{device.ScriptWPKH, device.ScriptSHWPKH, device.ScriptPKH, device.ScriptTR} {
		d, err := bitcoin.AccountDescriptor(ctx, dev, st, regtest, 0)
		if err != nil {
			t.Fatal(err)
		}
		wallets[st] = &bitcoin.Wallet{Desc: d, Net: regtest}
	}
	mineTo, err := wallets[device.ScriptWPKH].Desc.Address(0, 0, regtest)
	if err != nil {
		t.Fatal(err)
	}
	c := startChain(t, mineTo)
	for _, w := range wallets {
		w.Backend = c.rpc
	}
	// Fund the other accounts from the mined coins (each send goes through the device).
	for _, st := range []device.ScriptType{device.ScriptSHWPKH, device.ScriptPKH, device.ScriptTR} {
		to, err := wallets[st].Desc.Address(0, 0, regtest)
		if err != nil {
			t.Fatal(err)
		}
		send(t, ctx, wallets[device.ScriptWPKH], dev, to, 2_0000_0000)
		c.mine(t)
	}
	for _, st := range []device.ScriptType{device.ScriptWPKH, device.ScriptSHWPKH, device.ScriptPKH, device.ScriptTR} {
		t.Run(string(st), func(t *testing.T) {
			w := wallets[st]
			to := outsideAddress(t, string(st))
			id, plan := send(t, ctx, w, dev, to, 10_000_000)
			if plan.Change == nil {
				t.Fatal("no change output")
			}
			c.mine(t)
			if n, err := c.rpc.Confirmations(ctx, id); err != nil || n != 1 {
				t.Fatalf("confirmations %d, %v", n, err)
			}
			payIdx := 1 - plan.Change.Index
			v, _, conf := c.txOut(t, id, payIdx)
			if v != 10_000_000 || conf != 1 {
				t.Fatalf("recipient output %d sat, %d confirmations", v, conf)
			}
			// The recipient's balance through the backend's own UTXO search.
			toScript, _ := txscript.PayToAddrScript(to)
			utxos, _, err := c.rpc.Scan(ctx, [][]byte{toScript})
			if err != nil || len(utxos) != 1 || utxos[0].Value != 10_000_000 {
				t.Fatalf("recipient utxos %+v %v", utxos, err)
			}
			cv, cscript, _ := c.txOut(t, id, plan.Change.Index)
			want, _ := w.Desc.Derive(1, plan.Change.Child)
			if cv != plan.Change.Amount || cscript != hexs(want.PkScript) {
				t.Fatalf("change %d sat to %s, want %d to %x", cv, cscript, plan.Change.Amount, want.PkScript)
			}
			st2, err := w.Scan(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, total := st2.Balance(); total != 2_0000_0000-10_000_000-plan.Fee && st != device.ScriptWPKH {
				t.Fatalf("balance after the send %d", total)
			}
			t.Logf("%s: txid %s, fee %d sat for %d vB (%s), change %d sat at 1/%d", st, id, plan.Fee, plan.VSize, plan.Method, plan.Change.Amount, plan.Change.Child)
		})
	}
}

func hexs(b []byte) string { return hex.EncodeToString(b) }

// newEmulatedLedger returns the Ledger driver over an in-process link to an emulated
// Ledger-class device in its Bitcoin Test app (regtest, like testnet, uses the test app),
// wrapped with signature verification, and the emulator.
func newEmulatedLedger(t *testing.T, mnemonic string) (device.Device, *ledgeremu.Device) {
	t.Helper()
	emu, err := ledgeremu.New(ledgeremu.Config{Mnemonic: mnemonic, App: ledgeremu.AppBitcoinTest})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	d := device.Verify(ledger.New(transport.NewSpeculosExchanger(emu.Pipe()), ledger.Options{Emulator: true}))
	t.Cleanup(func() { d.Close() })
	return d, emu
}

// TestMultisig2of3: wsh(sortedmulti(2, A, B, C)) over the BIP-48 accounts of three seeds,
// each held by an emulated device through its own driver: A and C Trezor-class, B
// Ledger-class. Three spends are signed by two devices each, in turn — Trezor then
// Ledger, Ledger then Trezor, then the two Trezors — finalized, broadcast to btcd on
// regtest and mined; the payee and the multisig change are checked on the node. The last
// spend needs more than one coinbase, so it also spends earlier change.
func TestMultisig2of3(t *testing.T) {
	ctx := ctxT(t)
	trezorA := newEmulated(t, "")
	ledgerB, ledgerEmu := newEmulatedLedger(t, mnemonicB)
	trezorC := newEmulated(t, mnemonicC)
	d, err := bitcoin.MultisigDescriptor(ctx, []bitcoin.KeySource{trezorA, ledgerB, trezorC}, 2, regtest, 0)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := d.Address(0, 0, regtest)
	if err != nil {
		t.Fatal(err)
	}
	c := startChain(t, addr)
	w := &bitcoin.Wallet{Desc: d, Net: regtest, Backend: c.rpc}
	for _, tc := range []struct {
		name    string
		signers []bitcoin.Signer
		amount  int64
	}{
		{"trezor-then-ledger", []bitcoin.Signer{trezorA, ledgerB}, 1_0000_0000},
		{"ledger-then-trezor", []bitcoin.Signer{ledgerB, trezorC}, 1_0000_0000},
		{"trezor-then-trezor", []bitcoin.Signer{trezorC, trezorA}, 60_0000_0000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := w.Scan(ctx)
			if err != nil {
				t.Fatal(err)
			}
			to := outsideAddress(t, "multisig "+tc.name)
			plan, err := w.BuildSend(ctx, st, bitcoin.SendRequest{Payments: []bitcoin.Payment{{Address: to, Amount: tc.amount}}, FeeRate: bitcoin.SatPerVB(3), MinConf: 1})
			if err != nil {
				t.Fatal(err)
			}
			if plan.Change == nil {
				t.Fatal("no change output")
			}
			// One device's signature is not enough.
			one, err := hwpsbt.Clone(plan.PSBT)
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.signers[0].SignPSBT(ctx, one, regtest); err != nil {
				t.Fatal(err)
			}
			if _, err := bitcoin.FinalizeChecked(one, plan.Expect); !errors.Is(err, hwpsbt.ErrIncomplete) {
				t.Fatalf("1-of-3 signatures: %v, want ErrIncomplete", err)
			}
			tx, err := w.Sign(ctx, plan, tc.signers...)
			if err != nil {
				t.Fatal(err)
			}
			for i, in := range tx.TxIn {
				if len(in.Witness) != 4 {
					t.Fatalf("input %d: witness of %d items, want 4 (empty, two signatures, script)", i, len(in.Witness))
				}
			}
			id, err := w.Broadcast(ctx, tx)
			if err != nil {
				t.Fatal(err)
			}
			c.mine(t)
			if n, err := c.rpc.Confirmations(ctx, id); err != nil || n != 1 {
				t.Fatalf("confirmations %d %v", n, err)
			}
			if tc.amount > 50_0000_0000 && len(tx.TxIn) < 2 {
				t.Fatalf("%d inputs for more than one coinbase", len(tx.TxIn))
			}
			if v, _, _ := c.txOut(t, id, 1-plan.Change.Index); v != tc.amount {
				t.Fatalf("payee output %d sat", v)
			}
			cv, cscript, _ := c.txOut(t, id, plan.Change.Index)
			want, err := d.Derive(1, plan.Change.Child)
			if err != nil {
				t.Fatal(err)
			}
			if cv != plan.Change.Amount || cscript != hexs(want.PkScript) {
				t.Fatalf("change %d sat to %s, want %d to %x", cv, cscript, plan.Change.Amount, want.PkScript)
			}
			t.Logf("%s: txid %s, %d inputs, fee %d sat, %d vB, change %d sat at 1/%d", tc.name, id, len(tx.TxIn), plan.Fee, plan.VSize, cv, plan.Change.Child)
		})
	}
	// The Ledger registered the wallet policy once and reused it.
	regs := 0
	for _, e := range ledgerEmu.Approver().Transcript() {
		if strings.Contains(strings.ToLower(e.Screen.Title), "register") {
			regs++
		}
	}
	if regs != 1 {
		t.Errorf("the ledger showed %d registrations, want 1", regs)
	}
	t.Logf("descriptor %s", d)
}

// TestRefusals: each case gives a clear error and leaves the mempool empty.
func TestRefusals(t *testing.T) {
	ctx := ctxT(t)
	dev := newEmulated(t, "")
	d, err := bitcoin.AccountDescriptor(ctx, dev, device.ScriptWPKH, regtest, 0)
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := d.Address(0, 0, regtest)
	c := startChain(t, addr)
	w := &bitcoin.Wallet{Desc: d, Net: regtest, Backend: c.rpc}
	st, err := w.Scan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	to := outsideAddress(t, "refusals")
	req := func(sat int64, rate bitcoin.FeeRate) bitcoin.SendRequest {
		return bitcoin.SendRequest{Payments: []bitcoin.Payment{{Address: to, Amount: sat}}, FeeRate: rate, MinConf: 1}
	}
	build := func(t *testing.T) *bitcoin.Plan {
		p, err := w.BuildSend(ctx, st, req(10_000_000, bitcoin.SatPerVB(2)))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("outputs changed after confirmation", func(t *testing.T) {
		plan := build(t)
		if err := dev.SignPSBT(ctx, plan.PSBT, regtest); err != nil {
			t.Fatal(err)
		}
		// Someone swaps the payee after the user confirmed (the signatures no longer match).
		evil, _ := txscript.PayToAddrScript(outsideAddress(t, "attacker"))
		plan.PSBT.UnsignedTx.TxOut[1-plan.Change.Index].PkScript = evil
		_, err := bitcoin.FinalizeChecked(plan.PSBT, plan.Expect)
		if !errors.Is(err, hwpsbt.ErrMismatch) {
			t.Fatalf("%v, want ErrMismatch", err)
		}
		t.Log(err)
	})
	t.Run("amount changed after confirmation", func(t *testing.T) {
		plan := build(t)
		if err := dev.SignPSBT(ctx, plan.PSBT, regtest); err != nil {
			t.Fatal(err)
		}
		plan.PSBT.UnsignedTx.TxOut[1-plan.Change.Index].Value += 1000
		plan.PSBT.UnsignedTx.TxOut[plan.Change.Index].Value -= 1000
		if _, err := bitcoin.FinalizeChecked(plan.PSBT, plan.Expect); !errors.Is(err, hwpsbt.ErrMismatch) {
			t.Fatalf("%v, want ErrMismatch", err)
		}
	})
	t.Run("signature from the wrong key", func(t *testing.T) {
		plan := build(t)
		if err := dev.SignPSBT(ctx, plan.PSBT, regtest); err != nil {
			t.Fatal(err)
		}
		// Replace the signature by one from a key the wallet does not have, over the same
		// sighash, claiming the wallet's public key.
		wrong, _ := btcec.NewPrivateKey()
		in := &plan.PSBT.Inputs[0]
		prevOuts := txscript.NewMultiPrevOutFetcher(nil)
		for i, ti := range plan.PSBT.UnsignedTx.TxIn {
			prevOuts.AddPrevOut(ti.PreviousOutPoint, hwpsbt.SpentOutput(plan.PSBT, i))
		}
		digest, err := txscript.CalcWitnessSigHash(in.WitnessUtxo.PkScript, txscript.NewTxSigHashes(plan.PSBT.UnsignedTx, prevOuts), txscript.SigHashAll, plan.PSBT.UnsignedTx, 0, in.WitnessUtxo.Value)
		if err != nil {
			t.Fatal(err)
		}
		in.PartialSigs[0].Signature = append(ecdsa.Sign(wrong, digest).Serialize(), byte(txscript.SigHashAll))
		_, err = bitcoin.FinalizeChecked(plan.PSBT, plan.Expect)
		if !errors.Is(err, hwpsbt.ErrSignature) {
			t.Fatalf("%v, want ErrSignature", err)
		}
		t.Log(err)
		// And the same key claimed under its own (foreign) public key.
		in.PartialSigs[0].PubKey = wrong.PubKey().SerializeCompressed()
		if _, err := bitcoin.FinalizeChecked(plan.PSBT, plan.Expect); !errors.Is(err, hwpsbt.ErrSignature) {
			t.Fatalf("%v, want ErrSignature", err)
		}
	})
	t.Run("change that is not ours", func(t *testing.T) {
		plan := build(t)
		// The change output's derivation claims our key, but the script pays elsewhere.
		plan.PSBT.UnsignedTx.TxOut[plan.Change.Index].PkScript, _ = txscript.PayToAddrScript(outsideAddress(t, "fake change"))
		if err := hwpsbt.Check(plan.PSBT, plan.Expect); !errors.Is(err, hwpsbt.ErrMismatch) {
			t.Fatalf("%v, want ErrMismatch", err)
		}
	})
	t.Run("fee above the cap", func(t *testing.T) {
		_, err := w.BuildSend(ctx, st, req(10_000_000, bitcoin.SatPerVB(5000)))
		if !errors.Is(err, bitcoin.ErrFeeTooHigh) {
			t.Fatalf("%v, want ErrFeeTooHigh", err)
		}
		r := req(10_000_000, bitcoin.SatPerVB(500))
		r.MaxFee = 10_000
		if _, err := w.BuildSend(ctx, st, r); !errors.Is(err, bitcoin.ErrFeeTooHigh) {
			t.Fatalf("%v, want ErrFeeTooHigh", err)
		}
		r.Force = true
		if _, err := w.BuildSend(ctx, st, r); err != nil {
			t.Fatalf("forced: %v", err)
		}
	})
	t.Run("fee changed after signing", func(t *testing.T) {
		plan := build(t)
		if err := dev.SignPSBT(ctx, plan.PSBT, regtest); err != nil {
			t.Fatal(err)
		}
		plan.Expect.Fee++
		if _, err := bitcoin.FinalizeChecked(plan.PSBT, plan.Expect); !errors.Is(err, hwpsbt.ErrMismatch) {
			t.Fatalf("%v, want ErrMismatch", err)
		}
	})
	t.Run("spend above the balance", func(t *testing.T) {
		_, total := st.Balance()
		_, err := w.BuildSend(ctx, st, req(total, bitcoin.SatPerVB(1)))
		if !errors.Is(err, bitcoin.ErrInsufficientFunds) {
			t.Fatalf("%v, want ErrInsufficientFunds", err)
		}
		t.Log(err)
	})
	t.Run("address for another network", func(t *testing.T) {
		if _, err := bitcoin.DecodeAddress("bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", regtest); !errors.Is(err, bitcoin.ErrAddress) {
			t.Fatalf("%v", err)
		}
		main, _ := btcutil.DecodeAddress("bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", &chaincfg.MainNetParams)
		if _, err := w.BuildSend(ctx, st, bitcoin.SendRequest{Payments: []bitcoin.Payment{{Address: main, Amount: 1e6}}, FeeRate: 2000}); !errors.Is(err, bitcoin.ErrAddress) {
			t.Fatalf("%v, want ErrAddress", err)
		}
	})
	if pool := c.mempool(t); len(pool) != 0 {
		t.Fatalf("something was broadcast: %v", pool)
	}
	_ = psbt.Packet{}
}

// BenchmarkSend100Inputs measures the whole path for a 100-input spend: scan, build, sign
// on the emulated Trezor (in-process pipe), check, finalize and broadcast to btcd.
// Funding the 100 coins and mining are outside the timer.
func BenchmarkSend100Inputs(b *testing.B) {
	ctx := b.Context()
	emu, err := trezoremu.New(trezoremu.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer emu.Close()
	dev := device.Verify(trezor.New(emu.Pipe(), trezor.Options{Emulator: true}))
	defer dev.Close()
	d, err := bitcoin.AccountDescriptor(ctx, dev, device.ScriptWPKH, regtest, 0)
	if err != nil {
		b.Fatal(err)
	}
	mineTo, _ := d.Address(0, 0, regtest)
	node := nodes.StartBtcdT(b, mineTo.EncodeAddress())
	if _, err := node.Generate(ctx, 100+b.N+1); err != nil {
		b.Fatal(err)
	}
	rpc, err := bitcoin.NewRPC(node.URL(), regtest)
	if err != nil {
		b.Fatal(err)
	}
	w := &bitcoin.Wallet{Desc: d, Net: regtest, Backend: rpc, Gap: 120}
	to, _ := btcutil.DecodeAddress(outsideAddressString("bench"), regtest)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		// 100 coins of 0.01 BTC on receive addresses 1..100.
		st, err := w.Scan(ctx)
		if err != nil {
			b.Fatal(err)
		}
		var pays []bitcoin.Payment
		for j := uint32(1); j <= 100; j++ {
			a, _ := d.Address(0, j, regtest)
			pays = append(pays, bitcoin.Payment{Address: a, Amount: 1_000_000})
		}
		fund, err := w.BuildSend(ctx, st, bitcoin.SendRequest{Payments: pays, FeeRate: bitcoin.SatPerVB(1), MinConf: 1})
		if err != nil {
			b.Fatal(err)
		}
		ftx, err := w.Sign(ctx, fund, dev)
		if err != nil {
			b.Fatal(err)
		}
		fid, err := w.Broadcast(ctx, ftx)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := node.Generate(ctx, 1); err != nil {
			b.Fatal(err)
		}
		var coins []wire.OutPoint
		for n, o := range ftx.TxOut {
			if o.Value == 1_000_000 {
				coins = append(coins, wire.OutPoint{Hash: fid, Index: uint32(n)})
			}
		}
		b.StartTimer()
		st, err = w.Scan(ctx)
		if err != nil {
			b.Fatal(err)
		}
		plan, err := w.BuildSend(ctx, st, bitcoin.SendRequest{Payments: []bitcoin.Payment{{Address: to, Amount: 99_000_000}}, FeeRate: bitcoin.SatPerVB(1), MinConf: 1, Coins: coins})
		if err != nil {
			b.Fatal(err)
		}
		if len(plan.Inputs) != 100 {
			b.Fatalf("%d inputs", len(plan.Inputs))
		}
		tx, err := w.Sign(ctx, plan, dev)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.Broadcast(ctx, tx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if _, err := node.Generate(ctx, 1); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

func outsideAddressString(tag string) string {
	h := sha256.Sum256([]byte("hwbridge outside payee " + tag))
	a, _ := btcutil.NewAddressWitnessPubKeyHash(h[:20], regtest)
	return a.EncodeAddress()
}
