package trezor_test

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/devicetest"
	"github.com/hwbridge/hwbridge/device/trezor"
	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/transport"
)

// BenchmarkPing is one full message exchange (Ping → Success) with the in-process
// emulator: framing, protobuf, the pipe and the emulator's own handling. Warm: the session
// is open (one Ping before timing).
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

// countingLink counts the 64-byte packets the host writes.
type countingLink struct {
	transport.Link
	writes atomic.Int64
}

func (c *countingLink) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Link.Write(p)
}

// BenchmarkSignPSBT100 signs a 100-input p2wpkh PSBT (2 outputs, previous transactions
// included) on the in-process emulator; the figure includes the emulator's signing. The
// shape of the previous transactions decides the cost, so it is in the name:
//   - prevtx=shared-100-outputs: every input spends an output of one 100-output funding
//     transaction, which the device asks for in full once per input (the worst case:
//     about 10.6k messages).
//   - prevtx=own-1-output: each input spends its own one-input, one-output transaction
//     (a wallet's usual shape).
//
// driver: the driver alone; verified: behind device.Verify (signature checks). The session
// is set up while building the PSBT (warm); each op signs a fresh copy of the PSBT.
// host-packets/op counts the 64-byte packets the host wrote.
func BenchmarkSignPSBT100(b *testing.B) {
	for _, shape := range []struct {
		name string
		own  bool
	}{{"prevtx=shared-100-outputs", false}, {"prevtx=own-1-output", true}} {
		for _, bc := range []struct {
			name   string
			verify bool
		}{{"driver", false}, {"verified", true}} {
			b.Run(fmt.Sprintf("inputs=100/wpkh/%s/%s", shape.name, bc.name), func(b *testing.B) {
				emu := newEmu(b, emulator.PolicyAuto)
				link := &countingLink{Link: emu.Pipe()}
				var d device.Device = trezor.New(link, trezor.Options{})
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
				if err := devicetest.NewSpend(b, ctx, d, &chaincfg.MainNetParams, inputs, devicetest.SpendOptions{OwnFunding: shape.own}).Serialize(&raw); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				link.writes.Store(0)
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
				b.StopTimer()
				b.ReportMetric(float64(link.writes.Load())/float64(b.N), "host-packets/op")
			})
		}
	}
}
