package transport

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// hidDiag explains why opening a HID device failed. On Linux, karalabe/hid reaches devices
// through its bundled libusb, which opens /dev/bus/usb/BBB/DDD: without a udev rule that
// node belongs to root, and the library only says "failed to open device". hidDiag finds
// the node from sysfs and tries it, so that a permission problem is named as such.
type hidDiag struct {
	goos  string
	sysfs string                  // the sysfs mount, "/sys"
	open  func(name string) error // opens a device node read-write and closes it
}

var defaultHIDDiag = hidDiag{goos: runtime.GOOS, sysfs: "/sys", open: func(name string) error {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err == nil {
		f.Close()
	}
	return err
}}

// udevHint points at the README section with the rules.
const udevHint = `install the udev rules (README, "USB permissions on Linux"), then unplug and replug the device`

// openError wraps err, the library's failure to open hid:osPath, with what to do.
func (d hidDiag) openError(osPath string, err error) error {
	if d.goos != "linux" {
		return fmt.Errorf("transport: open hid:%s (close other wallet apps, such as Ledger Live or Trezor Suite, and retry): %w", osPath, err)
	}
	if node, nerr := d.usbNode(osPath); nerr == nil {
		if oerr := d.open(node); errors.Is(oerr, os.ErrPermission) {
			return fmt.Errorf("transport: open hid:%s: no permission on %s: %s: %w", osPath, node, udevHint, oerr)
		}
	}
	return fmt.Errorf("transport: open hid:%s (on linux, %s; close other wallet apps): %w", osPath, udevHint, err)
}

// usbNode returns the device node behind a hidapi libusb path, "BUS-PORT[.PORT...]:CONFIG.IFACE"
// (e.g. "1-3.2:1.0"), from sysfs' busnum and devnum of the device "BUS-PORT[.PORT...]".
func (d hidDiag) usbNode(osPath string) (string, error) {
	dev, _, ok := strings.Cut(osPath, ":")
	if !ok || dev == "" || strings.ContainsAny(dev, `/\`) || dev == "." || dev == ".." {
		return "", fmt.Errorf("transport: %q is not a libusb device path", osPath)
	}
	num := func(name string) (int, error) {
		b, err := os.ReadFile(filepath.Join(d.sysfs, "bus", "usb", "devices", dev, name))
		if err != nil {
			return 0, err
		}
		return strconv.Atoi(strings.TrimSpace(string(b)))
	}
	bus, err := num("busnum")
	if err != nil {
		return "", err
	}
	devnum, err := num("devnum")
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("/dev/bus/usb/%03d/%03d", bus, devnum), nil
}
