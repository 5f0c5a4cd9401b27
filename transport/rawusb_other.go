//go:build !linux || !(amd64 || arm64 || 386 || arm || riscv64 || loong64 || s390x)

package transport

import (
	"context"
	"fmt"
)

// rawSupported: this build has no raw USB path; see the package documentation for why
// macOS and Windows reach WebUSB Trezors through Trezor Suite instead.
const rawSupported = false

func enumerateRaw(context.Context) ([]DeviceInfo, error) { return nil, ErrNoRawUSB }

// OpenRaw fails with ErrNoRawUSB (wrapping errors.ErrUnsupported) in this build.
func OpenRaw(_ context.Context, name string) (*RawLink, error) {
	return nil, fmt.Errorf("transport: open usb:%s: %w", name, ErrNoRawUSB)
}
