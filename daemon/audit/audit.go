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
// Beside the log, the head file (the log's path + ".head") holds a checkpoint,
// {"seq":N,"hash":"…","base":B,"off":O}: record N, its hash, and where it ends (O bytes into
// the file whose first record is B), padded with spaces to 256 bytes and rewritten in place.
// The head may lag the log (it is a lower bound): a crash before its update leaves it behind,
// which is not an error. A log shorter than its head was truncated.
//
// # Start-up and verification
//
// Open reads the record at the checkpoint (one read of at most MaxLine bytes), checks that
// it is record N with hash H, then checks the records after it (those written since the head
// was last updated). Its cost does not grow with the log: a million records open as fast as
// ten. Damage before the checkpoint that keeps every byte offset (a same-length edit) is
// found by Verify (hwbridge audit verify), which reads every segment and the active file
// line by line in bounded memory. Heads written before checkpoints existed (no base) make
// Open read the whole log once and write a checkpoint.
//
// # Segments
//
// When the active file would grow past Options.SegmentBytes (DefaultSegmentBytes, 64 MiB),
// it is renamed to path.<seq of its first record, 20 digits> and a new active file starts;
// the chain runs on across files. Sealed segments may be archived together but not dropped:
// Verify needs them all.
//
// # Group commit
//
// One goroutine (the commit loop) writes the log. Append and AppendLazy give each record its
// seq and time under a mutex and queue it (the whole critical section is an append to a
// slice); the loop chains and hashes everything queued and writes it with one write call and
// one fsync (a batch), so concurrent callers share an fsync.
//   - Append (signing, broadcast, admin calls) returns once its batch is durable: its cost is
//     at most one fsync, shared with every record queued beside it.
//   - AppendLazy (read-only calls) returns once the record is queued. Its batch starts within
//     Options.LazyDelay (DefaultLazyDelay, 10 ms) or at the next Append, whichever is first, so
//     the record is durable within LazyDelay plus one fsync (while the loop keeps up: it
//     hashes about 100k records a second on one core). A crash in that window loses the
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

// head is the head file's content: the checkpoint Open starts from.
type head struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
	// Base is the seq of the first record of the file the checkpoint is in (the active file
	// when it was written), Off the bytes of that file up to the end of record Seq (0 with
	// Seq = Base-1: no record of that file yet). Base 0: a head written before checkpoints;
	// Open then reads the whole log once.
	Base uint64 `json:"base,omitempty"`
	Off  int64  `json:"off,omitempty"`
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

// DefaultSegmentBytes is the size past which the active file is sealed into a segment.
const DefaultSegmentBytes = 64 << 20

// Options tune a Log; the zero value is the default.
type Options struct {
	LazyDelay    time.Duration // DefaultLazyDelay if 0
	SegmentBytes int64         // DefaultSegmentBytes if 0
}

// batch is the records queued for one write and fsync, in seq order; done is closed once
// they are durable (err nil) or failed. Callers fill in seq, time and the entry; the commit
// loop fills in prev and hash, so the callers' critical section is an append to recs.
type batch struct {
	done chan struct{}
	err  error
	recs []Record
}

// Log appends records to one file. It is safe for concurrent use.
type Log struct {
	path      string
	now       func() time.Time
	lazyDelay time.Duration

	mu      sync.Mutex
	f       *os.File // nil once closed
	seq     uint64   // the newest record's seq
	next    *batch   // the records queued for the next batch
	writing *batch   // the batch the loop took last (being written, or done)
	err     error    // the first write or fsync failure: every later append fails
	closing bool

	urgent  chan struct{} // an Append waits: commit now
	lazy    chan struct{} // an AppendLazy queued a record: commit within lazyDelay
	stopped chan struct{} // the commit loop has ended

	// Owned by the commit loop (and Open before it starts).
	last       head // the newest record hashed (written, or being written)
	segBytes   int64
	base       uint64 // seq of the active file's first record
	size       int64  // bytes written to the active file
	head       *os.File
	headSynced time.Time
	headDirty  bool
	syncs      int    // fsyncs of the log (tests check batching)
	hookSync   func() // tests: called before each batch's fsync
}

// Open opens (creating if needed) the log at path for appending. It checks the chain from
// the head's checkpoint on (the record the head names and every record after it, so its time
// does not grow with the log) and refuses a damaged tail; a torn last line left by a crash
// during a write (records never acknowledged, beyond the head) is cut off. Verify checks the
// whole log.
func Open(path string) (*Log, error) { return OpenWith(path, Options{}) }

// OpenWith is Open with options.
func OpenWith(path string, opt Options) (*Log, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	rec, err := recoverTail(path)
	if err != nil {
		return nil, fmt.Errorf("audit: refusing to append to a damaged log (run hwbridge audit verify, keep the files as evidence and move them away): %w", err)
	}
	if rec.torn {
		if err := os.Truncate(path, rec.size); err != nil {
			return nil, fmt.Errorf("audit: cut the torn last line: %w", err)
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if rec.nl {
		if _, err := f.Write([]byte{'\n'}); err != nil {
			f.Close()
			return nil, fmt.Errorf("audit: %w", err)
		}
		rec.size++
	}
	last := rec.last
	if last.Seq == 0 {
		last.Hash = ""
	}
	l := newLog(path, f, last, opt)
	l.base, l.size = rec.base, rec.size
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
	cur, exists, err := readHeadFile(l.path)
	if err == nil && exists && cur == l.checkpoint() {
		// A clean close left it as it is: open it for rewriting, no write, no fsync.
		l.head, err = os.OpenFile(hp, os.O_RDWR, 0o600)
		if err != nil {
			return fmt.Errorf("audit: head: %w", err)
		}
		return nil
	}
	if err := l.writeHead(l.checkpoint()); err != nil {
		return err
	}
	if err := l.head.Sync(); err != nil {
		return fmt.Errorf("audit: head: %w", err)
	}
	l.headSynced = time.Now()
	if exists {
		return nil
	}
	return syncDir(filepath.Dir(hp))
}

// checkpoint is the head for what has been written so far.
func (l *Log) checkpoint() head {
	return head{Seq: l.last.Seq, Hash: l.last.Hash, Base: l.base, Off: l.size}
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
	if opt.SegmentBytes <= 0 {
		opt.SegmentBytes = DefaultSegmentBytes
	}
	return &Log{path: path, now: time.Now, lazyDelay: opt.LazyDelay, segBytes: opt.SegmentBytes, f: f, last: last, seq: last.Seq,
		next: &batch{done: make(chan struct{})}, urgent: make(chan struct{}, 1),
		lazy: make(chan struct{}, 1), stopped: make(chan struct{})}
}

// Path is the log's file.
func (l *Log) Path() string { return l.path }

// Append writes one record and returns once it is durable (written and fsync'ed, in a
// batch shared with concurrent callers). Use it for calls whose record must survive a crash
// before the caller learns the outcome: signing, broadcasting, admin.
func (l *Log) Append(e Entry) (Record, error) {
	b, i, err := l.queue(e, l.urgent)
	if err != nil {
		return Record{}, err
	}
	<-b.done
	if b.err != nil {
		return Record{}, b.err
	}
	return b.recs[i], nil
}

// AppendLazy queues one record and returns without waiting for the disk: the record is
// durable within the log's LazyDelay plus one fsync (see the package doc). Use it for
// read-only calls. A write failure is returned by the next append (of either kind).
func (l *Log) AppendLazy(e Entry) error {
	_, _, err := l.queue(e, l.lazy)
	return err
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
	if len(b.recs) == 0 {
		// Nothing queued: wait for the batch being written, if any.
		b = l.writing
		l.mu.Unlock()
		if b == nil {
			return nil
		}
		<-b.done
		return b.err
	}
	l.mu.Unlock()
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

// queue gives e the next seq and the time, and queues it for the commit loop, which
// chains and hashes it. It returns the batch and the record's index in it.
func (l *Log) queue(e Entry, wake chan struct{}) (*batch, int, error) {
	if len(e.Summary) > maxSummary {
		e.Summary = e.Summary[:maxSummary] + "…"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil || l.closing {
		return nil, 0, errors.New("audit: log is closed")
	}
	if l.err != nil {
		return nil, 0, l.err
	}
	l.seq++
	b := l.next
	b.recs = append(b.recs, Record{Seq: l.seq, Time: l.now().UTC(), App: e.App, Method: e.Method,
		Device: e.Device, Summary: e.Summary, Result: e.Result})
	signal(wake)
	return b, len(b.recs) - 1, nil
}

// seal chains and hashes a batch's records (after l.last) and returns their lines.
func (l *Log) seal(recs []Record) ([]byte, error) {
	var data []byte
	for i := range recs {
		r := &recs[i]
		r.Prev = l.last.Hash
		if r.Prev == "" {
			r.Prev = zeroHash
		}
		h, err := hashOf(*r)
		if err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		r.Hash = h
		line, err := marshal(*r)
		if err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		data = append(append(data, line...), '\n')
		l.last = head{Seq: r.Seq, Hash: r.Hash}
	}
	return data, nil
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
	b, closing := l.next, l.closing
	l.next = &batch{done: make(chan struct{})}
	l.writing = b
	l.mu.Unlock()
	if len(b.recs) > 0 {
		first := l.last.Seq + 1
		data, err := l.seal(b.recs)
		if err == nil && l.size > 0 && l.size+int64(len(data)) > l.segBytes {
			err = l.rotate(first)
		}
		last := l.last
		if err == nil {
			err = l.write(data)
		}
		if err != nil {
			l.fail(err)
		}
		b.err = err
		close(b.done)
		if err == nil {
			l.putHead(head{Seq: last.Seq, Hash: last.Hash, Base: l.base, Off: l.size})
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

// rotate seals the active file as a segment (it is already durable) and starts a new one
// whose first record will be seq next; the head then names the new file. A crash between
// the rename and the head update leaves a head inside the sealed segment, which Open
// follows into the new active file.
func (l *Log) rotate(next uint64) error {
	if err := os.Rename(l.path, segName(l.path, l.base)); err != nil {
		return fmt.Errorf("audit: seal a segment (the log must be reopened): %w", err)
	}
	nf, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("audit: start a segment (the log must be reopened): %w", err)
	}
	if err := syncDir(filepath.Dir(l.path)); err != nil {
		nf.Close()
		return err
	}
	l.mu.Lock()
	old := l.f
	l.f = nf
	l.mu.Unlock()
	old.Close()
	l.base, l.size = next, 0
	return nil
}

// write appends one batch with one write call and fsyncs it.
func (l *Log) write(data []byte) error {
	n, err := l.f.Write(data)
	l.size += int64(n)
	if err != nil {
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
const headSize = 256

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
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("audit: fill: %w", err)
	}
	l := &Log{path: path}
	err = l.writeHead(head{Seq: last.Seq, Hash: last.Hash, Base: 1, Off: fi.Size()})
	if l.head != nil {
		err = errors.Join(err, l.head.Sync(), l.head.Close())
	}
	return err
}

// readHeadFile reads the head file and reports whether it exists (missing: seq 0).
func readHeadFile(path string) (head, bool, error) {
	var h head
	b, err := os.ReadFile(HeadPath(path))
	if errors.Is(err, os.ErrNotExist) {
		return h, false, nil
	}
	if err != nil {
		return h, false, fmt.Errorf("audit: %w", err)
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return h, true, &VerifyError{Err: ErrMalformed, What: "head file " + HeadPath(path) + ": " + err.Error()}
	}
	return h, true, nil
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
