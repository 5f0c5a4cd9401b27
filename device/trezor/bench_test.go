package trezor_test

import (
	"bytes"
	"testing"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/devicetest"
	"github.com/hwbridge/hwbridge/device/trezor"
	"github.com/hwbridge/hwbridge/emulator"
)

// BenchmarkPing is one full message exchange (Ping → Success) with the in-process
// emulator: framing, protobuf, the pipe and the emulator's own handling.
func BenchmarkPing(b *testing.B) {
	emu := newEmu(b, emulator.PolicyAuto)
	d := trezor.New(emu.Pipe(), trezor.Options{})
	defer d.Close()
	ctx := b.Context()
	if err := d.Ping(ctx, "warm up"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := d.Ping(ctx, "hwbridge"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignPSBT100 signs a 100-input p2wpkh PSBT (with every previous transaction
// streamed) on the in-process emulator; the figure includes the emulator's signing.
func BenchmarkSignPSBT100(b *testing.B) {
	for _, bc := range []struct {
		name   string
		verify bool
	}{{"driver", false}, {"verified", true}} {
		b.Run(bc.name, func(b *testing.B) {
			emu := newEmu(b, emulator.PolicyAuto)
			var d device.Device = trezor.New(emu.Pipe(), trezor.Options{})
			if bc.verify {
				d = device.Verify(d)
			}
			defer d.Close()
			ctx := b.Context()
			inputs := make([]device.ScriptType, 100)
			for i := range inputs {
				inputs[i] = device.ScriptWPKH
			}
			var raw bytes.Buffer
			if err := devicetest.NewSpend(b, ctx, d, &chaincfg.MainNetParams, inputs, devicetest.SpendOptions{}).Serialize(&raw); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				p, err := psbt.NewFromRawBytes(bytes.NewReader(raw.Bytes()), false)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := d.SignPSBT(ctx, p, &chaincfg.MainNetParams); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
