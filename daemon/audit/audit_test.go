package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// writeLog appends n records to a fresh log and returns its path.
func writeLog(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	i := 0
	l.now = func() time.Time { i++; return base.Add(time.Duration(i) * time.Second) }
	for k := range n {
		if _, err := l.Append(Entry{App: "wallet", Method: "v1SignPsbt", Device: "udp:127.0.0.1:21324",
			Summary: fmt.Sprintf("sign psbt %d <&>", k), Result: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func lines(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(b, []byte("\n"))[:bytes.Count(b, []byte("\n"))]
}

func TestVerifyGood(t *testing.T) {
	path := writeLog(t, 5)
	s, err := Verify(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Records != 5 || len(s.Head) != 64 {
		t.Fatalf("summary %+v", s)
	}
	// Reopening continues the chain.
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := l.Append(Entry{App: "a", Method: "m", Result: "ok"})
	if err != nil || r.Seq != 6 || r.Prev != s.Head {
		t.Fatalf("append after reopen: %+v %v", r, err)
	}
	l.Close()
	if s, err := Verify(path); err != nil || s.Records != 6 {
		t.Fatalf("verify after reopen: %+v %v", s, err)
	}
	// An empty, never written log is valid.
	if s, err := Verify(filepath.Join(t.TempDir(), "none.jsonl")); err != nil || s.Records != 0 {
		t.Fatalf("missing log: %+v %v", s, err)
	}
}

func TestVerifyTampered(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(ls [][]byte) [][]byte
		head   func(path string) // optional change to the head file
		want   error
	}{
		// Open checks only the record its head names and the records after it, so it sees
		// damage that moves or changes that record (see openSees); Verify sees all of it.
		{"edit summary", func(ls [][]byte) [][]byte {
			ls[2] = bytes.Replace(ls[2], []byte("sign psbt 2"), []byte("sign psbt 9"), 1)
			return ls
		}, nil, ErrEdited},
		{"edit result", func(ls [][]byte) [][]byte {
			ls[1] = bytes.Replace(ls[1], []byte(`"result":"ok"`), []byte(`"result":"rejected"`), 1)
			return ls
		}, nil, ErrEdited},
		{"edit time", func(ls [][]byte) [][]byte {
			ls[0] = bytes.Replace(ls[0], []byte("03:04:06"), []byte("03:04:07"), 1)
			return ls
		}, nil, ErrEdited},
		{"remove middle", func(ls [][]byte) [][]byte { return append(ls[:2:2], ls[3:]...) }, nil, ErrMissing},
		{"remove first", func(ls [][]byte) [][]byte { return ls[1:] }, nil, ErrMissing},
		{"swap two", func(ls [][]byte) [][]byte { ls[1], ls[2] = ls[2], ls[1]; return ls }, nil, ErrMissing},
		{"move last to front", func(ls [][]byte) [][]byte {
			return append([][]byte{ls[4]}, ls[:4]...)
		}, nil, ErrMissing},
		{"duplicate record", func(ls [][]byte) [][]byte { return append(ls[:3:3], ls[2:]...) }, nil, ErrReordered},
		{"truncate last record", func(ls [][]byte) [][]byte { return ls[:4] }, nil, ErrTruncated},
		{"truncate to empty", func(ls [][]byte) [][]byte { return nil }, nil, ErrTruncated},
		{"torn last line", func(ls [][]byte) [][]byte {
			ls[4] = ls[4][:len(ls[4])/2]
			return ls
		}, nil, ErrMalformed},
		{"head removed and log cut", func(ls [][]byte) [][]byte { return ls[:3] }, func(p string) { os.Remove(HeadPath(p)) }, ErrTruncated},
		{"rehashed edit", func(ls [][]byte) [][]byte {
			// Recompute the edited record's own hash: the next record's prev no longer matches.
			ls[2] = rehash(t, bytes.Replace(ls[2], []byte("sign psbt 2"), []byte("sign psbt 7"), 1))
			return ls
		}, nil, ErrMissing},
		{"rehashed edit of last", func(ls [][]byte) [][]byte {
			ls[4] = rehash(t, bytes.Replace(ls[4], []byte("sign psbt 4"), []byte("sign psbt 7"), 1))
			return ls
		}, nil, ErrEdited},
		{"unknown field", func(ls [][]byte) [][]byte {
			ls[0] = bytes.Replace(ls[0], []byte(`{"seq"`), []byte(`{"x":1,"seq"`), 1)
			return ls
		}, nil, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeLog(t, 5)
			ls := tt.tamper(lines(t, path))
			if err := os.WriteFile(path, bytes.Join(ls, nil), 0o600); err != nil {
				t.Fatal(err)
			}
			if tt.head != nil {
				tt.head(path)
			}
			_, err := Verify(path)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("error %T is not a *VerifyError", err)
			}
			// The daemon refuses to append to a log whose checkpoint or tail is damaged (a
			// torn tail beyond the head is the one repair it makes, and the head covers every
			// record here). Same-length edits before the checkpoint are Verify's to find.
			l, err := Open(path)
			if err == nil {
				l.Close()
			}
			if sees := openSees[tt.name]; sees != (err != nil) {
				t.Fatalf("Open: %v (want an error: %v)", err, sees)
			}
		})
	}
}

// openSees says which damage Open finds from its checkpoint (the last record's offset and
// hash): everything that changes the length before it, or the last record itself.
var openSees = map[string]bool{
	"edit summary": false, "edit time": false, "swap two": false, "rehashed edit": false,
	"edit result": true, "remove middle": true, "remove first": true, "move last to front": true,
	"duplicate record": true, "truncate last record": true, "truncate to empty": true,
	"torn last line": true, "head removed and log cut": true, "rehashed edit of last": true,
	"unknown field": true,
}

// rehash recomputes a record line's own hash, as a forger would.
func rehash(t *testing.T, line []byte) []byte {
	t.Helper()
	var r Record
	if err := jsonUnmarshal(line, &r); err != nil {
		t.Fatal(err)
	}
	h, err := hashOf(r)
	if err != nil {
		t.Fatal(err)
	}
	r.Hash = h
	b, err := marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func TestTornTailRepaired(t *testing.T) {
	path := writeLog(t, 3)
	// A crash during the 4th append: half a line, and the head still at 3.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"seq":4,"time":"2026-`)
	f.Close()
	l, err := Open(path)
	if err != nil {
		t.Fatalf("open after torn append: %v", err)
	}
	if r, err := l.Append(Entry{App: "a", Method: "m"}); err != nil || r.Seq != 4 {
		t.Fatalf("append: %+v %v", r, err)
	}
	l.Close()
	if s, err := Verify(path); err != nil || s.Records != 4 {
		t.Fatalf("verify: %+v %v", s, err)
	}
}

func TestHeadLagIsFine(t *testing.T) {
	path := writeLog(t, 3)
	old, _ := os.ReadFile(HeadPath(path))
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l.Append(Entry{App: "a"})
	l.Close()
	// A crash after the append's fsync, before the head was replaced.
	os.WriteFile(HeadPath(path), old, 0o600)
	if s, err := Verify(path); err != nil || s.Records != 4 {
		t.Fatalf("verify: %+v %v", s, err)
	}
}

func TestConcurrentAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 5 {
				if _, err := l.Append(Entry{App: fmt.Sprint(i), Summary: strings.Repeat("x", j)}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	l.Close()
	if s, err := Verify(path); err != nil || s.Records != 40 {
		t.Fatalf("verify: %+v %v", s, err)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func TestTornCoveredRecordNotRepaired(t *testing.T) {
	path := writeLog(t, 3)
	ls := lines(t, path)
	ls[2] = ls[2][:10]
	os.WriteFile(path, bytes.Join(ls, nil), 0o600)
	if _, err := Open(path); err == nil {
		t.Fatal("Open accepted a log whose last acknowledged record is torn")
	}
	if b, _ := os.ReadFile(path); !bytes.HasSuffix(b, ls[2]) {
		t.Fatal("Open changed a damaged log")
	}
}

func TestFillVerifies(t *testing.T) {
	for _, n := range []uint64{0, 1, 1000} {
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		if err := Fill(path, n, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), benchEntry); err != nil {
			t.Fatal(err)
		}
		if s, err := Verify(path); err != nil || s.Records != n {
			t.Fatalf("fill %d: %+v %v", n, s, err)
		}
		l, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if r, err := l.Append(Entry{App: "a", Method: "m", Result: "ok"}); err != nil || r.Seq != n+1 {
			t.Fatalf("append after fill %d: %+v %v", n, r, err)
		}
		l.Close()
	}
}
