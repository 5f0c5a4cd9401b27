package transport

import (
	"errors"
	"os"
	"sync"
	"syscall"
	"time"
)

// pipeUSB is a usbHandle in front of a device model that speaks packets on a Link (an
// emulator's in-process pipe): the bus between RawLink and the model, with the faults a
// real bus has (stalls, zero-length packets). For the external tests (package
// transport_test), which drive the real Trezor driver over it.
type pipeUSB struct {
	link Link

	mu         sync.Mutex
	n          int
	stallEvery int // every stallEvery-th transfer stalls its endpoint (0: never)
	zlpEvery   int // every zlpEvery-th IN transfer returns a zero-length packet first
	halted     map[uint8]bool
	Stalls     int
	Clears     int
}

func (p *pipeUSB) claim(uint8) error   { return nil }
func (p *pipeUSB) release(uint8) error { return nil }
func (p *pipeUSB) close() error        { return p.link.Close() }

func (p *pipeUSB) clearHalt(ep uint8) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.Clears++
	p.halted[ep] = false
	return nil
}

func (p *pipeUSB) transfer(ep uint8, buf []byte, timeout time.Duration) (int, error) {
	p.mu.Lock()
	p.n++
	if p.stallEvery > 0 && p.n%p.stallEvery == 0 {
		p.halted[ep] = true
		p.Stalls++
	}
	halted := p.halted[ep]
	zlp := ep&usbEndpointIn != 0 && p.zlpEvery > 0 && p.n%p.zlpEvery == 0
	p.mu.Unlock()
	if halted {
		return 0, syscall.EPIPE
	}
	if zlp {
		return 0, nil
	}
	var n int
	var err error
	if ep&usbEndpointIn == 0 {
		// The device model always reads: an OUT packet is taken whole, never half-way.
		_ = p.link.SetDeadline(time.Time{})
		n, err = p.link.Write(buf)
	} else {
		_ = p.link.SetDeadline(time.Now().Add(timeout))
		n, err = p.link.Read(buf)
	}
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return 0, syscall.ETIMEDOUT
	case err != nil:
		return 0, syscall.ENODEV // the model is gone: unplugged
	}
	return n, nil
}

// NewRawLinkOverPipe opens a RawLink over a device model's packet link, with a stall every
// stallEvery-th transfer and a zero-length packet every zlpEvery-th IN transfer (0: none).
// stalls reports how many stalls were injected and how many halts were cleared.
func NewRawLinkOverPipe(link Link, stallEvery, zlpEvery int) (l *RawLink, stalls func() (int, int), err error) {
	p := &pipeUSB{link: link, stallEvery: stallEvery, zlpEvery: zlpEvery, halted: map[uint8]bool{}}
	l, err = openRawLink(p, DeviceInfo{Path: "usb:1-1", Kind: KindTrezor}, trezorWire)
	return l, func() (int, int) { p.mu.Lock(); defer p.mu.Unlock(); return p.Stalls, p.Clears }, err
}
