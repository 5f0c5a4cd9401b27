package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestGroupCommitSharesFsync holds the first batch's fsync until 49 more durable appends
// are queued behind it: they must all go out in one more batch (2 fsyncs for 50 records).
func TestGroupCommitSharesFsync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	release := make(chan struct{})
	first := true
	l.hookSync = func() {
		if first {
			first = false
			<-release
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	wg.Go(func() {
		_, err := l.Append(Entry{App: "a", Method: "v1SignPsbt", Result: "ok"})
		errs <- err
	})
	// Wait until the first record has left the queue (its batch is in the hook).
	waitFor(t, func() bool { l.mu.Lock(); defer l.mu.Unlock(); return l.seq == 1 && len(l.next.recs) == 0 })
	for range n - 1 {
		wg.Go(func() {
			_, err := l.Append(Entry{App: "a", Method: "v1SignPsbt", Result: "ok"})
			errs <- err
		})
	}
	waitFor(t, func() bool { l.mu.Lock(); defer l.mu.Unlock(); return l.seq == n })
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if l.syncs != 2 {
		t.Errorf("%d fsyncs for %d concurrent records, want 2 (one per batch)", l.syncs, n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err := Verify(path); err != nil || s.Records != n {
		t.Fatalf("verify: %+v %v", s, err)
	}
}

// waitFor polls cond for up to 10 s (a bound on a wait, not a timing assertion).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not reached within 10 s")
}

func TestAppendLazy(t *testing.T) {
	t.Run("written without a later append", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		l, err := OpenWith(path, Options{LazyDelay: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if err := l.AppendLazy(Entry{App: "a", Method: "v1Address", Summary: "lazy one", Result: "ok"}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { b, _ := os.ReadFile(path); return bytes.Contains(b, []byte("lazy one")) })
	})
	t.Run("an Append carries the lazy records before it", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		l, err := OpenWith(path, Options{LazyDelay: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		for range 3 {
			if err := l.AppendLazy(Entry{App: "a", Method: "v1Address", Result: "ok"}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := l.Append(Entry{App: "a", Method: "v1SignPsbt", Result: "ok"}); err != nil {
			t.Fatal(err)
		}
		if got := len(lines(t, path)); got != 4 {
			t.Fatalf("%d lines on disk after a durable append, want 4", got)
		}
	})
	t.Run("Sync and Close write what is queued", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		l, err := OpenWith(path, Options{LazyDelay: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		l.AppendLazy(Entry{App: "a", Method: "v1Address", Result: "ok"})
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		if got := len(lines(t, path)); got != 1 {
			t.Fatalf("%d lines after Sync, want 1", got)
		}
		l.AppendLazy(Entry{App: "a", Method: "v1Xpub", Result: "ok"})
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if s, err := Verify(path); err != nil || s.Records != 2 {
			t.Fatalf("after Close: %+v %v", s, err)
		}
		if err := l.AppendLazy(Entry{App: "a", Method: "m", Result: "ok"}); err == nil {
			t.Fatal("append after Close accepted")
		}
	})
}

// TestWriteFailureSticky: a failed write fails its waiters and every later append, so
// that no record is acknowledged after a gap.
func TestWriteFailureSticky(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(Entry{App: "a", Method: "m", Result: "ok"}); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	l.f.Close() // the next write fails
	l.mu.Unlock()
	if _, err := l.Append(Entry{App: "a", Method: "m", Result: "ok"}); err == nil || !strings.Contains(err.Error(), "reopened") {
		t.Fatalf("append on a failing disk: %v", err)
	}
	if err := l.AppendLazy(Entry{App: "a", Method: "m", Result: "ok"}); err == nil {
		t.Fatal("lazy append after a failure accepted")
	}
	if err := l.Close(); err == nil {
		t.Fatal("Close hid the failure")
	}
	if s, err := Verify(path); err != nil || s.Records != 1 {
		t.Fatalf("verify after the failure: %+v %v", s, err)
	}
}

// TestSyncWaitsForTheBatchInFlight: a record the loop has taken but not yet fsync'ed is
// not durable: Sync waits for it.
func TestSyncWaitsForTheBatchInFlight(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := OpenWith(path, Options{LazyDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	release := make(chan struct{})
	l.hookSync = func() { <-release }
	if err := l.AppendLazy(Entry{App: "a", Method: "v1Address", Result: "ok"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { l.mu.Lock(); defer l.mu.Unlock(); return len(l.next.recs) == 0 && l.writing != nil })
	synced := make(chan error, 1)
	go func() { synced <- l.Sync() }()
	select {
	case err := <-synced:
		t.Fatalf("Sync returned (%v) while the batch was still being written", err)
	case <-time.After(50 * time.Millisecond): // a bound on the wait for a wrong early return
	}
	close(release)
	if err := <-synced; err != nil {
		t.Fatal(err)
	}
}
