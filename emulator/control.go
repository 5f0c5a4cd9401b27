package emulator

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
)

// ControlTarget is one device as the control API sees it.
type ControlTarget struct {
	Approver *Approver
	Faults   *Faults
}

// maxControlBody caps a control request body.
const maxControlBody = 64 << 10

// NewControlHandler serves the control API (see the package documentation) for the named
// devices ("trezor", "ledger"). Serve it on a loopback address only: it refuses requests
// whose Host is not a loopback name and requests carrying an Origin header (a web page).
func NewControlHandler(devices map[string]*ControlTarget) http.Handler {
	c := &control{devices: devices}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", c.health)
	mux.HandleFunc("GET /transcript", c.transcript)
	mux.HandleFunc("POST /press", c.press)
	mux.HandleFunc("POST /policy", c.policy)
	mux.HandleFunc("POST /fault", c.fault)
	return guard(mux)
}

type control struct {
	devices map[string]*ControlTarget
}

func guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Origin") != "" || r.Header.Get("Referer") != "" {
			httpError(w, http.StatusForbidden, "requests from web pages are refused")
			return
		}
		if !loopbackHost(r.Host) {
			httpError(w, http.StatusForbidden, fmt.Sprintf("host %q is not loopback (use 127.0.0.1 or localhost)", r.Host))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func loopbackHost(hostport string) bool {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	h = strings.Trim(h, "[]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func (c *control) names() []string {
	names := make([]string, 0, len(c.devices))
	for n := range c.devices {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// target picks the named device; with no name, the only device or the one with a screen
// waiting for a press.
func (c *control) target(name string) (string, *ControlTarget, error) {
	if name != "" {
		t, ok := c.devices[name]
		if !ok {
			return "", nil, fmt.Errorf("no device %q (have %s)", name, strings.Join(c.names(), ", "))
		}
		return name, t, nil
	}
	if len(c.devices) == 1 {
		for n, t := range c.devices {
			return n, t, nil
		}
	}
	var found []string
	for _, n := range c.names() {
		if t := c.devices[n]; t.Approver != nil {
			if _, ok := t.Approver.Pending(); ok {
				found = append(found, n)
			}
		}
	}
	if len(found) == 1 {
		return found[0], c.devices[found[0]], nil
	}
	return "", nil, fmt.Errorf("name the device with \"device\" (one of %s)", strings.Join(c.names(), ", "))
}

func (c *control) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "devices": c.names()})
}

func (c *control) transcript(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("device")
	if name != "" {
		if _, ok := c.devices[name]; !ok {
			httpError(w, http.StatusNotFound, fmt.Sprintf("no device %q", name))
			return
		}
	}
	out := []Entry{}
	seen := map[*Approver]bool{}
	for _, n := range c.names() {
		t := c.devices[n]
		if (name != "" && n != name) || t.Approver == nil || seen[t.Approver] {
			continue
		}
		seen[t.Approver] = true
		for _, e := range t.Approver.Transcript() {
			if name == "" || e.Device == "" || e.Device == name {
				out = append(out, e)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Entry) int { return a.Time.Compare(b.Time) })
	writeJSON(w, http.StatusOK, out)
}

func (c *control) press(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Device  string `json:"device"`
		Approve *bool  `json:"approve"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	if req.Approve == nil {
		httpError(w, http.StatusBadRequest, `body needs "approve": true or false`)
		return
	}
	name, t, err := c.target(req.Device)
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	if t.Approver == nil {
		httpError(w, http.StatusNotFound, fmt.Sprintf("device %q has no screen", name))
		return
	}
	if err := t.Approver.Press(*req.Approve); err != nil {
		httpError(w, http.StatusConflict, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "device": name})
}

func (c *control) policy(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Device string `json:"device"`
		Policy string `json:"policy"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	p, err := ParsePolicy(req.Policy)
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	var set []string
	for _, n := range c.names() {
		if req.Device != "" && n != req.Device {
			continue
		}
		if t := c.devices[n]; t.Approver != nil {
			if err := t.Approver.SetPolicy(p); err != nil {
				httpError(w, http.StatusBadRequest, err.Error())
				return
			}
			set = append(set, n)
		}
	}
	if len(set) == 0 {
		httpError(w, http.StatusNotFound, fmt.Sprintf("no device %q", req.Device))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "devices": set, "policy": p})
}

func (c *control) fault(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Device string `json:"device"`
		FaultSpec
	}
	if !readJSON(w, r, &req) {
		return
	}
	name, t, err := c.target(req.Device)
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	if t.Faults == nil {
		httpError(w, http.StatusNotFound, fmt.Sprintf("device %q takes no faults", name))
		return
	}
	if err := t.Faults.Apply(req.FaultSpec); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "device": name, "armed": t.Faults.State()})
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxControlBody+1))
	if err != nil {
		httpError(w, http.StatusBadRequest, "read body: "+err.Error())
		return false
	}
	if len(body) > maxControlBody {
		httpError(w, http.StatusRequestEntityTooLarge, "body too large")
		return false
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		httpError(w, http.StatusBadRequest, "bad json body: "+err.Error())
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func httpError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]any{"ok": false, "error": msg})
}
