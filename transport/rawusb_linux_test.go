//go:build linux && (amd64 || arm64 || 386 || arm || riscv64 || loong64 || s390x)

package transport

import (
	"errors"
	"syscall"
	"testing"
	"unsafe"
)

// TestUsbfsIoctlNumbers: the request numbers as include/uapi/linux/usbdevice_fs.h defines
// them (printed by a C program including it on linux/amd64: 8004550f 80045510 80045515
// c0185502; the bulk request's size field is 16 on 32-bit architectures).
func TestUsbfsIoctlNumbers(t *testing.T) {
	bulk := uintptr(0xc0185502)
	if unsafe.Sizeof(uintptr(0)) == 4 {
		bulk = 0xc0105502
	}
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"USBDEVFS_CLAIMINTERFACE", usbdevfsClaimInterface, 0x8004550f},
		{"USBDEVFS_RELEASEINTERFACE", usbdevfsReleaseInterface, 0x80045510},
		{"USBDEVFS_CLEAR_HALT", usbdevfsClearHalt, 0x80045515},
		{"USBDEVFS_BULK", usbdevfsBulkReq, bulk},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
}

// TestUsbfsHandleErrno drives the real ioctl path on a node that is not a USB device:
// every request fails with the kernel's ENOTTY, which RawLink reports as a failed link.
func TestUsbfsHandleErrno(t *testing.T) {
	h, err := openUsbfs("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.claim(0); !errors.Is(err, syscall.ENOTTY) {
		t.Fatalf("claim: %v", err)
	}
	if _, err := h.transfer(0x81, make([]byte, 64), rawPoll); !errors.Is(err, syscall.ENOTTY) {
		t.Fatalf("transfer: %v", err)
	}
	if err := h.clearHalt(0x81); !errors.Is(err, syscall.ENOTTY) {
		t.Fatalf("clear halt: %v", err)
	}
	l := &RawLink{wire: trezorWire, h: h}
	if _, err := l.Read(make([]byte, 64)); !errors.Is(err, ErrClosed) || !errors.Is(err, syscall.ENOTTY) {
		t.Fatalf("read: %v", err)
	}
	if err := l.Close(); !errors.Is(err, syscall.ENOTTY) {
		t.Fatalf("close: %v", err)
	}
	if _, err := openUsbfs("/nonexistent/bus/usb/001/001"); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("open of a missing node: %v", err)
	}
}
