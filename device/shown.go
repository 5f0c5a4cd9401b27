package device

import (
	"context"
	"sync"
)

type shownKey struct{}

// Shown records what a device displayed for a request when that text differs from what
// the call returns: a Ledger's "Bitcoin Test" app shows a regtest address as tb1…
// (testnet encoding, same script) while the call returns bcrt1…. Callers that display
// addresses to a person print both, so the person compares the right string.
type Shown struct {
	mu   sync.Mutex
	text string
}

// WithShown returns a context whose calls record in the returned Shown what the device
// displayed (the hub and wrappers pass the context on).
func WithShown(ctx context.Context) (context.Context, *Shown) {
	s := &Shown{}
	return context.WithValue(ctx, shownKey{}, s), s
}

// NoteShown records text as what the device displayed, if ctx came from WithShown.
func NoteShown(ctx context.Context, text string) {
	if s, ok := ctx.Value(shownKey{}).(*Shown); ok {
		s.mu.Lock()
		s.text = text
		s.mu.Unlock()
	}
}

// String is what the device displayed, "" if nothing was recorded.
func (s *Shown) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.text
}
