package main

import (
	"errors"
	"flag"

	"github.com/hwbridge/hwbridge/daemon"
	"github.com/hwbridge/hwbridge/device"
)

// exitCodes is the one table from error kinds to exit codes, for both chains and both
// modes: the kinds are daemon.ErrorKind's (error.data.kind on the daemon's wire, rebuilt by
// the client), so an error means the same exit code and JSON code whether it happened here
// or in hwbridged. Kinds not listed exit 1.
var exitCodes = map[string]int{
	"usage":           exitUsage,
	"invalid_input":   exitUsage,
	"user_rejected":   exitRejected,
	"device_refused":  exitError,
	"no_device":       exitNoDevice,
	"several_devices": exitNoDevice,
	"locked":          exitNoDevice,
	"disconnected":    exitNoDevice,
	"wrong_app":       exitNoDevice,
	"busy":            exitNoDevice,
	"link_lost":       exitNoDevice,
}

// errHelpShown: the help a command was asked for was printed (exit 0).
var errHelpShown = errors.New("help shown")

// errorKind names err's kind: "usage" for a bad command line, "device_refused" for a
// request the device itself found invalid (not the person's input: exit 1), else
// daemon.ErrorKind.
func errorKind(err error) string {
	var ue *usageError
	if errors.As(err, &ue) || errors.Is(err, flag.ErrHelp) {
		return "usage"
	}
	kind := daemon.ErrorKind(err)
	var de *device.Error
	if kind == "invalid_input" && errors.As(err, &de) {
		return "device_refused"
	}
	return kind
}

func exitCodeOf(kind string) int {
	if c, ok := exitCodes[kind]; ok {
		return c
	}
	return exitError
}
