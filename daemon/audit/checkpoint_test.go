package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func appendN(t *testing.T, l *Log, n int) {
	t.Helper()
	for range n {
		if _, err := l.Append(benchEntry(0)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSegments: the active file is sealed into segments as it grows; the chain runs on
// across them, Open continues it and Verify reads every segment.
func TestSegments(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := OpenWith(path, Options{SegmentBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 20)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Verify(path)
	if err != nil || s.Records != 20 || s.Segments < 3 {
		t.Fatalf("verify: %+v %v", s, err)
	}
	l, err = OpenWith(path, Options{SegmentBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 5)
	l.Close()
	s2, err := Verify(path)
	if err != nil || s2.Records != 25 || s2.Segments <= s.Segments {
		t.Fatalf("verify after reopen: %+v %v", s2, err)
	}
	segs, _ := segments(path)
	if err := os.Remove(segs[1].path); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(path); !errors.Is(err, ErrMissing) {
		t.Fatalf("a segment removed: %v", err)
	}
}

// TestCrashDuringRotation: the active file was sealed but the head still points into it.
func TestCrashDuringRotation(t *testing.T) {
	path := writeLog(t, 5)
	h, _, err := readHeadFile(path)
	if err != nil || h.Base != 1 {
		t.Fatalf("head %+v %v", h, err)
	}
	if err := os.Rename(path, segName(path, 1)); err != nil {
		t.Fatal(err)
	}
	for _, active := range []string{"missing", "empty"} {
		t.Run("active file "+active, func(t *testing.T) {
			if active == "empty" {
				os.WriteFile(path, nil, 0o600)
			}
			l, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			r, err := l.Append(Entry{App: "a", Method: "m", Result: "ok"})
			if err != nil || r.Seq != 6 {
				t.Fatalf("append: %+v %v", r, err)
			}
			l.Close()
			if s, err := Verify(path); err != nil || s.Records != 6 || s.Segments != 1 {
				t.Fatalf("verify: %+v %v", s, err)
			}
			if active == "missing" { // the second case starts from the same sealed state
				os.Remove(path)
				writeHeadForTest(t, path, h)
			}
		})
	}
}

func writeHeadForTest(t *testing.T, path string, h head) {
	t.Helper()
	l := &Log{path: path}
	if err := l.writeHead(h); err != nil {
		t.Fatal(err)
	}
	l.head.Close()
}

// TestLaggingHead: a crash before the head caught up (lazy records, head not yet synced):
// Open checks from the older checkpoint, keeps the whole records after it, adds a lost
// newline and cuts a torn line.
func TestLaggingHead(t *testing.T) {
	path := writeLog(t, 3)
	h3, _, _ := readHeadFile(path)
	l, _ := Open(path)
	appendN(t, l, 2)
	l.Close()
	writeHeadForTest(t, path, h3)
	b, _ := os.ReadFile(path)
	tests := []struct {
		name string
		data []byte
		want uint64 // records after Open
	}{
		{"whole records after the head", b, 5},
		{"last record without its newline", bytes.TrimSuffix(b, []byte("\n")), 5},
		{"torn line after the head", append(bytes.Clone(b), `{"seq":6,"ti`...), 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "audit.jsonl")
			os.WriteFile(p, tt.data, 0o600)
			writeHeadForTest(t, p, h3)
			l, err := Open(p)
			if err != nil {
				t.Fatal(err)
			}
			r, err := l.Append(Entry{App: "a", Method: "m", Result: "ok"})
			if err != nil || r.Seq != tt.want+1 {
				t.Fatalf("append: %+v %v", r, err)
			}
			l.Close()
			if s, err := Verify(p); err != nil || s.Records != tt.want+1 {
				t.Fatalf("verify: %+v %v", s, err)
			}
		})
	}
}

// TestOldHeadUpgraded: a head without a checkpoint (an older hwbridged) makes Open read the
// whole log once and write a head with one.
func TestOldHeadUpgraded(t *testing.T) {
	path := writeLog(t, 4)
	h, _, _ := readHeadFile(path)
	old, _ := json.Marshal(map[string]any{"seq": h.Seq, "hash": h.Hash})
	os.WriteFile(HeadPath(path), append(old, strings.Repeat(" ", 100)+"\n"...), 0o600)
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	got, _, _ := readHeadFile(path)
	if got.Seq != 4 || got.Base != 1 || got.Off != h.Off {
		t.Fatalf("head after upgrade %+v, want checkpoint %+v", got, h)
	}
}

// TestCheckpointNamesItsRecord: a head whose offset or hash does not match the record there
// is refused by Open and by Verify.
func TestCheckpointNamesItsRecord(t *testing.T) {
	path := writeLog(t, 4)
	h, _, _ := readHeadFile(path)
	for _, bad := range []head{
		{Seq: h.Seq, Hash: h.Hash, Base: 1, Off: h.Off - 10},
		{Seq: h.Seq, Hash: strings.Repeat("a", 64), Base: 1, Off: h.Off},
		{Seq: h.Seq, Hash: h.Hash, Base: 1, Off: h.Off + 1000},
	} {
		writeHeadForTest(t, path, bad)
		if l, err := Open(path); err == nil {
			l.Close()
			t.Errorf("Open accepted head %+v", bad)
		}
		if _, err := Verify(path); err == nil {
			t.Errorf("Verify accepted head %+v", bad)
		}
	}
}

// TestVerifyWhileWriting: a line being written (or torn by a crash) after the head's record
// is not damage; Verify counts the records before it.
func TestVerifyWhileWriting(t *testing.T) {
	path := writeLog(t, 3)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"seq":4,"time":"2026-`)
	f.Close()
	if s, err := Verify(path); err != nil || s.Records != 3 {
		t.Fatalf("verify: %+v %v", s, err)
	}
}
