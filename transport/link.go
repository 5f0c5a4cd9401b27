package transport

import (
	"io"
	"time"
)

// Link is one open connection to one device. Each Write sends one packet (a 64-byte HID
// report or UDP datagram) or one frame (a Speculos APDU frame); each Read returns one. A
// deadline in the past interrupts a blocked Read or Write, which is how callers honour a
// cancelled context. net.Conn satisfies it, so net.Pipe gives an in-process link.
type Link interface {
	io.ReadWriteCloser
	SetDeadline(t time.Time) error
}
