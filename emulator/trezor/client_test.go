package trezoremu

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/emulator"
	pb "github.com/hwbridge/hwbridge/internal/trezorpb"
	"github.com/hwbridge/hwbridge/transport"
)

// testClient is a minimal host written for these tests from trezor.md (no device/ import):
// write one message, read one, acknowledge buttons.
type testClient struct {
	tb      testing.TB
	link    transport.Link
	buttons []pb.ButtonRequestType
	timeout time.Duration
}

func newDevice(tb testing.TB, opts Options) *Device {
	tb.Helper()
	return NewForTest(tb, opts)
}

func newClient(tb testing.TB, d *Device) *testClient {
	tb.Helper()
	l := d.Pipe()
	tb.Cleanup(func() { l.Close() })
	return &testClient{tb: tb, link: l, timeout: 10 * time.Second}
}

func (c *testClient) write(m proto.Message) error {
	id, body, err := pb.Marshal(m)
	if err != nil {
		c.tb.Fatal(err)
	}
	c.link.SetDeadline(time.Now().Add(c.timeout))
	return transport.WriteV1(c.link, uint16(id), body)
}

func (c *testClient) read() (proto.Message, error) {
	c.link.SetDeadline(time.Now().Add(c.timeout))
	typ, body, err := transport.ReadV1(c.link)
	if err != nil {
		return nil, err
	}
	return pb.Unmarshal(pb.MessageType(typ), body)
}

// exchange sends m and returns the first answer that is not a ButtonRequest (those are
// acknowledged and recorded).
func (c *testClient) exchange(m proto.Message) (proto.Message, error) {
	if err := c.write(m); err != nil {
		return nil, err
	}
	for {
		r, err := c.read()
		if err != nil {
			return nil, err
		}
		br, ok := r.(*pb.ButtonRequest)
		if !ok {
			return r, nil
		}
		c.buttons = append(c.buttons, br.GetCode())
		if err := c.write(&pb.ButtonAck{}); err != nil {
			return nil, err
		}
	}
}

func (c *testClient) call(m proto.Message) proto.Message {
	c.tb.Helper()
	r, err := c.exchange(m)
	if err != nil {
		c.tb.Fatalf("%T: %v", m, err)
	}
	return r
}

// callAs calls and requires a reply of type T.
func callAs[T proto.Message](c *testClient, m proto.Message) T {
	c.tb.Helper()
	r := c.call(m)
	t, ok := r.(T)
	if !ok {
		c.tb.Fatalf("%T: got %T %v", m, r, r)
	}
	return t
}

// failureOf calls and requires a Failure.
func failureOf(c *testClient, m proto.Message) *pb.Failure {
	c.tb.Helper()
	return callAs[*pb.Failure](c, m)
}

var errTimeout = errors.New("timeout")

func lastScreen(tb testing.TB, d *Device) emulator.Entry {
	tb.Helper()
	tr := d.Approver().Transcript()
	if len(tr) == 0 {
		tb.Fatal("empty transcript")
	}
	return tr[len(tr)-1]
}
