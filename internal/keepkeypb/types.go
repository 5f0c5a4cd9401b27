package keepkeypb

import (
	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/internal/pbwire"
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

// registry encodes and decodes the messages above by wire id.
var registry = pbwire.NewRegistry("keepkeypb", messages, MaxMessageSize)

// Codec is the message set as a wire codec (ids as uint16), for the v1 sessions of the
// drivers and emulators.
func Codec() *pbwire.Registry[MessageType] { return registry }

// New returns an empty message for a wire id, or false if hwbridge does not know the id.
func New(id MessageType) (proto.Message, bool) { return registry.New(id) }

// TypeOf returns the wire id of m.
func TypeOf(m proto.Message) (MessageType, error) { return registry.TypeOf(m) }

// Marshal encodes m for the wire and returns its id. Fields are written in field-number
// order, as nanopb in the firmware and google-protobuf in hdwallet do.
func Marshal(m proto.Message) (MessageType, []byte, error) { return registry.Marshal(m) }

// Unmarshal decodes a body with a known id. Unknown fields are skipped, as the firmware's
// nanopb decoder does; a body over MaxMessageSize is refused.
func Unmarshal(id MessageType, body []byte) (proto.Message, error) {
	return registry.Unmarshal(id, body)
}
