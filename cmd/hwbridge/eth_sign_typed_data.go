package main

// hwbridge eth sign-typed-data FILE: EIP-712 typed data (eth_signTypedData_v4 JSON), hashed
// on this computer; the domain separator and message hash are shown, and the device signs
// either the whole document (a Trezor T/Safe and a Ledger Ethereum app ≥ 1.9.19 stream it
// and show its fields) or the two hashes (it shows them); the signature is checked to
// recover the device's address.

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/hwbridge/hwbridge/chains/ethereum"
	"github.com/hwbridge/hwbridge/device"
)

func runETHSignTypedData(ctx context.Context, e *env, args []string) error {
	var index uint
	fs := e.flagSet("eth sign-typed-data")
	fs.UintVar(&index, "index", 0, "address index in m/44'/60'/0'/0/N")
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	raw, err := e.readLimited(pos[0], ethereum.MaxTypedDataSize)
	if err != nil {
		return err
	}
	td, err := ethereum.ParseTypedData(raw)
	if err != nil {
		return usagef("%s: %v", pos[0], err)
	}
	f := ethTxFlags{index: index}
	path, err := f.path()
	if err != nil {
		return err
	}
	dom := td.Domain()
	fmt.Fprintln(e.stderr, "hwbridge: about to sign EIP-712 typed data:")
	keys := make([]string, 0, len(dom))
	for k := range dom {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(e.stderr, "  domain %s: %s\n", k, dom[k])
	}
	ds := hexutil.Encode(td.DomainSeparator[:])
	mh := ""
	fmt.Fprintf(e.stderr, "  primary type:     %s\n  domain separator: %s\n", td.Data.PrimaryType, ds)
	if td.MessageHash != nil {
		mh = hexutil.Encode(td.MessageHash)
		fmt.Fprintf(e.stderr, "  message hash:     %s\n", mh)
	}
	fmt.Fprintln(e.stderr, "  compare with the device's screen: a trezor model t/safe shows the fields; a ledger (ethereum app 1.9.19 or later) shows the domain fields and,")
	fmt.Fprintln(e.stderr, "  with \"Verbose EIP-712\" on, every message field (else the message hash, which needs \"Blind signing\"); a trezor one and older ledger apps show these hashes")
	d, err := e.open(ctx)
	if err != nil {
		return err
	}
	ctx = device.WithAppSwitch(ctx) // the person asked to sign: the Ethereum app may be opened
	acct, err := ethereum.OpenAccount(ctx, d, path)
	if err != nil {
		return err
	}
	sig, err := acct.SignTypedData(ctx, td)
	if err != nil {
		return err
	}
	out := map[string]any{
		"address": acct.Address.Hex(), "path": path.String(), "primary_type": td.Data.PrimaryType, "domain": dom,
		"domain_separator": ds, "digest": hexutil.Encode(td.Digest[:]), "signature": hexutil.Encode(sig),
	}
	lines := []string{"address:          " + acct.Address.Hex(), "domain separator: " + ds}
	if mh != "" {
		out["message_hash"] = mh
		lines = append(lines, "message hash:     "+mh)
	}
	lines = append(lines, "signature:        "+hexutil.Encode(sig))
	return e.print(out, lines...)
}

// readLimited reads a file, or stdin for "-", up to max bytes.
func (e *env) readLimited(name string, max int64) ([]byte, error) {
	var r io.Reader = e.stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("%w (give a file, or - for stdin)", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(b)) > max {
		return nil, usagef("%s: more than %d bytes", name, max)
	}
	return b, nil
}
