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

// TestNet4Params is testnet4 (BIP-94). btcd v0.24.2 has no testnet4; for keys and
// addresses it is testnet3 (tb1 addresses, tpub, coin type 1), which is all hwbridge needs
// of it (the node is named by its RPC URL).
var TestNet4Params = func() *chaincfg.Params {
	p := chaincfg.TestNet3Params
	p.Name = "testnet4"
	return &p
}()

// networks is the one table of network names: the first name of each is the one printed;
// the others are what bitcoin-cli, HWI (--chain main|test|…) and people also type.
// core is Bitcoin Core's name of the chain (ChainTypeToString), which its -signer passes as
// --chain.
var networks = []struct {
	params *chaincfg.Params
	names  []string
	core   string
}{
	{&chaincfg.MainNetParams, []string{"mainnet", "main", "bitcoin"}, "main"},
	{&chaincfg.TestNet3Params, []string{"testnet", "testnet3", "test"}, "test"},
	{TestNet4Params, []string{"testnet4"}, "testnet4"},
	{&chaincfg.SigNetParams, []string{"signet"}, "signet"},
	{&chaincfg.RegressionNetParams, []string{"regtest"}, "regtest"},
}

// CoreChainNames lists Bitcoin Core's chain names, as CoreChain takes them.
const CoreChainNames = "main, test, testnet4, signet, regtest"

// CoreChain returns the parameters for one of Bitcoin Core's chain names exactly as Core
// writes them (ChainTypeToString: main, test, testnet4, signet, regtest), the --chain values
// its -signer passes and HWI accepts.
func CoreChain(name string) (*chaincfg.Params, error) {
	for _, e := range networks {
		if e.core == name {
			return e.params, nil
		}
	}
	return nil, fmt.Errorf("unknown chain %q (use %s)", name, CoreChainNames)
}

// NetworkNames lists the names Network takes, for messages.
const NetworkNames = "mainnet, testnet, testnet4, signet or regtest"

// Network returns the parameters for a network name (case-insensitive; "" is mainnet).
func Network(name string) (*chaincfg.Params, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	if n == "" {
		n = "mainnet"
	}
	for _, e := range networks {
		for _, alias := range e.names {
			if alias == n {
				return e.params, nil
			}
		}
	}
	return nil, fmt.Errorf("unknown network %q (use %s)", name, NetworkNames)
}

// NetworkName is the name Network takes for p ("mainnet", "testnet", "testnet4", …).
func NetworkName(p *chaincfg.Params) string {
	if p == nil {
		return ""
	}
	for _, e := range networks {
		if e.params == p || e.params.Name == p.Name {
			return e.names[0]
		}
	}
	return p.Name
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
