package main

import (
	"fmt"
	"syscall"
	"testing"

	"github.com/hwbridge/hwbridge/transport"
)

// TestClaimedIsBusy: a raw-USB Trezor held by Trezor Suite or trezord is a "busy" device
// problem (exit 4), in direct mode and (through daemon.ErrorKind) through hwbridged.
func TestClaimedIsBusy(t *testing.T) {
	err := fmt.Errorf("transport: open usb:1-3: claim interface 0: %w: %w", transport.ErrClaimed, syscall.EBUSY)
	if k := errorKind(err); k != "busy" || exitCodeOf(k) != exitNoDevice {
		t.Fatalf("kind %q, exit %d", k, exitCodeOf(k))
	}
}
