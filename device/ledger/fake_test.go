package ledger

import (
	"context"
	"encoding/binary"
	"sync"
)

// scripted is a scripted stand-in for a device: it answers the OS commands from its
// state and passes app commands to handle. It is not an emulator: tests use it to pin
// the driver's bytes and its handling of status words.
type scripted struct {
	mu      sync.Mutex
	app     string // "BOLOS" for the dashboard
	version string
	locked  bool
	canQuit bool
	handle  func(apdu []byte) ([]byte, uint16)
	sent    [][]byte
	failure error // returned by Exchange when set
}

func (f *scripted) Exchange(_ context.Context, apdu []byte) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, append([]byte{}, apdu...))
	if f.failure != nil {
		return nil, f.failure
	}
	reply := func(data []byte, sw uint16) ([]byte, error) {
		return binary.BigEndian.AppendUint16(append([]byte{}, data...), sw), nil
	}
	if f.locked {
		return reply(nil, swLocked)
	}
	switch {
	case apdu[0] == claOS && apdu[1] == insAppInfo:
		ver := f.version
		if ver == "" {
			ver = "2.4.6"
		}
		b := []byte{1, byte(len(f.app))}
		b = append(b, f.app...)
		b = append(b, byte(len(ver)))
		b = append(b, ver...)
		return reply(append(b, 1, 0), swOK)
	case apdu[0] == claOS && apdu[1] == insQuitApp:
		if !f.canQuit {
			return reply(nil, swINSNotSupported)
		}
		f.app = dashboardName
		return reply(nil, swOK)
	case apdu[0] == claDashboard && apdu[1] == insOpenApp && f.app == dashboardName:
		f.app = string(apdu[5:])
		return reply(nil, swOK)
	case f.app == dashboardName:
		return reply(nil, swAppNotOpen)
	}
	if f.handle == nil {
		return reply(nil, swINSNotSupported)
	}
	return reply(f.handle(apdu))
}

func (f *scripted) headers() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, a := range f.sent {
		out = append(out, string(hexHeader(a)))
	}
	return out
}

func hexHeader(a []byte) []byte {
	const digits = "0123456789abcdef"
	var out []byte
	for _, b := range a[:4] {
		out = append(out, digits[b>>4], digits[b&15])
	}
	return out
}
