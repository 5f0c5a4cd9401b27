package ledger_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/big"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/base58"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/devicetest"
	"github.com/hwbridge/hwbridge/device/ledger"
	"github.com/hwbridge/hwbridge/emulator"
	ledgeremu "github.com/hwbridge/hwbridge/emulator/ledger"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/transport"
)

// newEmu starts an in-process Ledger-class emulator on the test mnemonic.
func newEmu(t testing.TB, cfg ledgeremu.Config) *ledgeremu.Device {
	t.Helper()
	cfg.Mnemonic = devicetest.Mnemonic
	emu, err := ledgeremu.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emu.Close() })
	return emu
}

// pipeDriver is a driver on the emulator's in-process link.
func pipeDriver(t testing.TB, emu *ledgeremu.Device, opts ledger.Options) *ledger.Driver {
	t.Helper()
	opts.Emulator = true
	d := ledger.New(transport.NewSpeculosExchanger(emu.Pipe()), opts)
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// tcpDriver serves emu on a loopback port and dials it as hwbridge does a tcp: path.
func tcpDriver(t testing.TB, emu *ledgeremu.Device, opts ledger.Options) *ledger.Driver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- emu.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	ex, err := transport.OpenExchanger(t.Context(), "tcp:"+ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	opts.Emulator = true
	d := ledger.New(ex, opts)
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// noDomainOnly hides the EIP-712 capability from the conformance suite: the Ledger
// Ethereum app signs hashed EIP-712 only with a message hash, and the suite's scenario
// also signs domain-only data. TestTypedHash covers the app's mode.
type noDomainOnly struct{ device.Device }

func (n noDomainOnly) Features(ctx context.Context) (device.Features, error) {
	f, err := n.Device.Features(ctx)
	f.Capabilities.EIP712Hash = false
	return f, err
}

func TestConformance(t *testing.T) {
	for _, link := range []string{"pipe", "tcp"} {
		t.Run(link, func(t *testing.T) {
			open := func(t *testing.T, policy emulator.Policy) device.Device {
				emu := newEmu(t, ledgeremu.Config{BlindSigning: true, Approver: emulator.NewApprover(policy)})
				opts := ledger.Options{OpenApp: true}
				if link == "tcp" {
					return noDomainOnly{device.Verify(tcpDriver(t, emu, opts))}
				}
				return noDomainOnly{device.Verify(pipeDriver(t, emu, opts))}
			}
			devicetest.Run(t, func(t *testing.T) device.Device { return open(t, emulator.PolicyAuto) }, devicetest.Capabilities{
				Taproot:               true,
				EIP1559:               true,
				Multisig:              true,
				RefusesMalformedERC20: true,
				OpenRejecting:         func(t *testing.T) device.Device { return open(t, emulator.PolicyReject) },
			})
		})
	}
}

func TestPublishedVectors(t *testing.T) {
	emu := newEmu(t, ledgeremu.Config{})
	d := pipeDriver(t, emu, ledger.Options{OpenApp: true})
	ctx := device.WithAppSwitch(t.Context())
	fp, err := d.Fingerprint(ctx)
	if err != nil || fp.String() != "73c5da0a" {
		t.Fatalf("fingerprint %s, %v", fp, err)
	}
	for _, tt := range []struct {
		st   device.ScriptType
		path string
		want string
	}{
		{device.ScriptWPKH, "m/84'/0'/0'/0/0", "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"},
		{device.ScriptTR, "m/86'/0'/0'/0/0", "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr"},
	} {
		got, err := d.Address(ctx, device.AddressRequest{Chain: device.ChainBTC, Path: hdpath.MustParse(tt.path), Script: tt.st, Display: true})
		if err != nil || got != tt.want {
			t.Errorf("%s: %s, %v; want %s", tt.path, got, err, tt.want)
		}
	}
	x, err := d.XPub(ctx, device.XPubRequest{Path: hdpath.MustParse("m/84'/0'/0'")})
	if err != nil || x != "xpub6CatWdiZiodmUeTDp8LT5or8nmbKNcuyvz7WyksVFkKB4RHwCD3XyuvPEbvqAQY3rAPshWcMLoP2fMFMKHPJ4ZeZXYVUhLv1VMrjPC7PW6V" {
		t.Errorf("xpub %s, %v", x, err)
	}
	tp, err := d.XPub(ctx, device.XPubRequest{Path: hdpath.MustParse("m/84'/1'/0'"), Network: &chaincfg.TestNet3Params})
	if err != nil || tp != "tpubDC8msFGeGuwnKG9Upg7DM2b4DaRqg3CUZa5g8v2SRQ6K4NSkxUgd7HsL2XVWbVm39yBA4LAxysQAm397zwQSQoQgewGiYZqrA9DsP4zbQ1M" {
		t.Errorf("tpub %s, %v", tp, err)
	}
	reg, err := d.Address(ctx, device.AddressRequest{Chain: device.ChainBTC, Path: hdpath.MustParse("m/84'/1'/0'/0/0"), Script: device.ScriptWPKH, Network: &chaincfg.RegressionNetParams})
	if err != nil || reg != "bcrt1q6rz28mcfaxtmd6v789l9rrlrusdprr9pv3ncjj" && !strings.HasPrefix(reg, "bcrt1q") {
		t.Errorf("regtest address %s, %v", reg, err)
	}
	eth, err := d.Address(ctx, device.AddressRequest{Chain: device.ChainETH, Path: hdpath.MustParse("m/44'/60'/0'/0/0"), Display: true})
	if err != nil || eth != "0x9858EfFD232B4033E47d90003D41EC34EcaEda94" {
		t.Errorf("eth address %s, %v", eth, err)
	}
}

func TestWrongAppAndLocked(t *testing.T) {
	emu := newEmu(t, ledgeremu.Config{App: ledgeremu.AppEthereum})
	d := pipeDriver(t, emu, ledger.Options{})
	ctx := t.Context()
	_, err := d.Fingerprint(ctx)
	if !errors.Is(err, device.ErrWrongApp) || !strings.Contains(err.Error(), "open the Bitcoin app") {
		t.Errorf("bitcoin request on the ethereum app: %v", err)
	}
	_, err = d.XPub(ctx, device.XPubRequest{Path: hdpath.MustParse("m/84'/1'/0'"), Network: &chaincfg.TestNet3Params})
	if !errors.Is(err, device.ErrWrongApp) || !strings.Contains(err.Error(), "open the Bitcoin Test app") {
		t.Errorf("testnet request on the ethereum app: %v", err)
	}
	emu.SetLocked(true)
	_, err = d.Address(ctx, device.AddressRequest{Chain: device.ChainETH, Path: hdpath.MustParse("m/44'/60'/0'/0/0")})
	var de *device.Error
	if !errors.Is(err, device.ErrLocked) || !errors.As(err, &de) || de.Code != 0x5515 {
		t.Errorf("locked: %v", err)
	}
	emu.SetLocked(false)
	if _, err := d.Address(ctx, device.AddressRequest{Chain: device.ChainETH, Path: hdpath.MustParse("m/44'/60'/0'/0/0")}); err != nil {
		t.Errorf("after unlock: %v", err)
	}
}

func TestBlindSigningOff(t *testing.T) {
	emu := newEmu(t, ledgeremu.Config{App: ledgeremu.AppEthereum})
	d := pipeDriver(t, emu, ledger.Options{})
	to := common.HexToAddress("0x1d1c328764a41bda0492b66baa30c4a339ff85ef")
	tx := types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(1), GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2), Gas: 60000, To: &to, Data: []byte{0xa9, 0x05, 0x9c, 0xbb, 0, 1}})
	_, err := d.SignEthTx(t.Context(), hdpath.MustParse("m/44'/60'/0'/0/0"), tx, big.NewInt(1))
	if !errors.Is(err, ledger.ErrBlindSigningDisabled) || !strings.Contains(err.Error(), `enable "Blind signing"`) {
		t.Errorf("calldata without blind signing: %v", err)
	}
	// A plain transfer needs no blind signing.
	plain := types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(1), GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2), Gas: 21000, To: &to, Value: big.NewInt(1)})
	if _, err := d.SignEthTx(t.Context(), hdpath.MustParse("m/44'/60'/0'/0/0"), plain, big.NewInt(1)); err != nil {
		t.Errorf("plain transfer: %v", err)
	}
}

func TestTypedHash(t *testing.T) {
	emu := newEmu(t, ledgeremu.Config{App: ledgeremu.AppEthereum, BlindSigning: true})
	d := pipeDriver(t, emu, ledger.Options{})
	var dom [32]byte
	copy(dom[:], crypto.Keccak256([]byte("domain")))
	msg := crypto.Keccak256([]byte("message"))
	sig, err := d.SignTypedHash(t.Context(), hdpath.MustParse("m/44'/60'/0'/0/0"), dom, msg)
	if err != nil {
		t.Fatal(err)
	}
	rsv := append([]byte{}, sig...)
	rsv[64] -= 27
	pub, err := crypto.SigToPub(device.TypedDataDigest(dom, msg), rsv)
	if err != nil || crypto.PubkeyToAddress(*pub).Hex() != devicetest.VectorETHAddr {
		t.Errorf("signer %v", err)
	}
}

// TestMultisig2of3 registers a 2-of-3 wsh(sortedmulti) policy with one key of the device
// and two foreign cosigners, signs, and checks that the registration is reused.
func TestMultisig2of3(t *testing.T) {
	emu := newEmu(t, ledgeremu.Config{App: ledgeremu.AppBitcoinTest})
	d := pipeDriver(t, emu, ledger.Options{})
	ctx := t.Context()
	net := &chaincfg.TestNet3Params
	p, cosigners := multisigPSBT(t, ctx, d, net)
	if err := d.SignPSBT(ctx, p, net); err != nil {
		t.Fatal(err)
	}
	if n := len(p.Inputs[0].PartialSigs); n != 1 {
		t.Fatalf("%d partial signatures, want 1", n)
	}
	// The second signature from a cosigner key, then finalize and run the script.
	signWith(t, p, cosigners[0])
	if _, err := devicetest.FinalizeAndExecute(p); err != nil {
		t.Fatal(err)
	}
	regs := 0
	for _, e := range emu.Approver().Transcript() {
		if strings.Contains(strings.ToLower(e.Screen.Title), "register") {
			regs++
		}
	}
	// A second PSBT of the same wallet signs without a new registration.
	p2, _ := multisigPSBT(t, ctx, d, net)
	if err := d.SignPSBT(ctx, p2, net); err != nil {
		t.Fatal(err)
	}
	regs2 := 0
	for _, e := range emu.Approver().Transcript() {
		if strings.Contains(strings.ToLower(e.Screen.Title), "register") {
			regs2++
		}
	}
	if regs != 1 || regs2 != 1 {
		t.Errorf("registrations on screen: %d then %d, want 1 and 1", regs, regs2)
	}
	ws := d.Wallets()
	if len(ws) != 1 || ws[0].Policy.Template != "wsh(sortedmulti(2,@0/**,@1/**,@2/**))" || ws[0].Policy.Name != "2-of-3 multisig" {
		t.Fatalf("registered wallets %+v", ws)
	}
	// A new driver given the registration signs without asking the user again.
	d2 := pipeDriver(t, emu, ledger.Options{Wallets: ws})
	p3, _ := multisigPSBT(t, ctx, d2, net)
	if err := d2.SignPSBT(ctx, p3, net); err != nil {
		t.Fatal(err)
	}
	if n := countTitles(emu, "register"); n != 1 {
		t.Errorf("%d registrations after reuse, want 1", n)
	}
}

func countTitles(emu *ledgeremu.Device, word string) int {
	n := 0
	for _, e := range emu.Approver().Transcript() {
		if strings.Contains(strings.ToLower(e.Screen.Title), word) {
			n++
		}
	}
	return n
}

// cosigner is a foreign multisig key holder.
type cosigner struct {
	fp   device.Fingerprint
	acct *hdkeychain.ExtendedKey // private, at m/48'/1'/0'/2'
	key  *btcec.PrivateKey       // at 0/0
}

var msPath = hdpath.MustParse("m/48'/1'/0'/2'")

func newCosigner(t *testing.T, seed byte, net *chaincfg.Params) cosigner {
	m, err := hdkeychain.NewMaster(bytes.Repeat([]byte{seed}, 32), net)
	if err != nil {
		t.Fatal(err)
	}
	mp, _ := m.ECPubKey()
	fp := device.Fingerprint(binary.BigEndian.Uint32(btcutil.Hash160(mp.SerializeCompressed())[:4]))
	k := m
	for _, s := range msPath {
		if k, err = k.Derive(s); err != nil {
			t.Fatal(err)
		}
	}
	c := k
	for _, s := range []uint32{0, 0} {
		if c, err = c.Derive(s); err != nil {
			t.Fatal(err)
		}
	}
	priv, err := c.ECPrivKey()
	if err != nil {
		t.Fatal(err)
	}
	return cosigner{fp: fp, acct: k, key: priv}
}

// msKey is one cosigner of a multisig PSBT: its master fingerprint, its account xpub at
// msPath, and whether the PSBT carries the xpub as PSBT_GLOBAL_XPUB.
type msKey struct {
	fp     device.Fingerprint
	acct   *hdkeychain.ExtendedKey
	global bool
}

// deviceMSKey is a device's cosigner key at msPath.
func deviceMSKey(t *testing.T, ctx context.Context, d device.Device, net *chaincfg.Params, global bool) msKey {
	t.Helper()
	fp, err := d.Fingerprint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	xs, err := d.XPub(ctx, device.XPubRequest{Path: msPath, Network: net})
	if err != nil {
		t.Fatal(err)
	}
	k, err := hdkeychain.NewKeyFromString(xs)
	if err != nil {
		t.Fatal(err)
	}
	return msKey{fp: fp, acct: k, global: global}
}

// multisigPSBT builds a PSBT spending a 2-of-3 p2wsh(sortedmulti) output of the device's
// msPath key and two software cosigners; only the cosigners' xpubs are global.
func multisigPSBT(t *testing.T, ctx context.Context, d *ledger.Driver, net *chaincfg.Params) (*psbt.Packet, []cosigner) {
	t.Helper()
	cos := []cosigner{newCosigner(t, 1, net), newCosigner(t, 2, net)}
	keys := []msKey{deviceMSKey(t, ctx, d, net, false)}
	for _, c := range cos {
		pub, _ := c.acct.Neuter()
		keys = append(keys, msKey{fp: c.fp, acct: pub, global: true})
	}
	return sortedMultiPSBT(t, net, 2, keys), cos
}

// sortedMultiPSBT builds a PSBT spending one p2wsh(sortedmulti(m, keys at 0/0)) output.
func sortedMultiPSBT(t *testing.T, net *chaincfg.Params, m int, cosigners []msKey) *psbt.Packet {
	t.Helper()
	type k struct {
		pub []byte
		fp  device.Fingerprint
	}
	var keys []k
	for _, c := range cosigners {
		ck, err := c.acct.Derive(0)
		if err == nil {
			ck, err = ck.Derive(0)
		}
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := ck.ECPubKey()
		keys = append(keys, k{pub.SerializeCompressed(), c.fp})
	}
	slices.SortFunc(keys, func(a, b k) int { return bytes.Compare(a.pub, b.pub) })
	b := txscript.NewScriptBuilder().AddInt64(int64(m))
	for _, kk := range keys {
		b.AddData(kk.pub)
	}
	ws, err := b.AddInt64(int64(len(keys))).AddOp(txscript.OP_CHECKMULTISIG).Script()
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(ws)
	spk, _ := txscript.NewScriptBuilder().AddOp(txscript.OP_0).AddData(h[:]).Script()
	funding := wire.NewMsgTx(2)
	seed := chainhash.HashH([]byte("ledger multisig funding"))
	funding.AddTxIn(wire.NewTxIn(wire.NewOutPoint(&seed, 0), nil, nil))
	funding.AddTxOut(wire.NewTxOut(500_000, spk))
	id := funding.TxHash()
	spend := wire.NewMsgTx(2)
	spend.AddTxIn(&wire.TxIn{PreviousOutPoint: *wire.NewOutPoint(&id, 0), Sequence: wire.MaxTxInSequenceNum - 2})
	spend.AddTxOut(wire.NewTxOut(490_000, devicetest.ExternalScript()))
	p, err := psbt.NewFromUnsignedTx(spend)
	if err != nil {
		t.Fatal(err)
	}
	in := &p.Inputs[0]
	in.NonWitnessUtxo, in.WitnessUtxo, in.WitnessScript = funding, funding.TxOut[0], ws
	for _, kk := range keys {
		in.Bip32Derivation = append(in.Bip32Derivation, &psbt.Bip32Derivation{PubKey: kk.pub, MasterKeyFingerprint: kk.fp.PSBT(), Bip32Path: msPath.Child(0, 0)})
	}
	for _, c := range cosigners {
		if !c.global {
			continue
		}
		payload, ver, err := base58.CheckDecode(c.acct.String())
		if err != nil {
			t.Fatal(err)
		}
		val := binary.BigEndian.AppendUint32(nil, uint32(c.fp))
		for _, s := range msPath {
			val = binary.LittleEndian.AppendUint32(val, s)
		}
		p.Unknowns = append(p.Unknowns, &psbt.Unknown{Key: append([]byte{0x01, ver}, payload...), Value: val})
	}
	return p
}

// signWith adds c's signature to input 0 of a p2wsh PSBT.
func signWith(t *testing.T, p *psbt.Packet, c cosigner) {
	t.Helper()
	in := &p.Inputs[0]
	fetch := txscript.NewCannedPrevOutputFetcher(in.WitnessUtxo.PkScript, in.WitnessUtxo.Value)
	hashes := txscript.NewTxSigHashes(p.UnsignedTx, fetch)
	sig, err := txscript.RawTxInWitnessSignature(p.UnsignedTx, hashes, 0, in.WitnessUtxo.Value, in.WitnessScript, txscript.SigHashAll, c.key)
	if err != nil {
		t.Fatal(err)
	}
	in.PartialSigs = append(in.PartialSigs, &psbt.PartialSig{PubKey: c.key.PubKey().SerializeCompressed(), Signature: sig})
}

// TestFaults: a dropped reply, a corrupted reply and a disconnect in the middle of
// SIGN_PSBT each fail the call with a clear error, and the next call succeeds on a
// reopened link.
func TestFaults(t *testing.T) {
	emu := newEmu(t, ledgeremu.Config{})
	reopen := func(context.Context) (transport.APDUExchanger, error) {
		return transport.NewSpeculosExchanger(emu.Pipe()), nil
	}
	d := pipeDriver(t, emu, ledger.Options{Reopen: reopen})
	ctx := t.Context()
	spend := func() *psbt.Packet {
		return devicetest.NewSpend(t, ctx, d, &chaincfg.MainNetParams, []device.ScriptType{device.ScriptWPKH, device.ScriptWPKH}, devicetest.SpendOptions{})
	}
	p := spend()
	tests := []struct {
		name  string
		arm   func()
		short bool
		want  error
	}{
		{"drop", func() { emu.Faults().DropNext(1) }, false, device.ErrLinkLost},
		{"drop-caller-deadline-first", func() { emu.Faults().DropNext(1) }, true, context.DeadlineExceeded},
		{"corrupt", func() { emu.Faults().CorruptNext(1) }, false, device.ErrProtocol},
		{"disconnect-mid-sign-psbt", func() { emu.Faults().DisconnectAt(40) }, false, device.ErrDisconnected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.arm()
			cctx := ctx
			if tt.short {
				var cancel context.CancelFunc
				cctx, cancel = context.WithTimeout(ctx, 500*time.Millisecond)
				defer cancel()
			}
			work := clonePSBT(t, p)
			err := d.SignPSBT(cctx, work, &chaincfg.MainNetParams)
			if err == nil {
				t.Fatal("signed through the fault")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err %v, want %v", err, tt.want)
			}
			t.Logf("fault gives: %v", err)
			emu.Faults().Clear()
			work = clonePSBT(t, p)
			if err := d.SignPSBT(ctx, work, &chaincfg.MainNetParams); err != nil {
				t.Fatalf("next call: %v", err)
			}
			if _, err := devicetest.FinalizeAndExecute(work); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func clonePSBT(t testing.TB, p *psbt.Packet) *psbt.Packet {
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

// TestPolicyChoice: inputs of several default policies are signed one policy at a time;
// an input whose keys belong to two accounts, and a non-standard path, are refused before
// the device is asked.
func TestPolicyChoice(t *testing.T) {
	emu := newEmu(t, ledgeremu.Config{})
	d := pipeDriver(t, emu, ledger.Options{})
	ctx := t.Context()
	net := &chaincfg.MainNetParams
	p := devicetest.NewSpend(t, ctx, d, net, []device.ScriptType{device.ScriptWPKH, device.ScriptTR, device.ScriptWPKH}, devicetest.SpendOptions{})
	if err := d.SignPSBT(ctx, p, net); err != nil {
		t.Fatal(err)
	}
	if _, err := devicetest.FinalizeAndExecute(p); err != nil {
		t.Fatal(err)
	}
	mixed := devicetest.NewSpend(t, ctx, d, net, []device.ScriptType{device.ScriptWPKH}, devicetest.SpendOptions{})
	der := *mixed.Inputs[0].Bip32Derivation[0]
	der.Bip32Path = hdpath.MustParse("m/84'/0'/1'/0/0")
	der.PubKey = append([]byte{}, der.PubKey...)
	der.PubKey[1] ^= 1
	mixed.Inputs[0].Bip32Derivation = append(mixed.Inputs[0].Bip32Derivation, &der)
	err := d.SignPSBT(ctx, mixed, net)
	if !errors.Is(err, device.ErrInvalidInput) || !strings.Contains(err.Error(), "mixes keys of accounts m/84'/0'/0' and m/84'/0'/1'") {
		t.Errorf("mixed accounts in one input: %v", err)
	}
	odd := devicetest.NewSpend(t, ctx, d, net, []device.ScriptType{device.ScriptWPKH}, devicetest.SpendOptions{})
	odd.Inputs[0].Bip32Derivation[0].Bip32Path = hdpath.MustParse("m/84'/0'/0'/7/0")
	if err := d.SignPSBT(ctx, odd, net); !errors.Is(err, device.ErrInvalidInput) || !strings.Contains(err.Error(), "not a standard") {
		t.Errorf("non-standard path: %v", err)
	}
}
