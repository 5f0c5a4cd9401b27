package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/rpc"

	"github.com/hwbridge/hwbridge/daemon/audit"
	"github.com/hwbridge/hwbridge/daemon/keys"
	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/trezor"
	"github.com/hwbridge/hwbridge/emulator"
	trezoremu "github.com/hwbridge/hwbridge/emulator/trezor"
	"github.com/hwbridge/hwbridge/internal/trezorpb"
	"github.com/hwbridge/hwbridge/transport"
)

const emuPath = "udp:127.0.0.1:21324" // named only; the link is an in-process pipe

// testDaemon is a daemon on a temporary socket, with a Trezor emulator behind the hub.
type testDaemon struct {
	d        *Daemon
	emu      *trezoremu.Device
	approver *emulator.Approver
	socket   string
	dataDir  string
	cancel   context.CancelFunc
	done     chan error
}

func shortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hwbd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func startDaemon(t testing.TB, opts ...func(*Config)) *testDaemon {
	t.Helper()
	approver := emulator.NewApprover(emulator.PolicyAuto)
	emu, err := trezoremu.New(trezoremu.Options{Approver: approver})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	hub := device.NewHub(device.HubConfig{
		Drivers: map[string]device.Driver{transport.KindTrezor: func(link transport.Link, c device.DriverConfig) (device.Device, error) {
			return device.Verify(trezor.New(link, trezor.Options{Emulator: c.Emulator, OnButton: func(trezorpb.ButtonRequestType) { c.Prompt() }})), nil
		}},
		Emulators: []string{emuPath},
		Open:      func(ctx context.Context, path string) (transport.Link, error) { return emu.Pipe(), nil },
	})
	dir := shortTempDir(t)
	td := &testDaemon{emu: emu, approver: approver, socket: filepath.Join(dir, "s.sock"), dataDir: filepath.Join(dir, "data"), done: make(chan error, 1)}
	cfg := Config{Socket: td.socket, DataDir: td.dataDir, Hub: hub, ExtAPISocket: filepath.Join(dir, "ext.sock"), ExtAPIApp: "geth"}
	for _, o := range opts {
		o(&cfg)
	}
	td.d, err = Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	td.cancel = cancel
	go hub.Run(ctx)
	go func() { td.done <- td.d.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-td.done; err != nil {
			t.Error(err)
		}
		td.d.Close()
	})
	// The socket file appears at bind, a moment before listen: wait for a dial to succeed.
	for range 400 {
		if c, err := net.Dial("unix", td.socket); err == nil {
			c.Close()
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	return td
}

func (td *testDaemon) admin(t testing.TB) *Client {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(td.dataDir, CLIKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{Socket: td.socket, Key: strings.TrimSpace(string(b))}
	t.Cleanup(c.Close)
	return c
}

// pairApp pairs an app and approves it with scopes.
func (td *testDaemon) pairApp(t *testing.T, name string, scopes ...keys.Scope) *Client {
	t.Helper()
	app := &Client{Socket: td.socket}
	t.Cleanup(app.Close)
	admin := td.admin(t)
	errc := make(chan error, 1)
	go func() {
		_, err := app.Pair(context.Background(), keys.PairRequest{Name: name, Scopes: scopes})
		errc <- err
	}()
	ctx := context.Background()
	var id string
	for id == "" {
		var apps []keys.App
		if err := admin.Call(ctx, "v1AppsList", nil, &apps); err != nil {
			t.Fatal(err)
		}
		for _, a := range apps {
			if a.Name == name && a.Status == keys.StatusPending {
				id = a.ID
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := admin.Call(ctx, "v1AppsApprove", AppParams{ID: id}, nil); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return app
}

func TestRouteTable(t *testing.T) {
	authT := reflect.TypeFor[keys.Auth]()
	methods := map[string]bool{}
	at := reflect.TypeFor[*API]()
	for i := range at.NumMethod() {
		m := at.Method(i)
		name := strings.ToLower(m.Name[:1]) + m.Name[1:]
		authed := m.Type.NumIn() >= 3 && m.Type.In(2) == authT
		_, routed := routes[name]
		if authed != routed {
			t.Errorf("method %s: takes auth %v, has a route %v", name, authed, routed)
		}
		methods[name] = true
	}
	for name := range routes {
		if !methods[name] {
			t.Errorf("route %s has no method", name)
		}
	}
}

func TestAuthScopesReplayRotation(t *testing.T) {
	td := startDaemon(t)
	ctx := context.Background()

	// Unpaired: a made-up key is refused.
	stranger := &Client{Socket: td.socket, Key: "hwbk1.0123456789.1.AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"}
	defer stranger.Close()
	if err := stranger.Call(ctx, "v1Devices", nil, nil); !errors.Is(err, keys.ErrUnknownApp) {
		t.Fatalf("unpaired: %v", err)
	}

	reader := td.pairApp(t, "reader", keys.ScopeRead)
	var devs []device.Info
	if err := reader.Call(ctx, "v1Devices", nil, &devs); err != nil || len(devs) != 1 || devs[0].Path != emuPath {
		t.Fatalf("devices: %+v %v", devs, err)
	}
	var addr AddressResult
	if err := reader.Call(ctx, "v1Address", AddressParams{Chain: "btc", Path: "m/84'/0'/0'/0/0"}, &addr); err != nil {
		t.Fatal(err)
	}
	if addr.Address != "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu" {
		t.Fatalf("address %s", addr.Address)
	}
	err := reader.Call(ctx, "v1SignMessage", SignMessageParams{Chain: "eth", Path: "m/44'/60'/0'/0/0", Message: "hi"}, nil)
	var re *RemoteError
	if !errors.Is(err, keys.ErrScope) || !errors.As(err, &re) || re.Code != CodeForbidden {
		t.Fatalf("read key signing: %v", err)
	}

	// A replayed request (same auth object) and a stale one are refused.
	rc, err := rpc.DialIPC(ctx, td.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	raw := json.RawMessage(`{}`)
	auth, _ := keys.Sign(reader.Key, "hwbridge_v1Devices", raw, time.Now())
	if err := rc.CallContext(ctx, nil, "hwbridge_v1Devices", auth, raw); err != nil {
		t.Fatal(err)
	}
	if err := FromClientError(rc.CallContext(ctx, nil, "hwbridge_v1Devices", auth, raw)); !errors.Is(err, keys.ErrReplay) {
		t.Fatalf("replay: %v", err)
	}
	old, _ := keys.Sign(reader.Key, "hwbridge_v1Devices", raw, time.Now().Add(-2*time.Minute))
	if err := FromClientError(rc.CallContext(ctx, nil, "hwbridge_v1Devices", old, raw)); !errors.Is(err, keys.ErrStale) {
		t.Fatalf("stale: %v", err)
	}
	tampered, _ := keys.Sign(reader.Key, "hwbridge_v1Devices", raw, time.Now())
	if err := FromClientError(rc.CallContext(ctx, nil, "hwbridge_v1Devices", tampered, json.RawMessage(`{"x":1}`))); !errors.Is(err, keys.ErrBadMAC) {
		t.Fatalf("tampered params: %v", err)
	}

	// Rotation with overlap: the old key keeps working, then the new one alone.
	var rot RotateResult
	if err := reader.Call(ctx, "v1RotateKey", map[string]any{"overlap_seconds": 60}, &rot); err != nil {
		t.Fatal(err)
	}
	oldKey := reader.Key
	newer := &Client{Socket: td.socket, Key: rot.Key}
	defer newer.Close()
	for _, c := range []*Client{reader, newer} {
		if err := c.Call(ctx, "v1Devices", nil, nil); err != nil {
			t.Fatalf("during overlap: %v", err)
		}
	}
	// Revocation takes effect at once, for every key.
	admin := td.admin(t)
	if err := admin.Call(ctx, "v1AppsRevoke", AppParams{ID: rot.App.ID}, nil); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{oldKey, rot.Key} {
		c := &Client{Socket: td.socket, Key: k}
		if err := c.Call(ctx, "v1Devices", nil, nil); !errors.Is(err, keys.ErrRevoked) {
			t.Fatalf("after revoke: %v", err)
		}
		c.Close()
	}

	if s, err := audit.Verify(filepath.Join(td.dataDir, AuditFile)); err != nil || s.Records < 4 {
		t.Fatalf("audit: %+v %v", s, err)
	}
}

func TestErrorsAndPromptsThroughTheSocket(t *testing.T) {
	td := startDaemon(t)
	ctx := context.Background()
	admin := td.admin(t)
	events := make(chan device.Event, 16)
	sub, err := admin.Subscribe(ctx, events)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	var sig device.MessageSignature
	if err := admin.Call(ctx, "v1SignMessage", SignMessageParams{Chain: "eth", Path: "m/44'/60'/0'/0/0", Message: "hello"}, &sig); err != nil {
		t.Fatal(err)
	}
	if sig.Address != "0x9858EfFD232B4033E47d90003D41EC34EcaEda94" || len(sig.Signature) != 65 {
		t.Fatalf("signature %+v", sig)
	}
	select {
	case e := <-events:
		for e.Type != device.EventPrompt {
			e = <-events
		}
		if e.Path != emuPath || !strings.HasSuffix(e.Label, "/v1SignMessage") {
			t.Fatalf("prompt %+v", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no prompt event")
	}

	td.approver.SetPolicy(emulator.PolicyReject)
	err = admin.Call(ctx, "v1SignMessage", SignMessageParams{Chain: "btc", Path: "m/84'/0'/0'/0/0", Message: "no"}, nil)
	var de *device.Error
	if !errors.Is(err, device.ErrUserRejected) || !errors.As(err, &de) || de.Family != device.FamilyTrezor {
		t.Fatalf("rejected: %v (%#v)", err, err)
	}
	var re *RemoteError
	if !errors.As(err, &re) || re.Code != CodeRejected || re.Data.Kind != "user_rejected" {
		t.Fatalf("wire error %+v", re)
	}
}

func TestSocketHardening(t *testing.T) {
	dir := shortTempDir(t)
	path := filepath.Join(dir, "x", "s.sock")
	l, err := Listen(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	di, _ := os.Stat(filepath.Dir(path))
	if fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
		t.Fatalf("modes %v %v", fi.Mode(), di.Mode())
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	})
	if _, err := Listen(path, nil); !errors.Is(err, ErrInUse) {
		t.Fatalf("second listener: %v", err)
	}
	l.Close()
	wg.Wait()

	// A socket file left by a dead daemon is replaced.
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ul.SetUnlinkOnClose(false)
	ul.Close()
	l2, err := Listen(path, nil)
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	// A peer of another uid is closed before it is served.
	pl := l2.(*peerListener)
	pl.uid = os.Getuid() + 1
	accepted := make(chan error, 1)
	go func() {
		c, err := l2.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil || n != 0 {
		t.Fatalf("foreign peer read %d, %v", n, err)
	}
	c.Close()
	l2.Close()
	if err := <-accepted; err == nil {
		t.Fatal("a foreign peer was accepted")
	}
	// Not a socket: refused with advice.
	os.WriteFile(path, nil, 0o600)
	if _, err := Listen(path, nil); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("regular file: %v", err)
	}
}

// TestUnplugMidRequest: the device goes away while the user is asked to confirm; the caller
// gets ErrDisconnected (code CodeDisconnected) at once, and subscribers a detach event.
func TestUnplugMidRequest(t *testing.T) {
	td := startDaemon(t)
	ctx := context.Background()
	admin := td.admin(t)
	events := make(chan device.Event, 16)
	sub, err := admin.Subscribe(ctx, events)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	td.approver.SetPolicy(emulator.PolicyPrompt)
	errc := make(chan error, 1)
	go func() {
		errc <- admin.Call(ctx, "v1SignMessage", SignMessageParams{Chain: "eth", Path: "m/44'/60'/0'/0/0", Message: "unplug me"}, nil)
	}()
	for i := 0; ; i++ {
		if _, ok := td.approver.Pending(); ok {
			break
		}
		if i > 1000 {
			t.Fatal("no confirmation screen")
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	td.emu.Close() // unplugged
	err = <-errc
	var re *RemoteError
	if !errors.Is(err, device.ErrDisconnected) || !errors.As(err, &re) || re.Code != CodeDisconnected {
		t.Fatalf("unplugged mid-request: %v", err)
	}
	t.Logf("caller told %q after %v", err, time.Since(start))
	for {
		select {
		case e := <-events:
			if e.Type == device.EventDetached && e.Path == emuPath {
				return
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no detach event")
		}
	}
}

// TestLostReplyThroughDaemon: a reply the device never sends fails the request with
// device.ErrLinkLost (code CodeLinkLost, kind link_lost) at the link timeout, and the next
// request on the same device works.
func TestLostReplyThroughDaemon(t *testing.T) {
	td := startDaemon(t)
	ctx := context.Background()
	admin := td.admin(t)
	var addr, again AddressResult
	if err := admin.Call(ctx, "v1Address", AddressParams{Chain: "btc", Path: "m/84'/0'/0'/0/0"}, &addr); err != nil {
		t.Fatal(err)
	}
	td.emu.Faults().DropNext(1)
	err := admin.Call(ctx, "v1Address", AddressParams{Chain: "btc", Path: "m/84'/0'/0'/0/0"}, nil)
	var re *RemoteError
	if !errors.Is(err, device.ErrLinkLost) || !errors.As(err, &re) || re.Code != CodeLinkLost {
		t.Fatalf("lost reply: %v", err)
	}
	if err := admin.Call(ctx, "v1Address", AddressParams{Chain: "btc", Path: "m/84'/0'/0'/0/0"}, &again); err != nil || again.Address != addr.Address {
		t.Fatalf("next request: %+v %v", again, err)
	}
}
