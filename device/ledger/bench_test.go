package ledger_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/devicetest"
	"github.com/hwbridge/hwbridge/device/ledger"
	ledgeremu "github.com/hwbridge/hwbridge/emulator/ledger"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/transport"
)

// countingExchanger counts APDUs and the time spent waiting in the exchanger (framing,
// the pipe and the emulator), so that the host side's own cost can be reported apart.
type countingExchanger struct {
	ex    transport.APDUExchanger
	n     atomic.Int64
	spent atomic.Int64
}

func (c *countingExchanger) Exchange(ctx context.Context, apdu []byte) ([]byte, error) {
	start := time.Now()
	r, err := c.ex.Exchange(ctx, apdu)
	c.spent.Add(int64(time.Since(start)))
	c.n.Add(1)
	return r, err
}

// nullExchanger answers every APDU at once with the same reply: what is left is the
// driver's own cost per exchange.
type nullExchanger struct{ reply []byte }

func (n nullExchanger) Exchange(context.Context, []byte) ([]byte, error) { return n.reply, nil }

// BenchmarkExchange: Features is exactly one exchange (B0 01). host-only answers at once
// (the driver's own cost per APDU: encode, status word, parse); emulator-pipe adds the
// Speculos framing, net.Pipe and the emulator.
func BenchmarkExchange(b *testing.B) {
	info := append([]byte{1, 7}, "Bitcoin"...)
	info = append(append(info, 5), "2.4.6"...)
	info = append(info, 1, 0, 0x90, 0x00)
	run := func(b *testing.B, ex transport.APDUExchanger) {
		cx := &countingExchanger{ex: ex}
		d := ledger.New(cx, ledger.Options{})
		ctx := b.Context()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := d.Features(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(cx.n.Load())/float64(b.N), "apdus/op")
	}
	b.Run("host-only", func(b *testing.B) { run(b, nullExchanger{reply: info}) })
	b.Run("emulator-pipe", func(b *testing.B) {
		emu := newEmu(b, ledgeremu.Config{})
		run(b, transport.NewSpeculosExchanger(emu.Pipe()))
	})
}

// BenchmarkSignPSBT signs p2wpkh PSBTs (one external output) against the in-process
// emulator. Shapes, all in the name:
//   - inputs=1, 10, 100;
//   - utxo=witness: each input carries only its witness UTXO; utxo=non-witness: it also
//     carries the full previous transaction (as wallets send for segwit v0, which the app
//     streams and hashes): every input spends an output of one funding transaction with an
//     output per input (prevtx=shared-N-outputs), so n inputs stream n transactions of n
//     outputs;
//   - cold: each op signs on a new driver (fresh state: its first contact with the app,
//     wallet policy and xpub looked up again); warm: one driver signs again and again, its
//     first sign done before timing (stated here, not hidden).
//
// host-ms/op is the time outside the exchanger (v2 conversion, merkleisation, answering
// client commands, merging signatures); apdus/op counts the round trips.
func BenchmarkSignPSBT(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		for _, utxo := range []string{"witness", fmt.Sprintf("non-witness/prevtx=shared-%d-outputs", n)} {
			for _, state := range []string{"cold", "warm"} {
				b.Run(fmt.Sprintf("inputs=%d/utxo=%s/%s", n, utxo, state), func(b *testing.B) {
					emu := newEmu(b, ledgeremu.Config{})
					ctx := b.Context()
					newDriver := func() (*ledger.Driver, *countingExchanger) {
						cx := &countingExchanger{ex: transport.NewSpeculosExchanger(emu.Pipe())}
						return ledger.New(cx, ledger.Options{}), cx
					}
					d, cx := newDriver()
					p := spendWPKH(b, ctx, d, n, utxo != "witness")
					if state == "warm" {
						if err := d.SignPSBT(ctx, clonePSBT(b, p), &chaincfg.MainNetParams); err != nil {
							b.Fatal(err)
						}
					}
					var signing, spent time.Duration
					var apdus int64
					b.ResetTimer()
					for range b.N {
						b.StopTimer()
						work := clonePSBT(b, p)
						if state == "cold" {
							d, cx = newDriver()
						}
						cx.n.Store(0)
						cx.spent.Store(0)
						b.StartTimer()
						start := time.Now()
						if err := d.SignPSBT(ctx, work, &chaincfg.MainNetParams); err != nil {
							b.Fatal(err)
						}
						signing += time.Since(start)
						spent += time.Duration(cx.spent.Load())
						apdus += cx.n.Load()
					}
					b.ReportMetric(float64(apdus)/float64(b.N), "apdus/op")
					b.ReportMetric(float64(signing-spent)/float64(b.N)/1e6, "host-ms/op")
				})
			}
		}
	}
}

// spendWPKH builds a PSBT spending n p2wpkh outputs of m/84'/0'/0'/0/i (all of one funding
// transaction) to one external output; nonWitness adds that transaction to every input.
func spendWPKH(tb testing.TB, ctx context.Context, d *ledger.Driver, n int, nonWitness bool) *psbt.Packet {
	tb.Helper()
	fp, err := d.Fingerprint(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	acct := hdpath.MustParse("m/84'/0'/0'")
	xs, err := d.XPub(ctx, device.XPubRequest{Path: acct})
	if err != nil {
		tb.Fatal(err)
	}
	xk, err := hdkeychain.NewKeyFromString(xs)
	if err != nil {
		tb.Fatal(err)
	}
	ext, _ := xk.Derive(0)
	funding := wire.NewMsgTx(2)
	seed := chainhash.HashH([]byte("ledger bench funding"))
	funding.AddTxIn(wire.NewTxIn(wire.NewOutPoint(&seed, 0), nil, nil))
	pubs := make([][]byte, n)
	for i := range n {
		k, err := ext.Derive(uint32(i))
		if err != nil {
			tb.Fatal(err)
		}
		pk, _ := k.ECPubKey()
		pubs[i] = pk.SerializeCompressed()
		spk, _ := txscript.NewScriptBuilder().AddOp(txscript.OP_0).AddData(btcutil.Hash160(pubs[i])).Script()
		funding.AddTxOut(wire.NewTxOut(10_000, spk))
	}
	id := funding.TxHash()
	spend := wire.NewMsgTx(2)
	for i := range n {
		spend.AddTxIn(&wire.TxIn{PreviousOutPoint: *wire.NewOutPoint(&id, uint32(i)), Sequence: wire.MaxTxInSequenceNum})
	}
	spend.AddTxOut(wire.NewTxOut(int64(n)*10_000-5_000, devicetest.ExternalScript()))
	p, err := psbt.NewFromUnsignedTx(spend)
	if err != nil {
		tb.Fatal(err)
	}
	for i := range n {
		in := &p.Inputs[i]
		in.WitnessUtxo = funding.TxOut[i]
		if nonWitness {
			in.NonWitnessUtxo = funding
		}
		in.Bip32Derivation = []*psbt.Bip32Derivation{{PubKey: pubs[i], MasterKeyFingerprint: fp.PSBT(), Bip32Path: acct.Child(0, uint32(i))}}
	}
	return p
}
