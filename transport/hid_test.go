package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/karalabe/hid"
)

func TestFilterHID(t *testing.T) {
	in := []hid.DeviceInfo{
		// Trezor One, firmware ≤ 1.6.3 (Windows/macOS style: usage pages known).
		{Path: "t1-wire", VendorID: 0x534C, ProductID: 0x0001, UsagePage: 0xFF00, Interface: 0, Product: "TREZOR", Serial: "ABC"},
		{Path: "t1-debug", VendorID: 0x534C, ProductID: 0x0001, UsagePage: 0xFF01, Interface: 1},
		{Path: "t1-u2f", VendorID: 0x534C, ProductID: 0x0001, UsagePage: 0xF1D0, Interface: 2},
		// Trezor One on Linux (libusb backend: usage page 0).
		{Path: "1-3:1.0", VendorID: 0x534C, ProductID: 0x0001, Interface: 0},
		{Path: "1-3:1.1", VendorID: 0x534C, ProductID: 0x0001, Interface: 1},
		// Trezor T / Safe: only the FIDO interface is HID.
		{Path: "tt-fido", VendorID: 0x1209, ProductID: 0x53C1, UsagePage: 0xF1D0, Interface: 1, Product: "TREZOR"},
		{Path: "tt-bl", VendorID: 0x1209, ProductID: 0x53C0, Interface: 1},
		{Path: "other-1209", VendorID: 0x1209, ProductID: 0x0001, Interface: 0},
		// Ledger Nano S Plus, HID+U2F+WebUSB (0x5015): APDU on interface 0 / 0xFFA0.
		{Path: "nsp-apdu", VendorID: 0x2C97, ProductID: 0x5015, UsagePage: 0xFFA0, Interface: 0, Product: "Nano S Plus"},
		{Path: "nsp-u2f", VendorID: 0x2C97, ProductID: 0x5015, UsagePage: 0xF1D0, Interface: 1},
		// Nano X on Linux, interface 0, usage page unknown.
		{Path: "2-1:1.0", VendorID: 0x2C97, ProductID: 0x4011, Interface: 0},
		{Path: "2-1:1.1", VendorID: 0x2C97, ProductID: 0x4011, Interface: 1},
		// Windows single-interface report: interface -1 but the usage page says APDU.
		{Path: `\\?\hid#vid_2c97&pid_1015`, VendorID: 0x2C97, ProductID: 0x1015, UsagePage: 0xFFA0, Interface: -1},
		// Legacy Nano S PID and bootloader-era Blue.
		{Path: "nanos-legacy", VendorID: 0x2C97, ProductID: 0x0001, Interface: 0},
		{Path: "blue", VendorID: 0x2C97, ProductID: 0x0000, Interface: 0},
		// Unknown Ledger model byte, unknown legacy PID.
		{Path: "ledger-0x20", VendorID: 0x2C97, ProductID: 0x2011, Interface: 0},
		{Path: "ledger-0x0002", VendorID: 0x2C97, ProductID: 0x0002, Interface: 0},
		// A keyboard, and the wire interface listed twice (macOS: one entry per collection).
		{Path: "kbd", VendorID: 0x046D, ProductID: 0xC31C, Interface: 0},
		{Path: "t1-wire", VendorID: 0x534C, ProductID: 0x0001, UsagePage: 0xFF00, Interface: 0},
	}
	got := filterHID(in)
	type row struct {
		path, kind, model string
		unsupported       bool
	}
	var rows []row
	for _, d := range got {
		rows = append(rows, row{d.Path, d.Kind, d.Model, d.Unsupported != nil})
		if d.Unsupported != nil && (!errors.Is(d.Unsupported, ErrWebUSB) || !errors.Is(d.Unsupported, errors.ErrUnsupported)) {
			t.Errorf("%s: Unsupported = %v", d.Path, d.Unsupported)
		}
	}
	want := []row{
		{"hid:1-3:1.0", "trezor", "trezor1", false},
		{"hid:2-1:1.0", "ledger", "nanox", false},
		{`hid:\\?\hid#vid_2c97&pid_1015`, "ledger", "nanos", false},
		{"hid:blue", "ledger", "blue", false},
		{"hid:nanos-legacy", "ledger", "nanos", false},
		{"hid:nsp-apdu", "ledger", "nanosp", false},
		{"hid:t1-wire", "trezor", "trezor1", false},
		{"hid:tt-bl", "trezor", "", true},
		{"hid:tt-fido", "trezor", "", true},
	}
	if !slices.Equal(rows, want) {
		t.Fatalf("got\n%v\nwant\n%v", rows, want)
	}
	if d := got[slices.IndexFunc(got, func(d DeviceInfo) bool { return d.Path == "hid:t1-wire" })]; d.Serial != "ABC" || d.Product != "TREZOR" || d.UsagePage != 0xFF00 {
		t.Fatalf("fields not carried over: %+v", d)
	}
}

func TestLedgerModel(t *testing.T) {
	tests := []struct {
		pid   uint16
		model string
	}{
		{0x1005, "nanos"}, {0x1011, "nanos"}, {0x1015, "nanos"}, {0x4015, "nanox"}, {0x5011, "nanosp"},
		{0x6005, "stax"}, {0x7011, "flex"}, {0x8015, "apex"}, {0x0004, "nanox"}, {0x0007, "flex"},
		{0x0002, ""}, {0x0100, ""}, {0x2011, ""}, {0xFFFF, ""},
	}
	for _, tt := range tests {
		m, ok := ledgerModel(tt.pid)
		if m != tt.model || ok != (tt.model != "") {
			t.Errorf("%#04x: %q %v, want %q", tt.pid, m, ok, tt.model)
		}
	}
}

// fakeHID stands in for a karalabe/hid device: it records writes and serves queued input
// reports, timing out like hid_read_timeout when none is queued.
type fakeHID struct {
	mu       sync.Mutex
	writes   [][]byte
	in       chan []byte
	writeErr error
	writeN   int // when > 0, what Write reports
	closed   bool
}

func newFakeHID() *fakeHID { return &fakeHID{in: make(chan []byte, 64)} }

func (f *fakeHID) Write(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, hid.ErrDeviceClosed
	}
	if f.writeErr != nil {
		return 0, f.writeErr
	}
	f.writes = append(f.writes, bytes.Clone(b))
	if f.writeN > 0 {
		return f.writeN, nil
	}
	return len(b), nil // hidapi counts the report-id byte it was given
}

func (f *fakeHID) ReadTimeout(b []byte, ms int) (int, error) {
	if ms <= 0 {
		return 0, errors.New("fake: non-positive timeout would not block")
	}
	select {
	case p, ok := <-f.in:
		if !ok {
			return 0, errors.New("hidapi: device disconnected")
		}
		return copy(b, p), nil
	case <-time.After(time.Duration(ms) * time.Millisecond):
		return 0, nil
	}
}

func (f *fakeHID) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

// Every write carries exactly one 0x00 report id: added by HIDLink where karalabe/hid does
// not add it, and left to the library on Windows.
func TestHIDLinkReportID(t *testing.T) {
	for _, prefix := range []bool{true, false} {
		dev := newFakeHID()
		link := newHIDLink(dev, DeviceInfo{Kind: KindLedger}, prefix)
		pkts, _ := LedgerHIDPackets(0x0001, make([]byte, 100)) // a channel whose first byte is 0x00
		for _, p := range pkts {
			n, err := link.Write(p)
			if err != nil || n != LedgerHIDPacketSize {
				t.Fatalf("prefix=%v: wrote %d: %v", prefix, n, err)
			}
		}
		for i, w := range dev.writes {
			want := pkts[i]
			if prefix {
				want = append([]byte{0}, pkts[i]...)
			}
			if !bytes.Equal(w, want) {
				t.Fatalf("prefix=%v: write %d = %x, want %x", prefix, i, w, want)
			}
		}
		if !bytes.Equal(pkts[0][:2], []byte{0, 1}) {
			t.Fatal("test packet should start with 0x00")
		}
	}
	if hidNeedsReportID == (runtime.GOOS == "windows") {
		t.Fatal("hidNeedsReportID must be set everywhere but Windows")
	}
}

// A Ledger exchange through a HIDLink: the fake device answers the command's channel.
func TestHIDLinkExchange(t *testing.T) {
	dev := newFakeHID()
	link := newHIDLink(dev, DeviceInfo{Kind: KindLedger}, true)
	reply, _ := LedgerHIDPackets(LedgerDefaultChannel, []byte{0xf5, 0xac, 0xc2, 0xfd, 0x90, 0x00})
	for _, p := range reply {
		dev.in <- p
	}
	resp, err := NewLedgerHIDExchanger(link).Exchange(t.Context(), []byte{0xe1, 0x05, 0, 0, 0})
	if err != nil || !bytes.Equal(resp, []byte{0xf5, 0xac, 0xc2, 0xfd, 0x90, 0x00}) {
		t.Fatalf("%x %v", resp, err)
	}
	sent, ch, err := ReadLedgerHIDCommand(&packetReader{pkts: [][]byte{dev.writes[0][1:]}})
	if err != nil || ch != LedgerDefaultChannel || !bytes.Equal(sent, []byte{0xe1, 0x05, 0, 0, 0}) {
		t.Fatalf("device saw %x on %#x: %v", sent, ch, err)
	}
}

func TestHIDLinkInterrupt(t *testing.T) {
	dev := newFakeHID()
	link := newHIDLink(dev, DeviceInfo{}, true)
	buf := make([]byte, 64)

	link.SetDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := link.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}
	if _, err := link.Write(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write after deadline: %v", err)
	}

	// A context cancelled from another goroutine while Read waits in the library.
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(20*time.Millisecond, cancel)
	err := DoContext(ctx, link, func() error { _, err := link.Read(buf); return err })
	if !errors.Is(err, context.Canceled) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("cancel: %v", err)
	}

	// Data arrives: Read returns it; DoContext cleared the deadline.
	dev.in <- bytes.Repeat([]byte{7}, 64)
	if n, err := link.Read(buf); n != 64 || err != nil || buf[0] != 7 {
		t.Fatalf("read: %d %v", n, err)
	}

	// Close while a Read waits: the Read ends with ErrClosed, the handle is closed once.
	done := make(chan error, 1)
	go func() { _, err := link.Read(buf); done <- err }()
	time.Sleep(20 * time.Millisecond)
	if err := link.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("read during close: %v", err)
	}
	if err := link.Close(); err != nil {
		t.Fatal("second close:", err)
	}
	if _, err := link.Write(buf); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
}

func TestHIDLinkErrors(t *testing.T) {
	dev := newFakeHID()
	link := newHIDLink(dev, DeviceInfo{}, true)
	close(dev.in) // unplugged
	if _, err := link.Read(make([]byte, 64)); !errors.Is(err, ErrClosed) {
		t.Fatalf("unplugged read: %v", err)
	}
	dev.writeErr = errors.New("hidapi: broken pipe")
	if _, err := link.Write(make([]byte, 64)); !errors.Is(err, ErrClosed) {
		t.Fatalf("failed write: %v", err)
	}
	dev.writeErr, dev.writeN = nil, 33
	if n, err := link.Write(make([]byte, 64)); n != 32 || !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("short write: %d %v", n, err)
	}
	if n, err := link.Read(nil); n != 0 || err != nil {
		t.Fatalf("empty read: %d %v", n, err)
	}
}

// Enumerate and OpenHID run against the real bus: with no wallet plugged in (as in CI) they
// find nothing, and a made-up path is ErrNoDevice.
func TestEnumerateNoHardware(t *testing.T) {
	devs, err := Enumerate(t.Context())
	if !hid.Supported() {
		if !errors.Is(err, errors.ErrUnsupported) {
			t.Fatalf("without hid support: %v", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		t.Logf("found %+v", d)
	}
	if _, err := Open(t.Context(), "hid:/no/such/device"); !errors.Is(err, ErrNoDevice) {
		t.Fatalf("open missing device: %v", err)
	}
}
