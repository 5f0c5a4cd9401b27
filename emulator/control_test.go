package emulator

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestControlAPI(t *testing.T) {
	a := NewApprover(PolicyAuto)
	var f Faults
	srv := httptest.NewServer(NewControlHandler(map[string]*ControlTarget{"trezor": {Approver: a, Faults: &f}}))
	defer srv.Close()

	do := func(method, path, body string, hdr ...string) (int, map[string]any, []any) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		for i := 0; i+1 < len(hdr); i += 2 {
			if hdr[i] == "Host" {
				req.Host = hdr[i+1]
				continue
			}
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v any
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		m, _ := v.(map[string]any)
		l, _ := v.([]any)
		return resp.StatusCode, m, l
	}

	if code, m, _ := do("GET", "/health", ""); code != 200 || m["ok"] != true {
		t.Fatalf("health %d %v", code, m)
	}
	if _, err := a.Ask(context.Background(), Screen{Device: "trezor", Title: "Confirm output", Lines: []string{"bc1q…", "0.001 BTC"}}); err != nil {
		t.Fatal(err)
	}
	code, _, l := do("GET", "/transcript", "")
	if code != 200 || len(l) != 1 || l[0].(map[string]any)["title"] != "Confirm output" || l[0].(map[string]any)["outcome"] != "approved" {
		t.Fatalf("transcript %d %v", code, l)
	}
	if code, _, _ := do("GET", "/transcript?device=ledger", ""); code != 404 {
		t.Fatalf("unknown device: %d", code)
	}
	if code, _, _ := do("POST", "/press", `{"approve":true}`); code != http.StatusConflict {
		t.Fatalf("press under auto: %d", code)
	}
	if code, m, _ := do("POST", "/policy", `{"policy":"prompt"}`); code != 200 || m["policy"] != "prompt" {
		t.Fatalf("policy %d %v", code, m)
	}
	if code, _, _ := do("POST", "/policy", `{"policy":"sometimes"}`); code != 400 {
		t.Fatalf("bad policy: %d", code)
	}
	done := make(chan bool)
	go func() {
		ok, _ := a.Ask(context.Background(), Screen{Device: "trezor", Title: "Sign"})
		done <- ok
	}()
	waitPending(t, a)
	if code, _, _ := do("POST", "/press", `{"approve":false}`); code != 200 {
		t.Fatalf("press: %d", code)
	}
	if <-done {
		t.Fatal("reject press approved")
	}
	if code, _, _ := do("POST", "/press", `{}`); code != 400 {
		t.Fatalf("press without approve: %d", code)
	}
	if code, m, _ := do("POST", "/fault", `{"drop":2,"disconnect_at":3}`); code != 200 || f.State().Drop != 2 || f.State().DisconnectAt != 3 {
		t.Fatalf("fault %d %v %+v", code, m, f.State())
	}
	if code, _, _ := do("POST", "/fault", `{"drop":-1}`); code != 400 {
		t.Fatalf("bad fault: %d", code)
	}
	if code, _, _ := do("POST", "/fault", `{"bogus":1}`); code != 400 {
		t.Fatalf("unknown field: %d", code)
	}
	if code, _, _ := do("GET", "/health", "", "Origin", "http://evil.example"); code != 403 {
		t.Fatalf("origin accepted: %d", code)
	}
	if code, _, _ := do("GET", "/health", "", "Host", "evil.example"); code != 403 {
		t.Fatalf("foreign host accepted: %d", code)
	}
}

// TestFaultAt: drop_at and corrupt_at hit exactly the n-th outgoing packet from now, once;
// the counters count every packet and message.
func TestFaultAt(t *testing.T) {
	var f Faults
	if err := f.Apply(FaultSpec{DropAt: 3, CorruptAt: 2}); err != nil {
		t.Fatal(err)
	}
	pkt := []byte{1, 2}
	var got []string
	for range 5 {
		out, send := f.Outgoing(pkt)
		switch {
		case !send:
			got = append(got, "drop")
		case out[0] != pkt[0]:
			got = append(got, "corrupt")
		default:
			got = append(got, "ok")
		}
	}
	if want := "ok corrupt drop ok ok"; strings.Join(got, " ") != want {
		t.Fatalf("got %v, want %s", got, want)
	}
	f.DisconnectAt(2)
	if f.Incoming() || !f.Incoming() || f.Incoming() {
		t.Fatal("disconnect_at 2 fires at the second message only")
	}
	if st := f.State(); st.Sent != 5 || st.Received != 3 || st.DropAt != 0 || st.CorruptAt != 0 {
		t.Fatalf("state %+v", st)
	}
}
