package main

// PIN and passphrase entry for Trezor-class devices in direct mode. A Trezor One shows its
// PIN digits in a grid scrambled anew for every request; the user types, on the computer,
// the positions of the PIN's digits in that grid, so the PIN itself never crosses the host.
// The prompt goes to the controlling terminal (/dev/tty), not stdout or stderr, and what is
// typed is not echoed, logged or kept.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// maxPINPositions is the longest PIN the firmware takes (50 digits since Trezor One 1.10.0,
// 9 before; the device refuses what it cannot take).
const maxPINPositions = 50

// errNoTerminal: there is no terminal to ask on (a script, a service, a pipe).
var errNoTerminal = errors.New("no terminal to ask on")

// askSecret asks for one line on the user's terminal without echo.
type askSecret func(ctx context.Context, prompt string) (string, error)

// ttySecret asks on /dev/tty.
func ttySecret(ctx context.Context, prompt string) (string, error) {
	f, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return "", fmt.Errorf("%w (%v)", errNoTerminal, err)
	}
	defer f.Close()
	if !term.IsTerminal(int(f.Fd())) {
		return "", errNoTerminal
	}
	type answer struct {
		b   []byte
		err error
	}
	done := make(chan answer, 1)
	fmt.Fprint(f, prompt)
	go func() {
		b, err := term.ReadPassword(int(f.Fd()))
		done <- answer{b, err}
	}()
	select {
	case a := <-done:
		fmt.Fprintln(f)
		return string(a.b), a.err
	case <-ctx.Done():
		// The read goes on until a line comes; closing the file does not stop it, but the
		// answer is dropped, and the terminal's echo is restored when it returns.
		fmt.Fprintln(f)
		return "", ctx.Err()
	}
}

const pinPrompt = `The Trezor (or KeepKey) asks for its PIN. Its screen shows the digits 1-9 in a scrambled grid.
For each digit of your PIN, type its position in that grid, as on a numeric keypad:
    7 8 9
    4 5 6
    1 2 3
PIN positions (not shown): `

// trezorPIN returns the PIN callback of the Trezor driver: the positions, checked.
func (e *env) trezorPIN() func(ctx context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		for range 3 {
			s, err := e.ask(ctx, pinPrompt)
			if err != nil {
				return "", pinEntryError(err)
			}
			s = strings.TrimSpace(s)
			if s != "" && len(s) <= maxPINPositions && strings.Trim(s, "123456789") == "" {
				return s, nil
			}
			fmt.Fprintf(e.stderr, "hwbridge: type 1 to %d positions, digits 1-9 only\n", maxPINPositions)
		}
		return "", errors.New("no valid PIN positions typed")
	}
}

// trezorPassphrase returns the passphrase callback of the Trezor driver.
func (e *env) trezorPassphrase() func(ctx context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		p, err := e.ask(ctx, "The Trezor (or KeepKey) asks for the passphrase (empty: the wallet without one; not shown): ")
		if err != nil {
			return "", pinEntryError(err)
		}
		return strings.TrimRight(p, "\r\n"), nil
	}
}

func pinEntryError(err error) error {
	if errors.Is(err, errNoTerminal) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: run hwbridge --direct in a terminal to enter it (any command asks), then retry", err)
	}
	return err
}
