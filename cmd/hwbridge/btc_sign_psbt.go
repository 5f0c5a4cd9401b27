package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/btcsuite/btcd/btcutil/psbt"

	"github.com/hwbridge/hwbridge/device"
	hwpsbt "github.com/hwbridge/hwbridge/psbt"
)

// maxPSBTFile caps what `btc sign-psbt` reads: the largest PSBT the psbt package accepts,
// in its longest text form.
const maxPSBTFile = 2 * hwpsbt.MaxSize

// btcSignPSBTCmd signs a PSBT and prints it, base64.
type btcSignPSBTCmd struct {
	network string
}

func runBTCSignPSBT(ctx context.Context, e *env, args []string) error {
	c := &btcSignPSBTCmd{}
	fs := e.flagSet("btc sign-psbt")
	e.networkFlag(fs, &c.network, "bitcoin network")
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	net, err := parseNetwork(c.network)
	if err != nil {
		return err
	}
	raw, err := e.readInput(pos[0])
	if err != nil {
		return err
	}
	p, err := decodePSBT(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", inputName(pos[0]), err)
	}
	d, err := e.open(ctx)
	if err != nil {
		return err
	}
	before := signatureCount(p)
	if err := d.SignPSBT(device.WithAppSwitch(ctx), p, net); err != nil {
		return err
	}
	b64, err := hwpsbt.EncodeBase64(p)
	if err != nil {
		return fmt.Errorf("encode the signed psbt: %w", err)
	}
	return e.print(map[string]any{"psbt": b64, "signatures_added": signatureCount(p) - before, "network": networkName(net)}, b64)
}

func inputName(arg string) string {
	if arg == "-" {
		return "stdin"
	}
	return arg
}

// readInput reads a file argument, or stdin for "-", up to maxPSBTFile bytes.
func (e *env) readInput(arg string) ([]byte, error) {
	var r io.Reader = e.stdin
	if arg != "-" {
		f, err := os.Open(arg)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", device.ErrInvalidInput, err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxPSBTFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", inputName(arg), err)
	}
	if len(b) > maxPSBTFile {
		return nil, fmt.Errorf("%s: %w: larger than %d bytes", inputName(arg), device.ErrInvalidInput, maxPSBTFile)
	}
	return b, nil
}

// decodePSBT accepts binary BIP-174, base64 (as Bitcoin Core prints it) or hex.
func decodePSBT(raw []byte) (*psbt.Packet, error) {
	p, err := hwpsbt.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", device.ErrInvalidInput, err)
	}
	if len(p.UnsignedTx.TxIn) == 0 || len(p.UnsignedTx.TxOut) == 0 {
		return nil, fmt.Errorf("%w: the psbt's transaction has %d inputs and %d outputs; it needs at least one of each", device.ErrInvalidInput, len(p.UnsignedTx.TxIn), len(p.UnsignedTx.TxOut))
	}
	return p, nil
}

func signatureCount(p *psbt.Packet) int {
	n := 0
	for _, in := range p.Inputs {
		n += len(in.PartialSigs)
		if len(in.TaprootKeySpendSig) > 0 {
			n++
		}
	}
	return n
}
