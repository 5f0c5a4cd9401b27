package devicetest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/base58"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/bitbox02"
	"github.com/hwbridge/hwbridge/device/devicetest"
	"github.com/hwbridge/hwbridge/device/ledger"
	"github.com/hwbridge/hwbridge/device/trezor"
	"github.com/hwbridge/hwbridge/emulator"
	bitbox02emu "github.com/hwbridge/hwbridge/emulator/bitbox02"
	ledgeremu "github.com/hwbridge/hwbridge/emulator/ledger"
	trezoremu "github.com/hwbridge/hwbridge/emulator/trezor"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/transport"
)

// Seeds of the three cosigners (BIP-39 test vectors).
var seeds = []string{
	devicetest.Mnemonic,
	"legal winner thank year wave sausage worth useful legal winner thank yellow",
	"letter advice cage absurd amount doctor acoustic avoid letter advice cage above",
}

// emulated is a driver on an in-process emulator, wrapped with signature verification,
// and the emulator's approver (its screen transcript).
type emulated struct {
	name     string
	dev      device.Device
	approver *emulator.Approver
}

func trezorDevice(t *testing.T, mnemonic string) emulated {
	t.Helper()
	emu := trezoremu.NewForTest(t, trezoremu.Options{Mnemonic: mnemonic})
	d := device.Verify(trezor.New(emu.Pipe(), trezor.Options{Emulator: true}))
	t.Cleanup(func() { _ = d.Close() })
	return emulated{"trezor", d, emu.Approver()}
}

func ledgerDevice(t *testing.T, mnemonic string) emulated {
	t.Helper()
	emu, err := ledgeremu.New(ledgeremu.Config{Mnemonic: mnemonic, App: ledgeremu.AppBitcoinTest})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emu.Close() })
	d := device.Verify(ledger.New(transport.NewSpeculosExchanger(emu.Pipe()), ledger.Options{Emulator: true}))
	t.Cleanup(func() { _ = d.Close() })
	return emulated{"ledger", d, emu.Approver()}
}

func bitbox02Device(t *testing.T, mnemonic string) emulated {
	t.Helper()
	emu := bitbox02emu.NewForTest(t, bitbox02emu.Config{Mnemonic: mnemonic})
	d := device.Verify(bitbox02.New(emu.Pipe(), bitbox02.Options{Emulator: true}))
	t.Cleanup(func() { _ = d.Close() })
	return emulated{"bitbox02", d, emu.Approver()}
}

// msCosigner is one key holder of the multisig: fingerprint and account xpub at msAcct.
type msCosigner struct {
	fp   device.Fingerprint
	acct *hdkeychain.ExtendedKey
}

var msAcct = hdpath.MustParse("m/48'/1'/0'/2'")

func cosignerOf(t *testing.T, ctx context.Context, d device.Device, net *chaincfg.Params) msCosigner {
	t.Helper()
	fp, err := d.Fingerprint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	x, err := d.XPub(ctx, device.XPubRequest{Path: msAcct, Network: net})
	if err != nil {
		t.Fatal(err)
	}
	k, err := hdkeychain.NewKeyFromString(x)
	if err != nil {
		t.Fatal(err)
	}
	return msCosigner{fp: fp, acct: k}
}

// sortedMulti returns the 2-of-n sortedmulti witness script of the cosigners' keys at
// /change/index and their PSBT derivations.
func sortedMulti(t *testing.T, cos []msCosigner, change, index uint32) ([]byte, []*psbt.Bip32Derivation) {
	t.Helper()
	var ders []*psbt.Bip32Derivation
	for _, c := range cos {
		k, err := c.acct.Derive(change)
		if err == nil {
			k, err = k.Derive(index)
		}
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := k.ECPubKey()
		ders = append(ders, &psbt.Bip32Derivation{PubKey: pub.SerializeCompressed(), MasterKeyFingerprint: c.fp.PSBT(), Bip32Path: msAcct.Child(change, index)})
	}
	slices.SortFunc(ders, func(a, b *psbt.Bip32Derivation) int { return bytes.Compare(a.PubKey, b.PubKey) })
	b := txscript.NewScriptBuilder().AddOp(txscript.OP_2)
	for _, d := range ders {
		b.AddData(d.PubKey)
	}
	ws, err := b.AddInt64(int64(len(ders))).AddOp(txscript.OP_CHECKMULTISIG).Script()
	if err != nil {
		t.Fatal(err)
	}
	return ws, ders
}

// wrap returns the output script of a witness script, p2wsh or p2sh-p2wsh, and the p2sh
// redeem script when nested.
func wrap(ws []byte, nested bool) (pkScript, redeem []byte) {
	h := sha256.Sum256(ws)
	wsh := append([]byte{txscript.OP_0, 32}, h[:]...)
	if !nested {
		return wsh, nil
	}
	return append(append([]byte{txscript.OP_HASH160, 20}, btcutil.Hash160(wsh)...), txscript.OP_EQUAL), wsh
}

// multisigPSBT spends the 2-of-3 sortedmulti output of the cosigners at 0/index to an
// outside payee, with multisig change at 1/0 and every cosigner's xpub as
// PSBT_GLOBAL_XPUB, as a wallet coordinator builds it.
func multisigPSBT(t *testing.T, cos []msCosigner, nested bool, index uint32) *psbt.Packet {
	t.Helper()
	ws, ders := sortedMulti(t, cos, 0, index)
	spk, redeem := wrap(ws, nested)
	funding := wire.NewMsgTx(2)
	seed := chainhash.HashH([]byte("hwbridge cross-family multisig funding"))
	funding.AddTxIn(wire.NewTxIn(wire.NewOutPoint(&seed, 0), nil, nil))
	funding.AddTxOut(wire.NewTxOut(700_000, spk))
	id := funding.TxHash()
	cws, cders := sortedMulti(t, cos, 1, 0)
	cspk, credeem := wrap(cws, nested)
	spend := wire.NewMsgTx(2)
	spend.AddTxIn(&wire.TxIn{PreviousOutPoint: *wire.NewOutPoint(&id, 0), Sequence: wire.MaxTxInSequenceNum - 2})
	spend.AddTxOut(wire.NewTxOut(400_000, devicetest.ExternalScript()))
	spend.AddTxOut(wire.NewTxOut(295_000, cspk))
	p, err := psbt.NewFromUnsignedTx(spend)
	if err != nil {
		t.Fatal(err)
	}
	in := &p.Inputs[0]
	in.NonWitnessUtxo, in.WitnessUtxo = funding, funding.TxOut[0]
	in.WitnessScript, in.RedeemScript, in.Bip32Derivation = ws, redeem, ders
	out := &p.Outputs[1]
	out.WitnessScript, out.RedeemScript, out.Bip32Derivation = cws, credeem, cders
	for _, c := range cos {
		payload, ver, err := base58.CheckDecode(c.acct.String())
		if err != nil {
			t.Fatal(err)
		}
		val := binary.BigEndian.AppendUint32(nil, uint32(c.fp))
		for _, s := range msAcct {
			val = binary.LittleEndian.AppendUint32(val, s)
		}
		p.Unknowns = append(p.Unknowns, &psbt.Unknown{Key: append([]byte{0x01, ver}, payload...), Value: val})
	}
	return p
}

// cosignerOrder is the order of the cosigners' keys in the sortedmulti script at
// /change/index.
func cosignerOrder(t *testing.T, cos []msCosigner, change, index uint32) []device.Fingerprint {
	_, ders := sortedMulti(t, cos, change, index)
	var out []device.Fingerprint
	for _, d := range ders {
		out = append(out, device.FingerprintFromPSBT(d.MasterKeyFingerprint))
	}
	return out
}

// TestMultisigAcrossFamilies: a 2-of-3 wsh(sortedmulti) and sh(wsh(sortedmulti)) spend is
// signed in turn by a Ledger-class and a Trezor-class emulated device (either one first),
// or by two Trezor-class ones, or by a BitBox02-class one with either, each through its own
// driver; one signature does not
// finalize, two do, and the extracted transaction passes btcd's script engine.
//
// A Trezor recognizes the multisig change only when its cosigners come in the same
// order as in the input (the firmware fingerprints the nodes in script order), so with
// sortedmulti it depends on the keys: at 0/0 these seeds sort as at 1/0 (change hidden),
// at 0/3 they do not (change shown, as the firmware shows it).
func TestMultisigAcrossFamilies(t *testing.T) {
	net := &chaincfg.TestNet3Params
	for _, tc := range []struct {
		name string
		open func(t *testing.T) []emulated // the three cosigners; the first two sign
		// wshOnly: a BitBox02 keeps BIP-48's script-type level (p2wsh-p2sh accounts at
		// m/48'/coin'/account'/1', refused at msAcct's 2'), so it signs the p2wsh cases.
		wshOnly bool
	}{
		{"ledger-then-trezor", func(t *testing.T) []emulated {
			return []emulated{ledgerDevice(t, seeds[1]), trezorDevice(t, seeds[0]), trezorDevice(t, seeds[2])}
		}, false},
		{"trezor-then-ledger", func(t *testing.T) []emulated {
			return []emulated{trezorDevice(t, seeds[0]), ledgerDevice(t, seeds[1]), trezorDevice(t, seeds[2])}
		}, false},
		{"trezor-then-trezor", func(t *testing.T) []emulated {
			return []emulated{trezorDevice(t, seeds[2]), trezorDevice(t, seeds[0]), ledgerDevice(t, seeds[1])}
		}, false},
		{"bitbox02-then-ledger", func(t *testing.T) []emulated {
			return []emulated{bitbox02Device(t, seeds[0]), ledgerDevice(t, seeds[1]), trezorDevice(t, seeds[2])}
		}, true},
		{"trezor-then-bitbox02", func(t *testing.T) []emulated {
			return []emulated{trezorDevice(t, seeds[0]), bitbox02Device(t, seeds[1]), ledgerDevice(t, seeds[2])}
		}, true},
	} {
		for _, v := range []struct {
			nested bool
			index  uint32
		}{{false, 0}, {false, 3}, {true, 0}, {true, 3}} {
			if v.nested && tc.wshOnly {
				continue
			}
			name := fmt.Sprintf("%s/wsh/0-%d", tc.name, v.index)
			if v.nested {
				name = fmt.Sprintf("%s/sh-wsh/0-%d", tc.name, v.index)
			}
			t.Run(name, func(t *testing.T) {
				ctx := t.Context()
				devs := tc.open(t)
				var cos []msCosigner
				for _, d := range devs {
					cos = append(cos, cosignerOf(t, ctx, d.dev, net))
				}
				p := multisigPSBT(t, cos, v.nested, v.index)
				for n, d := range devs[:2] {
					if err := d.dev.SignPSBT(ctx, p, net); err != nil {
						t.Fatalf("%s signs: %v", d.name, err)
					}
					if got := len(p.Inputs[0].PartialSigs); got != n+1 {
						t.Fatalf("after %s: %d partial signatures, want %d", d.name, got, n+1)
					}
					if n == 0 {
						one := clonePSBT(t, p)
						if _, err := devicetest.FinalizeAndExecute(one); err == nil {
							t.Fatal("one signature of 2-of-3 finalized")
						}
					}
				}
				tx, err := devicetest.FinalizeAndExecute(p)
				if err != nil {
					t.Fatal(err)
				}
				if len(tx.TxIn[0].Witness) != 4 {
					t.Fatalf("witness of %d items, want 4 (empty, 2 signatures, script)", len(tx.TxIn[0].Witness))
				}
				changeHidden := slices.Equal(cosignerOrder(t, cos, 0, v.index), cosignerOrder(t, cos, 1, 0))
				if changeHidden != (v.index == 0) {
					t.Fatalf("the keys at 0/%d sort differently than this test assumes", v.index)
				}
				for _, d := range devs[:2] {
					tr := d.approver.Transcript()
					switch d.name {
					case "ledger":
						if !slices.ContainsFunc(tr, func(e emulator.Entry) bool { return strings.Contains(strings.ToLower(e.Title), "register") }) {
							t.Error("the ledger signed without registering the wallet policy")
						}
					case "bitbox02":
						// Registered first; the multisig change is recognised (one recipient).
						var titles []string
						for _, e := range tr {
							titles = append(titles, e.Title)
						}
						if !slices.Contains(titles, "Register") || !slices.Contains(titles, "Spend from") || slices.Index(titles, "Send to") != slices.Index(titles[:len(titles)-1], "Send to") {
							t.Errorf("bitbox02 screens %q", titles)
						}
						sends := 0
						for _, ti := range titles {
							if ti == "Send to" {
								sends++
							}
						}
						if sends != 1 {
							t.Errorf("bitbox02 showed %d recipients, want 1 (the multisig change is its own)", sends)
						}
					case "trezor":
						outputs := 0
						for _, e := range tr {
							if e.Title == "Confirm output" {
								outputs++
							}
						}
						if want := map[bool]int{true: 1, false: 2}[changeHidden]; outputs != want {
							t.Errorf("trezor showed %d outputs, want %d (change hidden: %v)", outputs, want, changeHidden)
						}
					}
				}
			})
		}
	}
}

func clonePSBT(t *testing.T, p *psbt.Packet) *psbt.Packet {
	t.Helper()
	var buf bytes.Buffer
	if err := p.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	c, err := psbt.NewFromRawBytes(&buf, false)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
