package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hwbridge/hwbridge/daemon/keys"
	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/emulator"
)

// rawConn is a JSON-RPC connection to the daemon without the rpc package: it writes bytes as
// given and reads answer lines.
type rawConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, socket string) *rawConn {
	t.Helper()
	c, err := net.Dial("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, r: bufio.NewReaderSize(c, 1<<20)}
}

func (rc *rawConn) write(s string) {
	rc.t.Helper()
	if _, err := io.WriteString(rc.c, s); err != nil {
		rc.t.Fatal(err)
	}
}

// line reads one answer line (10 s at most); io.EOF once the daemon closed the connection.
func (rc *rawConn) line() (string, error) {
	rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	s, err := rc.r.ReadString('\n')
	if err != nil && s == "" {
		return "", err
	}
	return s, nil
}

// signed is a signed JSON-RPC request for method with params.
func signed(t *testing.T, key string, id int, method string, params any) string {
	t.Helper()
	raw, err := json.Marshal(params)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := keys.Sign(key, Namespace+"_"+method, raw, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": Namespace + "_" + method, "params": []any{auth, json.RawMessage(raw)}})
	return string(req) + "\n"
}

func (td *testDaemon) adminKey(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join(td.dataDir, CLIKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestRequestCapPerRequest: the cap bounds one request, whatever the daemon writes on the
// connection meanwhile (before, every answer or notification reset the count, so a peer
// could stream an unbounded line), and many requests under the cap pass on one connection.
func TestRequestCapPerRequest(t *testing.T) {
	const max = 64 << 10
	td := startDaemon(t, func(c *Config) { c.MaxRequest = max })
	rc := dialRaw(t, td.socket)

	// Requests of 40 KiB each, 160 KiB in all, on one connection.
	pad := strings.Repeat("x", 40<<10)
	for i := range 4 {
		rc.write(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"hwbridge_version","params":[],"pad":"%s"}`+"\n", i, pad))
		if l, err := rc.line(); err != nil || !strings.Contains(l, `"apis":["v1"]`) {
			t.Fatalf("request %d under the cap: %q %v", i, l, err)
		}
	}

	// A request that waits for the person; while it waits, the peer starts a large value;
	// the daemon answers the first request in the middle of it.
	td.approver.SetPolicy(emulator.PolicyPrompt)
	rc.write(signed(t, td.adminKey(t), 10, "v1SignMessage", SignMessageParams{Chain: "eth", Path: "m/44'/60'/0'/0/0", Message: "cap"}))
	for i := 0; ; i++ {
		if _, ok := td.approver.Pending(); ok {
			break
		}
		if i > 2000 {
			t.Fatal("no confirmation screen")
		}
		time.Sleep(5 * time.Millisecond)
	}
	half := strings.Repeat("1,", 20<<10) // 40 KiB
	rc.write("[" + half)
	if err := td.approver.Press(true); err != nil {
		t.Fatal(err)
	}
	if l, err := rc.line(); err != nil || !strings.Contains(l, `"id":10`) || !strings.Contains(l, `"result"`) {
		t.Fatalf("answer while a large request streams: %q %v", l, err)
	}
	// The rest of the large value: 80 KiB in all, above the cap although an answer was
	// written in between. The write may fail once the daemon has closed the connection.
	io.WriteString(rc.c, half)
	l, err := rc.line()
	if err != nil || !strings.Contains(l, "larger than 65536 bytes") {
		t.Fatalf("over the cap: %q %v", l, err)
	}
	if l, err := rc.line(); !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isConnReset(err) {
		t.Fatalf("connection still open after the refusal: %q %v", l, err)
	}
}

func isConnReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// TestIdleUnauthenticated: a connection that never authenticates is closed once idle; one
// that authenticated stays open however long it idles.
func TestIdleUnauthenticated(t *testing.T) {
	const idle = 200 * time.Millisecond
	td := startDaemon(t, func(c *Config) { c.UnauthIdle = idle })

	silent := dialRaw(t, td.socket)
	start := time.Now()
	if l, err := silent.line(); !errors.Is(err, io.EOF) {
		t.Fatalf("silent connection: %q %v", l, err)
	}
	t.Logf("silent unauthenticated connection closed after %v", time.Since(start).Round(time.Millisecond))

	// Asking the version does not authenticate.
	ver := dialRaw(t, td.socket)
	ver.write(`{"jsonrpc":"2.0","id":1,"method":"hwbridge_version","params":[]}` + "\n")
	if l, err := ver.line(); err != nil || !strings.Contains(l, "apis") {
		t.Fatalf("version: %q %v", l, err)
	}
	if l, err := ver.line(); !errors.Is(err, io.EOF) {
		t.Fatalf("unauthenticated connection after version: %q %v", l, err)
	}

	// A signed request does, on the same connection.
	auth := dialRaw(t, td.socket)
	key := td.adminKey(t)
	auth.write(signed(t, key, 1, "v1Devices", struct{}{}))
	if l, err := auth.line(); err != nil || !strings.Contains(l, `"result"`) {
		t.Fatalf("devices: %q %v", l, err)
	}
	time.Sleep(5 * idle)
	auth.write(signed(t, key, 2, "v1Devices", struct{}{}))
	if l, err := auth.line(); err != nil || !strings.Contains(l, `"id":2`) {
		t.Fatalf("authenticated connection after %v idle: %q %v", 5*idle, l, err)
	}
}

// TestConnectionCap: connections above the cap are answered with an error and closed; a
// freed slot serves the next one.
func TestConnectionCap(t *testing.T) {
	const max = 4
	td := startDaemon(t, func(c *Config) { c.MaxConns = max })
	var held []*rawConn
	for i := range max {
		rc := dialRaw(t, td.socket)
		rc.write(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"hwbridge_version","params":[]}`+"\n", i))
		if l, err := rc.line(); err != nil || !strings.Contains(l, "apis") {
			t.Fatalf("connection %d: %q %v", i, l, err)
		}
		held = append(held, rc)
	}
	over := dialRaw(t, td.socket)
	if l, err := over.line(); err != nil || !strings.Contains(l, fmt.Sprintf("at most %d connections", max)) {
		t.Fatalf("connection %d: %q %v", max+1, l, err)
	}
	held[0].c.Close()
	for i := 0; ; i++ {
		rc := dialRaw(t, td.socket)
		io.WriteString(rc.c, `{"jsonrpc":"2.0","id":9,"method":"hwbridge_version","params":[]}`+"\n") // refused: broken pipe
		l, err := rc.line()
		if err == nil && strings.Contains(l, "apis") {
			break
		}
		if i > 100 {
			t.Fatalf("no slot after one closed: %q %v", l, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRotateOverlapBound: an overlap above 30 days is refused through the API (999999999 s
// kept an old key until 2058); 30 days is taken.
func TestRotateOverlapBound(t *testing.T) {
	td := startDaemon(t)
	app := td.pairApp(t, "rot", keys.ScopeRead)
	ctx := context.Background()
	for _, s := range []int64{999999999, int64(keys.MaxRotateOverlap/time.Second) + 1, 1 << 62} {
		err := app.Call(ctx, "v1RotateKey", map[string]int64{"overlap_seconds": s}, nil)
		if !errors.Is(err, device.ErrInvalidInput) {
			t.Errorf("overlap %d s: %v", s, err)
		}
	}
	var res RotateResult
	if err := app.Call(ctx, "v1RotateKey", map[string]int64{"overlap_seconds": int64(keys.MaxRotateOverlap / time.Second)}, &res); err != nil {
		t.Fatal(err)
	}
	if d := time.Until(res.OldExpires); d < keys.MaxRotateOverlap-time.Minute || d > keys.MaxRotateOverlap {
		t.Fatalf("old key expires in %v", d)
	}
}

// TestClientGoneCancels: a client that goes away while its request waits for the person
// cancels the request: the screen is taken down and the device serves the next caller.
func TestClientGoneCancels(t *testing.T) {
	td := startDaemon(t)
	td.approver.SetPolicy(emulator.PolicyPrompt)
	rc := dialRaw(t, td.socket)
	rc.write(signed(t, td.adminKey(t), 1, "v1SignMessage", SignMessageParams{Chain: "eth", Path: "m/44'/60'/0'/0/0", Message: "gone"}))
	for i := 0; ; i++ {
		if _, ok := td.approver.Pending(); ok {
			break
		}
		if i > 2000 {
			t.Fatal("no confirmation screen")
		}
		time.Sleep(5 * time.Millisecond)
	}
	rc.c.Close()
	start := time.Now()
	for i := 0; ; i++ {
		if _, ok := td.approver.Pending(); !ok {
			break
		}
		if i > 2000 {
			t.Fatal("the screen stayed up after its client went away")
		}
		time.Sleep(5 * time.Millisecond)
	}
	td.approver.SetPolicy(emulator.PolicyAuto)
	var sig device.MessageSignature
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := td.admin(t).Call(ctx, "v1SignMessage", SignMessageParams{Chain: "eth", Path: "m/44'/60'/0'/0/0", Message: "next"}, &sig); err != nil {
		t.Fatalf("next caller: %v", err)
	}
	t.Logf("screen down %v after the client left; next call served", time.Since(start).Round(time.Millisecond))
}

// TestClientRedialsAfterIdleClose: the Go client survives the daemon closing its idle
// unauthenticated connection (go-ethereum's client re-dials on the next call).
func TestClientRedialsAfterIdleClose(t *testing.T) {
	const idle = 200 * time.Millisecond
	td := startDaemon(t, func(c *Config) { c.UnauthIdle = idle })
	c := &Client{Socket: td.socket}
	t.Cleanup(c.Close)
	ctx := context.Background()
	if _, err := c.Version(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * idle)
	if _, err := c.Version(ctx); err != nil {
		t.Fatalf("after the idle close: %v", err)
	}
	c.Key = td.adminKey(t)
	if err := c.Call(ctx, "v1Devices", nil, nil); err != nil {
		t.Fatalf("a signed call after the idle close: %v", err)
	}
}

// TestOtherStateSeesSegments: right after the audit log seals a segment the active file can
// be empty; the sealed segment and the audit head still count as state beside the journal.
func TestOtherStateSeesSegments(t *testing.T) {
	for _, tt := range []struct {
		name  string
		files map[string]string
		want  bool
	}{
		{"empty data dir", nil, false},
		{"empty audit log only", map[string]string{AuditFile: ""}, false},
		{"audit records", map[string]string{AuditFile: "{}\n"}, true},
		{"sealed segment, empty active file", map[string]string{AuditFile: "", AuditFile + ".00000000000000000001": "{}\n"}, true},
		{"audit head", map[string]string{AuditFile + ".head": "{}"}, true},
		{"paired apps", map[string]string{AppsFile: "{}"}, true},
	} {
		dir := t.TempDir()
		for name, body := range tt.files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if got := OtherState(dir)(); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
