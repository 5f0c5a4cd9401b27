package daemon

import "testing"

// TestAuditDurability: only read-scope calls may have their audit record written lazily;
// every signing, broadcasting or admin call (and a key rotation) waits for its record.
func TestAuditDurability(t *testing.T) {
	lazy := map[string]bool{"v1Devices": true, "v1Events": true, "v1Features": true, "v1Fingerprint": true, "v1Xpub": true, "v1Address": true, "v1BtcPolicyAddress": true, "v1BtcMultisigAddress": true}
	for name, r := range routes {
		if got := r.readOnly(); got != lazy[name] {
			t.Errorf("%s: readOnly %v, want %v", name, got, lazy[name])
		}
	}
}
