package pbwire

import (
	"bytes"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

type testID int32

func testRegistry(maxBody int) *Registry[testID] {
	return NewRegistry("testpb", map[testID]func() proto.Message{
		7: func() proto.Message { return new(wrapperspb.StringValue) },
		9: func() proto.Message { return new(wrapperspb.UInt64Value) },
	}, maxBody)
}

func TestRoundTrip(t *testing.T) {
	r := testRegistry(0)
	id, body, err := r.MarshalWire(wrapperspb.UInt64(300))
	if err != nil || id != 9 || !bytes.Equal(body, []byte{0x08, 0xac, 0x02}) {
		t.Fatalf("MarshalWire = %d % x %v", id, body, err)
	}
	m, err := r.UnmarshalWire(id, body)
	if err != nil || m.(*wrapperspb.UInt64Value).GetValue() != 300 {
		t.Fatalf("UnmarshalWire = %v, %v", m, err)
	}
	if _, _, err := r.Marshal(wrapperspb.Bool(true)); err == nil || !strings.Contains(err.Error(), "testpb: google.protobuf.BoolValue has no wire id") {
		t.Fatalf("unlisted message: %v", err)
	}
	if _, err := r.Unmarshal(8, nil); err == nil || !strings.Contains(err.Error(), "unknown message type 8") {
		t.Fatalf("unknown id: %v", err)
	}
	if _, err := r.Unmarshal(7, []byte{0x0a, 0x05, 'a'}); err == nil {
		t.Fatal("truncated body decoded")
	}
}

func TestMaxBody(t *testing.T) {
	body := append([]byte{0x0a, 0x08}, "12345678"...)
	if _, err := testRegistry(len(body)).Unmarshal(7, body); err != nil {
		t.Fatalf("body at the limit: %v", err)
	}
	if _, err := testRegistry(len(body)-1).Unmarshal(7, body); err == nil || !strings.Contains(err.Error(), "(max 9)") {
		t.Fatalf("body over the limit: %v", err)
	}
}

// FuzzUnmarshal: any id and body either fails or decodes to a message that encodes back
// under the same id.
func FuzzUnmarshal(f *testing.F) {
	f.Add(uint16(7), []byte{0x0a, 0x02, 'h', 'i'})
	f.Add(uint16(9), []byte{0x08, 0xac, 0x02})
	f.Add(uint16(8), []byte{})
	r := testRegistry(64)
	f.Fuzz(func(t *testing.T, id uint16, body []byte) {
		m, err := r.UnmarshalWire(id, body)
		if err != nil {
			return
		}
		if len(body) > 64 {
			t.Fatalf("decoded %d bytes over the limit", len(body))
		}
		got, _, err := r.MarshalWire(m)
		if err != nil || got != id {
			t.Fatalf("re-encode: id %d, %v; want %d", got, err, id)
		}
	})
}
