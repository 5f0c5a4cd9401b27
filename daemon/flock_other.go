//go:build !unix

package daemon

import (
	"errors"
	"fmt"
	"os"
)

// lockNB: no flock here. hwbridged serves its socket on unix systems only (peerUID), so on
// others it stops at the data directory lock with this error.
func lockNB(*os.File) error {
	return fmt.Errorf("locking the data directory on this system (hwbridged runs on linux and other unix systems): %w", errors.ErrUnsupported)
}
