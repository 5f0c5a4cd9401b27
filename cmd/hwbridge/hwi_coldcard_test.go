package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/coldcard"
	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/hwi"
	"github.com/hwbridge/hwbridge/transport"
)

// TestHWIColdcardEmulator: hwi --emulators also tries HWI's Coldcard simulator socket
// (hwilib/devices/coldcard.py CC_SIMULATOR_SOCK, the simulator's default) and lists what
// answers there as HWI does: type "coldcard", model "coldcard_simulator", no label, the
// master fingerprint; without --emulators, or with nothing there, it is not listed.
func TestHWIColdcardEmulator(t *testing.T) {
	if hwi.ColdcardEmulatorPath != transport.SchemeUnix+":"+transport.DefaultColdcardSimulator {
		t.Fatalf("probe path %s", hwi.ColdcardEmulatorPath)
	}
	path, _ := serveColdcard(t, "XRT", emulator.PolicyAuto)
	link, err := transport.DialColdcardSim(context.Background(), strings.TrimPrefix(path, transport.SchemeUnix+":"))
	if err != nil {
		t.Fatal(err)
	}
	drv := device.Verify(coldcard.New(link, coldcard.Options{Emulator: true}))
	defer drv.Close()
	// only the probe names the path: the candidates found are none
	opened := 0
	s := func(args ...string) []any {
		t.Helper()
		var out strings.Builder
		sig := &hwi.Signer{
			Out:        &out,
			Candidates: func(context.Context) ([]hwi.Candidate, error) { return nil, nil },
			Open: func(_ context.Context, p string) (device.Device, error) {
				if p != hwi.ColdcardEmulatorPath {
					return nil, device.ErrNoDevice
				}
				opened++
				return drv, nil
			},
		}
		if err := sig.Run(t.Context(), args, nil); err != nil {
			t.Fatal(err)
		}
		var list []any
		if err := json.Unmarshal([]byte(out.String()), &list); err != nil {
			t.Fatalf("stdout %q: %v", out.String(), err)
		}
		return list
	}
	if list := s("--chain", "regtest", "enumerate"); len(list) != 0 || opened != 0 {
		t.Fatalf("without --emulators: %v (opened %d)", list, opened)
	}
	list := s("--emulators", "--chain", "regtest", "enumerate")
	if len(list) != 1 || opened != 1 {
		t.Fatalf("enumerate --emulators: %v", list)
	}
	e := list[0].(map[string]any)
	if e["type"] != "coldcard" || e["model"] != "coldcard_simulator" || e["path"] != hwi.ColdcardEmulatorPath || e["fingerprint"] != "73c5da0a" || e["label"] != nil {
		t.Fatalf("enumerate: %v", e)
	}
}
