// Package bitbox02pb holds the BitBox02 API protobuf messages that hwbridge speaks inside the
// Noise channel, as generated Go types.
//
// Both the driver (device/bitbox02) and the emulator (emulator/bitbox02) import it: it is the
// wire vocabulary, not a flow. Each side writes its own flows, so that the two can disagree
// and BitBox's own client (bitbox-api) can tell which one is wrong.
package bitbox02pb

//go:generate protoc --go_out=. --go_opt=paths=source_relative bitbox02.proto
