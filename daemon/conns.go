package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/ethereum/go-ethereum/rpc"
)

// Bounds of the API sockets (Config overrides them for tests; the README names them).
const (
	// DefaultMaxRequest caps one JSON-RPC request: the bytes of one top-level JSON value a
	// peer sends, whatever the daemon writes meanwhile (answers, event notifications).
	DefaultMaxRequest = 16 << 20
	// DefaultMaxConns caps the connections one socket serves at once; more are answered with
	// an error and closed.
	DefaultMaxConns = 128
	// DefaultUnauthIdle closes a connection on the API socket that has not authenticated
	// (no signed request, login or pairing request yet) and sent nothing for this long.
	DefaultUnauthIdle = 30 * time.Second
)

// conns tracks the open API connections so that a request's handler can find its own
// (rpc.PeerInfo's RemoteAddr carries the connection's id).
type conns struct {
	mu   sync.Mutex
	next uint64
	m    map[string]*apiConn
}

func (t *conns) add(c net.Conn, maxReq int, idle time.Duration, log *slog.Logger) *apiConn {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.next++
	if t.m == nil {
		t.m = map[string]*apiConn{}
	}
	ac := &apiConn{c: c, id: "conn" + strconv.FormatUint(t.next, 10), idle: idle, log: log, scan: valueScanner{max: maxReq}}
	ac.gone, ac.markGone = context.WithCancel(context.Background())
	t.m[ac.id] = ac
	return ac
}

func (t *conns) remove(ac *apiConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, ac.id)
}

// trust marks the connection that carries ctx's request as authenticated: it is no longer
// closed when idle.
func (t *conns) trust(ctx context.Context) {
	id := rpc.PeerInfoFromContext(ctx).RemoteAddr
	t.mu.Lock()
	ac := t.m[id]
	t.mu.Unlock()
	if ac != nil {
		ac.trust()
	}
}

// serve accepts connections on l and serves srv on each, at most maxConns at once.
func (t *conns) serve(srv *rpc.Server, l net.Listener, maxConns, maxReq int, idle time.Duration, log *slog.Logger) error {
	slots := make(chan struct{}, maxConns)
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ECONNABORTED) {
				log.Warn("accept failed; retrying", "err", err)
				time.Sleep(100 * time.Millisecond)
				continue
			}
			return err
		}
		select {
		case slots <- struct{}{}:
		default:
			log.Warn("refused a connection: too many open", "max", maxConns)
			refuse(c, fmt.Sprintf("hwbridged serves at most %d connections at once: close idle ones and retry", maxConns))
			c.Close()
			continue
		}
		ac := t.add(c, maxReq, idle, log)
		go func() {
			defer func() { <-slots }()
			defer t.remove(ac)
			srv.ServeCodec(rpc.NewCodec(ac), 0)
		}()
	}
}

// refuse writes a JSON-RPC error (id null) that a client shows before the connection ends.
func refuse(w interface{ Write([]byte) (int, error) }, msg string) {
	b := fmt.Appendf(nil, `{"jsonrpc":"2.0","id":null,"error":{"code":%d,"message":%q}}`+"\n", CodeBadRequest, msg)
	_, _ = w.Write(b)
}

// errTooLarge ends a connection whose peer sent a request above the cap.
var errTooLarge = errors.New("request too large")

// apiConn is one served connection: its reads are scanned for the request-size cap, and
// until it authenticates it is closed after idle without a byte from the peer.
type apiConn struct {
	c    net.Conn
	id   string
	idle time.Duration
	log  *slog.Logger
	scan valueScanner // used by Read only (one reader)
	// gone ends when a read fails: the peer closed the connection, or the daemon ends it.
	gone     context.Context
	markGone context.CancelFunc

	mu      sync.Mutex // trusted and the read deadline
	trusted bool
	wmu     sync.Mutex // one writer at a time (the codec, or a refusal)
}

func (a *apiConn) trust() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.trusted {
		a.trusted = true
		_ = a.c.SetReadDeadline(time.Time{})
	}
}

func (a *apiConn) Read(b []byte) (int, error) {
	a.mu.Lock()
	watch := a.idle > 0 && !a.trusted
	if watch {
		_ = a.c.SetReadDeadline(time.Now().Add(a.idle))
	}
	a.mu.Unlock()
	n, err := a.c.Read(b)
	if err != nil {
		a.markGone()
	}
	if serr := a.scan.feed(b[:n]); serr != nil {
		a.markGone()
		a.log.Warn("closing a connection: request above the cap", "conn", a.id, "max", a.scan.max)
		a.wmu.Lock()
		refuse(a.c, fmt.Sprintf("hwbridged: a request is larger than %d bytes; the connection is closed", a.scan.max))
		a.wmu.Unlock()
		return 0, serr
	}
	var ne net.Error
	if watch && errors.As(err, &ne) && ne.Timeout() {
		a.log.Info("closing an idle unauthenticated connection", "conn", a.id, "idle", a.idle)
	}
	return n, err
}

func (a *apiConn) Write(b []byte) (int, error) {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	return a.c.Write(b)
}

func (a *apiConn) Close() error {
	a.markGone()
	return a.c.Close()
}
func (a *apiConn) SetWriteDeadline(t time.Time) error { return a.c.SetWriteDeadline(t) }

// RemoteAddr is the connection's id, which the rpc package hands to handlers as
// rpc.PeerInfo.RemoteAddr (unix peers have no address of their own).
func (a *apiConn) RemoteAddr() string { return a.id }

// valueScanner follows a stream of JSON values just enough to know where each top-level
// value ends (nesting depth, strings and their escapes) and fails once one value grows
// past max bytes. It does not validate: the JSON decoder behind it does.
type valueScanner struct {
	max        int
	n          int // bytes of the current top-level value so far
	depth      int
	inStr, esc bool
}

func (s *valueScanner) feed(p []byte) error {
	for _, c := range p {
		if s.n++; s.n > s.max {
			return errTooLarge
		}
		switch {
		case s.inStr:
			switch {
			case s.esc:
				s.esc = false
			case c == '\\':
				s.esc = true
			case c == '"':
				s.inStr = false
				if s.depth == 0 {
					s.n = 0
				}
			}
		case c == '"':
			s.inStr = true
		case c == '{' || c == '[':
			s.depth++
		case c == '}' || c == ']':
			if s.depth > 0 {
				s.depth--
			}
			if s.depth == 0 {
				s.n = 0
			}
		case s.depth == 0 && (c == ' ' || c == '\n' || c == '\r' || c == '\t'):
			s.n = 0
		}
	}
	return nil
}

// errClientGone is the cause of a request's cancellation when its client went away.
var errClientGone = errors.New("the client closed its connection")

// bind returns ctx, cancelled (cause errClientGone) as soon as the connection that carries
// the request is gone: go-ethereum's rpc server lets a request run to its end after its
// client left, which would hold the device (and a confirmation screen) for nobody. done
// releases what bind took.
func (t *conns) bind(ctx context.Context) (_ context.Context, done func()) {
	id := rpc.PeerInfoFromContext(ctx).RemoteAddr
	t.mu.Lock()
	ac := t.m[id]
	t.mu.Unlock()
	if ac == nil {
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(ac.gone, func() { cancel(errClientGone) })
	return ctx, func() {
		stop()
		cancel(nil)
	}
}
