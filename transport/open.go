package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Device path schemes (design.md "Device paths").
const (
	SchemeHID = "hid" // hid:<os path>, a USB device found by Enumerate
	SchemeUDP = "udp" // udp:HOST:PORT, a device speaking the Trezor emulator protocol
	SchemeTCP = "tcp" // tcp:HOST:PORT, a device speaking the Speculos APDU protocol
	// SchemeBitBox02 is bitbox02:HOST:PORT, a BitBox02 simulator: 64-byte U2F HID packets
	// on a TCP stream (its default port is 15423).
	SchemeBitBox02 = "bitbox02"
	// SchemeUSB (rawusb_sysfs.go): usb:BUS-PORT[.PORT…], a raw-USB wallet found by Enumerate

	// SchemeUnix: unix:PATH, a Coldcard simulator's datagram socket (coldcard.go).
	SchemeUnix = "unix"
)

// DialTimeout bounds opening a TCP link when ctx has no earlier deadline.
const DialTimeout = 5 * time.Second

// ErrInvalidPath: a device path that does not parse.
var ErrInvalidPath = errors.New("transport: invalid device path (want hid:PATH, usb:BUS-PORT, udp:HOST:PORT, tcp:HOST:PORT, unix:PATH or bitbox02:HOST:PORT)")

// Path is a parsed device path.
type Path struct {
	Scheme string // SchemeHID, SchemeUSB, SchemeUDP, SchemeTCP or SchemeUnix
	// Addr is the OS device path for hid, the sysfs device name for usb, HOST:PORT for udp
	// and tcp.
	Addr string
}

func (p Path) String() string { return p.Scheme + ":" + p.Addr }

// USB reports whether p names a device on USB (hid: or usb:) rather than an emulator or a
// device on a socket (udp:, tcp:, unix:).
func (p Path) USB() bool { return p.Scheme == SchemeHID || p.Scheme == SchemeUSB }

// ParsePath parses hid:PATH, usb:BUS-PORT[.PORT…], udp:HOST:PORT, tcp:HOST:PORT or
// unix:PATH. Hosts
// may be names, IPv4 or bracketed IPv6 addresses; the port is required.
func ParsePath(s string) (Path, error) {
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok {
		return Path{}, fmt.Errorf("%w: %q has no scheme", ErrInvalidPath, s)
	}
	switch scheme {
	case SchemeHID:
		if rest == "" {
			return Path{}, fmt.Errorf("%w: %q has no os device path (run hwbridge devices)", ErrInvalidPath, s)
		}
		return Path{Scheme: scheme, Addr: rest}, nil
	case SchemeUSB:
		if !validUSBName(rest) {
			return Path{}, fmt.Errorf("%w: %q: want usb:BUS-PORT[.PORT…], e.g. usb:1-3.2 (run hwbridge devices)", ErrInvalidPath, s)
		}
		return Path{Scheme: scheme, Addr: rest}, nil
	case SchemeUnix:
		if rest == "" {
			return Path{}, fmt.Errorf("%w: %q has no socket path", ErrInvalidPath, s)
		}
		return Path{Scheme: scheme, Addr: rest}, nil
	case SchemeUDP, SchemeTCP, SchemeKeepKey, SchemeBitBox02:
		host, port, err := net.SplitHostPort(rest)
		if err != nil {
			return Path{}, fmt.Errorf("%w: %q: want %s:HOST:PORT: %w", ErrInvalidPath, s, scheme, err)
		}
		if host == "" {
			return Path{}, fmt.Errorf("%w: %q has no host", ErrInvalidPath, s)
		}
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return Path{}, fmt.Errorf("%w: %q: port %q is not a number from 1 to 65535", ErrInvalidPath, s, port)
		}
		return Path{Scheme: scheme, Addr: rest}, nil
	}
	return Path{}, fmt.Errorf("%w: %q: unknown scheme %q", ErrInvalidPath, s, scheme)
}

// Open opens the device at path (see ParsePath). A udp path is pinged first, so that an
// emulator that is not running gives ErrNoDevice at once; a tcp path is dialled; a hid or
// usb path is looked up among the supported wallet interfaces and opened (usb: claims the
// interface, and fails with ErrClaimed while another program holds it).
func Open(ctx context.Context, path string) (Link, error) {
	p, err := ParsePath(path)
	if err != nil {
		return nil, err
	}
	switch p.Scheme {
	case SchemeUDP, SchemeKeepKey:
		return DialUDP(ctx, p.Addr)
	case SchemeTCP, SchemeBitBox02:
		return DialTCP(ctx, p.Addr)
	case SchemeUSB:
		l, err := OpenRaw(ctx, p.Addr)
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return l, nil
	case SchemeUnix:
		return DialColdcardSim(ctx, p.Addr)
	default:
		l, err := OpenHID(ctx, p.Addr)
		if err != nil {
			return nil, err
		}
		return l, nil
	}
}

// DialTCP connects to a Speculos-style APDU port at HOST:PORT. The link is a byte stream:
// use it with the Speculos codec or NewSpeculosExchanger.
func DialTCP(ctx context.Context, addr string) (Link, error) {
	d := net.Dialer{Timeout: DialTimeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("transport: nothing listening on tcp:%s (start hwemu or Speculos, or check the path): %w: %w", addr, ErrNoDevice, err)
		}
		return nil, fmt.Errorf("transport: dial tcp:%s: %w", addr, err)
	}
	return &streamLink{Conn: c}, nil
}

// streamLink is a TCP connection whose errors say when the peer has gone. io.EOF stays
// bare, as io.Reader requires.
type streamLink struct{ net.Conn }

func (l *streamLink) Read(b []byte) (int, error) {
	n, err := l.Conn.Read(b)
	return n, goneErr("tcp read", err)
}

func (l *streamLink) Write(b []byte) (int, error) {
	n, err := l.Conn.Write(b)
	return n, goneErr("tcp write", err)
}

// goneErr wraps errors that mean the peer or the socket is gone with ErrClosed.
func goneErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, net.ErrClosed), errors.Is(err, io.ErrClosedPipe), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("transport: %s: %w: %w", op, ErrClosed, err)
	}
	return err
}
