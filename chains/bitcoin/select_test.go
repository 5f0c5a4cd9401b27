package bitcoin

import (
	"context"
	"errors"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	hwpsbt "github.com/hwbridge/hwbridge/psbt"
)

func coins(values ...int64) []UTXO {
	var us []UTXO
	for i, v := range values {
		us = append(us, UTXO{OutPoint: wire.OutPoint{Hash: chainhash.Hash{byte(i + 1)}}, Value: v, Confirmations: 6})
	}
	return us
}

func TestSelectCoins(t *testing.T) {
	base := selectParams{
		inputWeight:  func(UTXO) int64 { return 272 }, // p2wpkh: 41*4 + 108
		baseWeight:   (4+4+1+1+31)*4 + 2,
		changeWeight: 31 * 4,
		changeSpend:  272,
		rate:         SatPerVB(1),
		dust:         294,
	}
	for _, tc := range []struct {
		name       string
		values     []int64
		target     int64
		method     string
		nCoins     int
		change     bool
		insuffient bool
	}{
		// 50_000 + 68 (input) + 42 (base) covers 49_890 exactly: no change.
		{"exact match", []int64{10_000, 50_000, 200_000}, 50_000 - 68 - 42, "branch-and-bound", 1, false, false},
		{"two coins exact", []int64{30_000, 20_000, 1_000_000}, 50_000 - 2*68 - 42, "branch-and-bound", 2, false, false},
		{"needs change", []int64{1_000_000, 2_000_000}, 1_500_000, "largest-first", 1, true, false},
		{"insufficient", []int64{1_000, 2_000}, 5_000, "", 0, false, true},
		{"dust coins ignored", []int64{50, 60, 70}, 10, "", 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := base
			p.coins, p.target = coins(tc.values...), tc.target
			s, err := selectCoins(p)
			if tc.insuffient {
				if !errors.Is(err, ErrInsufficientFunds) {
					t.Fatalf("%v, want ErrInsufficientFunds", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.method != tc.method || len(s.coins) != tc.nCoins || (s.change > 0) != tc.change {
				t.Fatalf("%s with %d coins, change %d", s.method, len(s.coins), s.change)
			}
			var in int64
			for _, c := range s.coins {
				in += c.Value
			}
			if in != tc.target+s.fee+s.change {
				t.Fatalf("in %d != target %d + fee %d + change %d", in, tc.target, s.fee, s.change)
			}
			w := p.baseWeight + int64(len(s.coins))*272
			if s.change > 0 {
				w += p.changeWeight
			}
			if min := p.feeFor(w); s.fee < min {
				t.Fatalf("fee %d below %d for weight %d", s.fee, min, w)
			}
		})
	}
}

// fakeBackend serves a fixed coin set and their previous transactions.
type fakeBackend struct {
	txs map[chainhash.Hash]*wire.MsgTx
}

func (f *fakeBackend) Scan(context.Context, [][]byte) ([]UTXO, []bool, error) { return nil, nil, nil }
func (f *fakeBackend) RawTx(_ context.Context, h chainhash.Hash) (*wire.MsgTx, error) {
	if tx, ok := f.txs[h]; ok {
		return tx, nil
	}
	return nil, ErrTxNotFound
}
func (f *fakeBackend) FeeRate(context.Context, int) (FeeRate, error) { return 0, ErrNoFeeEstimate }
func (f *fakeBackend) Broadcast(context.Context, *wire.MsgTx) (chainhash.Hash, error) {
	return chainhash.Hash{}, ErrRejected
}
func (f *fakeBackend) TipHeight(context.Context) (int64, error) { return 1000, nil }
func (f *fakeBackend) Confirmations(context.Context, chainhash.Hash) (int64, error) {
	return 6, nil
}

const benchXPub = "xpub6BgBgsespWvERF3LHQu6CnqdvfEvtMcQjYrcRzx53QJjSxarj2afYWcLteoGVky7D3UKDP9QyrLprQ3VCECoY49yfdDEHGCtMMj92pReUsQ"

// walletWithCoins is a wpkh wallet holding n coins of 10,000 sat each on distinct
// receive addresses, each in its own previous transaction.
func walletWithCoins(tb testing.TB, kind string, n int) (*Wallet, *State) {
	tb.Helper()
	d, err := ParseDescriptor(kind + "([73c5da0a/84h/0h/0h]" + benchXPub + "/<0;1>/*)")
	if err != nil {
		tb.Fatal(err)
	}
	fb := &fakeBackend{txs: map[chainhash.Hash]*wire.MsgTx{}}
	st := &State{Positions: map[string][2]uint32{}}
	for i := 0; i < n; i++ {
		s, err := d.Derive(0, uint32(i))
		if err != nil {
			tb.Fatal(err)
		}
		prev := wire.NewMsgTx(2)
		prev.AddTxIn(wire.NewTxIn(&wire.OutPoint{Index: uint32(i)}, nil, nil))
		prev.AddTxOut(wire.NewTxOut(10_000, s.PkScript))
		fb.txs[prev.TxHash()] = prev
		st.UTXOs = append(st.UTXOs, UTXO{OutPoint: wire.OutPoint{Hash: prev.TxHash()}, Value: 10_000, PkScript: s.PkScript, Confirmations: 6})
		st.Positions[string(s.PkScript)] = [2]uint32{0, uint32(i)}
	}
	st.NextIndex = [2]uint32{uint32(n), 0}
	return &Wallet{Desc: d, Net: &chaincfg.MainNetParams, Backend: fb}, st
}

func TestBuildSendPSBTFields(t *testing.T) {
	for _, kind := range []string{"wpkh", "tr", "pkh", "sh(wpkh"} {
		desc := kind
		if kind == "sh(wpkh" {
			desc = "sh(wpkh"
		}
		t.Run(kind, func(t *testing.T) {
			var w *Wallet
			var st *State
			if desc == "sh(wpkh" {
				d, err := ParseDescriptor("sh(wpkh([73c5da0a/49h/0h/0h]" + benchXPub + "/<0;1>/*))")
				if err != nil {
					t.Fatal(err)
				}
				w0, st0 := walletWithCoins(t, "wpkh", 0)
				w, st = w0, st0
				w.Desc = d
				fb := w.Backend.(*fakeBackend)
				for i := 0; i < 3; i++ {
					s, _ := d.Derive(0, uint32(i))
					prev := wire.NewMsgTx(2)
					prev.AddTxIn(wire.NewTxIn(&wire.OutPoint{Index: uint32(i)}, nil, nil))
					prev.AddTxOut(wire.NewTxOut(10_000, s.PkScript))
					fb.txs[prev.TxHash()] = prev
					st.UTXOs = append(st.UTXOs, UTXO{OutPoint: wire.OutPoint{Hash: prev.TxHash()}, Value: 10_000, PkScript: s.PkScript, Confirmations: 6})
					st.Positions[string(s.PkScript)] = [2]uint32{0, uint32(i)}
				}
			} else {
				w, st = walletWithCoins(t, kind, 3)
			}
			to, _ := btcutil.DecodeAddress("bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", &chaincfg.MainNetParams)
			plan, err := w.BuildSend(t.Context(), st, SendRequest{Payments: []Payment{{Address: to, Amount: 15_000}}, FeeRate: SatPerVB(3)})
			if err != nil {
				t.Fatal(err)
			}
			p := plan.PSBT
			for i, in := range p.Inputs {
				if p.UnsignedTx.TxIn[i].Sequence != RBFSequence {
					t.Errorf("input %d: sequence %x", i, p.UnsignedTx.TxIn[i].Sequence)
				}
				if (in.NonWitnessUtxo == nil) != (kind == "tr") {
					t.Errorf("input %d: non_witness_utxo present=%v", i, in.NonWitnessUtxo != nil)
				}
				if (in.WitnessUtxo == nil) != (kind == "pkh") {
					t.Errorf("input %d: witness_utxo present=%v", i, in.WitnessUtxo != nil)
				}
				if kind == "tr" && (len(in.TaprootBip32Derivation) != 1 || len(in.TaprootInternalKey) != 32) {
					t.Errorf("input %d: taproot fields missing", i)
				}
				if kind != "tr" && (len(in.Bip32Derivation) != 1 || in.Bip32Derivation[0].MasterKeyFingerprint != psbtFingerprint(0x73c5da0a)) {
					t.Errorf("input %d: bip32 derivation %+v", i, in.Bip32Derivation)
				}
			}
			if plan.Change == nil {
				t.Fatal("no change")
			}
			co := p.Outputs[plan.Change.Index]
			if len(co.Bip32Derivation)+len(co.TaprootBip32Derivation) != 1 {
				t.Fatal("change output without its derivation")
			}
			if err := w.Desc.OwnsScript(p.UnsignedTx.TxOut[plan.Change.Index].PkScript, co.Bip32Derivation, co.TaprootBip32Derivation); err != nil {
				t.Fatal(err)
			}
			sum, err := hwpsbt.Describe(p, &chaincfg.MainNetParams)
			if err != nil || sum.Fee == nil || *sum.Fee != plan.Fee {
				t.Fatalf("describe: %v", err)
			}
			if got := plan.FeeRate.Fee(plan.VSize); plan.Fee < got {
				t.Fatalf("fee %d below %d for %d vB", plan.Fee, got, plan.VSize)
			}
		})
	}
}

// BenchmarkDeriveAddresses10k derives 10,000 receive addresses from an account xpub.
func BenchmarkDeriveAddresses10k(b *testing.B) {
	d, err := ParseDescriptor("wpkh([73c5da0a/84h/0h/0h]" + benchXPub + "/<0;1>/*)")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		for i := uint32(0); i < 10_000; i++ {
			if _, err := d.Address(0, i, &chaincfg.MainNetParams); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkBuild100InputPSBT builds a PSBT spending 100 coins (selection, previous
// transactions, derivations, change).
func BenchmarkBuild100InputPSBT(b *testing.B) {
	w, st := walletWithCoins(b, "wpkh", 100)
	to, _ := btcutil.DecodeAddress("bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", &chaincfg.MainNetParams)
	req := SendRequest{Payments: []Payment{{Address: to, Amount: 990_000}}, FeeRate: SatPerVB(1)}
	for b.Loop() {
		plan, err := w.BuildSend(context.Background(), st, req)
		if err != nil {
			b.Fatal(err)
		}
		if len(plan.Inputs) != 100 {
			b.Fatalf("%d inputs", len(plan.Inputs))
		}
	}
}
