package external

import (
	"context"
	"os"
	"testing"

	"github.com/hwbridge/hwbridge/device/devicetest"
	"github.com/hwbridge/hwbridge/emulator"
	keepkeyemu "github.com/hwbridge/hwbridge/emulator/keepkey"
)

// TestExternalKeepKey runs the external path against hwemu's KeepKey on a loopback UDP
// port, every screen answered through its debug link (port + 1) with one DebugLinkDecision
// per ButtonRequest: the way the suite drives KeepKey's own emulator
// (HWBRIDGE_CONFORMANCE_DEVICE=keepkey:127.0.0.1:11044 HWBRIDGE_CONFORMANCE_APPROVER=trezor-debug).
func TestExternalKeepKey(t *testing.T) {
	if os.Getenv(EnvDevice) != "" {
		return // TestExternalDevice runs the named device
	}
	emu := keepkeyemu.NewForTest(t, keepkeyemu.Options{Mnemonic: devicetest.Mnemonic, Approver: emulator.NewApprover(emulator.PolicyPrompt)})
	srv, err := emu.ListenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	Run(t, mustEnv(t, map[string]string{EnvDevice: "keepkey:" + srv.Addr().String(), EnvApprover: "trezor-debug"}))
}
