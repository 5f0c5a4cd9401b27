package external

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hwbridge/hwbridge/internal/trezorpb"
	"github.com/hwbridge/hwbridge/transport"
)

// trezorDebug sends DebugLinkDecision YES on the Trezor debug link, once per ButtonRequest
// (the driver's OnButton), never unsolicited.
type trezorDebug struct {
	addr string
	mu   sync.Mutex
}

func (*trezorDebug) kind() string { return "trezor-debug" }

// debugAddr is the debug link next to a wire port (HOST:PORT+1).
func debugAddr(wire string) string {
	host, port, err := net.SplitHostPort(wire)
	if err != nil {
		return wire
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return wire
	}
	return net.JoinHostPort(host, strconv.Itoa(n+1))
}

// yes sends one DebugLinkDecision(button YES) to the debug link.
func (d *trezorDebug) yes(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	typ, body, err := trezorpb.Marshal(&trezorpb.DebugLinkDecision{Button: ptr(true)})
	if err != nil {
		return err
	}
	pkts, err := transport.V1Packets(uint16(typ), body)
	if err != nil {
		return err
	}
	var dl net.Dialer
	c, err := dl.DialContext(ctx, "udp", d.addr)
	if err != nil {
		return fmt.Errorf("dial the debug link udp:%s: %w", d.addr, err)
	}
	defer c.Close()
	for _, p := range pkts {
		if _, err := c.Write(p); err != nil {
			return fmt.Errorf("debug link udp:%s: %w", d.addr, err)
		}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// speculosApprover reads Speculos' screen through its REST API while an APDU is in flight
// and presses buttons: both buttons on a screen that asks to approve, right to page
// through a review, nothing on the app's home pages.
type speculosApprover struct {
	url    string
	client *http.Client
	busy   atomic.Int32
	mu     sync.Mutex
	seen   []string // screens met and buttons pressed, logged at the end of the test
}

func (s *speculosApprover) note(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.seen); n > 0 && s.seen[n-1] == line {
		return
	}
	if len(s.seen) < 2000 {
		s.seen = append(s.seen, line)
	}
}

func (*speculosApprover) kind() string { return "speculos" }

func newSpeculosApprover(url string) *speculosApprover {
	return &speculosApprover{url: strings.TrimSuffix(url, "/"), client: &http.Client{Timeout: 5 * time.Second}}
}

// Words on Nano review screens (NBGL "use case" flows of the SDK the apps build with).
var (
	approveWords = []string{"Continue anyway", "press  | both buttons", "press both buttons", "Approve", "Accept", "Sign transaction", "Sign message", "Sign typed", "Confirm", "Hold to sign", "Register wallet", "Register account", "Accept risk and"}
	homeWords    = []string{"is ready", "App info", "App settings", "Settings", "Quit app", "Version", "Developer", "Blind signing | Enable",
		// transient result pages: a press meant for them could land on the next review
		"Transaction signed", "Message signed", "Address verified", "Account registered", "Signing transaction", "Loading transaction"}
)

func (s *speculosApprover) start(ctx context.Context, t *testing.T) {
	done := make(chan struct{})
	t.Cleanup(func() {
		<-done
		s.mu.Lock()
		defer s.mu.Unlock()
		t.Logf("speculos screens and presses:\n%s", strings.Join(s.seen, "\n"))
	})
	go func() {
		defer close(done)
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if s.busy.Load() == 0 {
				continue
			}
			text, err := s.screen(ctx)
			if err != nil || text == "" || containsAny(text, homeWords) {
				continue
			}
			button := "right"
			switch {
			case containsAny(text, approveWords):
				button = "both"
			case strings.HasPrefix(text, "Reject"):
				button = "left" // the last page of a review: back to the approve page
			}
			s.note(text + "  -> " + button)
			_ = s.press(ctx, button)
		}
	}()
}

func containsAny(s string, words []string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// screen returns the texts of the current screen.
func (s *speculosApprover) screen(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/events?currentscreenonly=true", nil)
	if err != nil {
		return "", err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var ev struct {
		Events []struct {
			Text string `json:"text"`
		} `json:"events"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 1<<20)).Decode(&ev); err != nil {
		return "", err
	}
	var parts []string
	for _, e := range ev.Events {
		parts = append(parts, e.Text)
	}
	return strings.Join(parts, " | "), nil
}

func (s *speculosApprover) press(ctx context.Context, button string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/button/"+button, strings.NewReader(`{"action":"press-and-release"}`))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// watch marks the approver busy while an exchange is in flight.
func (s *speculosApprover) watch(ex transport.APDUExchanger) transport.APDUExchanger {
	return busyExchanger{ex: ex, busy: &s.busy}
}

type busyExchanger struct {
	ex   transport.APDUExchanger
	busy *atomic.Int32
}

func (b busyExchanger) Exchange(ctx context.Context, apdu []byte) ([]byte, error) {
	b.busy.Add(1)
	defer b.busy.Add(-1)
	return b.ex.Exchange(ctx, apdu)
}

func (b busyExchanger) Close() error {
	if c, ok := b.ex.(interface{ Close() error }); ok {
		return c.Close()
	}
	return nil
}

// recorder writes every exchange as "=> command" and "<= reply" hex lines (the format of
// device/ledger/testdata), one file per scenario.
type recorder struct {
	ex   transport.APDUExchanger
	path string
	mu   sync.Mutex
	buf  bytes.Buffer
}

func newRecorder(ex transport.APDUExchanger, dir, name string) (*recorder, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	file := strings.NewReplacer("/", "_", " ", "_").Replace(name) + ".apdus"
	return &recorder{ex: ex, path: filepath.Join(dir, file)}, nil
}

func (r *recorder) Exchange(ctx context.Context, apdu []byte) ([]byte, error) {
	resp, err := r.ex.Exchange(ctx, apdu)
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(&r.buf, "=> %s\n", hex.EncodeToString(apdu))
	if err != nil {
		fmt.Fprintf(&r.buf, "// error: %v\n", err)
		return nil, err
	}
	fmt.Fprintf(&r.buf, "<= %s\n", hex.EncodeToString(resp))
	return resp, nil
}

// Close writes the transcript (nothing for a scenario that exchanged nothing) and closes
// the link.
func (r *recorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var err error
	if r.buf.Len() > 0 {
		err = os.WriteFile(r.path, r.buf.Bytes(), 0o644)
	}
	if c, ok := r.ex.(interface{ Close() error }); ok {
		err = errorsJoin(err, c.Close())
	}
	return err
}

func errorsJoin(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
