//go:build !linux

package daemon

import (
	"errors"
	"fmt"
	"net"
)

// peerUID is available on Linux only; elsewhere every peer is refused.
func peerUID(c *net.UnixConn) (int, error) {
	return -1, fmt.Errorf("reading a socket peer's uid on this system: %w", errors.ErrUnsupported)
}
