package daemon

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/hwbridge/hwbridge/chains/ethereum"
	"github.com/hwbridge/hwbridge/daemon/keys"
	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// ExtAPIVersion is the version of clef's external API this implements (account_version).
const ExtAPIVersion = "6.1.0"

// ExtAPI is go-ethereum's external-signer API (the account_* methods clef served), so that
// geth --signer and accounts/external clients can sign with a hardware wallet through the
// daemon. Those clients cannot carry an app key, so the API is served on its own socket
// (hwbridged --extapi-socket) bound to one paired app (--extapi-app NAME): each call runs
// with that app's current scopes, limits and revocation state, and is audited under it.
type ExtAPI struct{ d *Daemon }

// extCall authenticates an external-signer call as the bound app.
func (e *ExtAPI) begin(method string, scope keys.Scope) (*call, error) {
	name := e.d.cfg.ExtAPIApp
	var app *keys.App
	for _, a := range e.d.apps.List() {
		if a.Name == name && a.Status != keys.StatusPending {
			app = &a
			if a.Status == keys.StatusApproved {
				break
			}
		}
	}
	switch {
	case app == nil:
		return nil, toRPC(fmt.Errorf("%w: no paired app is named %q: pair one with that name and approve it", keys.ErrUnknownApp, name))
	case app.Status == keys.StatusRevoked:
		return nil, toRPC(keys.ErrRevoked)
	case !app.Has(scope):
		return nil, toRPC(fmt.Errorf("%w: %s needs scope %q", keys.ErrScope, method, scope))
	}
	return &call{d: e.d, app: *app, method: method, route: route{audit: true}}, nil
}

// accounts lists the first ExtAPIAccounts Ethereum addresses of the device (cached).
func (c *call) ethAccounts(ctx context.Context) (string, []common.Address, error) {
	if err := c.chain(device.ChainETH); err != nil {
		return "", nil, err
	}
	dev, err := c.device(ctx, "")
	if err != nil {
		return "", nil, err
	}
	out := make([]common.Address, c.d.cfg.ExtAPIAccounts)
	for i := range out {
		k := fmt.Sprintf("%s|%d", dev, i)
		c.d.ethAddrMu.Lock()
		a, ok := c.d.ethAddrs[k]
		c.d.ethAddrMu.Unlock()
		if !ok {
			path, _ := ethereum.DerivationPath(uint32(i))
			err := c.do(ctx, dev, func(ctx context.Context, d device.Device) error {
				a, err = d.Address(ctx, device.AddressRequest{Chain: device.ChainETH, Path: path})
				return err
			})
			if err != nil {
				return "", nil, err
			}
			c.d.ethAddrMu.Lock()
			c.d.ethAddrs[k] = a
			c.d.ethAddrMu.Unlock()
		}
		out[i] = common.HexToAddress(a)
	}
	return dev, out, nil
}

// pathOf finds the derivation path of one of the listed accounts.
func (c *call) pathOf(ctx context.Context, addr common.Address) (string, hdpath.Path, error) {
	dev, all, err := c.ethAccounts(ctx)
	if err != nil {
		return "", nil, err
	}
	for i, a := range all {
		if a == addr {
			p, err := ethereum.DerivationPath(uint32(i))
			return dev, p, err
		}
	}
	return "", nil, fmt.Errorf("%w: %s is not among the device's first %d accounts (account_list)", device.ErrInvalidInput, addr.Hex(), len(all))
}

// List is account_list.
func (e *ExtAPI) List(ctx context.Context) ([]common.Address, error) {
	ctx, done := e.d.conns.bind(ctx)
	defer done()
	c, err := e.begin("account_list", keys.ScopeRead)
	if err != nil {
		return nil, err
	}
	_, out, err := c.ethAccounts(ctx)
	if err := c.finish("external signer: list accounts", err); err != nil {
		return nil, err
	}
	return out, nil
}

// SignTxResult is account_signTransaction's answer (clef's signTransactionResult).
type SignTxResult struct {
	Raw hexutil.Bytes      `json:"raw"`
	Tx  *types.Transaction `json:"tx"`
}

// SignTransaction is account_signTransaction.
func (e *ExtAPI) SignTransaction(ctx context.Context, args apitypes.SendTxArgs, methodSelector *string) (*SignTxResult, error) {
	ctx, done := e.d.conns.bind(ctx)
	defer done()
	c, err := e.begin("account_signTransaction", keys.ScopeSign)
	if err != nil {
		return nil, err
	}
	var res *SignTxResult
	var summary string
	err = func() error {
		if args.ChainID == nil || args.ChainID.ToInt().Sign() <= 0 {
			return fmt.Errorf("%w: chainId is required", device.ErrInvalidInput)
		}
		chainID := new(big.Int).Set(args.ChainID.ToInt())
		tx, err := args.ToTransaction()
		if err != nil {
			return fmt.Errorf("%w: %v", device.ErrInvalidInput, err)
		}
		summary = "external signer: " + describeEthTx(tx, chainID)
		dev, path, err := c.pathOf(ctx, args.From.Address())
		if err != nil {
			return err
		}
		r, err := c.signEth(ctx, dev, path, tx, chainID)
		if err != nil {
			return err
		}
		signed := new(types.Transaction)
		if err := signed.UnmarshalBinary(r.Raw); err != nil {
			return err
		}
		res = &SignTxResult{Raw: r.Raw, Tx: signed}
		return nil
	}()
	if err := c.finish(summary, err); err != nil {
		return nil, err
	}
	return res, nil
}

// SignData is account_signData: text/plain is EIP-191 personal_sign on the device,
// data/typed an EIP-712 document (as account_signTypedData: streamed in full where the
// device takes it); other content types (clique headers, validator data) are not signed
// by hardware wallets.
func (e *ExtAPI) SignData(ctx context.Context, contentType string, addr common.MixedcaseAddress, data hexutil.Bytes) (hexutil.Bytes, error) {
	ctx, done := e.d.conns.bind(ctx)
	defer done()
	c, err := e.begin("account_signData", keys.ScopeSign)
	if err != nil {
		return nil, err
	}
	var sig []byte
	summary := fmt.Sprintf("external signer: sign %s for %s: %q", contentType, addr.Address().Hex(), clip(string(data), 200))
	err = func() error {
		mt := strings.TrimSpace(strings.Split(contentType, ";")[0])
		if mt == accounts.MimetypeTypedData {
			// data/typed: the EIP-712 JSON document (clef's and geth's external signer
			// send it hex-encoded here), signed as account_signTypedData does.
			td, err := ethereum.ParseTypedData(data)
			if err != nil {
				return err
			}
			summary = fmt.Sprintf("external signer: data/typed eip-712 %s domain %v digest %x for %s", td.Data.PrimaryType, td.Domain(), td.Digest, addr.Address().Hex())
			dev, path, err := c.pathOf(ctx, addr.Address())
			if err != nil {
				return err
			}
			res, err := c.signTyped(ctx, dev, path, td)
			if err != nil {
				return err
			}
			sig = res.Signature
			return nil
		}
		if mt != accounts.MimetypeTextPlain {
			return fmt.Errorf("account_signData %s: hardware wallets sign text/plain (personal_sign) and data/typed (EIP-712) only: %w", contentType, errors.ErrUnsupported)
		}
		if len(data) > maxMessage {
			return fmt.Errorf("%w: data longer than %d bytes", device.ErrInvalidInput, maxMessage)
		}
		dev, path, err := c.pathOf(ctx, addr.Address())
		if err != nil {
			return err
		}
		return c.do(ctx, dev, func(ctx context.Context, d device.Device) error {
			acct := &ethereum.Account{Signer: d, Path: path, Address: addr.Address()}
			sig, err = acct.SignPersonal(ctx, data)
			return err
		})
	}()
	if err := c.finish(summary, err); err != nil {
		return nil, err
	}
	return sig, nil
}

// SignTypedData is account_signTypedData (EIP-712, hashed on the host).
func (e *ExtAPI) SignTypedData(ctx context.Context, addr common.MixedcaseAddress, data apitypes.TypedData) (hexutil.Bytes, error) {
	ctx, done := e.d.conns.bind(ctx)
	defer done()
	c, err := e.begin("account_signTypedData", keys.ScopeSign)
	if err != nil {
		return nil, err
	}
	var res *SignatureResult
	summary := "external signer: eip-712"
	err = func() error {
		td, err := ethereum.HashTypedData(data)
		if err != nil {
			return err
		}
		summary = fmt.Sprintf("external signer: eip-712 %s domain %v digest %x", td.Data.PrimaryType, td.Domain(), td.Digest)
		dev, path, err := c.pathOf(ctx, addr.Address())
		if err != nil {
			return err
		}
		res, err = c.signTyped(ctx, dev, path, td)
		return err
	}()
	if err := c.finish(summary, err); err != nil {
		return nil, err
	}
	return res.Signature, nil
}

// Version is account_version.
func (e *ExtAPI) Version(ctx context.Context) (string, error) { return ExtAPIVersion, nil }
