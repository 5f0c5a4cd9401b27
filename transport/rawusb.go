package transport

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Raw USB: a wallet's vendor-class (WebUSB) interface driven with interrupt transfers, for
// the Trezors hidapi cannot open (package doc, "Which Trezors are reachable over USB").
// RawLink is the OS-independent state machine; usbHandle is its seam to the OS (usbfs
// ioctls on Linux, rawusb_linux.go), which tests replace by a scripted fake device.

// rawPoll is the longest one transfer waits in the kernel before RawLink looks at its
// deadline again: the bound on how late a cancellation takes effect. A packet wakes it.
const rawPoll = 50 * time.Millisecond

// Errors of the raw USB path. Callers branch on them with errors.Is.
var (
	// ErrClaimed: another program holds the wallet interface (Trezor Suite, Trezor Bridge /
	// trezord, another hwbridged). Quit it and retry.
	ErrClaimed = errors.New("transport: the wallet's usb interface is claimed by another program " +
		"(trezor suite, trezor bridge (trezord), or another hwbridged): quit it and retry " +
		"(trezor suite runs its bridge in the background while it is open; a separately installed trezor bridge runs as a service: stop it)")
	// ErrNoRawUSB: this build or OS has no raw USB path (see the package documentation).
	ErrNoRawUSB = fmt.Errorf("transport: no raw usb in this build (webusb wallets are reached on linux only): %w", errors.ErrUnsupported)
)

// usbHandle is one opened USB device, as the OS offers it. Errors are the OS's errno values
// (syscall.Errno), which RawLink classifies: ETIMEDOUT (nothing moved in time), EPIPE (the
// endpoint stalled: clear the halt), ENODEV/ESHUTDOWN (unplugged), EBUSY (claimed by
// another program).
type usbHandle interface {
	// claim and release take and give back an interface.
	claim(iface uint8) error
	release(iface uint8) error
	// transfer runs one interrupt transfer on endpoint ep (bit 7 set: IN, buf is filled;
	// clear: OUT, buf is sent) and waits at most timeout. It returns the bytes moved.
	transfer(ep uint8, buf []byte, timeout time.Duration) (int, error)
	// clearHalt clears a stall on ep.
	clearHalt(ep uint8) error
	close() error
}

// validUSBName reports whether s is a sysfs USB device name, BUS-PORT[.PORT…] (e.g.
// "1-3.2"): the form of a usb: path.
func validUSBName(s string) bool {
	bus, ports, ok := strings.Cut(s, "-")
	if !ok || !decimal(bus, 3) {
		return false
	}
	parts := strings.Split(ports, ".")
	if len(parts) > 7 { // USB allows at most 7 tiers below the root
		return false
	}
	for _, p := range parts {
		if !decimal(p, 3) {
			return false
		}
	}
	return true
}

// decimal: 1 to max digits, no leading zero, not zero.
func decimal(s string, max int) bool {
	if s == "" || len(s) > max || s[0] == '0' {
		return false
	}
	_, err := strconv.ParseUint(s, 10, 16)
	return err == nil
}

// RawLink is an open wallet interface on raw USB. Each Write sends one packet (padded with
// zeros to the endpoint's packet size, 64 bytes), each Read returns one. Transfers wait in
// the kernel for at most rawPoll at a time, so a deadline (also one set from another
// goroutine) interrupts them without a reader goroutine. A stalled endpoint is cleared and
// the transfer tried once more; an unplugged device fails with ErrClosed.
type RawLink struct {
	info DeviceInfo
	wire rawWire

	// mu is held for reading around every call into the handle and for writing by Close,
	// so the handle is never closed under a transfer.
	mu sync.RWMutex
	h  usbHandle // nil once closed

	dlMu     sync.Mutex
	deadline time.Time
}

// openRawLink claims the wire interface on h and returns the link; on failure h is closed.
func openRawLink(h usbHandle, info DeviceInfo, wire rawWire) (*RawLink, error) {
	if err := h.claim(wire.Interface); err != nil {
		h.close()
		switch {
		case errors.Is(err, syscall.EBUSY):
			return nil, fmt.Errorf("transport: open %s: claim interface %d: %w: %w", info.Path, wire.Interface, ErrClaimed, err)
		case gone(err):
			return nil, fmt.Errorf("transport: open %s: %w (unplugged): %w", info.Path, ErrNoDevice, err)
		}
		return nil, fmt.Errorf("transport: open %s: claim interface %d: %w", info.Path, wire.Interface, err)
	}
	if wire.MaxPacket <= 0 {
		wire.MaxPacket = V1PacketSize
	}
	return &RawLink{info: info, wire: wire, h: h}, nil
}

// Info describes the device.
func (l *RawLink) Info() DeviceInfo { return l.info }

// SetDeadline sets the deadline for Read and Write; a past one makes a blocked Read return
// within rawPoll with an error wrapping os.ErrDeadlineExceeded.
func (l *RawLink) SetDeadline(t time.Time) error {
	l.dlMu.Lock()
	l.deadline = t
	l.dlMu.Unlock()
	return nil
}

func (l *RawLink) wait(op string) (time.Duration, error) {
	l.dlMu.Lock()
	dl := l.deadline
	l.dlMu.Unlock()
	if dl.IsZero() {
		return rawPoll, nil
	}
	left := time.Until(dl)
	if left <= 0 {
		return 0, fmt.Errorf("transport: usb %s: %w", op, os.ErrDeadlineExceeded)
	}
	return min(left, rawPoll), nil
}

// gone reports an errno that means the device is no longer there.
func gone(err error) bool {
	return errors.Is(err, syscall.ENODEV) || errors.Is(err, syscall.ESHUTDOWN) || errors.Is(err, syscall.ENOENT)
}

// Read returns one packet from the IN endpoint.
func (l *RawLink) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	buf := make([]byte, l.wire.MaxPacket)
	n, err := l.transfer("read", l.wire.In, buf)
	if err != nil {
		return 0, err
	}
	return copy(b, buf[:n]), nil
}

// Write sends b as one packet on the OUT endpoint.
func (l *RawLink) Write(b []byte) (int, error) {
	if len(b) > l.wire.MaxPacket {
		return 0, fmt.Errorf("transport: usb write: %w: packet of %d bytes (the endpoint takes %d)", ErrTooLarge, len(b), l.wire.MaxPacket)
	}
	pkt := make([]byte, l.wire.MaxPacket)
	copy(pkt, b)
	n, err := l.transfer("write", l.wire.Out, pkt)
	if err != nil {
		return 0, err
	}
	if n < len(pkt) {
		return min(n, len(b)), fmt.Errorf("transport: usb write: %d of %d bytes: %w", n, len(pkt), io.ErrShortWrite)
	}
	return len(b), nil
}

// transfer runs one transfer on ep until it moves data or the deadline passes: timeouts of
// one poll are retried, a stall is cleared and the transfer retried once.
func (l *RawLink) transfer(op string, ep uint8, buf []byte) (int, error) {
	stalled := false
	for {
		wait, err := l.wait(op)
		if err != nil {
			return 0, err
		}
		l.mu.RLock()
		if l.h == nil {
			l.mu.RUnlock()
			return 0, fmt.Errorf("transport: usb %s: %w", op, ErrClosed)
		}
		n, err := l.h.transfer(ep, buf, wait)
		var cerr error
		if errors.Is(err, syscall.EPIPE) && !stalled {
			cerr = l.h.clearHalt(ep)
		}
		l.mu.RUnlock()
		switch {
		case err == nil:
			if n == 0 && ep&usbEndpointIn != 0 {
				continue // a zero-length packet: nothing for us
			}
			return n, nil
		case errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, syscall.EINTR), errors.Is(err, syscall.EAGAIN):
			continue
		case gone(err):
			return 0, fmt.Errorf("transport: usb %s: %w (unplugged): %w", op, ErrClosed, err)
		case errors.Is(err, syscall.EPIPE) && !stalled:
			stalled = true
			if cerr != nil {
				if gone(cerr) {
					return 0, fmt.Errorf("transport: usb %s: %w (unplugged): %w", op, ErrClosed, cerr)
				}
				return 0, fmt.Errorf("transport: usb %s: endpoint 0x%02x stalled and clearing the halt failed: %w: %w", op, ep, ErrClosed, cerr)
			}
			continue
		case errors.Is(err, syscall.EPIPE):
			return 0, fmt.Errorf("transport: usb %s: endpoint 0x%02x stalled again after its halt was cleared: %w: %w", op, ep, ErrClosed, err)
		}
		// EPROTO, EILSEQ, EOVERFLOW…: the transfer failed on the bus (often a device
		// being unplugged). The link cannot be trusted to be in step: reopen.
		return 0, fmt.Errorf("transport: usb %s: endpoint 0x%02x: %w: %w", op, ep, ErrClosed, err)
	}
}

// Close releases the interface and the device; it waits for a transfer in progress (at
// most rawPoll). Closing twice is harmless.
func (l *RawLink) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.h == nil {
		return nil
	}
	rerr := l.h.release(l.wire.Interface)
	cerr := l.h.close()
	l.h = nil
	if rerr != nil && !gone(rerr) {
		return fmt.Errorf("transport: usb close: release interface %d: %w", l.wire.Interface, rerr)
	}
	return cerr
}
