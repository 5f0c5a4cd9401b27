package transport

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestHIDOpenError: a failed HID open says what to do; on Linux, a device node this user
// may not open (no udev rule) is named, with the README section on udev rules.
func TestHIDOpenError(t *testing.T) {
	sysfs := t.TempDir()
	dev := filepath.Join(sysfs, "bus", "usb", "devices", "1-3.2")
	if err := os.MkdirAll(dev, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"busnum": "1\n", "devnum": "17\n"} {
		if err := os.WriteFile(filepath.Join(dev, name), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	libErr := errors.New("hidapi: failed to open device")
	denied := func(name string) error { return &fs.PathError{Op: "open", Path: name, Err: syscall.EACCES} }
	allowed := func(string) error { return nil }
	tests := []struct {
		name, goos, path string
		open             func(string) error
		want             []string
		permission       bool
	}{
		{"no udev rule", "linux", "1-3.2:1.0", denied, []string{"no permission on /dev/bus/usb/001/017", `README, "USB permissions on Linux"`, "replug"}, true},
		{"node opens: another app holds it", "linux", "1-3.2:1.0", allowed, []string{"udev rules", "close other wallet apps"}, false},
		{"not in sysfs", "linux", "9-9:1.0", denied, []string{"udev rules"}, false},
		{"not a libusb path", "linux", "../x:1.0", denied, []string{"udev rules"}, false},
		{"macos", "darwin", "DevSrvsID:4294971073", denied, []string{"close other wallet apps"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := hidDiag{goos: tt.goos, sysfs: sysfs, open: tt.open}.openError(tt.path, libErr)
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
			if got := errors.Is(err, fs.ErrPermission); got != tt.permission {
				t.Errorf("errors.Is(err, fs.ErrPermission) = %v, want %v (%v)", got, tt.permission, err)
			}
			if !tt.permission && !errors.Is(err, libErr) {
				t.Errorf("%v does not wrap the library's error", err)
			}
		})
	}
}
