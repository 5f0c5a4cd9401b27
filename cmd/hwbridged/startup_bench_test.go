package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hwbridge/hwbridge/daemon"
	"github.com/hwbridge/hwbridge/daemon/audit"
	"github.com/hwbridge/hwbridge/internal/benchenv"
)

// lineWatch is a process's stderr that signals when a line containing want was written.
type lineWatch struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
	once sync.Once
}

func (w *lineWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func (w *lineWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// rssMiB reads a process's resident set from /proc (Linux).
func rssMiB(b *testing.B, pid int) float64 {
	b.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatalf("memory is read from /proc (Linux): %v", err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb float64
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kb)
			return kb / 1024
		}
	}
	b.Fatal("no VmRSS in /proc status")
	return 0
}

// BenchmarkStartup restarts the hwbridged binary on a data directory whose audit log holds 0
// or 1M records (written by audit.Fill, then closed cleanly: the state after a year of use;
// one untimed start first creates the rest of the data directory) and measures, per start: the time from exec to the "hwbridged listening" log line
// (start-ms, p50/p99 over the runs), the resident memory at that moment (rss-MiB) and after
// a further second idle, serving one emulator endpoint and polling USB (idle-rss-MiB). The
// data directory is on TMPDIR, whose filesystem is in the name; the page cache is warm
// (the log was just written), so this is a warm start.
func BenchmarkStartup(b *testing.B) {
	fs := benchenv.Report(b, "hwbridged exec → listening, one emulator endpoint, warm page cache")
	bin, err := buildOnce()
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []uint64{0, 1_000_000} {
		b.Run(fmt.Sprintf("fs=%s/records=%d", fs, n), func(b *testing.B) {
			dir := b.TempDir()
			dataDir := filepath.Join(dir, "data")
			if err := os.MkdirAll(dataDir, 0o700); err != nil {
				b.Fatal(err)
			}
			if err := audit.Fill(filepath.Join(dataDir, daemon.AuditFile), n, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), func(i uint64) audit.Entry {
				return audit.Entry{App: "wallet", Method: "v1Address", Device: "udp:127.0.0.1:21324",
					Summary: fmt.Sprintf("btc address m/84'/0'/0'/0/%d wpkh", i%1000), Result: "ok"}
			}); err != nil {
				b.Fatal(err)
			}
			// start runs hwbridged until it logs "listening" and returns the time that took and
			// the running command.
			start := func() (time.Duration, *exec.Cmd, *lineWatch) {
				w := &lineWatch{want: "hwbridged listening", seen: make(chan struct{})}
				cmd := exec.Command(filepath.Join(bin, "hwbridged"), "--socket", filepath.Join(dir, "d.sock"), "--data-dir", dataDir,
					"--emulator", "udp:127.0.0.1:1", "--poll", "200ms")
				cmd.Stderr = w
				t0 := time.Now()
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				select {
				case <-w.seen:
				case <-time.After(2 * time.Minute):
					cmd.Process.Kill()
					cmd.Wait()
					b.Fatalf("hwbridged did not listen within 2 minutes:\n%s", w.String())
				}
				return time.Since(t0), cmd, w
			}
			stop := func(cmd *exec.Cmd, w *lineWatch) {
				cmd.Process.Signal(syscall.SIGTERM)
				if err := cmd.Wait(); err != nil {
					b.Fatalf("hwbridged exit: %v\n%s", err, w.String())
				}
			}
			// One start before timing creates the journal, app store and CLI key: the timed
			// starts are restarts of a used data directory, as after a reboot.
			_, cmd, w := start()
			stop(cmd, w)
			var starts []time.Duration
			var rss, idle float64
			b.ResetTimer()
			for i := range b.N {
				d, cmd, w := start()
				starts = append(starts, d)
				rss = max(rss, rssMiB(b, cmd.Process.Pid))
				if i == b.N-1 {
					b.StopTimer()
					time.Sleep(time.Second)
					idle = rssMiB(b, cmd.Process.Pid)
				}
				stop(cmd, w)
			}
			slices.Sort(starts)
			b.ReportMetric(float64(starts[len(starts)/2].Microseconds())/1e3, "start-p50-ms")
			b.ReportMetric(float64(starts[len(starts)*99/100].Microseconds())/1e3, "start-p99-ms")
			b.ReportMetric(rss, "rss-MiB")
			b.ReportMetric(idle, "idle-rss-MiB")
		})
	}
}
