package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// udevRule is one vendor (and product) the rules file opens to the logged-in user: its USB
// device node (/dev/bus/usb/BBB/DDD, which libusb — inside karalabe/hid on Linux — and
// hwbridge's raw-USB path open) and its hidraw nodes (for HID transports that use them).
type udevRule struct{ comment, vendor, product string }

// udevRules is the one table of USB ids hwbridge's devices use. The selectors follow the
// vendors' own rules (Trezor's common/udev/51-trezor.rules, KeepKey's 51-usb-keepkey.rules,
// Ledger's 20-hw1.rules); udev_test.go checks every device node those rules open is opened
// here too.
var udevRules = []udevRule{
	{"Trezor One, HID firmware (up to 1.6.3)", "534c", "0001"},
	{"Trezor One from 1.7, Model T, Safe 3, Safe 5: the WebUSB wallet interface (raw USB, usb: paths) and the FIDO HID interface", "1209", "53c1"},
	{"Trezor bootloaders (WebUSB)", "1209", "53c0"},
	{"KeepKey, HID firmware", "2b24", "0001"},
	{"KeepKey, WebUSB firmware", "2b24", "0002"},
	{"Ledger, every model", "2c97", ""},
	{"Coldcard", "d13e", "cc10"},
}

// DefaultUdevPath is where `hwbridge udev install` writes.
const defaultUdevPath = "/etc/udev/rules.d/52-hwbridge.rules"

func udevRulesText() string {
	var b strings.Builder
	b.WriteString("# written by hwbridge udev install: USB access for hardware wallets (the logged-in user, and group plugdev)\n")
	for _, r := range udevRules {
		fmt.Fprintf(&b, "# %s\n", r.comment)
		// The USB device node: what usbfs (raw USB) and libusb open.
		fmt.Fprintf(&b, `SUBSYSTEM=="usb", ATTR{idVendor}=="%s"`, r.vendor)
		if r.product != "" {
			fmt.Fprintf(&b, `, ATTR{idProduct}=="%s"`, r.product)
		}
		b.WriteString(`, MODE="0660", GROUP="plugdev", TAG+="uaccess"` + "\n")
		// hidraw nodes, for HID transports that use them.
		fmt.Fprintf(&b, `KERNEL=="hidraw*", ATTRS{idVendor}=="%s"`, r.vendor)
		if r.product != "" {
			fmt.Fprintf(&b, `, ATTRS{idProduct}=="%s"`, r.product)
		}
		b.WriteString(`, MODE="0660", GROUP="plugdev", TAG+="uaccess"` + "\n")
	}
	return b.String()
}

// runUdevInstall writes the rules file and reloads udev; without the rights to do so it
// says what it would do (the commands to run with sudo) and changes nothing.
func runUdevInstall(ctx context.Context, e *env, args []string) error {
	fs := e.flagSet("udev install")
	path := fs.String("path", defaultUdevPath, "rules file to write")
	print := fs.Bool("print", false, "print the rules and the commands instead of installing them")
	noReload := fs.Bool("no-reload", false, "write the file but do not run udevadm")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	rules := udevRulesText()
	steps := []string{"write " + *path, "udevadm control --reload-rules", "udevadm trigger"}
	if *noReload {
		steps = steps[:1]
	}
	howto := "sudo \"$(command -v hwbridge)\" udev install"
	if *print {
		return e.print(map[string]any{"path": *path, "rules": rules, "steps": steps}, rules, "then: "+strings.Join(steps, "; "))
	}
	if err := os.MkdirAll(filepath.Dir(*path), 0o755); err != nil {
		return fmt.Errorf("udev rules: %w: run %s", err, howto)
	}
	if err := os.WriteFile(*path, []byte(rules), 0o644); err != nil {
		if os.IsPermission(err) {
			fmt.Fprint(e.stdout, rules)
			return fmt.Errorf("cannot write %s without root: nothing was changed; run %s", *path, howto)
		}
		return fmt.Errorf("udev rules: %w", err)
	}
	if !*noReload {
		for _, a := range [][]string{{"control", "--reload-rules"}, {"trigger"}} {
			if out, err := exec.CommandContext(ctx, "udevadm", a...).CombinedOutput(); err != nil {
				return fmt.Errorf("%s was written, but udevadm %s failed (%v: %s): run it by hand, or replug the device", *path, strings.Join(a, " "), err, strings.TrimSpace(string(out)))
			}
		}
	}
	return e.print(map[string]any{"path": *path, "steps": steps}, "wrote "+*path+"; "+strings.Join(steps[1:], "; ")+"\nunplug and replug the device")
}
