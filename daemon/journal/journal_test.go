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
		{"crash before signing", false, ErrInterrupted, Replayed},
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
				t.Fatal("an interrupted request ran again")
			}
		})
	}
}

func TestFailedIsReplayed(t *testing.T) {
	j := open(t, filepath.Join(t.TempDir(), "j.jsonl"))
	runs := 0
	fn := func(context.Context, json.RawMessage, func(json.RawMessage) error) (json.RawMessage, error) {
		runs++
		return nil, errors.New("rejected on the device")
	}
	for range 2 {
		if _, _, err := j.Run(context.Background(), "k", "p", fn); err == nil || err.Error() != "rejected on the device" {
			t.Fatalf("err = %v", err)
		}
	}
	if runs != 1 {
		t.Fatalf("ran %d times", runs)
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
	if _, err := Open(path, Options{}); err == nil {
		t.Fatal("opened a damaged journal")
	}
}
