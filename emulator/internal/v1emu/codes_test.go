package v1emu

import (
	"testing"

	"github.com/hwbridge/hwbridge/internal/keepkeypb"
	"github.com/hwbridge/hwbridge/internal/trezorpb"
)

// The failure codes the session answers by itself must mean the same in both families.
func TestFailureCodes(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want int32
	}{
		{"trezor UnexpectedMessage", int32(trezorpb.FailureType_Failure_UnexpectedMessage), FailureUnexpectedMessage},
		{"trezor ActionCancelled", int32(trezorpb.FailureType_Failure_ActionCancelled), FailureActionCancelled},
		{"keepkey UnexpectedMessage", int32(keepkeypb.FailureType_Failure_UnexpectedMessage), FailureUnexpectedMessage},
		{"keepkey ActionCancelled", int32(keepkeypb.FailureType_Failure_ActionCancelled), FailureActionCancelled},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, v1emu uses %d", c.name, c.got, c.want)
		}
	}
}
