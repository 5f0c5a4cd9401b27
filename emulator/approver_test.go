package emulator

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestApproverPolicies(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		policy Policy
		want   bool
		out    Outcome
	}{
		{PolicyAuto, true, OutcomeApproved},
		{PolicyReject, false, OutcomeRejected},
	} {
		a := NewApprover(tc.policy)
		got, err := a.Ask(ctx, Screen{Device: "trezor", Title: "Confirm", Lines: []string{"x"}})
		if err != nil || got != tc.want {
			t.Fatalf("%s: got %v %v", tc.policy, got, err)
		}
		tr := a.Transcript()
		if len(tr) != 1 || tr[0].Outcome != tc.out || tr[0].Title != "Confirm" || tr[0].Lines[0] != "x" {
			t.Fatalf("%s: transcript %+v", tc.policy, tr)
		}
		if err := a.Press(true); !errors.Is(err, ErrNoPrompt) {
			t.Fatalf("press under %s: %v", tc.policy, err)
		}
	}
	if _, err := ParsePolicy("maybe"); err == nil {
		t.Fatal("bad policy parsed")
	}
	if err := NewApprover("").SetPolicy("x"); err == nil {
		t.Fatal("bad policy set")
	}
}

func TestApproverPrompt(t *testing.T) {
	a := NewApprover(PolicyPrompt)
	done := make(chan bool)
	go func() {
		ok, err := a.Ask(context.Background(), Screen{Title: "Sign"})
		if err != nil {
			t.Error(err)
		}
		done <- ok
	}()
	waitPending(t, a)
	if err := a.Press(false); err != nil {
		t.Fatal(err)
	}
	if <-done {
		t.Fatal("rejected press approved")
	}
	if tr := a.Transcript(); tr[0].Outcome != OutcomeRejected {
		t.Fatalf("outcome %s", tr[0].Outcome)
	}

	// A press made before the screen is held for it.
	if err := a.Press(true); err != nil {
		t.Fatal(err)
	}
	if ok, err := a.Ask(context.Background(), Screen{Title: "Next"}); err != nil || !ok {
		t.Fatalf("held press: %v %v", ok, err)
	}

	// Context end cancels the wait.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := a.Ask(ctx, Screen{Title: "Never"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ctx end: %v", err)
	}
	if tr := a.Transcript(); tr[len(tr)-1].Outcome != OutcomeCancelled {
		t.Fatalf("outcome %s", tr[len(tr)-1].Outcome)
	}

	// Switching to auto releases a waiting screen.
	go func() {
		ok, _ := a.Ask(context.Background(), Screen{Title: "Wait"})
		done <- ok
	}()
	waitPending(t, a)
	if err := a.SetPolicy(PolicyAuto); err != nil {
		t.Fatal(err)
	}
	if !<-done {
		t.Fatal("auto did not approve the waiting screen")
	}
	a.Show(Screen{Title: "Info"})
	if tr := a.Transcript(); tr[len(tr)-1].Outcome != OutcomeShown {
		t.Fatal("show not recorded")
	}
	a.ClearTranscript()
	if len(a.Transcript()) != 0 {
		t.Fatal("not cleared")
	}
}

func waitPending(t *testing.T, a *Approver) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok := a.Pending(); ok {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("no screen became pending")
}

func TestFaults(t *testing.T) {
	var f Faults
	pkt := []byte{'?', '#', '#', 1}
	if out, ok := f.Outgoing(pkt); !ok || &out[0] != &pkt[0] {
		t.Fatal("unarmed fault changed a packet")
	}
	f.DropNext(2)
	for i := 0; i < 2; i++ {
		if _, ok := f.Outgoing(pkt); ok {
			t.Fatal("packet not dropped")
		}
	}
	f.CorruptNext(1)
	if out, ok := f.Outgoing(pkt); !ok || out[0] == '?' || pkt[0] != '?' {
		t.Fatal("corrupt: wrong packet or original changed")
	}
	f.DisconnectAt(2)
	if f.Incoming() || !f.Incoming() || f.Incoming() {
		t.Fatal("disconnect counted wrong")
	}
	if err := f.Apply(FaultSpec{DelayMS: 5, Drop: 1}); err != nil {
		t.Fatal(err)
	}
	if f.Delay() != 5*time.Millisecond || f.State().Drop != 1 {
		t.Fatalf("state %+v", f.State())
	}
	if err := f.Apply(FaultSpec{Clear: true}); err != nil || f.State() != (FaultState{Sent: f.State().Sent, Received: f.State().Received}) {
		t.Fatalf("clear: %v %+v", err, f.State())
	}
	if err := f.Apply(FaultSpec{Drop: -1}); err == nil {
		t.Fatal("negative accepted")
	}
	if err := f.Apply(FaultSpec{DelayMS: 1e9}); err == nil {
		t.Fatal("huge delay accepted")
	}
	var nilF *Faults
	if _, ok := nilF.Outgoing(pkt); !ok || nilF.Incoming() || nilF.Delay() != 0 {
		t.Fatal("nil faults not inert")
	}
}
