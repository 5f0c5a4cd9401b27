// Package journal is hwbridged's crash-safe request journal: it makes a sign-and-broadcast
// request with a request id run at most once, also across a daemon restart.
//
// # Format
//
// The journal is an append-only JSONL file. Each line is one state change of one request:
//
//	{"key":"app-id/req-1","state":"started","params":"<sha256 hex>","time":"…"}
//	{"key":"app-id/req-1","state":"checkpoint","data":{…}}        e.g. the signed transaction
//	{"key":"app-id/req-1","state":"done","data":{…}}              the result returned
//	{"key":"app-id/req-1","state":"failed","error":{…}}           the error returned
//
// Every line is fsync'ed before the step it records goes on (a request is journaled as
// started before the device is asked to sign; a signed transaction is checkpointed before it
// is broadcast). Open replays the lines (the last state of a key wins), cuts a torn last line
// left by a crash, and rewrites the file compacted (temp file, fsync, rename).
//
// # Semantics of Run
//
//   - a new key runs fn;
//   - a key that is done returns the first result again, without running anything;
//   - a key that failed before a checkpoint returns the first error again;
//   - a key with a checkpoint (it was signed; the broadcast failed or the daemon stopped)
//     runs fn again with the checkpoint, so that fn broadcasts the same signed transaction
//     and never signs again;
//   - a key that was started but neither checkpointed nor finished when the daemon stopped
//     fails with ErrInterrupted: it is reported, never silently retried;
//   - a key that is running in this process fails with ErrInFlight;
//   - a key reused with other parameters fails with ErrParamsMismatch.
//
// # Errors
//
// ErrInFlight, ErrInterrupted and ErrParamsMismatch (errors.Is). Errors returned by a
// first run come back through Options.DecodeError.
package journal

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/hwbridge/hwbridge/daemon/audit"
)

// States of a request.
type State string

const (
	Started    State = "started"
	Checkpoint State = "checkpoint"
	Done       State = "done"
	Failed     State = "failed"
)

// Caps on what the journal accepts.
const (
	MaxKey  = 256
	MaxLine = 1 << 20
)

// Sentinel errors.
var (
	ErrInFlight       = errors.New("a request with this id is still running: wait for its answer")
	ErrInterrupted    = errors.New("the request with this id was in flight when hwbridged stopped and is not retried (nothing was broadcast; the device may have shown or signed it): check the device and the chain, then send it again with a new request id")
	ErrParamsMismatch = errors.New("this request id was already used with different parameters: use a new request id")
)

// Options configure a Journal. The zero value stores errors as their text.
type Options struct {
	// EncodeError turns a failed run's error into JSON to keep; DecodeError rebuilds it.
	EncodeError func(error) json.RawMessage
	DecodeError func(json.RawMessage) error
}

type line struct {
	Key    string          `json:"key"`
	State  State           `json:"state"`
	Params string          `json:"params,omitempty"`
	Time   time.Time       `json:"time"`
	Data   json.RawMessage `json:"data,omitempty"`
	Error  json.RawMessage `json:"error,omitempty"`
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
	entries map[string]*entry
	running map[string]bool
}

// Open opens (creating if needed) the journal at path.
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
	entries, err := load(path)
	if err != nil {
		return nil, err
	}
	if err := compact(path, entries); err != nil {
		return nil, fmt.Errorf("journal: compact %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	return &Journal{path: path, opts: opts, f: f, entries: entries, running: map[string]bool{}}, nil
}

func load(path string) (map[string]*entry, error) {
	entries := map[string]*entry{}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return entries, nil
	}
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if n := len(data); n > 0 && data[n-1] != '\n' {
		data = data[:bytes.LastIndexByte(data, '\n')+1] // a torn append: it was never acknowledged
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, MaxLine+1)
	for n := 1; sc.Scan(); n++ {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l.Key == "" {
			return nil, fmt.Errorf("journal: %s line %d is damaged (move the file away to start a new journal; retries of old request ids will then run again): %v", path, n, err)
		}
		apply(entries, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("journal: %s: %w", path, err)
	}
	return entries, nil
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

func compact(path string, entries map[string]*entry) error {
	keys := make([]string, 0, len(entries))
	for k := range entries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var buf bytes.Buffer
	for _, k := range keys {
		for _, l := range entries[k].lines(k) {
			b, err := json.Marshal(l)
			if err != nil {
				return err
			}
			buf.Write(append(b, '\n'))
		}
	}
	return audit.WriteFileAtomic(path, buf.Bytes(), 0o600)
}

// write appends one line and fsyncs it; mu must be held.
func (j *Journal) write(l line) error {
	if j.f == nil {
		return errors.New("journal: closed")
	}
	if l.Time.IsZero() {
		l.Time = time.Now().UTC()
	}
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
	apply(j.entries, l)
	return nil
}

// Func is one run of a request. resume is the checkpoint of an earlier run (nil on the
// first run); checkpoint records data durably before fn goes on (call it with the signed
// transaction before broadcasting it).
type Func func(ctx context.Context, resume json.RawMessage, checkpoint func(json.RawMessage) error) (json.RawMessage, error)

// Outcome says how Run answered.
type Outcome int

const (
	Ran      Outcome = iota // fn ran from the start
	Resumed                 // fn ran again from a checkpoint
	Replayed                // the recorded result or error was returned; fn did not run
)

// Run runs fn at most once for key (see the package documentation). params identifies the
// request's parameters (a hash); a retry must carry the same.
func (j *Journal) Run(ctx context.Context, key, params string, fn Func) (json.RawMessage, Outcome, error) {
	if key == "" || len(key) > MaxKey {
		return nil, Ran, fmt.Errorf("journal: request id must have 1 to %d bytes", MaxKey)
	}
	j.mu.Lock()
	e := j.entries[key]
	var resume json.RawMessage
	outcome := Ran
	switch {
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
	case e != nil && e.state == Failed:
		j.mu.Unlock()
		return nil, Replayed, j.opts.DecodeError(e.err)
	case e != nil:
		j.mu.Unlock()
		return nil, Replayed, fmt.Errorf("%w (request started %s)", ErrInterrupted, e.started.Format(time.RFC3339))
	default:
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
		return nil, outcome, fmt.Errorf("the request succeeded but its result could not be journaled (a retry resumes from its checkpoint or reports it as interrupted): %w", werr)
	}
	return res, outcome, nil
}

// Close closes the file.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}
