package bitcoin

import (
	"errors"
	"fmt"
	"strings"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
)

// ErrAddress is wrapped when an address does not parse or is for another network.
var ErrAddress = errors.New("bad address")

// Network returns the parameters for a network name: mainnet, testnet, signet, regtest.
func Network(name string) (*chaincfg.Params, error) {
	switch strings.ToLower(name) {
	case "mainnet", "main", "bitcoin":
		return &chaincfg.MainNetParams, nil
	case "testnet", "testnet3", "test":
		return &chaincfg.TestNet3Params, nil
	case "signet":
		return &chaincfg.SigNetParams, nil
	case "regtest":
		return &chaincfg.RegressionNetParams, nil
	}
	return nil, fmt.Errorf("unknown network %q (use mainnet, testnet, signet or regtest)", name)
}

// DecodeAddress parses an address and refuses one for another network. Testnet, signet
// and regtest share base58 prefixes, so a base58 address of one passes for the others;
// bech32 prefixes differ between regtest (bcrt) and testnet/signet (tb).
func DecodeAddress(s string, net *chaincfg.Params) (btcutil.Address, error) {
	a, err := btcutil.DecodeAddress(strings.TrimSpace(s), net)
	if err != nil {
		return nil, fmt.Errorf("%w: %q is not a %s address: %v", ErrAddress, s, net.Name, err)
	}
	if !a.IsForNet(net) {
		return nil, fmt.Errorf("%w: %q is an address for another network, not %s", ErrAddress, s, net.Name)
	}
	return a, nil
}
