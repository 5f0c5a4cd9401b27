package main

import (
	"context"
	"strings"
	"testing"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/coldcard"
	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/transport"
)

// TestHWIColdcardEmulator: hwi --emulators probes HWI's Coldcard simulator socket
// (hwilib/devices/coldcard.py CC_SIMULATOR_SOCK, /tmp/ckcc-simulator.sock) besides the
// Trezor and Ledger addresses, and names what answers there as HWI does: type "coldcard",
// model "coldcard_simulator", no label, the master fingerprint.
func TestHWIColdcardEmulator(t *testing.T) {
	if hwiColdcardEmulatorPath != "unix:/tmp/ckcc-simulator.sock" {
		t.Fatalf("probe path %s", hwiColdcardEmulatorPath)
	}
	path, _ := serveColdcard(t, "XRT", emulator.PolicyAuto)
	link, err := transport.DialColdcardSim(context.Background(), strings.TrimPrefix(path, transport.SchemeUnix+":"))
	if err != nil {
		t.Fatal(err)
	}
	drv := device.Verify(coldcard.New(link, coldcard.Options{Emulator: true}))
	defer drv.Close()
	// the emulator answers at HWI's address (the map stands in for the socket)
	probed := &hwiSigner{emulators: true, candidates: func(context.Context) ([]hwiCandidate, error) { return nil, nil }}
	found := false
	for _, c := range probed.allCandidates(t.Context()) {
		found = found || (c.path == hwiColdcardEmulatorPath && c.probe)
	}
	if !found {
		t.Fatalf("--emulators does not probe %s", hwiColdcardEmulatorPath)
	}
	v, err := hwiRun(t, map[string]device.Device{hwiColdcardEmulatorPath: drv}, "", "--emulators", "--chain", "regtest", "enumerate")
	if err != nil {
		t.Fatal(err)
	}
	list, _ := v.([]any)
	if len(list) != 1 {
		t.Fatalf("enumerate: %v", v)
	}
	e := list[0].(map[string]any)
	if e["type"] != "coldcard" || e["model"] != "coldcard_simulator" || e["path"] != hwiColdcardEmulatorPath || e["fingerprint"] != "73c5da0a" || e["label"] != nil {
		t.Fatalf("enumerate: %v", e)
	}
	if m := hwiModel(device.Features{Family: device.FamilyColdcard, Model: "mk4"}, hwiCandidate{path: "hid:/dev/hidraw4"}); m != "coldcard" {
		t.Fatalf("a Coldcard over USB: model %q, want coldcard", m)
	}
}
