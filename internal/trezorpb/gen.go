// Package trezorpb holds the Trezor Codec v1 protobuf messages that hwbridge speaks, as
// generated Go types, plus the table that ties each message to its wire id.
//
// Both the driver (device/trezor) and the emulator import it: it is the wire vocabulary, not
// a flow. Each side writes its own flows, so that the two can disagree and a third-party
// client (trezorctl) can tell which one is wrong.
package trezorpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative messages.proto
