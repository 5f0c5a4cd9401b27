package keepkey_test

import (
	"context"
	"errors"
	"math/big"
	"testing"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/devicetest"
	"github.com/hwbridge/hwbridge/device/keepkey"
	"github.com/hwbridge/hwbridge/emulator"
	keepkeyemu "github.com/hwbridge/hwbridge/emulator/keepkey"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/transport"
)

// KeepKey has no regtest coin, so the conformance suite runs its mainnet and Ethereum
// groups; the testnet scenarios that KeepKey can do run in TestTestnet.
var caps = devicetest.Capabilities{
	Groups:       []devicetest.Group{devicetest.GroupBitcoin, devicetest.GroupEthereum},
	EIP1559:      true,
	EIP712Hash:   true,
	EIP712:       true,
	NoAccessList: true,
}

func newEmu(t *testing.T, policy emulator.Policy) *keepkeyemu.Device {
	t.Helper()
	return keepkeyemu.NewForTest(t, keepkeyemu.Options{Approver: emulator.NewApprover(policy)})
}

func openPipe(t *testing.T, policy emulator.Policy) device.Device {
	return device.Verify(keepkey.New(newEmu(t, policy).Pipe(), keepkey.Options{Emulator: true}))
}

func openUDP(t *testing.T, policy emulator.Policy) device.Device {
	t.Helper()
	emu := newEmu(t, policy)
	srv, err := emu.ListenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	link, err := transport.DialUDP(t.Context(), srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return device.Verify(keepkey.New(link, keepkey.Options{Emulator: true}))
}

func withReject(open func(*testing.T, emulator.Policy) device.Device) devicetest.Capabilities {
	c := caps
	c.OpenRejecting = func(t *testing.T) device.Device { return open(t, emulator.PolicyReject) }
	return c
}

func TestConformancePipe(t *testing.T) {
	devicetest.Run(t, func(t *testing.T) device.Device { return openPipe(t, emulator.PolicyAuto) }, withReject(openPipe))
}

func TestConformanceUDP(t *testing.T) {
	devicetest.Run(t, func(t *testing.T) device.Device { return openUDP(t, emulator.PolicyAuto) }, withReject(openUDP))
}

// TestTestnet: testnet keys, addresses and a mixed p2pkh + p2sh-p2wpkh + p2wpkh spend
// with change (KeepKey's "Testnet" coin).
func TestTestnet(t *testing.T) {
	d := openPipe(t, emulator.PolicyAuto)
	ctx := t.Context()
	net := &chaincfg.TestNet3Params
	got, err := d.Address(ctx, device.AddressRequest{Chain: device.ChainBTC, Path: hdpath.MustParse("m/84'/1'/0'/0/0"), Script: device.ScriptWPKH, Network: net})
	if err != nil || got != devicetest.VectorTestAddr84 {
		t.Fatalf("testnet address %s, %v; want %s", got, err, devicetest.VectorTestAddr84)
	}
	p := devicetest.NewSpend(t, ctx, d, net, []device.ScriptType{device.ScriptPKH, device.ScriptSHWPKH, device.ScriptWPKH}, devicetest.SpendOptions{Change: device.ScriptWPKH})
	if err := d.SignPSBT(ctx, p, net); err != nil {
		t.Fatal(err)
	}
	if _, err := devicetest.FinalizeAndExecute(p); err != nil {
		t.Fatal(err)
	}
}

// TestRefusals: what KeepKey lacks fails with errors.ErrUnsupported before the device is
// asked, and the session stays usable.
func TestRefusals(t *testing.T) {
	d := openPipe(t, emulator.PolicyAuto)
	ctx := t.Context()
	to := common.HexToAddress("0x1d1c328764a41bda0492b66baa30c4a339ff85ef")
	path := hdpath.MustParse("m/44'/60'/0'/0/0")
	for name, call := range map[string]func() error{
		"taproot address": func() error {
			_, err := d.Address(ctx, device.AddressRequest{Chain: device.ChainBTC, Path: hdpath.MustParse("m/86'/0'/0'/0/0"), Script: device.ScriptTR})
			return err
		},
		"taproot message": func() error {
			_, err := d.SignMessage(ctx, device.MessageRequest{Chain: device.ChainBTC, Path: hdpath.MustParse("m/86'/0'/0'/0/0"), Script: device.ScriptTR, Message: []byte("x")})
			return err
		},
		"regtest": func() error {
			_, err := d.Address(ctx, device.AddressRequest{Chain: device.ChainBTC, Path: hdpath.MustParse("m/84'/1'/0'/0/0"), Script: device.ScriptWPKH, Network: &chaincfg.RegressionNetParams})
			return err
		},
		"eip1559 chain over 255": func() error {
			tx := types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(11155111), GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2), Gas: 21000, To: &to, Value: big.NewInt(1)})
			_, err := d.SignEthTx(ctx, path, tx, big.NewInt(11155111))
			return err
		},
		"eip2930": func() error {
			tx := types.NewTx(&types.AccessListTx{ChainID: big.NewInt(1), GasPrice: big.NewInt(1), Gas: 21000, To: &to, Value: big.NewInt(1)})
			_, err := d.SignEthTx(ctx, path, tx, big.NewInt(1))
			return err
		},
		"taproot spend": func() error {
			p := devicetest.NewSpend(t, ctx, d, &chaincfg.MainNetParams, []device.ScriptType{device.ScriptWPKH}, devicetest.SpendOptions{})
			p.Inputs[0].WitnessUtxo.PkScript = append([]byte{0x51, 0x20}, make([]byte, 32)...)
			p.Inputs[0].NonWitnessUtxo = nil
			return d.SignPSBT(ctx, p, &chaincfg.MainNetParams)
		},
	} {
		if err := call(); !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("%s: err %v, want errors.ErrUnsupported", name, err)
		}
	}
	if fp, err := d.Fingerprint(ctx); err != nil || fp != devicetest.VectorFingerprint {
		t.Fatalf("after refusals: fingerprint %s, %v", fp, err)
	}
}
