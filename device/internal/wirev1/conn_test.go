package wirev1

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/transport"
)

// The error taxonomy both drivers answer with: what callers branch on, and whether the
// session must re-sync.
func TestWrapErr(t *testing.T) {
	c := &Conn{p: &Protocol{Name: "fam"}}
	for _, tc := range []struct {
		err      error
		want     error
		text     string
		linkFail bool
	}{
		{device.ErrLinkLost, device.ErrLinkLost, "fam: op: " + device.ErrLinkLost.Error(), true},
		{context.Canceled, context.Canceled, "fam: op: cancelled: context canceled", true},
		{context.DeadlineExceeded, context.DeadlineExceeded, "", true},
		{transport.ErrClosed, device.ErrDisconnected, "", true},
		{io.EOF, device.ErrDisconnected, "", true},
		{fmt.Errorf("x: %w", device.ErrInvalidInput), device.ErrInvalidInput, "fam: op: x: " + device.ErrInvalidInput.Error(), false},
		{fmt.Errorf("x: %w", errors.ErrUnsupported), errors.ErrUnsupported, "", false},
		{fmt.Errorf("locked (%w)", errRefusedByHost), device.ErrProtocol, "", false},
		{errors.New("odd"), device.ErrProtocol, "fam: op: " + device.ErrProtocol.Error() + ": odd", true},
	} {
		got := c.wrapErr("op", tc.err)
		if !errors.Is(got, tc.want) {
			t.Errorf("wrapErr(%v) = %v, not %v", tc.err, got, tc.want)
		}
		if tc.text != "" && got.Error() != tc.text {
			t.Errorf("wrapErr(%v) = %q, want %q", tc.err, got, tc.text)
		}
		if isLinkFailure(tc.err) != tc.linkFail {
			t.Errorf("isLinkFailure(%v) = %v", tc.err, !tc.linkFail)
		}
	}
	de := &device.Error{Kind: device.ErrUserRejected}
	if got := c.wrapErr("op", de); got != de || de.Op != "op" || isLinkFailure(de) {
		t.Errorf("device error: %v, op %q", got, de.Op)
	}
}
