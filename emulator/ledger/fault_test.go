package ledgeremu

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/transport"
)

func TestFaults(t *testing.T) {
	d := NewForTest(t, Config{})
	for _, tc := range []struct {
		name string
		spec emulator.FaultSpec
		want func(error) bool
	}{
		{"corrupt reply", emulator.FaultSpec{Corrupt: 1}, func(err error) bool { return err != nil }},
		{"dropped reply", emulator.FaultSpec{Drop: 1}, func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }},
		{"disconnect", emulator.FaultSpec{DisconnectAt: 1}, func(err error) bool { return errors.Is(err, transport.ErrClosed) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := d.Faults().Apply(tc.spec); err != nil {
				t.Fatal(err)
			}
			ex := transport.NewSpeculosExchanger(d.Pipe())
			defer ex.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			defer cancel()
			_, err := ex.Exchange(ctx, []byte{claBTC, insGetMasterFpr, 0, 1, 0})
			if !tc.want(err) {
				t.Fatalf("exchange under fault: %v", err)
			}
			// A fresh link works again.
			c := newTestClient(t, d)
			c.mustOK(claBTC, insGetMasterFpr, 0, 1, nil)
		})
	}
	// A delay holds the reply back but still delivers it.
	d.Faults().SetDelay(30 * time.Millisecond)
	defer d.Faults().Clear()
	c := newTestClient(t, d)
	c.mustOK(claBTC, insGetMasterFpr, 0, 1, nil)
}
