package keepkeypb

import (
	"fmt"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// MaxMessageSize caps a body this package decodes. KeepKey firmware's largest buffer is
// 3 KiB (MSG_IN_SIZE in keepkey-firmware include/keepkey/board/messages.h is smaller still
// for most messages); the largest thing we carry is a 1 KiB Ethereum data chunk or a
// previous transaction's input or output.
const MaxMessageSize = 64 << 10

// messages ties every wire id to the message it carries.
var messages = map[MessageType]func() proto.Message{
	MessageType_MessageType_Initialize:                 func() proto.Message { return new(Initialize) },
	MessageType_MessageType_Ping:                       func() proto.Message { return new(Ping) },
	MessageType_MessageType_Success:                    func() proto.Message { return new(Success) },
	MessageType_MessageType_Failure:                    func() proto.Message { return new(Failure) },
	MessageType_MessageType_GetPublicKey:               func() proto.Message { return new(GetPublicKey) },
	MessageType_MessageType_PublicKey:                  func() proto.Message { return new(PublicKey) },
	MessageType_MessageType_SignTx:                     func() proto.Message { return new(SignTx) },
	MessageType_MessageType_Features:                   func() proto.Message { return new(Features) },
	MessageType_MessageType_PinMatrixRequest:           func() proto.Message { return new(PinMatrixRequest) },
	MessageType_MessageType_PinMatrixAck:               func() proto.Message { return new(PinMatrixAck) },
	MessageType_MessageType_Cancel:                     func() proto.Message { return new(Cancel) },
	MessageType_MessageType_TxRequest:                  func() proto.Message { return new(TxRequest) },
	MessageType_MessageType_TxAck:                      func() proto.Message { return new(TxAck) },
	MessageType_MessageType_ClearSession:               func() proto.Message { return new(ClearSession) },
	MessageType_MessageType_ButtonRequest:              func() proto.Message { return new(ButtonRequest) },
	MessageType_MessageType_ButtonAck:                  func() proto.Message { return new(ButtonAck) },
	MessageType_MessageType_GetAddress:                 func() proto.Message { return new(GetAddress) },
	MessageType_MessageType_Address:                    func() proto.Message { return new(Address) },
	MessageType_MessageType_SignMessage:                func() proto.Message { return new(SignMessage) },
	MessageType_MessageType_VerifyMessage:              func() proto.Message { return new(VerifyMessage) },
	MessageType_MessageType_MessageSignature:           func() proto.Message { return new(MessageSignature) },
	MessageType_MessageType_PassphraseRequest:          func() proto.Message { return new(PassphraseRequest) },
	MessageType_MessageType_PassphraseAck:              func() proto.Message { return new(PassphraseAck) },
	MessageType_MessageType_GetFeatures:                func() proto.Message { return new(GetFeatures) },
	MessageType_MessageType_EthereumGetAddress:         func() proto.Message { return new(EthereumGetAddress) },
	MessageType_MessageType_EthereumAddress:            func() proto.Message { return new(EthereumAddress) },
	MessageType_MessageType_EthereumSignTx:             func() proto.Message { return new(EthereumSignTx) },
	MessageType_MessageType_EthereumTxRequest:          func() proto.Message { return new(EthereumTxRequest) },
	MessageType_MessageType_EthereumTxAck:              func() proto.Message { return new(EthereumTxAck) },
	MessageType_MessageType_DebugLinkDecision:          func() proto.Message { return new(DebugLinkDecision) },
	MessageType_MessageType_EthereumSignMessage:        func() proto.Message { return new(EthereumSignMessage) },
	MessageType_MessageType_EthereumVerifyMessage:      func() proto.Message { return new(EthereumVerifyMessage) },
	MessageType_MessageType_EthereumMessageSignature:   func() proto.Message { return new(EthereumMessageSignature) },
	MessageType_MessageType_EthereumSignTypedHash:      func() proto.Message { return new(EthereumSignTypedHash) },
	MessageType_MessageType_EthereumTypedDataSignature: func() proto.Message { return new(EthereumTypedDataSignature) },
}

// ids is the reverse of messages, keyed by the message's full protobuf name. It is built on
// first use: descriptors exist only after the generated file's init has run.
var ids = sync.OnceValue(func() map[protoreflect.FullName]MessageType {
	m := make(map[protoreflect.FullName]MessageType, len(messages))
	for id, mk := range messages {
		m[mk().ProtoReflect().Descriptor().FullName()] = id
	}
	return m
})

// New returns an empty message for a wire id, or false if hwbridge does not know the id.
func New(id MessageType) (proto.Message, bool) {
	mk, ok := messages[id]
	if !ok {
		return nil, false
	}
	return mk(), true
}

// TypeOf returns the wire id of m.
func TypeOf(m proto.Message) (MessageType, error) {
	id, ok := ids()[m.ProtoReflect().Descriptor().FullName()]
	if !ok {
		return 0, fmt.Errorf("keepkeypb: %s has no wire id", m.ProtoReflect().Descriptor().FullName())
	}
	return id, nil
}

// Marshal encodes m for the wire and returns its id. Fields are written in field-number
// order, as nanopb in the firmware and google-protobuf in hdwallet do.
func Marshal(m proto.Message) (MessageType, []byte, error) {
	id, err := TypeOf(m)
	if err != nil {
		return 0, nil, err
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return 0, nil, fmt.Errorf("keepkeypb: encode %s: %w", m.ProtoReflect().Descriptor().Name(), err)
	}
	return id, b, nil
}

// Unmarshal decodes a body with a known id. Unknown fields are skipped, as the firmware's
// nanopb decoder does; a body over MaxMessageSize is refused.
func Unmarshal(id MessageType, body []byte) (proto.Message, error) {
	m, ok := New(id)
	if !ok {
		return nil, fmt.Errorf("keepkeypb: unknown message type %d", id)
	}
	if len(body) > MaxMessageSize {
		return nil, fmt.Errorf("keepkeypb: %s of %d bytes (max %d)", m.ProtoReflect().Descriptor().Name(), len(body), MaxMessageSize)
	}
	if err := proto.Unmarshal(body, m); err != nil {
		return nil, fmt.Errorf("keepkeypb: decode %s: %w", m.ProtoReflect().Descriptor().Name(), err)
	}
	return m, nil
}
