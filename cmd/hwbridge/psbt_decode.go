package main

import (
	"context"
	"fmt"
	"strings"

	hwpsbt "github.com/hwbridge/hwbridge/psbt"
)

// runPSBTDecode prints a PSBT for people: inputs, outputs with addresses, amounts, fee,
// derivations and signature status. No device is needed.
func runPSBTDecode(ctx context.Context, e *env, args []string) error {
	fs := e.flagSet("psbt decode")
	network := new(string)
	e.networkFlag(fs, network, "network for addresses")
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	net, err := parseNetwork(*network)
	if err != nil {
		return err
	}
	raw, err := e.readInput(pos[0])
	if err != nil {
		return err
	}
	p, err := hwpsbt.Decode(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", inputName(pos[0]), err)
	}
	s, err := hwpsbt.Describe(p, net)
	if err != nil {
		return err
	}
	return e.print(s, strings.TrimRight(s.Text(), "\n"))
}
