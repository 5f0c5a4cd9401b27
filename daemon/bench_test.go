package daemon

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/trezor"
	"github.com/hwbridge/hwbridge/emulator"
	trezoremu "github.com/hwbridge/hwbridge/emulator/trezor"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// measure runs b.N calls spread over conc workers and reports the median and p99 latency.
func measure(b *testing.B, conc int, call func() error) {
	b.Helper()
	lat := make([]time.Duration, 0, b.N)
	var mu sync.Mutex
	next := make(chan struct{}, b.N)
	for range b.N {
		next <- struct{}{}
	}
	close(next)
	b.ResetTimer()
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for range next {
				t0 := time.Now()
				if err := call(); err != nil {
					b.Error(err)
					return
				}
				d := time.Since(t0)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) == 0 {
		return
	}
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkAddressLatency compares one device exchange (a BTC address from the emulated
// Trezor over its in-process pipe) made directly with the driver and made through the
// daemon's socket (client MAC, JSON-RPC, auth check, hub queue, audit record), with 1 and
// 50 concurrent callers. The difference of the medians is the daemon's added latency.
func BenchmarkAddressLatency(b *testing.B) {
	req := device.AddressRequest{Chain: device.ChainBTC, Path: hdpath.MustParse("m/84'/0'/0'/0/0"), Script: device.ScriptWPKH}
	for _, conc := range []int{1, 50} {
		b.Run("direct/"+strconv.Itoa(conc), func(b *testing.B) {
			emu, err := trezoremu.New(trezoremu.Options{Approver: emulator.NewApprover(emulator.PolicyAuto)})
			if err != nil {
				b.Fatal(err)
			}
			defer emu.Close()
			d := device.Verify(trezor.New(emu.Pipe(), trezor.Options{Emulator: true}))
			defer d.Close()
			ctx := context.Background()
			measure(b, conc, func() error { _, err := d.Address(ctx, req); return err })
		})
		b.Run("daemon/"+strconv.Itoa(conc), func(b *testing.B) {
			td := startDaemon(b)
			c := td.admin(b)
			ctx := context.Background()
			p := AddressParams{Chain: "btc", Path: "m/84'/0'/0'/0/0"}
			measure(b, conc, func() error { return c.Call(ctx, "v1Address", p, nil) })
		})
	}
}
