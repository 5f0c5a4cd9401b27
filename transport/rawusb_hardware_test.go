//go:build hardware

package transport

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// Real-hardware tests of the raw USB path: go test -tags hardware -run Hardware -v ./transport/
// with one or more WebUSB Trezors plugged in, unlocked or not, and Trezor Suite and Trezor
// Bridge stopped. The README's "Hardware test" section has the checklist around it (udev
// rules, what to unplug when). They are the only tests left out of scripts/test.sh.

const (
	hwMsgInitialize = 0
	hwMsgFeatures   = 17
)

func hardwareTrezors(t *testing.T) []DeviceInfo {
	t.Helper()
	infos, err := Enumerate(t.Context())
	if err != nil && !errors.Is(err, errors.ErrUnsupported) {
		t.Fatal(err)
	}
	var out []DeviceInfo
	for _, d := range infos {
		t.Logf("found %s kind=%s model=%q %04x:%04x %q serial %q unsupported=%v", d.Path, d.Kind, d.Model, d.VendorID, d.ProductID, d.Product, d.Serial, d.Unsupported)
		if strings.HasPrefix(d.Path, SchemeUSB+":") && d.Kind == KindTrezor {
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		t.Fatal("no usb: Trezor found: plug one in (README, Hardware test)")
	}
	return out
}

// TestHardwareInitialize sends Initialize to every raw-USB Trezor and reads Features.
func TestHardwareInitialize(t *testing.T) {
	for _, d := range hardwareTrezors(t) {
		link, err := Open(t.Context(), d.Path)
		if err != nil {
			t.Fatalf("%s: %v", d.Path, err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		typ, body, err := exchange(ctx, link, hwMsgInitialize, nil)
		cancel()
		if err != nil || typ != hwMsgFeatures || !bytes.Contains(body, []byte("trezor.io")) {
			t.Errorf("%s: Initialize: type %d, %d bytes, %v", d.Path, typ, len(body), err)
		}
		// A second open while the first holds the interface is refused as claimed.
		if l2, err := Open(t.Context(), d.Path); !errors.Is(err, ErrClaimed) {
			t.Errorf("%s: second open: %v", d.Path, err)
			if l2 != nil {
				l2.Close()
			}
		}
		// A read nobody answers ends at the deadline.
		ctx, cancel = context.WithTimeout(t.Context(), 300*time.Millisecond)
		err = DoContext(ctx, link, func() error { _, err := link.Read(make([]byte, 64)); return err })
		cancel()
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("%s: unanswered read: %v", d.Path, err)
		}
		if err := link.Close(); err != nil {
			t.Errorf("%s: close: %v", d.Path, err)
		}
	}
}

// TestHardwareUnplug: run with -run HardwareUnplug, start it, and unplug the device when
// the log says so: the blocked read must fail with ErrClosed within a second.
func TestHardwareUnplug(t *testing.T) {
	d := hardwareTrezors(t)[0]
	link, err := Open(t.Context(), d.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer link.Close()
	t.Logf("unplug %s now (within 60 s)", d.Path)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	err = DoContext(ctx, link, func() error { _, err := link.Read(make([]byte, 64)); return err })
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("read across an unplug: %v", err)
	}
	t.Logf("read across the unplug: %v", err)
}
