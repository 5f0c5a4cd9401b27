package main

import (
	"context"
	"strings"
	"sync"
	"testing"

	trezoremu "github.com/hwbridge/hwbridge/emulator/trezor"
)

// scriptedAsk answers the prompts in turn and records them.
type scriptedAsk struct {
	mu      sync.Mutex
	answers []string
	prompts []string
}

func (s *scriptedAsk) ask(_ context.Context, prompt string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prompts = append(s.prompts, prompt)
	if len(s.answers) == 0 {
		return "", errNoTerminal
	}
	a := s.answers[0]
	s.answers = s.answers[1:]
	return a, nil
}

// TestTrezorPINAndPassphraseEntry: in direct mode the CLI answers the Trezor's PIN matrix and
// passphrase requests from the terminal prompt. The emulator's matrix is the identity, so
// the positions of PIN 1234 are 1234. Nothing typed is printed.
func TestTrezorPINAndPassphraseEntry(t *testing.T) {
	addr := []string{"address", "--chain", "btc", "--json"}
	plain := cli(t, "", nil, append([]string{"--device", serveTrezor(t, trezoremu.Options{})}, addr...)...)
	if plain.code != exitOK {
		t.Fatalf("no pin: exit %d %q", plain.code, plain.stderr)
	}
	tests := []struct {
		name    string
		opts    trezoremu.Options
		answers []string
		code    int
		want    string // in the output on failure (--json: stdout); on success stdout equals the plain address unless a passphrase changed it
		other   bool   // a passphrase wallet: another address
	}{
		{"pin", trezoremu.Options{PIN: "1234"}, []string{"1234"}, exitOK, "", false},
		{"pin after a bad entry", trezoremu.Options{PIN: "1234"}, []string{"12a4", " 1234 "}, exitOK, "digits 1-9 only", false},
		{"wrong pin", trezoremu.Options{PIN: "1234"}, []string{"4321"}, exitNoDevice, "PIN invalid", false},
		{"no terminal", trezoremu.Options{PIN: "1234"}, nil, exitNoDevice, "run hwbridge --direct in a terminal", false},
		{"pin and passphrase", trezoremu.Options{PIN: "1234", PassphraseProtection: true}, []string{"1234", "TREZOR"}, exitOK, "", true},
		{"empty passphrase is the standard wallet", trezoremu.Options{PassphraseProtection: true}, []string{""}, exitOK, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &scriptedAsk{answers: tt.answers}
			r := cliAsk(t, "", nil, s.ask, append([]string{"--device", serveTrezor(t, tt.opts)}, addr...)...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %q", r.code, tt.code, r.stderr)
			}
			if out := r.stdout + r.stderr; !strings.Contains(strings.ToLower(out), strings.ToLower(tt.want)) {
				t.Errorf("output %q lacks %q", out, tt.want)
			}
			for _, secret := range tt.answers {
				if s := strings.TrimSpace(secret); s != "" && (strings.Contains(r.stdout, s) || strings.Contains(r.stderr, s)) {
					t.Errorf("%q was printed: stdout %q stderr %q", s, r.stdout, r.stderr)
				}
			}
			if tt.code == exitOK && (r.stdout == plain.stdout) == tt.other {
				t.Errorf("address %q, the wallet without a passphrase has %q", r.stdout, plain.stdout)
			}
			if strings.Contains(tt.name, "pin") && tt.code == exitOK && !strings.Contains(s.prompts[0], "7 8 9") {
				t.Errorf("the PIN prompt does not show the keypad layout: %q", s.prompts[0])
			}
		})
	}
}
