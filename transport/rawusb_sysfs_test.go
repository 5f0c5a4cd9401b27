package transport

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// sysfsTree is a fake /sys with USB devices laid out as the kernel does
// (Documentation/ABI/stable/sysfs-bus-usb, sysfs-bus-usb): /sys/bus/usb/devices/<name>/
// with idVendor, idProduct (4 hex digits), busnum, devnum, bConfigurationValue, product,
// serial and the binary descriptors file.
type sysfsTree struct {
	t    *testing.T
	root string
}

func newSysfsTree(t *testing.T) sysfsTree {
	s := sysfsTree{t: t, root: t.TempDir()}
	// Root hubs and interface directories are listed there too, and must be skipped.
	s.plug("usb1", 0x1d6b, 0x0002, 1, 1, "1", nil)
	s.plug("1-3:1.0", 0x1209, 0x53c1, 1, 5, "1", nil)
	return s
}

func (s sysfsTree) plug(name string, vid, pid uint16, bus, dev int, config string, desc []byte) {
	dir := filepath.Join(s.root, "bus", "usb", "devices", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.t.Fatal(err)
	}
	files := map[string]string{
		"idVendor": fmt.Sprintf("%04x\n", vid), "idProduct": fmt.Sprintf("%04x\n", pid),
		"busnum": fmt.Sprintf("%d\n", bus), "devnum": fmt.Sprintf("%d\n", dev),
		"bConfigurationValue": config + "\n", "product": "TREZOR\n", "serial": "6B83BE4ACCC545E0A9DB6BB0\n",
		"descriptors": string(desc),
	}
	for f, v := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(v), 0o644); err != nil {
			s.t.Fatal(err)
		}
	}
}

func (s sysfsTree) unplug(name string) {
	if err := os.RemoveAll(filepath.Join(s.root, "bus", "usb", "devices", name)); err != nil {
		s.t.Fatal(err)
	}
}

func TestUSBSysfsEnumerate(t *testing.T) {
	s := newSysfsTree(t)
	s.plug("1-3", 0x1209, 0x53c1, 1, 5, "1", readHexDescriptors(t, "trezor1.hex"))
	s.plug("1-4.2", 0x1209, 0x53c1, 1, 9, "1", readHexDescriptors(t, "trezort.hex"))
	s.plug("2-1", 0x1209, 0x53c1, 2, 3, "1", readHexDescriptors(t, "trezor1-debuglink.hex"))
	s.plug("3-2", 0x2b24, 0x0002, 3, 4, "1", readHexDescriptors(t, "keepkey.hex"))
	s.plug("3-3", 0x2b24, 0x0001, 3, 5, "1", readHexDescriptors(t, "keepkey.hex")) // HID KeepKey: hid: path
	s.plug("1-5", 0x046d, 0xc31c, 1, 4, "1", readHexDescriptors(t, "trezor1.hex")) // a keyboard
	s.plug("1-6", 0x534c, 0x0001, 1, 6, "1", readHexDescriptors(t, "trezor1.hex")) // HID Trezor One: hid: path
	s.plug("1-7", 0x1209, 0x53c1, 1, 7, "", nil)                                   // not configured
	broken := readHexDescriptors(t, "trezor1.hex")
	s.plug("1-8", 0x1209, 0x53c0, 1, 8, "1", broken[:30]) // truncated descriptors
	u := usbSysfs{sysfs: s.root, devfs: "/dev"}
	got, err := u.enumerate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		path, kind, model string
		pid               uint16
		bad               bool
	}
	var rows []row
	for _, d := range got {
		rows = append(rows, row{d.Path, d.Kind, d.Model, d.ProductID, d.Unsupported != nil})
		if d.Interface != 0 {
			t.Errorf("%s: kind %q interface %d", d.Path, d.Kind, d.Interface)
		}
		if d.Unsupported != nil && !errors.Is(d.Unsupported, errors.ErrUnsupported) {
			t.Errorf("%s: %v", d.Path, d.Unsupported)
		}
		if d.Path == "usb:1-3" && (d.Product != "TREZOR" || d.Serial != "6B83BE4ACCC545E0A9DB6BB0") {
			t.Errorf("strings: %+v", d)
		}
	}
	want := []row{
		{"usb:1-3", KindTrezor, "trezor1", 0x53c1, false},
		{"usb:1-4.2", KindTrezor, "", 0x53c1, false},
		{"usb:1-7", KindTrezor, "", 0x53c1, true},
		{"usb:1-8", KindTrezor, "", 0x53c0, true},
		{"usb:2-1", KindTrezor, "trezor1", 0x53c1, false},
		{"usb:3-2", KindKeepKey, "keepkey", 0x0002, false},
	}
	if !slices.Equal(rows, want) {
		t.Fatalf("enumerate:\n got %v\nwant %v", rows, want)
	}

	// Hot-plug: unplugged devices vanish; a replug into the same port keeps its path even
	// though the kernel gives it a new device number.
	s.unplug("1-3")
	s.plug("1-4.2", 0x1209, 0x53c1, 1, 12, "1", readHexDescriptors(t, "trezort.hex"))
	got, _ = u.enumerate(t.Context())
	var paths []string
	for _, d := range got {
		paths = append(paths, d.Path)
	}
	if !slices.Equal(paths, []string{"usb:1-4.2", "usb:1-7", "usb:1-8", "usb:2-1", "usb:3-2"}) {
		t.Fatalf("after unplug and replug: %v", paths)
	}

	// No USB bus at all (a container): an empty list, no error.
	if got, err := (usbSysfs{sysfs: t.TempDir()}).enumerate(t.Context()); err != nil || len(got) != 0 {
		t.Fatalf("no /sys/bus/usb: %v, %v", got, err)
	}
}

func TestUSBSysfsOpen(t *testing.T) {
	s := newSysfsTree(t)
	s.plug("1-4.2", 0x1209, 0x53c1, 1, 9, "1", readHexDescriptors(t, "trezort.hex"))
	s.plug("1-7", 0x1209, 0x53c1, 1, 7, "", nil)
	var opened []string
	var openErr error
	f := newFakeUSB(t)
	u := usbSysfs{sysfs: s.root, devfs: "/dev", open: func(node string) (usbHandle, error) {
		opened = append(opened, node)
		if openErr != nil {
			return nil, openErr
		}
		return f, nil
	}}
	l, err := u.openRaw(t.Context(), "1-4.2")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(opened, []string{"/dev/bus/usb/001/009"}) || l.Info().Path != "usb:1-4.2" {
		t.Fatalf("opened %v, info %+v", opened, l.Info())
	}
	if typ, body, err := exchange(t.Context(), l, 1, []byte("ping")); err != nil || typ != 2 || string(body) != "ping" {
		t.Fatalf("exchange: %d %q %v", typ, body, err)
	}
	l.Close()

	for _, tt := range []struct {
		name    string
		openErr error
		want    []error
	}{
		{"1-4.2", &os.PathError{Op: "open", Path: "/dev/bus/usb/001/009", Err: syscall.EACCES}, []error{os.ErrPermission}},
		{"1-4.2", &os.PathError{Op: "open", Path: "/dev/bus/usb/001/009", Err: syscall.ENOENT}, []error{ErrNoDevice}},
		{"1-9", nil, []error{ErrNoDevice}},
		{"1-7", nil, []error{errors.ErrUnsupported}},
		{"1-4.2:1.0", nil, []error{ErrInvalidPath}},
		{"../../etc", nil, []error{ErrInvalidPath}},
	} {
		openErr = tt.openErr
		_, err := u.openRaw(t.Context(), tt.name)
		for _, w := range tt.want {
			if !errors.Is(err, w) {
				t.Errorf("open %s with %v: %v, want %v", tt.name, tt.openErr, err, w)
			}
		}
		if errors.Is(tt.openErr, syscall.EACCES) && (err == nil || !strings.Contains(err.Error(), "udev")) {
			t.Errorf("permission error names no udev rules: %v", err)
		}
	}

	// Claimed by Trezor Suite's bridge.
	openErr = nil
	f.claimErr = syscall.EBUSY
	if _, err := u.openRaw(t.Context(), "1-4.2"); !errors.Is(err, ErrClaimed) {
		t.Fatalf("claimed: %v", err)
	}
}

func TestMergeRaw(t *testing.T) {
	hidInfos := []DeviceInfo{
		{Path: "hid:1-4.2:1.1", Kind: KindTrezor, Unsupported: ErrWebUSB}, // the FIDO interface of a Model T
		{Path: "hid:2-1:1.0", Kind: KindLedger, Model: "nanox"},
		{Path: "hid:3-2:1.1", Kind: KindKeepKey, Unsupported: ErrKeepKeyWebUSB}, // a KeepKey 7.x's U2F interface
	}
	raw := []DeviceInfo{{Path: "usb:1-4.2", Kind: KindTrezor}, {Path: "usb:3-2", Kind: KindKeepKey}}
	paths := func(ds []DeviceInfo) (out []string) {
		for _, d := range ds {
			out = append(out, d.Path)
		}
		return out
	}
	if got := paths(mergeRaw(hidInfos, raw, true)); !slices.Equal(got, []string{"hid:2-1:1.0", "usb:1-4.2", "usb:3-2"}) {
		t.Fatalf("with raw usb: %v", got)
	}
	if got := paths(mergeRaw(hidInfos, nil, false)); !slices.Equal(got, []string{"hid:1-4.2:1.1", "hid:2-1:1.0", "hid:3-2:1.1"}) {
		t.Fatalf("without raw usb: %v", got)
	}
}

func TestParsePathUSB(t *testing.T) {
	for _, ok := range []string{"usb:1-3", "usb:1-3.2", "usb:12-1.2.3.4.5.6.7", "usb:255-15"} {
		p, err := ParsePath(ok)
		if err != nil || p.Scheme != SchemeUSB || p.String() != ok || !p.USB() {
			t.Errorf("%s: %+v %v", ok, p, err)
		}
	}
	for _, bad := range []string{"usb:", "usb:1", "usb:1-", "usb:0-1", "usb:1-0", "usb:1-3:1.0", "usb:01-3", "usb:1-3..2",
		"usb:1-1.2.3.4.5.6.7.8", "usb:a-1", "usb:/dev/bus/usb/001/002", "usb:1-1234"} {
		if _, err := ParsePath(bad); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("%s: %v", bad, err)
		}
	}
	for _, p := range []string{"udp:127.0.0.1:21324", "tcp:127.0.0.1:9999"} {
		if pp, _ := ParsePath(p); pp.USB() {
			t.Errorf("%s is not USB", p)
		}
	}
}
