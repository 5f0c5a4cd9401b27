// Package audit is hwbridged's append-only, hash-chained audit log: one JSON record per line
// (JSONL), each carrying the hash of the record before it, so that editing, removing,
// reordering or truncating records is detected by Verify.
//
// # Format
//
// Each line is a JSON object with the fields of Record, in this order:
//
//	{"seq":1,"time":"2026-01-02T03:04:05.123456789Z","prev":"00…00","app":"wallet","method":"v1SignPsbt",
//	 "device":"udp:127.0.0.1:21324","summary":"…","result":"ok","hash":"…"}
//
// seq counts from 1 without gaps. prev is the hash of record seq-1 (64 zeros for the first).
// hash is the lower-case hex SHA-256 of the line's canonical body: the same object without
// the hash field, as encoding/json writes the Record struct (fixed field order, no spaces,
// no HTML escaping). Because prev is inside the body, each hash covers the whole chain.
//
// Beside the log, the head file (the log's path + ".head") holds {"seq":N,"hash":"…"} of the
// last record known to be written, padded with spaces to 128 bytes; it is rewritten in place
// and fsync'ed after every append. A log
// shorter than its head was truncated. A crash between the append and the head update
// leaves the head one record behind, which is not an error (the head is a lower bound).
//
// Appends are written with one write call and fsync'ed before Append returns, then the head
// (two fsyncs per record).
//
// # Errors
//
// Verify returns a *VerifyError (errors.As) naming the first bad record; it wraps one of
// ErrEdited, ErrMissing, ErrReordered, ErrTruncated or ErrMalformed.
package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Record is one audit entry.
type Record struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Prev    string    `json:"prev"`
	App     string    `json:"app"`
	Method  string    `json:"method"`
	Device  string    `json:"device"`
	Summary string    `json:"summary"`
	Result  string    `json:"result"`
	Hash    string    `json:"hash"`
}

// Entry is what a caller records; Log fills in seq, time, prev and hash.
type Entry struct {
	App     string
	Method  string
	Device  string
	Summary string // what was asked or signed (never a secret)
	Result  string // "ok", or the error
}

// MaxLine caps one record's line (longer summaries are cut before writing).
const (
	MaxLine    = 64 << 10
	maxSummary = 16 << 10
)

var zeroHash = strings.Repeat("0", 64)

// Errors wrapped by *VerifyError.
var (
	ErrEdited    = errors.New("record was edited (its hash does not match its content)")
	ErrMissing   = errors.New("a record is missing before this one")
	ErrReordered = errors.New("records are out of order")
	ErrTruncated = errors.New("the log was truncated")
	ErrMalformed = errors.New("the record is not a valid audit record")
)

// VerifyError says where verification failed.
type VerifyError struct {
	Line int    // 1-based line number in the file (0: the file as a whole)
	Seq  uint64 // the record's seq as written, if readable
	Err  error
	What string
}

func (e *VerifyError) Error() string {
	where := "audit log"
	if e.Line > 0 {
		where = fmt.Sprintf("audit log line %d (seq %d)", e.Line, e.Seq)
	}
	s := fmt.Sprintf("%s: %v", where, e.Err)
	if e.What != "" {
		s += ": " + e.What
	}
	return s
}

func (e *VerifyError) Unwrap() error { return e.Err }

// body is Record without Hash: the canonical form hashed.
type body struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Prev    string    `json:"prev"`
	App     string    `json:"app"`
	Method  string    `json:"method"`
	Device  string    `json:"device"`
	Summary string    `json:"summary"`
	Result  string    `json:"result"`
}

func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// hashOf returns the record's hash over its canonical body.
func hashOf(r Record) (string, error) {
	b, err := marshal(body{r.Seq, r.Time, r.Prev, r.App, r.Method, r.Device, r.Summary, r.Result})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

type head struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// HeadPath is where the head of the log at path is kept.
func HeadPath(path string) string { return path + ".head" }

// Log appends records to one file. It is safe for concurrent use.
type Log struct {
	path string
	now  func() time.Time

	mu   sync.Mutex
	f    *os.File
	head *os.File // the head file, opened at the first append
	last head
}

// Open opens (creating if needed) the log at path for appending. It verifies the existing
// chain first and refuses a damaged log; a torn last line left by a crash during an append
// (a record that was never acknowledged, beyond the head) is cut off.
func Open(path string) (*Log, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if err := repairTornTail(path); err != nil {
		return nil, err
	}
	last, err := verify(path)
	if err != nil {
		return nil, fmt.Errorf("audit: refusing to append to a damaged log (run hwbridge audit verify, keep the file as evidence and move it away): %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return &Log{path: path, now: time.Now, f: f, last: last}, nil
}

// repairTornTail cuts an unterminated last line that the head does not cover.
func repairTornTail(path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) || len(data) == 0 {
		return nil
	}
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if data[len(data)-1] == '\n' {
		return nil
	}
	cut := bytes.LastIndexByte(data, '\n') + 1
	var r Record
	if json.Unmarshal(data[cut:], &r) == nil {
		return nil // a complete record without its newline: verify judges it
	}
	h, err := readHead(path)
	if err != nil {
		return err
	}
	if uint64(bytes.Count(data[:cut], []byte("\n"))) < h.Seq {
		return nil // the torn record is one the head covers: verify reports it
	}
	return os.Truncate(path, int64(cut))
}

// Path is the log's file.
func (l *Log) Path() string { return l.path }

// Append writes one record and fsyncs it.
func (l *Log) Append(e Entry) (Record, error) {
	if len(e.Summary) > maxSummary {
		e.Summary = e.Summary[:maxSummary] + "…"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return Record{}, errors.New("audit: log is closed")
	}
	r := Record{Seq: l.last.Seq + 1, Time: l.now().UTC(), Prev: l.last.Hash, App: e.App, Method: e.Method,
		Device: e.Device, Summary: e.Summary, Result: e.Result}
	if r.Prev == "" {
		r.Prev = zeroHash
	}
	h, err := hashOf(r)
	if err != nil {
		return Record{}, fmt.Errorf("audit: %w", err)
	}
	r.Hash = h
	line, err := marshal(r)
	if err != nil {
		return Record{}, fmt.Errorf("audit: %w", err)
	}
	if _, err := l.f.Write(append(line, '\n')); err != nil {
		return Record{}, fmt.Errorf("audit: write %s: %w", l.path, err)
	}
	if err := l.f.Sync(); err != nil {
		return Record{}, fmt.Errorf("audit: fsync %s: %w", l.path, err)
	}
	l.last = head{Seq: r.Seq, Hash: r.Hash}
	if err := l.writeHead(l.last); err != nil {
		return Record{}, err
	}
	return r, nil
}

// Close closes the file.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	if l.head != nil {
		err = errors.Join(err, l.head.Close())
		l.head = nil
	}
	return err
}

// headSize is the fixed size of the head file: it is rewritten in place (one write within a
// disk sector, then fsync), so a crash leaves the old or the new head, never a mix.
const headSize = 128

func (l *Log) writeHead(h head) error {
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	line := append(b, bytes.Repeat([]byte(" "), headSize-1-len(b))...)
	line = append(line, '\n')
	if l.head == nil {
		if l.head, err = os.OpenFile(HeadPath(l.path), os.O_RDWR|os.O_CREATE, 0o600); err != nil {
			return fmt.Errorf("audit: head: %w", err)
		}
	}
	if _, err := l.head.WriteAt(line, 0); err != nil {
		return fmt.Errorf("audit: head: %w", err)
	}
	if err := l.head.Sync(); err != nil {
		return fmt.Errorf("audit: head: %w", err)
	}
	return nil
}

// Fill writes a new log of n records at path (which must not exist yet) fast: buffered
// writes, one fsync, then the head. The records are entry(0) … entry(n-1), one second
// apart from t0. It is for benchmarks and tests that need a long log (a million records
// in a few seconds), not for the daemon.
func Fill(path string, n uint64, t0 time.Time, entry func(i uint64) Entry) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("audit: fill: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	last := head{Hash: zeroHash}
	for i := range n {
		e := entry(i)
		r := Record{Seq: i + 1, Time: t0.Add(time.Duration(i) * time.Second).UTC(), Prev: last.Hash,
			App: e.App, Method: e.Method, Device: e.Device, Summary: e.Summary, Result: e.Result}
		if r.Hash, err = hashOf(r); err == nil {
			var line []byte
			if line, err = marshal(r); err == nil {
				_, err = w.Write(append(line, '\n'))
			}
		}
		if err != nil {
			f.Close()
			return fmt.Errorf("audit: fill: %w", err)
		}
		last = head{Seq: r.Seq, Hash: r.Hash}
	}
	if err := errors.Join(w.Flush(), f.Sync(), f.Close()); err != nil {
		return fmt.Errorf("audit: fill: %w", err)
	}
	if n == 0 {
		return nil
	}
	l := &Log{path: path}
	defer l.Close()
	return l.writeHead(last)
}

func readHead(path string) (head, error) {
	var h head
	b, err := os.ReadFile(HeadPath(path))
	if errors.Is(err, os.ErrNotExist) {
		return h, nil
	}
	if err != nil {
		return h, fmt.Errorf("audit: %w", err)
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return h, &VerifyError{Err: ErrMalformed, What: "head file " + HeadPath(path) + ": " + err.Error()}
	}
	return h, nil
}

// WriteFileAtomic writes data to path through a temporary file in the same directory:
// write, fsync, rename over path, fsync the directory. A reader sees the old or the new
// content, never a mix, also after a crash.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	defer os.Remove(name) // a no-op after the rename
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(name, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Summary is what Verify found in a good log.
type Summary struct {
	Records uint64 // number of records
	Head    string // hash of the last record
}

// Verify checks the whole log at path and its head file. A missing log with no head is an
// empty, valid log.
func Verify(path string) (Summary, error) {
	h, err := verify(path)
	return Summary{Records: h.Seq, Head: h.Hash}, err
}

func verify(path string) (head, error) {
	want, err := readHead(path)
	if err != nil {
		return head{}, err
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		if want.Seq > 0 {
			return head{}, &VerifyError{Err: ErrTruncated, What: fmt.Sprintf("the log file is gone but its head says %d records", want.Seq)}
		}
		return head{}, nil
	}
	if err != nil {
		return head{}, fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	return verifyReader(f, want)
}

func verifyReader(rd io.Reader, want head) (head, error) {
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 0, 4096), MaxLine+1)
	var last head
	last.Hash = zeroHash
	line := 0
	headSeen := want.Seq == 0
	for sc.Scan() {
		line++
		var r Record
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			return head{}, &VerifyError{Line: line, Err: ErrMalformed, What: err.Error()}
		}
		if dec.More() {
			return head{}, &VerifyError{Line: line, Seq: r.Seq, Err: ErrMalformed, What: "trailing data"}
		}
		got, err := hashOf(r)
		if err != nil {
			return head{}, &VerifyError{Line: line, Seq: r.Seq, Err: ErrMalformed, What: err.Error()}
		}
		if got != r.Hash {
			return head{}, &VerifyError{Line: line, Seq: r.Seq, Err: ErrEdited}
		}
		switch {
		case r.Seq <= last.Seq:
			return head{}, &VerifyError{Line: line, Seq: r.Seq, Err: ErrReordered, What: fmt.Sprintf("seq %d follows seq %d", r.Seq, last.Seq)}
		case r.Seq > last.Seq+1:
			return head{}, &VerifyError{Line: line, Seq: r.Seq, Err: ErrMissing, What: fmt.Sprintf("seq %d follows seq %d", r.Seq, last.Seq)}
		case r.Prev != last.Hash:
			return head{}, &VerifyError{Line: line, Seq: r.Seq, Err: ErrMissing, What: "prev does not match the record before"}
		}
		last = head{Seq: r.Seq, Hash: r.Hash}
		if r.Seq == want.Seq {
			if r.Hash != want.Hash {
				return head{}, &VerifyError{Line: line, Seq: r.Seq, Err: ErrEdited, What: "the record differs from the one the head file recorded"}
			}
			headSeen = true
		}
	}
	if err := sc.Err(); err != nil {
		return head{}, &VerifyError{Line: line + 1, Err: ErrMalformed, What: err.Error()}
	}
	if want.Seq == 0 && last.Seq > 1 {
		return head{}, &VerifyError{Err: ErrTruncated, What: "the head file is missing (it is written after every record): the log may have been cut"}
	}
	if !headSeen {
		return head{}, &VerifyError{Err: ErrTruncated, What: fmt.Sprintf("the log ends at seq %d but its head file says %d records were written", last.Seq, want.Seq)}
	}
	if last.Seq == 0 {
		last.Hash = ""
	}
	return last, nil
}
