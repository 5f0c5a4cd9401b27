package daemon

import (
	"context"
	"strings"
	"sync"
	"testing"
)

// TestWorkers: results come back to the caller, workers are reused, a panic is raised in
// the caller, and once the daemon's context ends calls run in the caller's goroutine.
func TestWorkers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	w := newWorkers(ctx, 4)
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			var got int
			w.run(func() { got = i * 2 })
			if got != i*2 {
				t.Errorf("run %d: got %d", i, got)
			}
		})
	}
	wg.Wait()
	if n := len(w.idle); n == 0 || n > 4 {
		t.Errorf("%d parked workers, want 1..4", n)
	}
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(r.(string), "boom") {
				t.Errorf("recovered %v, want the worker's panic", r)
			}
		}()
		w.run(func() { panic("boom") })
	}()
	cancel()
	ran := false
	w.run(func() { ran = true })
	if !ran {
		t.Error("run after stop did not run")
	}
}
