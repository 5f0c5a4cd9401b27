// Package pbwire ties protobuf messages to the 16-bit wire ids of Codec v1 (the framing the
// Trezor and KeepKey families share): each message package (internal/trezorpb,
// internal/keepkeypb) lists its own ids and types, and a Registry encodes and decodes by id.
// It holds no message of its own, so drivers and emulators may both use it (a wire codec,
// as internal/deptest allows). Hand-written: it is a few lines over google.golang.org/protobuf.
package pbwire

import (
	"fmt"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Registry encodes and decodes the messages of one family by wire id.
type Registry[ID ~int32] struct {
	name     string // the message package, for errors
	messages map[ID]func() proto.Message
	maxBody  int // 0: no limit
	ids      func() map[protoreflect.FullName]ID
}

// NewRegistry returns a registry of messages (wire id to constructor) for the package
// name. A body longer than maxBody is refused by Unmarshal; 0 means no limit.
func NewRegistry[ID ~int32](name string, messages map[ID]func() proto.Message, maxBody int) *Registry[ID] {
	r := &Registry[ID]{name: name, messages: messages, maxBody: maxBody}
	// Built on first use: descriptors exist only after the generated file's init has run.
	r.ids = sync.OnceValue(func() map[protoreflect.FullName]ID {
		m := make(map[protoreflect.FullName]ID, len(messages))
		for id, mk := range messages {
			m[mk().ProtoReflect().Descriptor().FullName()] = id
		}
		return m
	})
	return r
}

// New returns an empty message for a wire id, or false if the id is not listed.
func (r *Registry[ID]) New(id ID) (proto.Message, bool) {
	mk, ok := r.messages[id]
	if !ok {
		return nil, false
	}
	return mk(), true
}

// TypeOf returns the wire id of m.
func (r *Registry[ID]) TypeOf(m proto.Message) (ID, error) {
	id, ok := r.ids()[m.ProtoReflect().Descriptor().FullName()]
	if !ok {
		return 0, fmt.Errorf("%s: %s has no wire id", r.name, m.ProtoReflect().Descriptor().FullName())
	}
	return id, nil
}

// Marshal encodes m for the wire and returns its id. Fields are written in field-number
// order (Deterministic), as the vendors' clients and firmware do.
func (r *Registry[ID]) Marshal(m proto.Message) (ID, []byte, error) {
	id, err := r.TypeOf(m)
	if err != nil {
		return 0, nil, err
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return 0, nil, fmt.Errorf("%s: encode %s: %w", r.name, m.ProtoReflect().Descriptor().Name(), err)
	}
	return id, b, nil
}

// Unmarshal decodes a body with a known id. Unknown fields are skipped, as the firmware
// does.
func (r *Registry[ID]) Unmarshal(id ID, body []byte) (proto.Message, error) {
	m, ok := r.New(id)
	if !ok {
		return nil, fmt.Errorf("%s: unknown message type %d", r.name, id)
	}
	if r.maxBody > 0 && len(body) > r.maxBody {
		return nil, fmt.Errorf("%s: %s of %d bytes (max %d)", r.name, m.ProtoReflect().Descriptor().Name(), len(body), r.maxBody)
	}
	if err := proto.Unmarshal(body, m); err != nil {
		return nil, fmt.Errorf("%s: decode %s: %w", r.name, m.ProtoReflect().Descriptor().Name(), err)
	}
	return m, nil
}

// MarshalWire is Marshal with the id as it goes on the wire.
func (r *Registry[ID]) MarshalWire(m proto.Message) (uint16, []byte, error) {
	id, body, err := r.Marshal(m)
	return uint16(id), body, err
}

// UnmarshalWire is Unmarshal of an id as it came off the wire.
func (r *Registry[ID]) UnmarshalWire(id uint16, body []byte) (proto.Message, error) {
	return r.Unmarshal(ID(id), body)
}
