package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"runtime"
	"strings"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/hwbridge/hwbridge/chains/bitcoin"
	"github.com/hwbridge/hwbridge/device"
)

// btcWalletFlags are the flags every watch-only wallet command takes.
type btcWalletFlags struct {
	network string
	typ     string
	account uint
	rpc     string
	esplora string
	gap     int
	auth    bitcoin.RPCAuth
}

func (f *btcWalletFlags) register(fs *flag.FlagSet, needChain bool, e *env) {
	e.networkFlag(fs, &f.network, "bitcoin network")
	fs.StringVar(&f.typ, "type", "wpkh", "account script type: wpkh, tr, sh-wpkh or pkh")
	fs.UintVar(&f.account, "account", 0, "account number (BIP-44/49/84/86)")
	what := "node JSON-RPC URL, http://host:port (Bitcoin Core, or btcd with --txindex --addrindex); credentials from --rpc-cookie, --rpc-user with --rpc-password-file, or the network's cookie in ~/.bitcoin (preset by btc_rpc, $HWBRIDGE_BTC_RPC)"
	if !needChain {
		what += "; without it the address at --index is printed"
	}
	fs.StringVar(&f.rpc, "rpc", e.def("btc_rpc", ""), what)
	fs.StringVar(&f.auth.Cookie, "rpc-cookie", e.def("rpc_cookie", ""), "bitcoind's cookie `FILE` (default: the network's .cookie in ~/.bitcoin when the --rpc URL has no credentials)")
	fs.StringVar(&f.auth.User, "rpc-user", e.def("rpc_user", ""), "node RPC user (with --rpc-password-file)")
	if home := e.getenv("HOME"); home != "" {
		f.auth.DataDir = bitcoin.DefaultBitcoinDir(home, runtime.GOOS)
	}
	fs.StringVar(&f.auth.PasswordFile, "rpc-password-file", e.def("rpc_password_file", ""), "`FILE` whose first line is the node RPC password (never put it on the command line)")
	fs.StringVar(&f.esplora, "esplora", "", "Esplora REST API base URL (instead of --rpc), e.g. https://blockstream.info/api")
	fs.IntVar(&f.gap, "gap", bitcoin.DefaultGap, "gap limit: unused addresses scanned past the last used one")
}

// backend returns the chain backend the flags name, or nil when none is given.
func (f *btcWalletFlags) backend(net *chaincfg.Params) (bitcoin.Backend, error) {
	switch {
	case f.rpc != "" && f.esplora != "":
		return nil, usagef("give --rpc or --esplora, not both")
	case f.rpc != "":
		u, err := f.rpcURL(net)
		if err != nil {
			return nil, err
		}
		r, err := bitcoin.NewRPC(u, net)
		if err != nil {
			return nil, usagef("--rpc: %v", err)
		}
		return r, nil
	case f.esplora != "":
		return bitcoin.NewEsplora(f.esplora, net), nil
	}
	return nil, nil
}

// rpcURL is --rpc with the node's credentials (bitcoin.RPCAuth.WithAuth), for this
// process and for hwbridged (which never sees the cookie file).
func (f *btcWalletFlags) rpcURL(net *chaincfg.Params) (string, error) {
	u, _, err := f.auth.WithAuth(f.rpc, net)
	if err != nil && !errors.Is(err, bitcoin.ErrNoCredentials) {
		return "", usagef("--rpc: %v", err)
	}
	return u, nil
}

// btcWallet is an opened watch-only wallet: the device, its account descriptor, the chain.
type btcWallet struct {
	dev    device.Device
	net    *chaincfg.Params
	script device.ScriptType
	w      *bitcoin.Wallet
}

// openWallet parses the shared flags, opens the device and builds the account descriptor
// from its xpub. needChain requires --rpc or --esplora.
func (e *env) openWallet(ctx context.Context, f *btcWalletFlags, needChain bool) (*btcWallet, error) {
	net, err := parseNetwork(f.network)
	if err != nil {
		return nil, err
	}
	st, err := parseScript(f.typ)
	if err != nil {
		return nil, err
	}
	if f.account >= 1<<31 {
		return nil, usagef("--account %d is out of range", f.account)
	}
	be, err := f.backend(net)
	if err != nil {
		return nil, err
	}
	if be == nil && needChain {
		return nil, usagef("%s needs a chain: pass --rpc http://user:pass@host:port or --esplora URL", e.cmd.name)
	}
	dev, err := e.open(ctx)
	if err != nil {
		return nil, err
	}
	desc, err := bitcoin.AccountDescriptor(ctx, dev, st, net, uint32(f.account))
	if err != nil {
		return nil, err
	}
	return &btcWallet{dev: dev, net: net, script: st, w: &bitcoin.Wallet{Desc: desc, Net: net, Backend: be, Gap: f.gap}}, nil
}

// btcReceiveResult is what `btc receive` prints.
type btcReceiveResult struct {
	Address    string `json:"address"`
	Path       string `json:"path"`
	Index      uint32 `json:"index"`
	Descriptor string `json:"descriptor"`
	Displayed  bool   `json:"displayed"`
	// DeviceShows is the string the device displayed when it differs from Address (a
	// Ledger's test app shows regtest addresses as tb1…: the same script).
	DeviceShows string `json:"device_shows,omitempty"`
}

func runBTCReceive(ctx context.Context, e *env, args []string) error {
	var f btcWalletFlags
	fs := e.flagSet("btc receive")
	f.register(fs, false, e)
	index := fs.Int("index", -1, "address index (default: the first unused one with --rpc/--esplora, else 0)")
	display := fs.Bool("display", false, "show the address on the device to compare")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	bw, err := e.openWallet(ctx, &f, false)
	if err != nil {
		return err
	}
	idx := uint32(0)
	switch {
	case *index >= 0:
		idx = uint32(*index)
	case bw.w.Backend != nil:
		st, err := bw.w.Scan(ctx)
		if err != nil {
			return err
		}
		idx = st.NextIndex[0]
	}
	addr, err := bw.w.Desc.Address(0, idx, bw.net)
	if err != nil {
		return err
	}
	s, err := bw.w.Desc.Derive(0, idx)
	if err != nil {
		return err
	}
	path := s.Keys[0].Path
	// The device derives the address itself; it must be the one computed from its xpub.
	dctx, shown := device.WithShown(switchIf(ctx, *display))
	devAddr, err := bw.dev.Address(dctx, device.AddressRequest{Chain: device.ChainBTC, Path: path, Script: bw.script, Network: bw.net, Display: *display})
	if err != nil {
		return err
	}
	if devAddr != addr.EncodeAddress() {
		return fmt.Errorf("the device says %s but its xpub gives %s: do not use either", devAddr, addr)
	}
	recv, err := bw.w.Desc.SingleBranch(0)
	if err != nil {
		return err
	}
	res := btcReceiveResult{Address: addr.EncodeAddress(), Path: pathText(path), Index: idx, Descriptor: recv.String(), Displayed: *display}
	if sh := shown.String(); sh != "" && sh != res.Address {
		res.DeviceShows = sh
		fmt.Fprintf(e.stderr, "device shows: %s (the same script as %s: the device prints it in another network's encoding)\n", sh, res.Address)
	}
	return e.print(res, res.Address)
}

func pathText(p []uint32) string {
	var b strings.Builder
	b.WriteString("m")
	for _, s := range p {
		if s >= 1<<31 {
			fmt.Fprintf(&b, "/%d'", s-1<<31)
		} else {
			fmt.Fprintf(&b, "/%d", s)
		}
	}
	return b.String()
}

// btcErr adds what to do next to wallet errors.
func btcErr(err error) error {
	switch {
	case errors.Is(err, bitcoin.ErrNoFeeEstimate):
		return fmt.Errorf("%w: pass --fee-rate SAT/VB", err)
	}
	return err
}
