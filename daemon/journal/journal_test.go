package journal

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func open(t *testing.T, path string) *Journal {
	t.Helper()
	j, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

// crashCopy snapshots the journal file as a crash at this moment would leave it.
func crashCopy(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "journal.jsonl")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := os.ReadFile(HeadPath(path))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(HeadPath(p), h, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunOnceAcrossRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.jsonl")
	j := open(t, path)
	var signs atomic.Int32
	fn := func(ctx context.Context, resume json.RawMessage, cp func(json.RawMessage) error) (json.RawMessage, error) {
		signs.Add(1)
		return json.RawMessage(`{"txid":"aa"}`), nil
	}
	ctx := context.Background()
	res, out, err := j.Run(ctx, "app/1", "p", fn)
	if err != nil || out != Ran || string(res) != `{"txid":"aa"}` {
		t.Fatalf("first run: %s %v %v", res, out, err)
	}
	res, out, err = j.Run(ctx, "app/1", "p", fn)
	if err != nil || out != Replayed || string(res) != `{"txid":"aa"}` {
		t.Fatalf("retry: %s %v %v", res, out, err)
	}
	j.Close()
	j2 := open(t, path)
	res, out, err = j2.Run(ctx, "app/1", "p", fn)
	if err != nil || out != Replayed || string(res) != `{"txid":"aa"}` {
		t.Fatalf("retry after restart: %s %v %v", res, out, err)
	}
	if _, _, err := j2.Run(ctx, "app/1", "other", fn); !errors.Is(err, ErrParamsMismatch) {
		t.Fatalf("reuse with other params: %v", err)
	}
	if n := signs.Load(); n != 1 {
		t.Fatalf("signed %d times", n)
	}
}

func TestCrashStates(t *testing.T) {
	tests := []struct {
		name       string
		checkpoint bool
		wantErr    error
		wantOut    Outcome
	}{
		{"crash before signing", false, nil, Ran}, // nothing signed was in hand: run again
		{"crash after checkpoint", true, nil, Resumed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "journal.jsonl")
			j := open(t, path)
			var crashed string
			j.Run(context.Background(), "app/r", "p", func(ctx context.Context, _ json.RawMessage, cp func(json.RawMessage) error) (json.RawMessage, error) {
				if tt.checkpoint {
					if err := cp(json.RawMessage(`{"raw":"0102"}`)); err != nil {
						t.Fatal(err)
					}
				}
				crashed = crashCopy(t, path) // the daemon dies here
				return nil, errors.New("unreachable after a crash")
			})
			j2 := open(t, crashed)
			var got json.RawMessage
			res, out, err := j2.Run(context.Background(), "app/r", "p", func(ctx context.Context, resume json.RawMessage, cp func(json.RawMessage) error) (json.RawMessage, error) {
				got = resume
				return json.RawMessage(`"broadcast"`), nil
			})
			if !errors.Is(err, tt.wantErr) || out != tt.wantOut {
				t.Fatalf("retry: %s %v %v", res, out, err)
			}
			if tt.checkpoint && string(got) != `{"raw":"0102"}` {
				t.Fatalf("resumed with %s", got)
			}
			if !tt.checkpoint && got != nil {
				t.Fatal("a request interrupted before its checkpoint resumed from one")
			}
		})
	}
}

// TestFailedBeforeCheckpointRunsAgain: a failure with nothing signed in hand (a link out of
// step, a rejection) is retryable under the same id; after a checkpoint a retry resumes with
// it and never runs from the start.
func TestFailedBeforeCheckpointRunsAgain(t *testing.T) {
	j := open(t, filepath.Join(t.TempDir(), "j.jsonl"))
	runs := 0
	fn := func(_ context.Context, resume json.RawMessage, cp func(json.RawMessage) error) (json.RawMessage, error) {
		runs++
		if runs == 1 {
			return nil, errors.New("link out of step")
		}
		if resume != nil {
			return nil, errors.New("resumed without a checkpoint")
		}
		if err := cp(json.RawMessage(`{"raw":"aa"}`)); err != nil {
			return nil, err
		}
		return nil, errors.New("node unreachable")
	}
	if _, _, err := j.Run(context.Background(), "k", "p", fn); err == nil || err.Error() != "link out of step" {
		t.Fatalf("first: %v", err)
	}
	if _, out, err := j.Run(context.Background(), "k", "p", fn); err == nil || err.Error() != "node unreachable" || out != Ran {
		t.Fatalf("second: %v %v", out, err)
	}
	var resumed json.RawMessage
	res, out, err := j.Run(context.Background(), "k", "p", func(_ context.Context, resume json.RawMessage, _ func(json.RawMessage) error) (json.RawMessage, error) {
		resumed = resume
		return json.RawMessage(`"sent"`), nil
	})
	if err != nil || out != Resumed || string(resumed) != `{"raw":"aa"}` || string(res) != `"sent"` {
		t.Fatalf("third: %s %v %v (resumed with %s)", res, out, err, resumed)
	}
	if runs != 2 {
		t.Fatalf("ran from the start %d times", runs)
	}
}

func TestConcurrentSameKey(t *testing.T) {
	j := open(t, filepath.Join(t.TempDir(), "j.jsonl"))
	release := make(chan struct{})
	entered := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		j.Run(context.Background(), "k", "p", func(context.Context, json.RawMessage, func(json.RawMessage) error) (json.RawMessage, error) {
			close(entered)
			<-release
			return json.RawMessage(`1`), nil
		})
	})
	<-entered
	if _, _, err := j.Run(context.Background(), "k", "p", nil); !errors.Is(err, ErrInFlight) {
		t.Fatalf("concurrent run: %v", err)
	}
	close(release)
	wg.Wait()
}

func TestTornTailAndDamage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.jsonl")
	j := open(t, path)
	j.Run(context.Background(), "k", "p", func(context.Context, json.RawMessage, func(json.RawMessage) error) (json.RawMessage, error) {
		return json.RawMessage(`1`), nil
	})
	j.Close()
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"key":"k2","sta`)
	f.Close()
	j2 := open(t, path)
	if res, out, err := j2.Run(context.Background(), "k", "p", nil); err != nil || out != Replayed || string(res) != "1" {
		t.Fatalf("after torn tail: %s %v %v", res, out, err)
	}
	j2.Close()
	os.WriteFile(path, []byte("garbage\n"), 0o600)
	j3 := open(t, path)
	if _, _, err := j3.Run(context.Background(), "k", "p", nil); !errors.Is(err, ErrLost) {
		t.Fatalf("a damaged journal served a request: %v", err)
	}
}

// TestReopenCompactWritesNothing: a journal that is already compact and matches its head is
// not rewritten when opened again (no fsync at every daemon start), and still chains on.
func TestReopenCompactWritesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.jsonl")
	run := func(key string) {
		j, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		if _, _, err := j.Run(context.Background(), key, "p", func(context.Context, json.RawMessage, func(json.RawMessage) error) (json.RawMessage, error) {
			return json.RawMessage(`1`), nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	run("a")
	j, err := Open(path, Options{}) // compacts a's lines
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	before, _ := os.Stat(path)
	headBefore, _ := os.Stat(HeadPath(path))
	time.Sleep(20 * time.Millisecond)
	j, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	after, _ := os.Stat(path)
	headAfter, _ := os.Stat(HeadPath(path))
	if !after.ModTime().Equal(before.ModTime()) || !os.SameFile(before, after) || !headAfter.ModTime().Equal(headBefore.ModTime()) {
		t.Fatalf("a compact journal was rewritten at open")
	}
	run("b") // appends chain on from the adopted head
	j, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if j.Lost() != nil {
		t.Fatalf("after appending to an adopted head: %v", j.Lost())
	}
}

func TestResultOnlyOnceDone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.jsonl")
	j := open(t, path)
	ctx := context.Background()
	if _, ok := j.Result("app/x"); ok {
		t.Fatal("a key never run has a result")
	}
	fail := func(context.Context, json.RawMessage, func(json.RawMessage) error) (json.RawMessage, error) {
		return nil, errors.New("boom")
	}
	if _, _, err := j.Run(ctx, "app/x", "p", fail); err == nil {
		t.Fatal("failing run succeeded")
	}
	if _, ok := j.Result("app/x"); ok {
		t.Fatal("a failed request has a result")
	}
	ok := func(context.Context, json.RawMessage, func(json.RawMessage) error) (json.RawMessage, error) {
		return json.RawMessage(`{"plan":"p1"}`), nil
	}
	if _, _, err := j.Run(ctx, "app/x", "p", ok); err != nil {
		t.Fatal(err)
	}
	j.Close()
	j = open(t, path)
	res, found := j.Result("app/x")
	if !found || string(res) != `{"plan":"p1"}` {
		t.Fatalf("after reopen: %s %v", res, found)
	}
}
