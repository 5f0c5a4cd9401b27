package audit

import (
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hwbridge/hwbridge/internal/benchenv"
)

// benchEntry is a typical record: a signing call's summary (≈ 250-byte lines).
func benchEntry(i uint64) Entry {
	return Entry{App: "wallet", Method: "v1SignPsbt", Device: "udp:127.0.0.1:21324",
		Summary: fmt.Sprintf("psbt %d: 1 input, 2 outputs, fee 1410 sat, to bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", i), Result: "ok"}
}

// percentiles reports p50 and p99 of per-call latencies.
func percentiles(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	if len(lat) == 0 {
		return
	}
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
}

// BenchmarkAppend appends records from 1 and 50 concurrent callers to a fresh log in TMPDIR
// (its filesystem is in the name: fsync on a disk costs ~30× tmpfs). durable: Append, which
// returns once the record is fsync'ed (signing calls); lazy: AppendLazy, which returns once
// it is queued (read-only calls). p50/p99 are per call; ns/op is the inverse of throughput;
// fsyncs/record shows the batching.
func BenchmarkAppend(b *testing.B) {
	fs := benchenv.Report(b, "audit appends, ≈250-byte records, fresh log")
	for _, mode := range []string{"durable", "lazy"} {
		for _, clients := range []int{1, 50} {
			b.Run("fs="+fs+"/"+mode+"/clients="+strconv.Itoa(clients), func(b *testing.B) {
				benchAppend(b, mode == "durable", clients)
			})
		}
	}
}

func benchAppend(b *testing.B, durable bool, clients int) {
	l, err := Open(filepath.Join(b.TempDir(), "audit.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	add := l.AppendLazy
	if durable {
		add = func(e Entry) error { _, err := l.Append(e); return err }
	}
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				t0 := time.Now()
				if err := add(benchEntry(uint64(i))); err != nil {
					b.Error(err)
					return
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	percentiles(b, lat)
	b.ReportMetric(float64(l.syncs)/float64(b.N), "fsyncs/record")
}

// fillBench writes a log of n records into a fresh temporary directory (not timed).
func fillBench(b *testing.B, n uint64) string {
	b.Helper()
	b.StopTimer()
	defer b.StartTimer()
	path := filepath.Join(b.TempDir(), "audit.jsonl")
	if err := Fill(path, n, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), benchEntry); err != nil {
		b.Fatal(err)
	}
	return path
}

// peakHeap samples the Go heap in use every 5 ms until stop is called and returns the
// highest figure seen.
func peakHeap() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

// BenchmarkOpen opens a log of 1M records written cleanly (cold start of the daemon's
// audit: what it reads and checks before it can append); the page cache is warm from
// writing it. peak-heap-MiB is the highest Go heap in use seen while opening.
func BenchmarkOpen(b *testing.B) {
	fs := benchenv.Report(b, "Open of a cleanly closed log, ≈250-byte records, page cache warm")
	for _, n := range []uint64{1_000_000} {
		b.Run(fmt.Sprintf("fs=%s/records=%d", fs, n), func(b *testing.B) {
			path := fillBench(b, n)
			runtime.GC()
			var peak uint64
			for b.Loop() {
				stop := peakHeap()
				l, err := Open(path)
				if err != nil {
					b.Fatal(err)
				}
				peak = max(peak, stop())
				l.Close()
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		})
	}
}

// BenchmarkVerify checks the whole chain of a 1M-record log (hwbridge audit verify).
func BenchmarkVerify(b *testing.B) {
	fs := benchenv.Report(b, "Verify of a 1M-record log, ≈250-byte records, page cache warm")
	b.Run("fs="+fs+"/records=1000000", func(b *testing.B) {
		path := fillBench(b, 1_000_000)
		runtime.GC()
		var peak uint64
		for b.Loop() {
			stop := peakHeap()
			s, err := Verify(path)
			if err != nil || s.Records != 1_000_000 {
				b.Fatal(s, err)
			}
			peak = max(peak, stop())
		}
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	})
}
