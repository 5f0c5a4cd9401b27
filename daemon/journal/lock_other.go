//go:build !unix

package journal

import (
	"errors"
	"fmt"
	"os"
)

// lockFile creates path exclusively (no flock on this platform); the returned func removes
// it. A lock file left by a crash must be removed by hand: the error says which.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("%w (%s exists; remove it if no hwbridge process runs)", ErrLocked, path)
	}
	if err != nil {
		return nil, fmt.Errorf("journal: lock: %w", err)
	}
	f.Close()
	return func() { _ = os.Remove(path) }, nil
}
