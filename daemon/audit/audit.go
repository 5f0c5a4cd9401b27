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
// Beside the log, the head file (the log's path + ".head") holds {"seq":N,"hash":"…"} of a
// record known to be durable, padded with spaces to 128 bytes and rewritten in place. A log
// shorter than its head was truncated. The head may lag the log (it is a lower bound): a
// crash before its update leaves it behind, which is not an error.
//
// # Group commit
//
// One goroutine (the commit loop) writes the log. Append and AppendLazy give each record its
// seq, prev and hash at once, under a mutex, and queue its line; the loop writes everything
// queued with one write call and one fsync (a batch), so concurrent callers share an fsync.
//   - Append (signing, broadcast, admin calls) returns once its batch is durable: its cost is
//     at most one fsync, shared with every record queued beside it.
//   - AppendLazy (read-only calls) returns once the record is queued. Its batch starts within
//     Options.LazyDelay (DefaultLazyDelay, 10 ms) or at the next Append, whichever is first, so
//     the record is durable within LazyDelay plus one fsync. A crash in that window loses the
//     newest read-only records at the log's end, never a record in the middle: the chain
//     stays whole.
//
// The head is rewritten (no fsync) after each batch and fsync'ed once the loop has been idle
// for 50 ms, at least every HeadSyncInterval under load, and at Close. A failed write or fsync fails the
// waiting callers and every later append (the log must be reopened): records are never
// acknowledged out of order.
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

// Commit timing.
const (
	// DefaultLazyDelay bounds how long a record from AppendLazy waits before its batch is
	// written and fsync'ed.
	DefaultLazyDelay = 10 * time.Millisecond
	// HeadSyncInterval is the longest the head file goes without an fsync while records are
	// being written.
	HeadSyncInterval = time.Second
)

// Options tune a Log; the zero value is the default.
type Options struct {
	LazyDelay time.Duration // DefaultLazyDelay if 0
}

// batch is the records queued for one write and fsync; done is closed once they are
// durable (err nil) or failed.
type batch struct {
	done chan struct{}
	err  error
}

// Log appends records to one file. It is safe for concurrent use.
type Log struct {
	path      string
	now       func() time.Time
	lazyDelay time.Duration

	mu      sync.Mutex
	f       *os.File // nil once closed
	last    head     // the newest record queued
	queued  []byte   // lines not yet written, in seq order
	next    *batch   // the batch the queued lines belong to
	err     error    // the first write or fsync failure: every later append fails
	closing bool

	urgent  chan struct{} // an Append waits: commit now
	lazy    chan struct{} // an AppendLazy queued a record: commit within lazyDelay
	stopped chan struct{} // the commit loop has ended

	// Owned by the commit loop.
	head       *os.File // the head file, opened at the first batch
	headSynced time.Time
	headDirty  bool
	syncs      int    // fsyncs of the log (tests check batching)
	hookSync   func() // tests: called before each batch's fsync
}

// Open opens (creating if needed) the log at path for appending. It verifies the existing
// chain first and refuses a damaged log; a torn last line left by a crash during an append
// (a record that was never acknowledged, beyond the head) is cut off.
func Open(path string) (*Log, error) { return OpenWith(path, Options{}) }

// OpenWith is Open with options.
func OpenWith(path string, opt Options) (*Log, error) {
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
	l := newLog(path, f, last, opt)
	if err := l.createHead(); err != nil {
		f.Close()
		return nil, err
	}
	go l.loop()
	return l, nil
}

// createHead opens the head file, creating it (with the current head, fsync'ed, and its
// directory entry fsync'ed) if it is missing: from then on it is only rewritten in place,
// so a crash never leaves it missing or empty beside records.
func (l *Log) createHead() error {
	hp := HeadPath(l.path)
	if _, err := os.Stat(hp); err == nil {
		var err error
		l.head, err = os.OpenFile(hp, os.O_RDWR, 0o600)
		return err
	}
	if err := l.writeHead(l.last); err != nil {
		return err
	}
	if err := l.head.Sync(); err != nil {
		return fmt.Errorf("audit: head: %w", err)
	}
	return syncDir(filepath.Dir(hp))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("audit: fsync %s: %w", dir, err)
	}
	return nil
}

func newLog(path string, f *os.File, last head, opt Options) *Log {
	if opt.LazyDelay <= 0 {
		opt.LazyDelay = DefaultLazyDelay
	}
	return &Log{path: path, now: time.Now, lazyDelay: opt.LazyDelay, f: f, last: last,
		next: &batch{done: make(chan struct{})}, urgent: make(chan struct{}, 1),
		lazy: make(chan struct{}, 1), stopped: make(chan struct{})}
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

// Append writes one record and returns once it is durable (written and fsync'ed, in a
// batch shared with concurrent callers). Use it for calls whose record must survive a crash
// before the caller learns the outcome: signing, broadcasting, admin.
func (l *Log) Append(e Entry) (Record, error) {
	r, b, err := l.queue(e, l.urgent)
	if err != nil {
		return Record{}, err
	}
	<-b.done
	if b.err != nil {
		return Record{}, b.err
	}
	return r, nil
}

// AppendLazy queues one record and returns without waiting for the disk: the record is
// durable within the log's LazyDelay plus one fsync (see the package doc). Use it for
// read-only calls. A write failure is returned by the next append (of either kind).
func (l *Log) AppendLazy(e Entry) (Record, error) {
	r, _, err := l.queue(e, l.lazy)
	return r, err
}

// Sync returns once every record queued so far is durable.
func (l *Log) Sync() error {
	l.mu.Lock()
	if l.f == nil {
		l.mu.Unlock()
		return errors.New("audit: log is closed")
	}
	if l.err != nil {
		defer l.mu.Unlock()
		return l.err
	}
	b := l.next
	empty := len(l.queued) == 0
	l.mu.Unlock()
	if empty {
		return nil
	}
	signal(l.urgent)
	<-b.done
	return b.err
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// queue gives e its place in the chain and queues its line for the commit loop.
func (l *Log) queue(e Entry, wake chan struct{}) (Record, *batch, error) {
	if len(e.Summary) > maxSummary {
		e.Summary = e.Summary[:maxSummary] + "…"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil || l.closing {
		return Record{}, nil, errors.New("audit: log is closed")
	}
	if l.err != nil {
		return Record{}, nil, l.err
	}
	r := Record{Seq: l.last.Seq + 1, Time: l.now().UTC(), Prev: l.last.Hash, App: e.App, Method: e.Method,
		Device: e.Device, Summary: e.Summary, Result: e.Result}
	if r.Prev == "" {
		r.Prev = zeroHash
	}
	h, err := hashOf(r)
	if err != nil {
		return Record{}, nil, fmt.Errorf("audit: %w", err)
	}
	r.Hash = h
	line, err := marshal(r)
	if err != nil {
		return Record{}, nil, fmt.Errorf("audit: %w", err)
	}
	l.queued = append(append(l.queued, line...), '\n')
	l.last = head{Seq: r.Seq, Hash: r.Hash}
	signal(wake)
	return r, l.next, nil
}

// headIdle is how long the loop waits without work before it fsyncs the head.
const headIdle = 50 * time.Millisecond

// loop is the commit loop: it writes the queued lines in batches until Close. A signal sent
// while a batch is being written stays in its channel, so records queued meanwhile start
// the next batch as soon as this one is durable (Append) or within lazyDelay (AppendLazy).
func (l *Log) loop() {
	defer close(l.stopped)
	idle := time.NewTimer(headIdle)
	defer idle.Stop()
	var deadline <-chan time.Time
	for {
		select {
		case <-l.urgent:
		case <-deadline:
		case <-l.lazy:
			if deadline == nil {
				deadline = time.After(l.lazyDelay)
			}
			continue
		case <-idle.C:
			l.syncHead()
			continue
		}
		deadline = nil
		if !l.commit() {
			return
		}
		idle.Reset(headIdle)
	}
}

// commit writes one batch. It reports false once the log is closing (all is written then).
func (l *Log) commit() bool {
	l.mu.Lock()
	data, b, last, closing := l.queued, l.next, l.last, l.closing
	l.queued, l.next = nil, &batch{done: make(chan struct{})}
	l.mu.Unlock()
	if len(data) > 0 {
		err := l.write(data)
		if err != nil {
			l.fail(err)
		}
		b.err = err
		close(b.done)
		if err == nil {
			l.putHead(last)
		}
	} else {
		close(b.done)
	}
	if closing {
		l.syncHead()
		return false
	}
	return true
}

// fail records the log's first failure; every later append returns it.
func (l *Log) fail(err error) {
	l.mu.Lock()
	if l.err == nil {
		l.err = err
	}
	l.mu.Unlock()
}

// write appends one batch with one write call and fsyncs it.
func (l *Log) write(data []byte) error {
	if _, err := l.f.Write(data); err != nil {
		return fmt.Errorf("audit: write %s (the log must be reopened): %w", l.path, err)
	}
	if l.hookSync != nil {
		l.hookSync()
	}
	l.syncs++
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("audit: fsync %s (the log must be reopened): %w", l.path, err)
	}
	return nil
}

// putHead rewrites the head after a durable batch; it is fsync'ed by syncHead (when idle)
// or here, once HeadSyncInterval has passed since the last fsync.
func (l *Log) putHead(h head) {
	if err := l.writeHead(h); err != nil {
		l.fail(err)
		return
	}
	l.headDirty = true
	if time.Since(l.headSynced) >= HeadSyncInterval {
		l.syncHead()
	}
}

func (l *Log) syncHead() {
	if !l.headDirty || l.head == nil {
		return
	}
	err := l.head.Sync()
	l.headDirty = false
	l.headSynced = time.Now()
	if err != nil {
		l.fail(fmt.Errorf("audit: head: %w", err))
	}
}

// Close writes what is queued, fsyncs the log and its head, and closes the files.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.f == nil || l.closing {
		l.mu.Unlock()
		return nil
	}
	l.closing = true
	l.mu.Unlock()
	signal(l.urgent)
	<-l.stopped
	l.mu.Lock()
	defer l.mu.Unlock()
	err := errors.Join(l.err, l.f.Close())
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
	err = l.writeHead(last)
	if l.head != nil {
		err = errors.Join(err, l.head.Sync(), l.head.Close())
	}
	return err
}

// readHead reads the head file; a missing one reads as seq 0 (see headExists).
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
	_, serr := os.Stat(HeadPath(path))
	headExists := serr == nil
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
	return verifyReader(f, want, headExists)
}

func verifyReader(rd io.Reader, want head, headExists bool) (head, error) {
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
	if !headExists && last.Seq > 1 {
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
