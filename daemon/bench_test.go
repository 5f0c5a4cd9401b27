package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/trezor"
	"github.com/hwbridge/hwbridge/emulator"
	trezoremu "github.com/hwbridge/hwbridge/emulator/trezor"
	"github.com/hwbridge/hwbridge/internal/benchenv"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/internal/trezorpb"
	"github.com/hwbridge/hwbridge/transport"
)

// measure runs b.N calls spread over conc workers; worker w calls call(w). It reports the
// median and p99 of the per-call latency (ns/op is the inverse of throughput, not latency).
func measure(b *testing.B, conc int, call func(worker int) error) {
	b.Helper()
	b.ResetTimer()
	lat := collect(b, conc, b.N, call)
	b.StopTimer()
	b.ReportMetric(pct(lat, 50), "p50-µs")
	b.ReportMetric(pct(lat, 99), "p99-µs")
}

// collect makes n calls spread over conc workers and returns their latencies, sorted.
func collect(b *testing.B, conc, n int, call func(worker int) error) []time.Duration {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range conc {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				t0 := time.Now()
				if err := call(w); err != nil {
					b.Error(err)
					return
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	slices.Sort(lat)
	return lat
}

// pct is the p-th percentile of sorted latencies, in µs.
func pct(lat []time.Duration, p int) float64 {
	return float64(lat[len(lat)*p/100].Nanoseconds()) / 1e3
}

// measureAdded runs b.N calls directly and b.N calls through the daemon, in alternating
// rounds of addedRound calls each (so that both see the same load on a shared machine),
// and reports both distributions and their difference: added-p99-µs is the p99 through the
// daemon minus the p99 of the same calls made directly on the same devices at the same
// concurrency — the latency the daemon adds "above the device's own time".
func measureAdded(b *testing.B, conc int, direct, daemon func(worker int) error) {
	b.Helper()
	var dl, ml []time.Duration
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(addedRound, b.N-done)
		if n < conc {
			n = min(conc, b.N-done) // every worker gets a call when there are enough
		}
		dl = append(dl, collect(b, conc, n, direct)...)
		ml = append(ml, collect(b, conc, n, daemon)...)
		done += n
	}
	b.StopTimer()
	slices.Sort(dl)
	slices.Sort(ml)
	b.ReportMetric(pct(dl, 50), "direct-p50-µs")
	b.ReportMetric(pct(dl, 99), "direct-p99-µs")
	b.ReportMetric(pct(ml, 50), "daemon-p50-µs")
	b.ReportMetric(pct(ml, 99), "daemon-p99-µs")
	b.ReportMetric(pct(ml, 50)-pct(dl, 50), "added-p50-µs")
	b.ReportMetric(pct(ml, 99)-pct(dl, 99), "added-p99-µs")
}

// addedRound is the number of calls of one side in a round of measureAdded: large enough
// that 50 workers reach a steady state, small enough (≈0.1–0.5 s) that load drift on a
// shared machine hits both sides alike.
const addedRound = 1000

// benchEmus starts n Trezor-class emulators (auto-approve) named udp:127.0.0.1:21324+i;
// their links are in-process pipes.
func benchEmus(b *testing.B, n int) ([]string, map[string]*trezoremu.Device) {
	emus := map[string]*trezoremu.Device{}
	var paths []string
	for i := range n {
		emu, err := trezoremu.New(trezoremu.Options{Approver: emulator.NewApprover(emulator.PolicyAuto)})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { emu.Close() })
		p := fmt.Sprintf("udp:127.0.0.1:%d", 21324+i)
		paths = append(paths, p)
		emus[p] = emu
	}
	return paths, emus
}

// benchDaemon serves the emulators through a hub and a daemon whose data directory (audit
// log included) is under TMPDIR.
func benchDaemon(b *testing.B, paths []string, emus map[string]*trezoremu.Device) *Client {
	hub := device.NewHub(device.HubConfig{
		Drivers: map[string]device.Driver{transport.KindTrezor: func(link transport.Link, c device.DriverConfig) (device.Device, error) {
			return device.Verify(trezor.New(link, trezor.Options{Emulator: c.Emulator, OnButton: func(trezorpb.ButtonRequestType) { c.Prompt() }})), nil
		}},
		Emulators: paths,
		Open:      func(ctx context.Context, path string) (transport.Link, error) { return emus[path].Pipe(), nil },
	})
	dir := shortTempDir(b)
	td := &testDaemon{socket: filepath.Join(dir, "s.sock"), dataDir: filepath.Join(dir, "data"), done: make(chan error, 1)}
	var err error
	if td.d, err = Open(Config{Socket: td.socket, DataDir: td.dataDir, Hub: hub}); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go hub.Run(ctx)
	go func() { td.done <- td.d.Serve(ctx) }()
	b.Cleanup(func() { cancel(); <-td.done; td.d.Close() })
	c := td.admin(b)
	for range 400 { // until the socket answers and the hub has opened every device
		var ds []device.Info
		if err := c.Call(ctx, "v1Devices", nil, &ds); err == nil && len(ds) == len(paths) {
			return c
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.Fatal("the daemon did not serve every emulator within 2 s")
	return nil
}

// BenchmarkDaemonLatency compares a call made directly with the driver and the same call
// made through the daemon's socket (client MAC, JSON-RPC, auth check, hub queue, audit
// record), with 1 and 50 concurrent clients (each with its own connection) spread over 1 or
// 2 devices (clients take the devices in turn). Shapes:
//   - read=v1Address: a BTC address (m/84'/0'/0'/0/0, wpkh), no display. Its audit record
//     is lazy (durable within audit.DefaultLazyDelay).
//   - sign=v1SignMessage: a BIP-137 message signature (12 bytes, auto-approved). Its audit
//     record is durable before the call returns (an fsync, shared with concurrent calls).
//
// The devices are in-process Trezor-class emulators over pipes (warm: each device is open
// and its session set up before timing); the daemon's data directory is on TMPDIR, whose
// filesystem is in the name. Each shape runs three ways:
//   - direct: the calls made on the drivers; the device's own time (emulator, link, driver,
//     signature checks);
//   - daemon: the same calls through the daemon;
//   - added: both, in alternating rounds of addedRound calls within one run, reporting
//     added-p50-µs and added-p99-µs = daemon minus direct. This is what "latency above the
//     device's own time" means here: both sides share the machine's load at the same moment
//     (direct and daemon sub-benchmarks a minute apart on a shared machine do not), and both
//     include the emulators' CPU, which runs in this process as a device's would not. ns/op
//     of added counts both calls.
func BenchmarkDaemonLatency(b *testing.B) {
	fs := benchenv.Report(b, "emulated Trezor-class devices over in-process pipes, warm")
	// The GC setting hwbridged runs with (GCPercent), unless GOGC is set for the run.
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(GCPercent))
	}
	path := hdpath.MustParse("m/84'/0'/0'/0/0")
	shapes := []struct {
		name   string
		direct func(ctx context.Context, d device.Device) error
		method string
		params func(dev string) any
	}{
		{"read=v1Address", func(ctx context.Context, d device.Device) error {
			_, err := d.Address(ctx, device.AddressRequest{Chain: device.ChainBTC, Path: path, Script: device.ScriptWPKH})
			return err
		}, "v1Address", func(dev string) any { return AddressParams{Device: dev, Chain: "btc", Path: path.String()} }},
		{"sign=v1SignMessage", func(ctx context.Context, d device.Device) error {
			_, err := d.SignMessage(ctx, device.MessageRequest{Chain: device.ChainBTC, Path: path, Message: []byte("hwbridge 42"),
				Script: device.ScriptWPKH, Network: &chaincfg.MainNetParams})
			return err
		}, "v1SignMessage", func(dev string) any {
			return SignMessageParams{Device: dev, Chain: "btc", Path: path.String(), Message: "hwbridge 42"}
		}},
	}
	for _, sh := range shapes {
		for _, ndev := range []int{1, 2} {
			for _, conc := range []int{1, 50} {
				name := fmt.Sprintf("%s/devices=%d/clients=%d", sh.name, ndev, conc)
				// direct makes the calls on Verify-wrapped drivers, one exchange per device at
				// a time as the hub does.
				direct := func(b *testing.B) func(w int) error {
					paths, emus := benchEmus(b, ndev)
					var devs []device.Device
					var mus []*sync.Mutex
					for _, p := range paths {
						d := device.Verify(trezor.New(emus[p].Pipe(), trezor.Options{Emulator: true}))
						b.Cleanup(func() { d.Close() })
						devs = append(devs, d)
						mus = append(mus, &sync.Mutex{})
					}
					ctx := context.Background()
					for _, d := range devs {
						if err := sh.direct(ctx, d); err != nil { // open the session
							b.Fatal(err)
						}
					}
					return func(w int) error {
						mus[w%ndev].Lock()
						defer mus[w%ndev].Unlock()
						return sh.direct(ctx, devs[w%ndev])
					}
				}
				// daemon makes the calls through a daemon's socket on emulators of its own;
				// each client has its own connection, as separate apps would.
				daemon := func(b *testing.B) func(w int) error {
					paths, emus := benchEmus(b, ndev)
					c := benchDaemon(b, paths, emus)
					ctx := context.Background()
					for _, p := range paths {
						if err := c.Call(ctx, sh.method, sh.params(p), nil); err != nil { // open the session
							b.Fatal(err)
						}
					}
					clients := make([]*Client, conc)
					for i := range clients {
						clients[i] = &Client{Socket: c.Socket, Key: c.Key}
						b.Cleanup(clients[i].Close)
						if err := clients[i].Call(ctx, "v1Devices", nil, nil); err != nil {
							b.Fatal(err)
						}
					}
					return func(w int) error { return clients[w].Call(ctx, sh.method, sh.params(paths[w%ndev]), nil) }
				}
				b.Run(name+"/direct", func(b *testing.B) { measure(b, conc, direct(b)) })
				b.Run(name+"/daemon/fs="+fs, func(b *testing.B) { measure(b, conc, daemon(b)) })
				b.Run(name+"/added/fs="+fs, func(b *testing.B) { measureAdded(b, conc, direct(b), daemon(b)) })
			}
		}
	}
}
