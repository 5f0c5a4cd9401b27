// Package keepkeypb holds the KeepKey protobuf messages that hwbridge speaks, as generated
// Go types, plus the table that ties each message to its wire id.
//
// KeepKey firmware is a fork of Trezor's legacy firmware: the same "?##" framing
// (transport.V1Packets), the same ids up to 60, but its own Features, its own Ethereum ids
// from 100 on (EthereumSignMessage is 108, not Trezor's 64) and its own EthereumSignTx
// fields (chain_id is field 12, EIP-1559 fees 13/14, type 104). That is why it has its
// own package instead of sharing internal/trezorpb.
//
// Both the driver (device/keepkey) and the emulator (emulator/keepkey) import it: it is the
// wire vocabulary, not a flow. Each side writes its own flows, so that the two can disagree
// and KeepKey's own client (@shapeshiftoss/hdwallet-keepkey) can tell which one is wrong.
//
// keepkey.proto is hand-written (field tables transcribed from keepkey/device-protocol,
// commit in its header); keepkey.pb.go is generated from it by protoc 3.21.12 (Debian's
// protobuf-compiler) and protoc-gen-go v1.36.12, the same tools as internal/trezorpb. The file is
// not called messages.proto: protobuf registers files by name, and trezorpb's is.
package keepkeypb

//go:generate protoc --go_out=. --go_opt=paths=source_relative keepkey.proto
