//go:build linux && (amd64 || arm64 || 386 || arm || riscv64 || loong64 || s390x)

package transport

import (
	"context"
	"os"
	"runtime"
	"syscall"
	"time"
	"unsafe"
)

// Linux raw USB through usbfs (Documentation/driver-api/usb/usb.rst, "The USB character
// device nodes"; include/uapi/linux/usbdevice_fs.h): open /dev/bus/usb/BBB/DDD, claim the
// wallet interface, and run synchronous USBDEVFS_BULK transfers on its interrupt endpoints
// (usbfs sends a bulk request on an interrupt endpoint as an interrupt URB). Pure Go over
// the syscall package, so it works with or without cgo. Hand-written: no maintained Go
// usbfs library is served by the module proxy (google/gousb is cgo+libusb and not served),
// and linking libusb beside karalabe/hid's private copy is not possible (duplicate symbols).
//
// The ioctl numbers use the generic _IOC encoding (dir<<30 | size<<16 | 'U'<<8 | nr), which
// the architectures in this file's build constraint share; the others get the stub
// (rawusb_other.go).

// usbdevfsBulk is struct usbdevfs_bulktransfer.
type usbdevfsBulk struct {
	ep      uint32
	len     uint32
	timeout uint32 // milliseconds; 0 would wait forever
	data    unsafe.Pointer
}

const (
	iocRead  = 2
	iocWrite = 1

	usbdevfsClaimInterface   = iocRead<<30 | 4<<16 | 'U'<<8 | 15 // _IOR('U', 15, unsigned int)
	usbdevfsReleaseInterface = iocRead<<30 | 4<<16 | 'U'<<8 | 16 // _IOR('U', 16, unsigned int)
	usbdevfsClearHalt        = iocRead<<30 | 4<<16 | 'U'<<8 | 21 // _IOR('U', 21, unsigned int)
	// _IOWR('U', 2, struct usbdevfs_bulktransfer): 24 bytes on 64-bit, 16 on 32-bit.
	usbdevfsBulkReq = (iocRead|iocWrite)<<30 | uintptr(unsafe.Sizeof(usbdevfsBulk{}))<<16 | 'U'<<8 | 2
)

// defaultUSB is the system's sysfs and usbfs.
var defaultUSB = usbSysfs{sysfs: "/sys", devfs: "/dev", open: openUsbfs}

// rawSupported: this build has a raw USB path.
const rawSupported = true

func enumerateRaw(ctx context.Context) ([]DeviceInfo, error) { return defaultUSB.enumerate(ctx) }

// OpenRaw opens the wallet interface at usb:name (a DeviceInfo.Path without "usb:").
func OpenRaw(ctx context.Context, name string) (*RawLink, error) {
	return defaultUSB.openRaw(ctx, name)
}

// usbfsHandle is an open usbfs device node.
type usbfsHandle struct{ f *os.File }

func openUsbfs(node string) (usbHandle, error) {
	f, err := os.OpenFile(node, os.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return usbfsHandle{f: f}, nil
}

// ioctl runs one usbfs request on arg. arg stays an unsafe.Pointer until the conversion in
// the syscall.Syscall call itself (unsafe.Pointer rule 4), so that the object it points to
// is kept alive and a stack move cannot leave the kernel a stale address.
func (h usbfsHandle) ioctl(req uintptr, arg unsafe.Pointer) (uintptr, error) {
	r, _, errno := syscall.Syscall(syscall.SYS_IOCTL, h.f.Fd(), req, uintptr(arg))
	runtime.KeepAlive(h.f) // the descriptor must stay open across the raw syscall
	if errno != 0 {
		return 0, errno
	}
	return r, nil
}

func (h usbfsHandle) intIoctl(req uintptr, v uint32) error {
	_, err := h.ioctl(req, unsafe.Pointer(&v))
	return err
}

func (h usbfsHandle) claim(iface uint8) error {
	return h.intIoctl(usbdevfsClaimInterface, uint32(iface))
}
func (h usbfsHandle) release(iface uint8) error {
	return h.intIoctl(usbdevfsReleaseInterface, uint32(iface))
}
func (h usbfsHandle) clearHalt(ep uint8) error { return h.intIoctl(usbdevfsClearHalt, uint32(ep)) }
func (h usbfsHandle) close() error             { return h.f.Close() }

func (h usbfsHandle) transfer(ep uint8, buf []byte, timeout time.Duration) (int, error) {
	if len(buf) == 0 {
		return 0, nil
	}
	ms := max(1, uint32((timeout+time.Millisecond-1)/time.Millisecond))
	// The kernel reads the data pointer out of the struct: pin the buffer for the call.
	var pin runtime.Pinner
	pin.Pin(&buf[0])
	defer pin.Unpin()
	req := usbdevfsBulk{ep: uint32(ep), len: uint32(len(buf)), timeout: ms, data: unsafe.Pointer(&buf[0])}
	n, err := h.ioctl(usbdevfsBulkReq, unsafe.Pointer(&req))
	if err != nil {
		return 0, err
	}
	return int(n), nil
}
