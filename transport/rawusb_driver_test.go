package transport_test

import (
	"testing"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/devicetest"
	"github.com/hwbridge/hwbridge/device/trezor"
	"github.com/hwbridge/hwbridge/emulator"
	trezoremu "github.com/hwbridge/hwbridge/emulator/trezor"
	"github.com/hwbridge/hwbridge/transport"
)

// TestRawLinkConformance runs the device conformance suite with hwbridge's Trezor driver on
// a RawLink, as the hub opens a usb: path (not an emulator), whose bus is the Trezor
// emulator's in-process packet pipe with a stall every 7th transfer and a zero-length
// packet every 5th IN transfer: RawLink's stall recovery and packet handling under every
// message flow the driver has (multi-packet signing, ButtonRequest loops, refusals).
func TestRawLinkConformance(t *testing.T) {
	var stalls, clears int
	open := func(t *testing.T, policy emulator.Policy) device.Device {
		emu, err := trezoremu.New(trezoremu.Options{Approver: emulator.NewApprover(policy)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = emu.Close() })
		link, counts, err := transport.NewRawLinkOverPipe(emu.Pipe(), 7, 5)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			link.Close()
			s, c := counts()
			stalls, clears = stalls+s, clears+c
		})
		return device.Verify(trezor.New(link, trezor.Options{}))
	}
	caps := devicetest.Capabilities{
		Taproot: true, EIP1559: true, EIP712: true, Multisig: true, NeedsNonWitnessUTXO: true,
		OpenRejecting: func(t *testing.T) device.Device { return open(t, emulator.PolicyReject) },
	}
	t.Run("suite", func(t *testing.T) {
		devicetest.Run(t, func(t *testing.T) device.Device { return open(t, emulator.PolicyAuto) }, caps)
	})
	if stalls == 0 || clears != stalls {
		t.Fatalf("%d stalls injected, %d halts cleared", stalls, clears)
	}
	t.Logf("%d stalls injected and cleared", stalls)
}
