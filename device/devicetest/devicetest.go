// Package devicetest is the conformance suite every device.Device runs (STYLE rule 10): a
// driver paired with an emulator, a real device, or the daemon's client. The device must
// hold the standard test mnemonic (Mnemonic) with no passphrase and approve every request,
// unless the scenario says otherwise. Differences between devices are declared in
// Capabilities, never by asking which family a device is.
//
// # Errors
//
// The suite expects errors.Is to hold for the device sentinels: device.ErrUserRejected when
// the user declines, device.ErrInvalidInput for requests refused before signing.
package devicetest

import (
	"bytes"
	"context"
	"errors"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// Group names the app (network) a scenario needs, so that a device that runs one app and
// cannot switch (a Ledger app on Speculos: no dashboard, QUIT_APP ends it) runs what it
// can.
type Group string

// Scenario groups.
const (
	GroupBitcoin     Group = "bitcoin"      // mainnet keys, addresses, PSBTs, messages
	GroupBitcoinTest Group = "bitcoin-test" // testnet and regtest (a Ledger's "Bitcoin Test" app)
	GroupEthereum    Group = "ethereum"
)

// Capabilities declare what the device under test does, so that the suite runs the
// scenarios that apply.
type Capabilities struct {
	// Groups are the scenario groups to run; nil runs all (the device switches apps or
	// needs none).
	Groups     []Group
	Taproot    bool // p2tr addresses, xpubs and key-path spends
	EIP1559    bool // dynamic-fee Ethereum transactions
	EIP712Hash bool // SignTypedHash
	EIP712     bool // device.SignTypedData: whole EIP-712 documents (streamed or hashed)
	Multisig   bool // p2wsh and p2sh-p2wsh sortedmulti inputs and change
	// RefusesMalformedERC20: the device refuses call data that starts with the ERC-20
	// transfer selector but is not a valid transfer (device.ErrInvalidInput), as the Ledger
	// Ethereum app does even with blind signing on; otherwise it signs such data as any.
	RefusesMalformedERC20 bool
	// NoAccessList: the device signs EIP-1559 transactions only with an empty access list
	// (KeepKey); the eip1559 case runs without one, and one with an access list must be
	// refused with errors.ErrUnsupported.
	NoAccessList bool
	// NeedsNonWitnessUTXO: the device refuses segwit v0 inputs without the full previous
	// transaction (device.ErrInvalidInput), as current Trezor firmware does.
	NeedsNonWitnessUTXO bool
	// NoPKH: the device has no p2pkh (legacy) accounts (BitBox02): p2pkh addresses,
	// messages and inputs fail with errors.ErrUnsupported, and the PSBT scenarios leave
	// p2pkh out.
	NoPKH bool
	// NoContractCreation: the device signs no contract creation (BitBox02: the recipient
	// is always 20 bytes): that case expects errors.ErrUnsupported.
	NoContractCreation bool
	// OpenRejecting opens the same device set to decline every confirmation; nil leaves out
	// the rejection scenarios.
	OpenRejecting func(t *testing.T) device.Device
}

func (c Capabilities) has(g Group) bool { return c.Groups == nil || slices.Contains(c.Groups, g) }

// btcNet is the network the single-network Bitcoin scenarios use: mainnet when its group
// runs, else testnet.
func (c Capabilities) btcNet() *chaincfg.Params {
	if c.has(GroupBitcoin) {
		return &chaincfg.MainNetParams
	}
	return &chaincfg.TestNet3Params
}

// timeout bounds every scenario.
const timeout = 2 * time.Minute

// ctxFor bounds a scenario. The suite stands for a person who asks for each operation,
// so its calls may switch apps (device.WithAppSwitch) where the device allows it.
func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(device.WithAppSwitch(t.Context()), timeout)
	t.Cleanup(cancel)
	return ctx
}

// Run runs every scenario that caps allows against devices from open (called once per
// scenario; the device is closed afterwards).
func Run(t *testing.T, open func(t *testing.T) device.Device, caps Capabilities) {
	dev := func(t *testing.T) device.Device {
		d := open(t)
		t.Cleanup(func() { _ = d.Close() })
		return d
	}
	btc := caps.has(GroupBitcoin) || caps.has(GroupBitcoinTest)
	t.Run("Features", func(t *testing.T) { testFeatures(t, dev(t), caps) })
	if btc {
		t.Run("Fingerprint", func(t *testing.T) { testFingerprint(t, dev(t)) })
		t.Run("XPub", func(t *testing.T) { testXPub(t, dev(t), caps) })
	}
	t.Run("Address", func(t *testing.T) { testAddress(t, dev(t), caps) })
	if btc {
		t.Run("SignPSBT", func(t *testing.T) { testSignPSBT(t, dev(t), caps) })
	}
	t.Run("SignMessage", func(t *testing.T) { testSignMessage(t, dev(t), caps) })
	if caps.has(GroupEthereum) {
		t.Run("SignEthTx", func(t *testing.T) { testSignEthTx(t, dev(t), caps) })
		if caps.EIP712Hash {
			t.Run("SignTypedHash", func(t *testing.T) { testSignTypedHash(t, dev(t)) })
		}
		if caps.EIP712 {
			t.Run("SignTypedData", func(t *testing.T) { testSignTypedData(t, dev(t)) })
		}
	}
	if btc {
		t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, dev(t), caps) })
	}
	if caps.OpenRejecting != nil && btc {
		t.Run("Reject", func(t *testing.T) {
			d := caps.OpenRejecting(t)
			t.Cleanup(func() { _ = d.Close() })
			testReject(t, d, caps)
		})
	}
}

func testFeatures(t *testing.T, d device.Device, caps Capabilities) {
	f, err := d.Features(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	if f.Family == "" || f.Version == "" {
		t.Errorf("features lack family or version: %+v", f)
	}
	if !f.Initialized {
		t.Errorf("device reports it is not initialized: %+v", f)
	}
	got := f.Capabilities
	if got.Taproot != caps.Taproot || got.EIP1559 != caps.EIP1559 || got.EIP712Hash != caps.EIP712Hash || got.EIP712 != caps.EIP712 {
		t.Errorf("device capabilities %+v disagree with the declared %+v", got, caps)
	}
}

func testFingerprint(t *testing.T, d device.Device) {
	fp, err := d.Fingerprint(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	if fp != VectorFingerprint {
		t.Errorf("fingerprint %s, want %s", fp, VectorFingerprint)
	}
}

func testXPub(t *testing.T, d device.Device, caps Capabilities) {
	ctx := ctxFor(t)
	x84, err := AsXPub(VectorZPub84)
	if err != nil {
		t.Fatal(err)
	}
	x49, err := AsXPub(VectorYPub49)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		want string
		need bool
	}{
		{"m/44'/0'/0'", VectorXPub44, true},
		{"m/49'/0'/0'", x49, true},
		{"m/84'/0'/0'", x84, true},
		{"m/86'/0'/0'", VectorXPub86, caps.Taproot},
	}
	for _, tt := range tests {
		if !tt.need || !caps.has(GroupBitcoin) {
			continue
		}
		got, err := d.XPub(ctx, device.XPubRequest{Path: hdpath.MustParse(tt.path)})
		if err != nil {
			t.Errorf("xpub %s: %v", tt.path, err)
			continue
		}
		if got != tt.want {
			t.Errorf("xpub %s = %s, want %s", tt.path, got, tt.want)
		}
	}
	if !caps.has(GroupBitcoinTest) {
		return
	}
	// Test networks get tpub version bytes; the key agrees with the mainnet one.
	tp, err := d.XPub(ctx, device.XPubRequest{Path: hdpath.MustParse("m/84'/1'/0'"), Network: &chaincfg.TestNet3Params})
	if err != nil {
		t.Fatalf("testnet xpub: %v", err)
	}
	if !strings.HasPrefix(tp, "tpub") {
		t.Errorf("testnet xpub %s does not start with tpub", tp)
	}
	if k, err := hdkeychain.NewKeyFromString(tp); err != nil || !k.IsForNet(&chaincfg.TestNet3Params) || k.Depth() != 3 {
		t.Errorf("testnet xpub %s does not parse as a depth-3 tpub: %v", tp, err)
	}
	if tp != VectorTPub84 {
		t.Errorf("testnet xpub m/84'/1'/0' = %s, want %s", tp, VectorTPub84)
	}
}

func testAddress(t *testing.T, d device.Device, caps Capabilities) {
	ctx := ctxFor(t)
	tests := []struct {
		st      device.ScriptType
		path    string
		want    string
		display bool
		need    bool
	}{
		{device.ScriptPKH, "m/44'/0'/0'/0/0", VectorAddr44, false, true},
		{device.ScriptSHWPKH, "m/49'/0'/0'/0/0", VectorAddr49, false, true},
		{device.ScriptWPKH, "m/84'/0'/0'/0/0", VectorAddr84, false, true},
		{device.ScriptWPKH, "m/84'/0'/0'/0/0", VectorAddr84, true, true},
		{device.ScriptTR, "m/86'/0'/0'/0/0", VectorAddr86, false, caps.Taproot},
		{device.ScriptTR, "m/86'/0'/0'/0/0", VectorAddr86, true, caps.Taproot},
	}
	for _, tt := range tests {
		if !tt.need || !caps.has(GroupBitcoin) {
			continue
		}
		if tt.st == device.ScriptPKH && caps.NoPKH {
			if _, err := d.Address(ctx, device.AddressRequest{Chain: device.ChainBTC, Path: hdpath.MustParse(tt.path), Script: tt.st}); !errors.Is(err, errors.ErrUnsupported) {
				t.Errorf("p2pkh address on a device without p2pkh: err %v, want errors.ErrUnsupported", err)
			}
			continue
		}
		got, err := d.Address(ctx, device.AddressRequest{Chain: device.ChainBTC, Path: hdpath.MustParse(tt.path), Script: tt.st, Display: tt.display})
		if err != nil {
			t.Errorf("address %s %s: %v", tt.st, tt.path, err)
			continue
		}
		if got != tt.want {
			t.Errorf("address %s %s = %s, want %s", tt.st, tt.path, got, tt.want)
		}
	}
	if !caps.Taproot && caps.has(GroupBitcoin) {
		_, err := d.Address(ctx, device.AddressRequest{Chain: device.ChainBTC, Path: hdpath.MustParse("m/86'/0'/0'/0/0"), Script: device.ScriptTR})
		if !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("taproot address on a device without taproot: err %v, want errors.ErrUnsupported", err)
		}
	}
	if caps.has(GroupBitcoinTest) {
		got, err := d.Address(ctx, device.AddressRequest{Chain: device.ChainBTC, Path: hdpath.MustParse("m/84'/1'/0'/0/0"), Script: device.ScriptWPKH, Network: &chaincfg.TestNet3Params, Display: true})
		if err != nil || got != VectorTestAddr84 {
			t.Errorf("testnet address on display = %s, %v; want %s", got, err, VectorTestAddr84)
		}
	}
	// Test networks: the address matches the key derived from the account tpub.
	for _, net := range []*chaincfg.Params{&chaincfg.TestNet3Params, &chaincfg.RegressionNetParams} {
		if !caps.has(GroupBitcoinTest) {
			break
		}
		k := deviceKey(t, ctx, d, device.ScriptWPKH, net, 0, 3)
		want, err := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(k.pub.SerializeCompressed()), net)
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.Address(ctx, device.AddressRequest{Chain: device.ChainBTC, Path: k.path, Script: device.ScriptWPKH, Network: net})
		if err != nil {
			t.Errorf("%s address: %v", net.Name, err)
		} else if got != want.EncodeAddress() {
			t.Errorf("%s address %s = %s, want %s", net.Name, k.path, got, want)
		}
	}
	if !caps.has(GroupEthereum) {
		return
	}
	eth, err := d.Address(ctx, device.AddressRequest{Chain: device.ChainETH, Path: hdpath.MustParse("m/44'/60'/0'/0/0")})
	if err != nil {
		t.Fatalf("eth address: %v", err)
	}
	if eth != VectorETHAddr {
		t.Errorf("eth address %s, want %s", eth, VectorETHAddr)
	}
}

func testSignPSBT(t *testing.T, d device.Device, caps Capabilities) {
	single := []device.ScriptType{device.ScriptPKH, device.ScriptSHWPKH, device.ScriptWPKH}
	if caps.NoPKH {
		single = single[1:]
	}
	if caps.Taproot {
		single = append(single, device.ScriptTR)
	}
	type psbtCase struct {
		name   string
		net    *chaincfg.Params
		inputs []device.ScriptType
		opts   SpendOptions
	}
	var cases []psbtCase
	for _, st := range single {
		if caps.has(GroupBitcoin) {
			cases = append(cases, psbtCase{name: string(st), net: &chaincfg.MainNetParams, inputs: []device.ScriptType{st, st}})
		}
	}
	if caps.has(GroupBitcoinTest) {
		cases = append(cases,
			psbtCase{name: "mixed-testnet", net: &chaincfg.TestNet3Params, inputs: single, opts: SpendOptions{Change: device.ScriptWPKH, OpReturn: []byte("hwbridge")}},
			psbtCase{name: "regtest", net: &chaincfg.RegressionNetParams, inputs: []device.ScriptType{device.ScriptWPKH}},
		)
	}
	if caps.Taproot && caps.has(GroupBitcoin) {
		cases = append(cases, psbtCase{name: "tr-only-without-prevtx", net: &chaincfg.MainNetParams,
			inputs: []device.ScriptType{device.ScriptTR}, opts: SpendOptions{OmitNonWitnessUTXO: true}})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxFor(t)
			p := NewSpend(t, ctx, d, tc.net, tc.inputs, tc.opts)
			if err := d.SignPSBT(ctx, p, tc.net); err != nil {
				t.Fatalf("sign: %v", err)
			}
			for i, st := range tc.inputs {
				in := p.Inputs[i]
				if st == device.ScriptTR && len(in.TaprootKeySpendSig) != 64 {
					t.Errorf("input %d: taproot signature of %d bytes", i, len(in.TaprootKeySpendSig))
				}
				if st != device.ScriptTR && len(in.PartialSigs) != 1 {
					t.Errorf("input %d: %d partial signatures, want 1", i, len(in.PartialSigs))
				}
			}
			if _, err := FinalizeAndExecute(p); err != nil {
				t.Fatal(err)
			}
		})
	}
	if caps.Multisig && caps.has(GroupBitcoinTest) {
		for _, kind := range []MultisigKind{MultisigWSH, MultisigSHWSH} {
			t.Run("multisig-"+string(kind), func(t *testing.T) {
				ctx := ctxFor(t)
				p := NewMultisigSpend(t, ctx, d, &chaincfg.TestNet3Params, kind)
				if err := d.SignPSBT(ctx, p, &chaincfg.TestNet3Params); err != nil {
					t.Fatalf("sign: %v", err)
				}
				if n := len(p.Inputs[0].PartialSigs); n != 2 {
					t.Fatalf("%d partial signatures, want 2 (one per key of the device)", n)
				}
				if _, err := FinalizeAndExecute(p); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
	t.Run("wrong-network", func(t *testing.T) {
		if !caps.has(GroupBitcoin) || !caps.has(GroupBitcoinTest) {
			return // the other network's app is not there to refuse it
		}
		ctx := ctxFor(t)
		p := NewSpend(t, ctx, d, &chaincfg.MainNetParams, []device.ScriptType{device.ScriptWPKH}, SpendOptions{})
		before := serialize(t, p)
		err := d.SignPSBT(ctx, p, &chaincfg.TestNet3Params)
		if !errors.Is(err, device.ErrInvalidInput) {
			t.Errorf("mainnet psbt signed for testnet: err %v, want device.ErrInvalidInput", err)
		}
		if !bytes.Equal(before, serialize(t, p)) {
			t.Error("a refused psbt was modified")
		}
	})
	if caps.NeedsNonWitnessUTXO {
		t.Run("segwit-without-prevtx", func(t *testing.T) {
			ctx := ctxFor(t)
			p := NewSpend(t, ctx, d, caps.btcNet(), []device.ScriptType{device.ScriptWPKH}, SpendOptions{OmitNonWitnessUTXO: true})
			err := d.SignPSBT(ctx, p, caps.btcNet())
			if !errors.Is(err, device.ErrInvalidInput) || !strings.Contains(err.Error(), "non_witness_utxo") {
				t.Errorf("err %v, want device.ErrInvalidInput naming non_witness_utxo", err)
			}
		})
	}
	t.Run("foreign-input", func(t *testing.T) {
		ctx := ctxFor(t)
		p := NewSpend(t, ctx, d, caps.btcNet(), []device.ScriptType{device.ScriptWPKH}, SpendOptions{})
		p.Inputs[0].Bip32Derivation[0].MasterKeyFingerprint ^= 0xffffffff
		before := serialize(t, p)
		if err := d.SignPSBT(ctx, p, caps.btcNet()); !errors.Is(err, device.ErrInvalidInput) {
			t.Errorf("psbt with no key of the device: err %v, want device.ErrInvalidInput", err)
		}
		if !bytes.Equal(before, serialize(t, p)) {
			t.Error("a refused psbt was modified")
		}
	})
}

func testSignMessage(t *testing.T, d device.Device, caps Capabilities) {
	ctx := ctxFor(t)
	msg := []byte("hwbridge devicetest: this message proves control of the address")
	for _, tt := range []struct {
		st   device.ScriptType
		path string
		addr string
		net  *chaincfg.Params
	}{
		{device.ScriptPKH, "m/44'/0'/0'/0/0", VectorAddr44, nil},
		{device.ScriptSHWPKH, "m/49'/0'/0'/0/0", VectorAddr49, nil},
		{device.ScriptWPKH, "m/84'/0'/0'/0/0", VectorAddr84, nil},
		{device.ScriptWPKH, "m/84'/1'/0'/0/0", VectorTestAddr84, &chaincfg.TestNet3Params},
	} {
		if tt.net == nil && !caps.has(GroupBitcoin) || tt.net != nil && !caps.has(GroupBitcoinTest) {
			continue
		}
		if tt.st == device.ScriptPKH && caps.NoPKH {
			if _, err := d.SignMessage(ctx, device.MessageRequest{Chain: device.ChainBTC, Path: hdpath.MustParse(tt.path), Message: msg, Script: tt.st}); !errors.Is(err, errors.ErrUnsupported) {
				t.Errorf("p2pkh message on a device without p2pkh: err %v, want errors.ErrUnsupported", err)
			}
			continue
		}
		sig, err := d.SignMessage(ctx, device.MessageRequest{Chain: device.ChainBTC, Path: hdpath.MustParse(tt.path), Message: msg, Script: tt.st, Network: tt.net})
		if err != nil {
			t.Errorf("btc %s: %v", tt.st, err)
			continue
		}
		if sig.Address != tt.addr {
			t.Errorf("btc %s: address %s, want %s", tt.st, sig.Address, tt.addr)
		}
		got, err := device.RecoverBitcoinMessage(msg, sig.Signature, tt.st, tt.net)
		if err != nil || got != tt.addr {
			t.Errorf("btc %s: signature recovers %s (%v), want %s", tt.st, got, err, tt.addr)
		}
	}
	if !caps.has(GroupEthereum) {
		return
	}
	sig, err := d.SignMessage(ctx, device.MessageRequest{Chain: device.ChainETH, Path: hdpath.MustParse("m/44'/60'/0'/0/0"), Message: msg})
	if err != nil {
		t.Fatalf("eth: %v", err)
	}
	if len(sig.Signature) != 65 || (sig.Signature[64] != 27 && sig.Signature[64] != 28) {
		t.Fatalf("eth signature %x: want 65 bytes ending in 27 or 28", sig.Signature)
	}
	rsv := append([]byte{}, sig.Signature...)
	rsv[64] -= 27
	pub, err := crypto.SigToPub(ethTextHash(msg), rsv)
	if err != nil || crypto.PubkeyToAddress(*pub).Hex() != VectorETHAddr {
		t.Errorf("eth signature does not recover %s (%v)", VectorETHAddr, err)
	}
}

func ethTextHash(msg []byte) []byte {
	return crypto.Keccak256([]byte("\x19Ethereum Signed Message:\n"+itoa(len(msg))), msg)
}

func itoa(n int) string { return strconv.Itoa(n) }

func testSignEthTx(t *testing.T, d device.Device, caps Capabilities) {
	path := hdpath.MustParse("m/44'/60'/0'/0/0")
	to := common.HexToAddress("0x1d1c328764a41bda0492b66baa30c4a339ff85ef")
	// 1500 bytes of call data: several APDUs or data requests. Its selector is no ERC-20
	// one: apps parse those (see the malformed-erc20 case).
	data := bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 375)
	type txCase struct {
		name    string
		chainID int64
		tx      *types.Transaction
		need    bool
	}
	cases := []txCase{
		{"legacy", 1, types.NewTx(&types.LegacyTx{Nonce: 0, GasPrice: big.NewInt(1_000_000_000), Gas: 21000, To: &to, Value: big.NewInt(10_000_000_000_000_000)}), true},
		{"legacy-data", 11155111, types.NewTx(&types.LegacyTx{Nonce: 7, GasPrice: big.NewInt(2_000_000_000), Gas: 100000, To: &to, Value: big.NewInt(0), Data: data}), true},
		{"legacy-big-chain", 3_000_000_000, types.NewTx(&types.LegacyTx{Nonce: 1, GasPrice: big.NewInt(1), Gas: 21000, To: &to, Value: big.NewInt(1)}), true},
		{"eip1559", 1, types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(1), Nonce: 3, GasTipCap: big.NewInt(1_500_000_000), GasFeeCap: big.NewInt(30_000_000_000), Gas: 60000, To: &to, Value: big.NewInt(12345), Data: data,
			AccessList: types.AccessList{{Address: to, StorageKeys: []common.Hash{common.HexToHash("0x01"), common.HexToHash("0x02")}}}}), caps.EIP1559},
		{"eip1559-create", 5, types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(5), Nonce: 0, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2), Gas: 500000, Value: big.NewInt(0), Data: data[:40]}), caps.EIP1559},
	}
	if caps.NoAccessList && caps.EIP1559 {
		t.Run("eip1559-access-list-refused", func(t *testing.T) {
			if _, err := d.SignEthTx(ctxFor(t), path, cases[3].tx, big.NewInt(1)); !errors.Is(err, errors.ErrUnsupported) {
				t.Errorf("eip-1559 with an access list on a device without them: err %v, want errors.ErrUnsupported", err)
			}
		})
		cases[3].tx = types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(1), Nonce: 3, GasTipCap: big.NewInt(1_500_000_000), GasFeeCap: big.NewInt(30_000_000_000), Gas: 60000, To: &to, Value: big.NewInt(12345), Data: data})
	}
	if caps.NoContractCreation && caps.EIP1559 {
		create := cases[4]
		t.Run(create.name+"-refused", func(t *testing.T) {
			if _, err := d.SignEthTx(ctxFor(t), path, create.tx, big.NewInt(create.chainID)); !errors.Is(err, errors.ErrUnsupported) {
				t.Errorf("contract creation on a device without it: err %v, want errors.ErrUnsupported", err)
			}
		})
		cases = cases[:4]
	}
	for _, tc := range cases {
		if !tc.need {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxFor(t)
			chainID := big.NewInt(tc.chainID)
			signed, err := d.SignEthTx(ctx, path, tc.tx, chainID)
			if err != nil {
				t.Fatalf("sign: %v", err)
			}
			signer := types.LatestSignerForChainID(chainID)
			from, err := types.Sender(signer, signed)
			if err != nil {
				t.Fatalf("sender: %v", err)
			}
			if from.Hex() != VectorETHAddr {
				t.Errorf("sender %s, want %s", from.Hex(), VectorETHAddr)
			}
			if signer.Hash(signed) != signer.Hash(tc.tx) {
				t.Error("the signed transaction differs from the one asked for")
			}
		})
	}
	t.Run("malformed-erc20", func(t *testing.T) {
		// Starts with transfer(address,uint256) but is 1500 bytes long, not 68.
		bad := bytes.Repeat([]byte{0xa9, 0x05, 0x9c, 0xbb}, 375)
		tx := types.NewTx(&types.LegacyTx{Nonce: 7, GasPrice: big.NewInt(2_000_000_000), Gas: 100000, To: &to, Value: big.NewInt(0), Data: bad})
		signed, err := d.SignEthTx(ctxFor(t), path, tx, big.NewInt(11155111))
		switch {
		case caps.RefusesMalformedERC20 && !errors.Is(err, device.ErrInvalidInput):
			t.Errorf("malformed erc-20 data: err %v, want device.ErrInvalidInput", err)
		case !caps.RefusesMalformedERC20 && err != nil:
			t.Errorf("malformed erc-20 data: %v", err)
		case !caps.RefusesMalformedERC20:
			if from, err := types.Sender(types.LatestSignerForChainID(big.NewInt(11155111)), signed); err != nil || from.Hex() != VectorETHAddr {
				t.Errorf("sender %s (%v), want %s", from.Hex(), err, VectorETHAddr)
			}
		}
	})
	if !caps.EIP1559 {
		tx := types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(1), GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2), Gas: 21000, To: &to, Value: big.NewInt(1)})
		if _, err := d.SignEthTx(ctxFor(t), path, tx, big.NewInt(1)); !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("eip-1559 on a device without it: err %v, want errors.ErrUnsupported", err)
		}
	}
}

func testSignTypedHash(t *testing.T, d device.Device) {
	ctx := ctxFor(t)
	path := hdpath.MustParse("m/44'/60'/0'/0/0")
	var domain [32]byte
	copy(domain[:], crypto.Keccak256([]byte("hwbridge devicetest domain")))
	msgHash := crypto.Keccak256([]byte("hwbridge devicetest message"))
	for _, mh := range [][]byte{msgHash, nil} {
		sig, err := d.SignTypedHash(ctx, path, domain, mh)
		if err != nil {
			t.Fatalf("message hash %x: %v", mh, err)
		}
		if len(sig) != 65 || (sig[64] != 27 && sig[64] != 28) {
			t.Fatalf("signature %x: want 65 bytes ending in 27 or 28", sig)
		}
		rsv := append([]byte{}, sig...)
		rsv[64] -= 27
		pub, err := crypto.SigToPub(device.TypedDataDigest(domain, mh), rsv)
		if err != nil || crypto.PubkeyToAddress(*pub).Hex() != VectorETHAddr {
			t.Errorf("message hash %x: signature does not recover %s (%v)", mh, VectorETHAddr, err)
		}
	}
}

// testConcurrent: callers on several goroutines are serialised by the device, not broken.
func testConcurrent(t *testing.T, d device.Device, caps Capabilities) {
	ctx := ctxFor(t)
	path, want := "m/84'/0'/0'/0/0", VectorAddr84
	if !caps.has(GroupBitcoin) {
		path, want = "m/84'/1'/0'/0/0", VectorTestAddr84
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			if i%2 == 0 {
				fp, err := d.Fingerprint(ctx)
				if err == nil && fp != VectorFingerprint {
					err = errors.New("wrong fingerprint " + fp.String())
				}
				errs <- err
				return
			}
			a, err := d.Address(ctx, device.AddressRequest{Chain: device.ChainBTC, Path: hdpath.MustParse(path), Script: device.ScriptWPKH, Network: caps.btcNet()})
			if err == nil && a != want {
				err = errors.New("wrong address " + a)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// testReject: every signing request the user declines fails with ErrUserRejected, leaves
// its input alone, and the device still answers afterwards.
func testReject(t *testing.T, d device.Device, caps Capabilities) {
	ctx := ctxFor(t)
	net := caps.btcNet()
	p := NewSpend(t, ctx, d, net, []device.ScriptType{device.ScriptWPKH}, SpendOptions{})
	before := serialize(t, p)
	if err := d.SignPSBT(ctx, p, net); !errors.Is(err, device.ErrUserRejected) {
		t.Errorf("sign psbt: err %v, want device.ErrUserRejected", err)
	}
	if !bytes.Equal(before, serialize(t, p)) {
		t.Error("a rejected psbt was modified")
	}
	acct := hdpath.Path{84 + hdpath.Hardened, net.HDCoinType + hdpath.Hardened, hdpath.Hardened, 0, 0}
	_, err := d.SignMessage(ctx, device.MessageRequest{Chain: device.ChainBTC, Path: acct, Script: device.ScriptWPKH, Message: []byte("no"), Network: net})
	if !errors.Is(err, device.ErrUserRejected) {
		t.Errorf("sign message: err %v, want device.ErrUserRejected", err)
	}
	to := common.HexToAddress("0x1d1c328764a41bda0492b66baa30c4a339ff85ef")
	tx := types.NewTx(&types.LegacyTx{GasPrice: big.NewInt(1), Gas: 21000, To: &to, Value: big.NewInt(1)})
	if caps.has(GroupEthereum) {
		if _, err := d.SignEthTx(ctx, hdpath.MustParse("m/44'/60'/0'/0/0"), tx, big.NewInt(1)); !errors.Is(err, device.ErrUserRejected) {
			t.Errorf("sign eth tx: err %v, want device.ErrUserRejected", err)
		}
	}
	if _, err := d.Address(ctx, device.AddressRequest{Chain: device.ChainBTC, Path: acct, Script: device.ScriptWPKH, Display: true, Network: net}); !errors.Is(err, device.ErrUserRejected) {
		t.Errorf("address on display: err %v, want device.ErrUserRejected", err)
	}
	fp, err := d.Fingerprint(ctx)
	if err != nil || fp != VectorFingerprint {
		t.Errorf("after rejections the device answers fingerprint %s, %v", fp, err)
	}
}
