package emulator

import (
	"fmt"
	"sync"
	"time"
)

// MaxFaultDelay caps the reply delay a fault may set.
const MaxFaultDelay = time.Minute

// FaultSpec is a set of faults to arm, as POST /fault takes it. Zero fields leave the armed
// fault unchanged unless Clear is set, which disarms everything first.
type FaultSpec struct {
	// Drop drops the next Drop outgoing packets (HID reports, UDP datagrams, APDU frames).
	Drop int `json:"drop,omitempty"`
	// Corrupt flips bits in the next Corrupt outgoing packets.
	Corrupt int `json:"corrupt,omitempty"`
	// DropAt drops the DropAt-th outgoing packet from now (1 means the next), once; the
	// packets before it pass. With Drop it counts after the dropped ones.
	DropAt int `json:"drop_at,omitempty"`
	// CorruptAt corrupts the CorruptAt-th outgoing packet from now, once.
	CorruptAt int `json:"corrupt_at,omitempty"`
	// DisconnectAt makes the device drop its state when the DisconnectAt-th incoming message
	// from now arrives: it does not answer it and closes the link (or, on UDP, forgets the
	// exchange). 1 means the very next message.
	DisconnectAt int `json:"disconnect_at,omitempty"`
	// DelayMS delays every reply by this many milliseconds (0 with Clear removes the delay).
	DelayMS int `json:"delay_ms,omitempty"`
	// Clear disarms every fault before arming the others.
	Clear bool `json:"clear,omitempty"`
}

// FaultState is what is armed now, and what the device has carried so far.
type FaultState struct {
	Drop         int `json:"drop"`
	Corrupt      int `json:"corrupt"`
	DropAt       int `json:"drop_at"`
	CorruptAt    int `json:"corrupt_at"`
	DisconnectAt int `json:"disconnect_at"`
	DelayMS      int `json:"delay_ms"`
	// Sent counts the outgoing packets (dropped ones included), Received the incoming
	// messages, since the device started: a flow's length is the difference across it.
	Sent     int64 `json:"sent"`
	Received int64 `json:"received"`
}

// Faults holds the faults armed on one device. The zero value has none armed; it is safe for
// concurrent use. A device calls Outgoing for every packet it sends, Incoming for every
// whole message it receives and Delay before every reply.
type Faults struct {
	mu           sync.Mutex
	drop         int
	corrupt      int
	dropAt       int
	corruptAt    int
	disconnectAt int
	delay        time.Duration
	sent         int64
	received     int64
}

// DropNext drops the next n outgoing packets.
func (f *Faults) DropNext(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drop = max(0, n)
}

// CorruptNext corrupts the next n outgoing packets.
func (f *Faults) CorruptNext(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.corrupt = max(0, n)
}

// DisconnectAt arms a disconnect at the n-th incoming message from now (0 disarms it).
func (f *Faults) DisconnectAt(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.disconnectAt = max(0, n)
}

// SetDelay delays every reply by d (capped at MaxFaultDelay).
func (f *Faults) SetDelay(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.delay = min(max(0, d), MaxFaultDelay)
}

// Clear disarms every fault.
func (f *Faults) Clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drop, f.corrupt, f.dropAt, f.corruptAt, f.disconnectAt, f.delay = 0, 0, 0, 0, 0, 0
}

// Apply arms the faults in s.
func (f *Faults) Apply(s FaultSpec) error {
	if s.Drop < 0 || s.Corrupt < 0 || s.DropAt < 0 || s.CorruptAt < 0 || s.DisconnectAt < 0 || s.DelayMS < 0 {
		return fmt.Errorf("emulator: fault counts must not be negative: %+v", s)
	}
	if time.Duration(s.DelayMS)*time.Millisecond > MaxFaultDelay {
		return fmt.Errorf("emulator: delay_ms %d is above the %v cap", s.DelayMS, MaxFaultDelay)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.Clear {
		f.drop, f.corrupt, f.dropAt, f.corruptAt, f.disconnectAt, f.delay = 0, 0, 0, 0, 0, 0
	}
	if s.DropAt > 0 {
		f.dropAt = s.DropAt
	}
	if s.CorruptAt > 0 {
		f.corruptAt = s.CorruptAt
	}
	if s.Drop > 0 {
		f.drop = s.Drop
	}
	if s.Corrupt > 0 {
		f.corrupt = s.Corrupt
	}
	if s.DisconnectAt > 0 {
		f.disconnectAt = s.DisconnectAt
	}
	if s.DelayMS > 0 {
		f.delay = time.Duration(s.DelayMS) * time.Millisecond
	}
	return nil
}

// State reports what is armed.
func (f *Faults) State() FaultState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return FaultState{Drop: f.drop, Corrupt: f.corrupt, DropAt: f.dropAt, CorruptAt: f.corruptAt, DisconnectAt: f.disconnectAt,
		DelayMS: int(f.delay / time.Millisecond), Sent: f.sent, Received: f.received}
}

// Outgoing applies the packet faults to one outgoing packet. It returns the packet to send
// (a corrupted copy, or pkt itself), or send=false when the packet is to be dropped.
func (f *Faults) Outgoing(pkt []byte) (out []byte, send bool) {
	if f == nil {
		return pkt, true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent++
	if f.drop > 0 {
		f.drop--
		return nil, false
	}
	dropNow, corruptNow := countdown(&f.dropAt), countdown(&f.corruptAt)
	if dropNow {
		return nil, false
	}
	if (corruptNow || f.corrupt > 0) && len(pkt) > 0 {
		if !corruptNow {
			f.corrupt--
		}
		out = make([]byte, len(pkt))
		for i, b := range pkt {
			out[i] = ^b
		}
		return out, true
	}
	return pkt, true
}

// countdown steps an armed n-th-from-now counter and reports whether it fires now.
func countdown(n *int) bool {
	if *n == 0 {
		return false
	}
	*n--
	return *n == 0
}

// Incoming counts one whole incoming message and reports whether the device must
// disconnect now instead of handling it.
func (f *Faults) Incoming() (disconnect bool) {
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.received++
	return countdown(&f.disconnectAt)
}

// Delay is how long to wait before each reply.
func (f *Faults) Delay() time.Duration {
	if f == nil {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.delay
}
