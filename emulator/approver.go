package emulator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Policy says how an emulated device answers a confirmation screen.
type Policy string

// The approval policies.
const (
	// PolicyAuto approves every screen at once (what trezorctl and CI need).
	PolicyAuto Policy = "auto"
	// PolicyReject rejects every screen at once, as a user pressing ✗.
	PolicyReject Policy = "reject"
	// PolicyPrompt waits for Press (the control API, a DebugLink decision, a test).
	PolicyPrompt Policy = "prompt"
)

// ParsePolicy reads "auto", "reject" or "prompt".
func ParsePolicy(s string) (Policy, error) {
	switch p := Policy(s); p {
	case PolicyAuto, PolicyReject, PolicyPrompt:
		return p, nil
	}
	return "", fmt.Errorf("emulator: unknown approval policy %q (use auto, reject or prompt)", s)
}

// Screen is what the device shows the user before a confirmation: the title of the
// screen and its lines (address, amount, fee, chain, message text, …).
type Screen struct {
	Device string   `json:"device"`
	Title  string   `json:"title"`
	Lines  []string `json:"lines,omitempty"`
}

// Outcome is how a screen was answered.
type Outcome string

// The outcomes recorded in the transcript.
const (
	OutcomePending   Outcome = "pending"
	OutcomeApproved  Outcome = "approved"
	OutcomeRejected  Outcome = "rejected"
	OutcomeCancelled Outcome = "cancelled" // the exchange ended (host cancel, disconnect) first
	OutcomeShown     Outcome = "shown"     // informational, nothing to answer
)

// Entry is one screen in the transcript.
type Entry struct {
	Screen
	Time    time.Time `json:"time"`
	Outcome Outcome   `json:"outcome"`
}

// ErrNoPrompt is returned by Press when the policy is not prompt.
var ErrNoPrompt = errors.New("emulator: the approval policy is not prompt (set it with POST /policy)")

// maxTranscript bounds the transcript; the oldest entries go first.
const maxTranscript = 10000

// Approver decides confirmation screens by policy and keeps the transcript of every screen
// shown. It is safe for concurrent use; several devices may share one.
type Approver struct {
	mu         sync.Mutex
	policy     Policy
	transcript []Entry
	// presses carries button presses to a waiting Ask. One press may wait in it for the next
	// screen: HWI sends its DebugLink decision right after ButtonAck, on another socket, and
	// that can overtake the device reaching the screen.
	presses chan bool
	waiting int
}

// NewApprover returns an approver with the given policy (an empty policy means auto).
func NewApprover(policy Policy) *Approver {
	if policy == "" {
		policy = PolicyAuto
	}
	return &Approver{policy: policy, presses: make(chan bool, 1)}
}

// Policy returns the current policy.
func (a *Approver) Policy() Policy {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.policy
}

// SetPolicy changes the policy for screens asked from now on and for a screen waiting in
// prompt mode (auto approves it, reject rejects it). A press held for the next screen is
// dropped.
func (a *Approver) SetPolicy(p Policy) error {
	if _, err := ParsePolicy(string(p)); err != nil {
		return err
	}
	a.mu.Lock()
	a.policy = p
	waiting := a.waiting > 0
	a.mu.Unlock()
	select {
	case <-a.presses:
	default:
	}
	if waiting && p != PolicyPrompt {
		select {
		case a.presses <- p == PolicyAuto:
		default:
		}
	}
	return nil
}

// Show records an informational screen that needs no answer.
func (a *Approver) Show(s Screen) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.appendLocked(Entry{Screen: s, Time: time.Now(), Outcome: OutcomeShown})
}

func (a *Approver) appendLocked(e Entry) int {
	if len(a.transcript) >= maxTranscript {
		a.transcript = slices.Delete(a.transcript, 0, len(a.transcript)-maxTranscript+1)
	}
	a.transcript = append(a.transcript, e)
	return len(a.transcript) - 1
}

// Ask shows s, records it in the transcript and decides it: auto approves, reject rejects,
// prompt waits for Press or for ctx to end (then it returns ctx's error and records the
// screen as cancelled).
func (a *Approver) Ask(ctx context.Context, s Screen) (approved bool, err error) {
	a.mu.Lock()
	e := Entry{Screen: s, Time: time.Now(), Outcome: OutcomePending}
	idx := a.appendLocked(e)
	pol := a.policy
	if pol != PolicyPrompt {
		approved = pol == PolicyAuto
		a.setOutcomeLocked(idx, e.Time, approved)
		a.mu.Unlock()
		return approved, nil
	}
	a.waiting++
	a.mu.Unlock()

	defer func() {
		a.mu.Lock()
		a.waiting--
		if err != nil {
			a.setOutcome(idx, e.Time, OutcomeCancelled)
		} else {
			a.setOutcomeLocked(idx, e.Time, approved)
		}
		a.mu.Unlock()
	}()
	select {
	case approved = <-a.presses:
		return approved, nil
	case <-ctx.Done():
		return false, fmt.Errorf("emulator: waiting for a button press on %q: %w", s.Title, context.Cause(ctx))
	}
}

func (a *Approver) setOutcomeLocked(idx int, t time.Time, approved bool) {
	o := OutcomeRejected
	if approved {
		o = OutcomeApproved
	}
	a.setOutcome(idx, t, o)
}

// setOutcome finds the entry again (the transcript may have been trimmed) by its time.
func (a *Approver) setOutcome(idx int, t time.Time, o Outcome) {
	for i := min(idx, len(a.transcript)-1); i >= 0; i-- {
		if a.transcript[i].Time.Equal(t) && a.transcript[i].Outcome == OutcomePending {
			a.transcript[i].Outcome = o
			return
		}
	}
}

// Press answers the screen waiting in prompt mode (approve = the ✓ button). With no screen
// waiting yet, the press is held for the next one (a newer press replaces it). It fails
// with ErrNoPrompt unless the policy is prompt.
func (a *Approver) Press(approve bool) error {
	if a.Policy() != PolicyPrompt {
		return ErrNoPrompt
	}
	select {
	case a.presses <- approve:
		return nil
	default:
	}
	// A held press is replaced by the newer one.
	select {
	case <-a.presses:
	default:
	}
	select {
	case a.presses <- approve:
	default:
	}
	return nil
}

// Pending returns the screen waiting for a press, if any.
func (a *Approver) Pending() (Screen, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.waiting == 0 {
		return Screen{}, false
	}
	for i := len(a.transcript) - 1; i >= 0; i-- {
		if a.transcript[i].Outcome == OutcomePending {
			return a.transcript[i].Screen, true
		}
	}
	return Screen{}, false
}

// Transcript returns a copy of every screen shown so far, oldest first.
func (a *Approver) Transcript() []Entry {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Entry, len(a.transcript))
	for i, e := range a.transcript {
		e.Lines = slices.Clone(e.Lines)
		out[i] = e
	}
	return out
}

// ClearTranscript forgets every recorded screen.
func (a *Approver) ClearTranscript() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.transcript = nil
}
