package main

// devnet's Coldcard-class wallet (--coldcard SOCKET): the emulator in this process, on the
// Coldcard simulator's unix datagram socket (as hwemu --coldcard), chain setting XRT so that
// it shows regtest addresses. It is a Bitcoin-only wallet: devnet funds its first P2WPKH
// address with the others' and never asks it for Ethereum.

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hwbridge/hwbridge/emulator"
	coldcardemu "github.com/hwbridge/hwbridge/emulator/coldcard"
)

// startColdcard serves a Coldcard-class emulator holding mnemonic on the socket path and
// adds it to the wallets. Its server stops before the device closes.
func (d *devEnv) startColdcard(socket, mnemonic, hint string) error {
	ap := emulator.NewApprover(emulator.PolicyAuto)
	cc, err := coldcardemu.New(coldcardemu.Options{Mnemonic: mnemonic, Chain: "XRT", Approver: ap, Logger: d.e.log})
	if err != nil {
		return fmt.Errorf("coldcard-class emulator: %w", err)
	}
	d.closers = append(d.closers, cc.Close)
	srv, err := cc.Listen(socket)
	if err != nil {
		return fmt.Errorf("coldcard-class emulator on unix:%s%s: %w", socket, hint, err)
	}
	ctx, stop := context.WithCancel(context.Background())
	var serving sync.WaitGroup
	serving.Go(func() {
		err := srv.Serve(ctx)
		if ctx.Err() != nil {
			return // stopped by close
		}
		if err == nil {
			err = errors.New("stopped serving")
		}
		select {
		case d.failed <- fmt.Errorf("coldcard-class emulator: %w", err):
		default:
		}
	})
	d.closers = append(d.closers, func() error { stop(); serving.Wait(); return nil })
	d.wallets = append(d.wallets, &devWallet{name: "Coldcard-class", path: "unix:" + srv.Path(), screen: screenReader(ap), btcOnly: true})
	return nil
}
