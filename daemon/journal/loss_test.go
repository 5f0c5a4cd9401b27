package journal

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// paid journals two requests: one done (paid), one signed but not confirmed.
func paid(t *testing.T, path string) {
	t.Helper()
	j, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	ctx := context.Background()
	if _, _, err := j.Run(ctx, "cli/pay-1", "p", func(context.Context, json.RawMessage, func(json.RawMessage) error) (json.RawMessage, error) {
		return json.RawMessage(`{"txid":"aa"}`), nil
	}); err != nil {
		t.Fatal(err)
	}
	j.Run(ctx, "cli/pay-2", "p", func(_ context.Context, _ json.RawMessage, cp func(json.RawMessage) error) (json.RawMessage, error) {
		cp(json.RawMessage(`{"raw":"bb"}`))
		return nil, errors.New("broadcast failed")
	})
}

// TestLossRefused: every way a journal can silently vanish leaves it refusing requests, so a
// retried request id cannot pay a second time; a person checks and accepts the loss.
func TestLossRefused(t *testing.T) {
	other := func() bool { return true }
	for _, tt := range []struct {
		name  string
		harm  func(path string)
		other func() bool
		want  string
	}{
		{"deleted", func(p string) { os.Remove(p) }, nil, "holds 0"},
		{"emptied", func(p string) { os.WriteFile(p, nil, 0o600) }, nil, "holds 0"},
		{"truncated to its first line", func(p string) {
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:strings.IndexByte(string(b), '\n')+1], 0o600)
		}, nil, "holds 1"},
		{"a line edited", func(p string) {
			b, _ := os.ReadFile(p)
			os.WriteFile(p, []byte(strings.Replace(string(b), `"txid":"aa"`, `"txid":"ab"`, 1)), 0o600)
		}, nil, "line"},
		{"head deleted", func(p string) { os.Remove(HeadPath(p)) }, nil, "head"},
		{"journal and head deleted beside other state", func(p string) { os.Remove(p); os.Remove(HeadPath(p)) }, other, "other state"},
		{"replaced by an unchained copy", func(p string) {
			os.WriteFile(p, []byte(`{"key":"cli/x","state":"started","params":"p","time":"2026-01-01T00:00:00Z"}`+"\n"), 0o600)
		}, nil, "holds 1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "journal.jsonl")
			paid(t, path)
			tt.harm(path)
			j, err := Open(path, Options{OtherState: tt.other})
			if err != nil {
				t.Fatal(err)
			}
			ran := false
			_, _, err = j.Run(context.Background(), "cli/pay-1", "p", func(context.Context, json.RawMessage, func(json.RawMessage) error) (json.RawMessage, error) {
				ran = true
				return nil, nil
			})
			if !errors.Is(err, ErrLost) || ran || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("retry of a paid id: ran=%v err=%v", ran, err)
			}
			j.Close()
			rep, err := Check(path, tt.other)
			if err != nil || rep.OK || rep.Lost == "" {
				t.Fatalf("check: %+v %v", rep, err)
			}
			lr, err := AcceptLoss(path, "checked the chain by hand", tt.other, map[string]string{"cli/pay-1": "audit record 7: txid abc"})
			if err != nil {
				t.Fatal(err)
			}
			j2, err := Open(path, Options{OtherState: tt.other})
			if err != nil {
				t.Fatal(err)
			}
			defer j2.Close()
			if j2.Lost() != nil || j2.LossAccepted() == nil || j2.LossAccepted().Reason != lr.Reason {
				t.Fatalf("after accept-loss: lost %v, record %+v", j2.Lost(), j2.LossAccepted())
			}
			if _, _, err := j2.Run(context.Background(), "cli/new", "p", func(context.Context, json.RawMessage, func(json.RawMessage) error) (json.RawMessage, error) {
				return json.RawMessage(`1`), nil
			}); err != nil {
				t.Fatalf("a new request after accept-loss: %v", err)
			}
			// The audit log named pay-1 as sent before the loss: unless the journal still
			// holds it (a readable line carried over), its retry is refused, never run.
			_, _, err = j2.Run(context.Background(), "cli/pay-1", "p", func(context.Context, json.RawMessage, func(json.RawMessage) error) (json.RawMessage, error) {
				ran = true
				return json.RawMessage(`1`), nil
			})
			refused := lr.Prior["cli/pay-1"] != ""
			if lr.Found == 0 && !refused {
				t.Fatalf("nothing was carried over, yet the id the audit log names is not refused: %+v", lr)
			}
			if refused && (!errors.Is(err, ErrLostRequest) || ran || !strings.Contains(err.Error(), "txid abc")) {
				t.Fatalf("retry of an id the audit log names: ran=%v err=%v", ran, err)
			}
			if !refused && errors.Is(err, ErrLostRequest) {
				t.Fatalf("retry of an id the journal still holds: %v", err)
			}
		})
	}
}

// TestIntactJournal: the chained journal survives restarts and a crash between a line and
// its head; a fresh data directory is no loss; Check says OK.
func TestIntactJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.jsonl")
	paid(t, path)
	// a line whose head update a crash cut off still stands
	j, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := os.ReadFile(HeadPath(path))
	j.Run(context.Background(), "cli/pay-3", "p", func(context.Context, json.RawMessage, func(json.RawMessage) error) (json.RawMessage, error) {
		return json.RawMessage(`3`), nil
	})
	j.Close()
	os.WriteFile(HeadPath(path), h, 0o600)
	rep, err := Check(path, nil)
	if err != nil || !rep.OK || len(rep.Unfinished) != 1 || rep.Unfinished[0] != "cli/pay-2" {
		t.Fatalf("check: %+v %v", rep, err)
	}
	j2, err := Open(path, Options{OtherState: func() bool { return true }})
	if err != nil || j2.Lost() != nil {
		t.Fatalf("reopen: %v %v", err, j2.Lost())
	}
	res, out, err := j2.Run(context.Background(), "cli/pay-3", "p", nil)
	if err != nil || out != Replayed || string(res) != "3" {
		t.Fatalf("replay: %s %v %v", res, out, err)
	}
	j2.Close()
	if _, err := AcceptLoss(path, "x", nil, nil); err == nil {
		t.Fatal("accepted a loss that did not happen")
	}
	fresh, err := Open(filepath.Join(t.TempDir(), "journal.jsonl"), Options{})
	if err != nil || fresh.Lost() != nil {
		t.Fatalf("fresh: %v", err)
	}
	fresh.Close()
}

func TestLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.jsonl")
	j := open(t, path)
	if _, err := Open(path, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
	if _, err := Check(path, nil); !errors.Is(err, ErrLocked) {
		t.Fatalf("check while open: %v", err)
	}
	j.Close()
	j2 := open(t, path)
	j2.Close()
}
