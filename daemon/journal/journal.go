// Package journal is the crash-safe request journal of hwbridged and of the CLI in direct
// mode: it makes a sign-and-broadcast request with a request id run at most once, also
// across a restart, and it refuses to serve when it has been lost.
//
// # Format
//
// The journal is an append-only JSONL file, hash-chained like the audit log. Each line is
// one state change of one request, with its sequence number and the SHA-256 of the line
// before it:
//
//	{"n":1,"prev":"","key":"app-id/req-1","state":"started","params":"<sha256 hex>","time":"…"}
//	{"n":2,"prev":"<sha256>","key":"app-id/req-1","state":"checkpoint","data":{…}}  the signed transaction
//	{"n":3,"prev":"<sha256>","key":"app-id/req-1","state":"done","data":{…}}        the result returned
//	{"n":4,"prev":"<sha256>","key":"app-id/req-2","state":"failed","error":{…}}     the error returned
//	{"n":1,"prev":"","key":"","state":"loss","data":{…}}                           a loss accepted by hand
//
// A head file beside it (journal.jsonl.head: the last line's number and hash) is replaced
// atomically (temp file, fsync, rename) after every line, and every line is fsync'ed before
// the step it records goes on (a request is journaled as started before the device is asked
// to sign; a signed transaction is checkpointed before it is broadcast). A lock file
// (journal.jsonl.lock, flock) keeps a second process (the CLI in direct mode next to a
// running hwbridged) out while one has the journal open.
//
// Open replays the lines (the last state of a key wins), cuts a torn last line left by a
// crash, checks the chain against the head, and rewrites the file compacted. A journal that
// is missing, emptied, truncated or edited while its head says otherwise, or a head that is
// missing while the data directory holds other state (Options.OtherState), leaves the journal
// open but refusing every request with ErrLost: nothing is signed until a person has looked
// (Check) and accepted the loss (AcceptLoss), because a retried request id the journal no
// longer knows would sign and pay again.
//
// # Semantics of Run
//
//   - a new key runs fn;
//   - a key that is done returns the first result again, without running anything;
//   - a key with a checkpoint (it was signed; the broadcast failed or the process stopped)
//     runs fn again with the checkpoint, so that fn broadcasts the same signed transaction
//     and never signs again;
//   - a key that failed, or was interrupted by a stop, before any checkpoint runs fn again
//     from the start: nothing signed was in hand, so nothing can have been broadcast (a
//     transient fault, a link out of step, is retryable under the same id);
//   - a key that is running fails with ErrInFlight;
//   - a key reused with other parameters fails with ErrParamsMismatch.
//
// # Errors
//
// ErrInFlight, ErrParamsMismatch, ErrLost and ErrLocked (errors.Is). Errors returned by a
// run come back through Options.DecodeError.
package journal

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/hwbridge/hwbridge/daemon/audit"
)

// States of a request (and Loss, the record of an accepted loss).
type State string

const (
	Started    State = "started"
	Checkpoint State = "checkpoint"
	Done       State = "done"
	Failed     State = "failed"
	Loss       State = "loss"
)

// Caps on what the journal accepts.
const (
	MaxKey  = 256
	MaxLine = 1 << 20
)

// Sentinel errors.
var (
	ErrInFlight       = errors.New("a request with this id is still running: wait for its answer")
	ErrParamsMismatch = errors.New("this request id was already used with different parameters: use a new request id")
	// ErrLostRequest: the request id was used before an accepted journal loss and its record
	// was lost, so whether it paid is not known here.
	ErrLostRequest = errors.New("this request id was used before the request journal was lost, so it may already have paid: check the chain for the payment named below; to pay again, use a new request id")
	ErrLost        = errors.New("the request journal does not match its head: records of earlier requests were lost, so a retried request id could pay twice; nothing is signed until you run `hwbridge journal check` and, once you have checked the chain for the payments it lists, `hwbridge journal accept-loss`")
	ErrLocked      = errors.New("the request journal is in use by another process (hwbridged, or another hwbridge in direct mode): send through hwbridged (drop --direct), or stop it first")
)

// Options configure a Journal. The zero value stores errors as their text.
type Options struct {
	// EncodeError turns a failed run's error into JSON to keep; DecodeError rebuilds it.
	EncodeError func(error) json.RawMessage
	DecodeError func(json.RawMessage) error
	// OtherState reports whether the data directory holds state that only a used journal
	// sits beside (an audit log with records, paired apps): then a missing head is a loss.
	OtherState func() bool
}

type line struct {
	N      uint64          `json:"n,omitempty"`
	Prev   string          `json:"prev,omitempty"`
	Key    string          `json:"key"`
	State  State           `json:"state"`
	Params string          `json:"params,omitempty"`
	Time   time.Time       `json:"time"`
	Data   json.RawMessage `json:"data,omitempty"`
	Error  json.RawMessage `json:"error,omitempty"`
}

// Head is the journal's last line: its number and SHA-256.
type Head struct {
	Count uint64 `json:"count"`
	Hash  string `json:"hash"`
}

// HeadPath is where the head of the journal at path is kept.
func HeadPath(path string) string { return path + ".head" }

// LossRecord is the data of a Loss line.
type LossRecord struct {
	Reason   string    `json:"reason"`
	Head     *Head     `json:"lost_head,omitempty"` // what the head said
	Found    uint64    `json:"found_lines"`         // lines that were still readable
	MovedTo  string    `json:"moved_to,omitempty"`  // where the damaged file was kept
	Accepted time.Time `json:"accepted"`
	// Prior maps the request keys that other records (the audit log) show were sent before
	// the loss, and that the journal no longer holds, to that evidence: a retry of one of
	// them is refused (ErrLostRequest) rather than signed again.
	Prior map[string]string `json:"prior,omitempty"`
}

// entry is the folded state of one key.
type entry struct {
	state      State
	params     string
	started    time.Time
	checkpoint json.RawMessage
	result     json.RawMessage
	err        json.RawMessage
}

// Journal records requests. Safe for concurrent use.
type Journal struct {
	path string
	opts Options

	mu      sync.Mutex
	f       *os.File
	unlock  func()
	head    Head
	lost    error // set: every Run refuses
	loss    *LossRecord
	entries map[string]*entry
	running map[string]bool
}

// Open opens (creating if needed) the journal at path, locked for this process. A journal
// that does not match its head opens in the refusing state (see Lost).
func Open(path string, opts Options) (*Journal, error) {
	if opts.EncodeError == nil {
		opts.EncodeError = func(err error) json.RawMessage {
			b, _ := json.Marshal(map[string]string{"message": err.Error()})
			return b
		}
	}
	if opts.DecodeError == nil {
		opts.DecodeError = func(b json.RawMessage) error {
			var m struct{ Message string }
			_ = json.Unmarshal(b, &m)
			return errors.New(m.Message)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return nil, err
	}
	j := &Journal{path: path, opts: opts, unlock: unlock, running: map[string]bool{}}
	st, err := inspect(path, opts.OtherState)
	if err != nil {
		unlock()
		return nil, err
	}
	j.entries, j.loss = st.entries, st.loss
	if st.lost != nil {
		j.lost = st.lost
	} else if st.head != nil && st.head.Count == st.lines && j.compactLines() == st.lines {
		j.head = *st.head // already compact and matching its head: nothing to rewrite (no fsync at start)
	} else if err := j.compact(); err != nil {
		unlock()
		return nil, fmt.Errorf("journal: compact %s: %w", path, err)
	}
	if j.lost != nil {
		return j, nil // nothing is written to a lost journal: Check and AcceptLoss see it as it was
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		unlock()
		return nil, fmt.Errorf("journal: %w", err)
	}
	j.f = f
	return j, nil
}

// Lost is nil for a journal that matches its head, else why every request is refused
// (errors.Is(err, ErrLost)).
func (j *Journal) Lost() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.lost
}

// LossAccepted returns the record of the last accepted loss, if any.
func (j *Journal) LossAccepted() *LossRecord {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.loss
}

// state is what a journal file and its head say.
type state struct {
	entries map[string]*entry
	lines   uint64
	last    string // hash of the last line
	head    *Head  // nil when there is no head file
	loss    *LossRecord
	lost    error
	keys    []string // keys that never finished (for Check)
}

func hashLine(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func readHead(path string) (*Head, error) {
	b, err := os.ReadFile(HeadPath(path))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	var h Head
	if err := json.Unmarshal(b, &h); err != nil || len(h.Hash) != 64 {
		return &Head{}, nil // unreadable: compared below, it matches nothing
	}
	return &h, nil
}

// inspect reads the journal and its head and decides whether they agree.
func inspect(path string, otherState func() bool) (*state, error) {
	st := &state{entries: map[string]*entry{}}
	head, err := readHead(path)
	if err != nil {
		return nil, err
	}
	st.head = head
	data, err := os.ReadFile(path)
	exists := err == nil
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if n := len(data); n > 0 && data[n-1] != '\n' {
		data = data[:bytes.LastIndexByte(data, '\n')+1] // a torn append: it was never acknowledged
	}
	var hashes []string
	chained := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, MaxLine+1)
	prev := ""
	for n := uint64(1); sc.Scan(); n++ {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l.Key == "" && l.State != Loss {
			st.lost = fmt.Errorf("%w: %s line %d is damaged (%v)", ErrLost, path, n, err)
			break
		}
		if l.N != 0 {
			chained = true
		}
		if chained && (l.N != n || l.Prev != prev) {
			st.lost = fmt.Errorf("%w: %s line %d breaks the hash chain (edited, reordered or a line is missing)", ErrLost, path, n)
			break
		}
		prev = hashLine(sc.Bytes())
		hashes = append(hashes, prev)
		if l.State == Loss {
			var lr LossRecord
			_ = json.Unmarshal(l.Data, &lr)
			st.loss = &lr
			continue
		}
		apply(st.entries, l)
	}
	if err := sc.Err(); err != nil && st.lost == nil {
		st.lost = fmt.Errorf("%w: %s: %v", ErrLost, path, err)
	}
	st.lines, st.last = uint64(len(hashes)), prev
	for k, e := range st.entries {
		if e.state != Done {
			st.keys = append(st.keys, k)
		}
	}
	sort.Strings(st.keys)
	if st.lost != nil {
		return st, nil
	}
	switch {
	case head == nil && !exists && otherState != nil && otherState():
		st.lost = fmt.Errorf("%w: both %s and its head are missing, but the data directory holds other state (audit log, paired apps)", ErrLost, path)
	case head == nil && chained:
		st.lost = fmt.Errorf("%w: the head %s is missing", ErrLost, HeadPath(path))
	case head == nil:
		// a new journal, or one written before journals were chained: adopted as it is
	case head.Count > st.lines:
		st.lost = fmt.Errorf("%w: the head says %d lines, %s holds %d (emptied, truncated or deleted)", ErrLost, head.Count, path, st.lines)
	case head.Count > 0 && hashes[head.Count-1] != head.Hash:
		st.lost = fmt.Errorf("%w: line %d of %s is not the line the head names (replaced or edited)", ErrLost, head.Count, path)
	}
	// Lines past the head are ones whose head update a crash cut off: they stand.
	return st, nil
}

func apply(entries map[string]*entry, l line) {
	e := entries[l.Key]
	if e == nil {
		e = &entry{}
		entries[l.Key] = e
	}
	e.state = l.State
	switch l.State {
	case Started:
		e.params, e.started = l.Params, l.Time
	case Checkpoint:
		e.checkpoint = l.Data
	case Done:
		e.result = l.Data
	case Failed:
		e.err = l.Error
	}
}

// lines re-creates the lines that lead to e.
func (e *entry) lines(key string) []line {
	ls := []line{{Key: key, State: Started, Params: e.params, Time: e.started}}
	if e.checkpoint != nil {
		ls = append(ls, line{Key: key, State: Checkpoint, Time: e.started, Data: e.checkpoint})
	}
	switch e.state {
	case Done:
		ls = append(ls, line{Key: key, State: Done, Time: e.started, Data: e.result})
	case Failed:
		ls = append(ls, line{Key: key, State: Failed, Time: e.started, Error: e.err})
	}
	return ls
}

// chain numbers ls from 1 and links them; it returns the bytes and the head.
func chain(ls []line) ([]byte, Head, error) {
	var buf bytes.Buffer
	var h Head
	for _, l := range ls {
		l.N, l.Prev = h.Count+1, h.Hash
		b, err := json.Marshal(l)
		if err != nil {
			return nil, h, err
		}
		buf.Write(append(b, '\n'))
		h = Head{Count: l.N, Hash: hashLine(b)}
	}
	return buf.Bytes(), h, nil
}

// compact rewrites the file as the lines that lead to the current state (the loss record
// first), with a new chain and head.
// compactLines is how many lines compact would write.
func (j *Journal) compactLines() uint64 {
	var n uint64
	if j.loss != nil {
		n++
	}
	for k, e := range j.entries {
		n += uint64(len(e.lines(k)))
	}
	return n
}

func (j *Journal) compact() error {
	keys := make([]string, 0, len(j.entries))
	for k := range j.entries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var ls []line
	if j.loss != nil {
		d, _ := json.Marshal(j.loss)
		ls = append(ls, line{State: Loss, Time: j.loss.Accepted, Data: d})
	}
	for _, k := range keys {
		ls = append(ls, j.entries[k].lines(k)...)
	}
	data, h, err := chain(ls)
	if err != nil {
		return err
	}
	// The head goes first: a crash between the two leaves a head that the old file (longer,
	// other hashes) does not match, which is refused, never a silent loss.
	if err := audit.WriteFileAtomic(j.path, data, 0o600); err != nil {
		return err
	}
	if err := writeHead(j.path, h); err != nil {
		return err
	}
	j.head = h
	return nil
}

func writeHead(path string, h Head) error {
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	return audit.WriteFileAtomic(HeadPath(path), append(b, '\n'), 0o600)
}

// write appends one line, fsyncs it and moves the head; mu must be held.
func (j *Journal) write(l line) error {
	if j.f == nil {
		return errors.New("journal: closed")
	}
	if l.Time.IsZero() {
		l.Time = time.Now().UTC()
	}
	l.N, l.Prev = j.head.Count+1, j.head.Hash
	b, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if len(b) > MaxLine {
		return fmt.Errorf("journal: entry for %q is %d bytes, over the %d limit", l.Key, len(b), MaxLine)
	}
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("journal: write %s: %w", j.path, err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("journal: fsync %s: %w", j.path, err)
	}
	h := Head{Count: l.N, Hash: hashLine(b)}
	if err := writeHead(j.path, h); err != nil {
		return fmt.Errorf("journal: head: %w", err)
	}
	j.head = h
	apply(j.entries, l)
	return nil
}

// Func is one run of a request. resume is the checkpoint of an earlier run (nil on a run
// from the start); checkpoint records data durably before fn goes on (call it with the
// signed transaction before broadcasting it).
type Func func(ctx context.Context, resume json.RawMessage, checkpoint func(json.RawMessage) error) (json.RawMessage, error)

// Outcome says how Run answered.
type Outcome int

const (
	Ran      Outcome = iota // fn ran from the start
	Resumed                 // fn ran again from a checkpoint
	Replayed                // the recorded result was returned; fn did not run
)

// Run runs fn at most once for key (see the package documentation). params identifies the
// request's parameters (a hash, see ParamsHash); a retry must carry the same.
func (j *Journal) Run(ctx context.Context, key, params string, fn Func) (json.RawMessage, Outcome, error) {
	if key == "" || len(key) > MaxKey {
		return nil, Ran, fmt.Errorf("journal: request id must have 1 to %d bytes", MaxKey)
	}
	j.mu.Lock()
	if j.lost != nil {
		j.mu.Unlock()
		return nil, Ran, j.lost
	}
	e := j.entries[key]
	var resume json.RawMessage
	outcome := Ran
	switch {
	case e == nil && j.loss != nil && j.loss.Prior[key] != "":
		j.mu.Unlock()
		return nil, Replayed, fmt.Errorf("%w (%s)", ErrLostRequest, j.loss.Prior[key])
	case e != nil && e.params != params:
		j.mu.Unlock()
		return nil, Replayed, ErrParamsMismatch
	case j.running[key]:
		j.mu.Unlock()
		return nil, Replayed, ErrInFlight
	case e != nil && e.state == Done:
		j.mu.Unlock()
		return e.result, Replayed, nil
	case e != nil && e.checkpoint != nil:
		resume, outcome = e.checkpoint, Resumed
	default:
		// new, or failed/interrupted before anything signed was in hand: run from the start
		if err := j.write(line{Key: key, State: Started, Params: params}); err != nil {
			j.mu.Unlock()
			return nil, Ran, err
		}
	}
	j.running[key] = true
	j.mu.Unlock()

	defer func() {
		j.mu.Lock()
		delete(j.running, key)
		j.mu.Unlock()
	}()
	checkpoint := func(data json.RawMessage) error {
		j.mu.Lock()
		defer j.mu.Unlock()
		return j.write(line{Key: key, State: Checkpoint, Data: data})
	}
	res, err := fn(ctx, resume, checkpoint)
	j.mu.Lock()
	defer j.mu.Unlock()
	if err != nil {
		if werr := j.write(line{Key: key, State: Failed, Error: j.opts.EncodeError(err)}); werr != nil {
			return nil, outcome, errors.Join(err, werr)
		}
		return nil, outcome, err
	}
	if werr := j.write(line{Key: key, State: Done, Data: res}); werr != nil {
		return nil, outcome, fmt.Errorf("the request succeeded but its result could not be journaled (a retry resumes from its checkpoint): %w", werr)
	}
	return res, outcome, nil
}

// ParamsHash is the identity of a request's parameters: the SHA-256 of their JSON (a struct
// marshals its fields in a fixed order). The CLI and hwbridged hash the same typed orders, so
// a retry may take either path.
func ParamsHash(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return hashLine(b), nil
}

// Do is Run for typed requests: fn's result is stored as JSON and decoded into res (on a
// replay too).
func Do[T any](ctx context.Context, j *Journal, key string, params any, fn func(ctx context.Context, resume json.RawMessage, checkpoint func(json.RawMessage) error) (*T, error), res *T) (Outcome, error) {
	ph, err := ParamsHash(params)
	if err != nil {
		return Ran, err
	}
	out, outcome, err := j.Run(ctx, key, ph, func(ctx context.Context, resume json.RawMessage, checkpoint func(json.RawMessage) error) (json.RawMessage, error) {
		r, err := fn(ctx, resume, checkpoint)
		if err != nil {
			return nil, err
		}
		return json.Marshal(r)
	})
	if err != nil {
		return outcome, err
	}
	return outcome, json.Unmarshal(out, res)
}

// Close closes the file and releases the lock.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	var err error
	if j.f != nil {
		err = j.f.Close()
		j.f = nil
	}
	if j.unlock != nil {
		j.unlock()
		j.unlock = nil
	}
	return err
}

// Report is what Check finds.
type Report struct {
	Path  string      `json:"path"`
	OK    bool        `json:"ok"`
	Lines uint64      `json:"lines"`
	Head  *Head       `json:"head,omitempty"`
	Lost  string      `json:"lost,omitempty"` // why the journal refuses requests
	Loss  *LossRecord `json:"accepted_loss,omitempty"`
	// Unfinished lists the request keys still readable that are not done (failed, or signed
	// and not confirmed as broadcast): check them on the chain.
	Unfinished []string `json:"unfinished,omitempty"`
}

// Check reads the journal at path without changing it (it needs the lock: stop hwbridged).
func Check(path string, otherState func() bool) (*Report, error) {
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	st, err := inspect(path, otherState)
	if err != nil {
		return nil, err
	}
	r := &Report{Path: path, OK: st.lost == nil, Lines: st.lines, Head: st.head, Loss: st.loss, Unfinished: st.keys}
	if st.lost != nil {
		r.Lost = st.lost.Error()
	}
	return r, nil
}

// AcceptLoss starts the journal at path again after a loss a person has checked: the damaged
// file is kept beside it (journal.jsonl.lost-TIME), the readable requests are carried over,
// and the new chain begins with a loss record saying what was lost. It needs the lock.
//
// prior lists request keys known from elsewhere (the audit log) to have been sent before the
// loss, with the evidence; those the journal no longer holds are refused from now on
// (ErrLostRequest), so a retried id whose record was lost never signs a second payment.
func AcceptLoss(path, reason string, otherState func() bool, prior map[string]string) (*LossRecord, error) {
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	st, err := inspect(path, otherState)
	if err != nil {
		return nil, err
	}
	if st.lost == nil {
		return nil, errors.New("journal: nothing to accept: the journal matches its head")
	}
	now := time.Now().UTC()
	lr := &LossRecord{Reason: reason, Head: st.head, Found: st.lines, Accepted: now}
	if st.loss != nil {
		lr.Prior = maps.Clone(st.loss.Prior) // an earlier loss's refusals stand
	}
	for k, v := range prior {
		if st.entries[k] == nil {
			if lr.Prior == nil {
				lr.Prior = map[string]string{}
			}
			lr.Prior[k] = v
		}
	}
	if _, err := os.Stat(path); err == nil {
		lr.MovedTo = path + ".lost-" + now.Format("20060102T150405Z")
		if err := os.Rename(path, lr.MovedTo); err != nil {
			return nil, fmt.Errorf("journal: keep the damaged file: %w", err)
		}
	}
	j := &Journal{path: path, entries: st.entries, loss: lr}
	if err := j.compact(); err != nil {
		return nil, fmt.Errorf("journal: start again: %w", err)
	}
	return lr, nil
}

// Result is the recorded result of key's request once it is done (false otherwise): what a
// later request that continues it (a PSBT import after its export) reads.
func (j *Journal) Result(key string) (json.RawMessage, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	e := j.entries[key]
	if e == nil || e.state != Done {
		return nil, false
	}
	return e.result, true
}
