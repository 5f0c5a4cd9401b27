package daemon

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/hwbridge/hwbridge/chains/bitcoin"
	"github.com/hwbridge/hwbridge/chains/ethereum"
	"github.com/hwbridge/hwbridge/daemon/keys"
	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/buildinfo"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// API is the hwbridge_* namespace. Each exported method is one JSON-RPC method (go-ethereum's
// rpc package lower-cases the first letter: V1Xpub is hwbridge_v1Xpub).
type API struct{ d *Daemon }

// Caps on request fields.
const (
	maxPSBT    = 4 << 20 // base64 characters
	maxMessage = 64 << 10
	maxEthTx   = 128 << 10
)

// VersionResult answers hwbridge_version.
type VersionResult struct {
	Version string         `json:"version"`
	APIs    []string       `json:"apis"`
	Build   buildinfo.Info `json:"build"` // commit, Go version, platform
}

// Version needs no key: clients compare it with their own and warn on a mismatch.
func (a *API) Version() VersionResult {
	return VersionResult{Version: Version(), APIs: []string{"v1"}, Build: buildinfo.Read("hwbridged")}
}

// PairResult answers hwbridge_v1Pair once the user approved.
type PairResult struct {
	App keys.App `json:"app"`
	Key string   `json:"key"` // shown once; only its hash is stored
}

// V1Pair asks to pair and waits for the user (hwbridge apps approve ID).
func (a *API) V1Pair(ctx context.Context, req keys.PairRequest) (*PairResult, error) {
	ctx, done := a.d.conns.bind(ctx)
	defer done()
	pending, err := a.d.apps.Request(req)
	if err != nil {
		return nil, toRPC(fmt.Errorf("%w: %w", device.ErrInvalidInput, err))
	}
	a.d.conns.trust(ctx) // it waits for the user; keys.MaxPending bounds how many do
	a.d.log.Info("pairing request waits for approval", "app", pending.ID, "name", pending.Name, "scopes", pending.Scopes)
	if err := a.d.record(pending.ID, "v1Pair", "", fmt.Sprintf("pairing request %q scopes %v limits %+v", pending.Name, pending.Scopes, pending.Limits), nil, true); err != nil {
		_ = a.d.apps.Deny(pending.ID)
		return nil, toRPC(err)
	}
	key, err := a.d.apps.Wait(ctx, pending.ID)
	if err != nil {
		return nil, toRPC(err)
	}
	app, err := a.d.apps.Get(pending.ID)
	if err != nil {
		return nil, toRPC(err)
	}
	return &PairResult{App: app, Key: key}, nil
}

// LoginParams carries a key to hwbridge_v1Login.
type LoginParams struct {
	Key string `json:"key"`
}

// V1Login gives the daemon an app's key after a daemon restart (only hashes are stored).
func (a *API) V1Login(ctx context.Context, p LoginParams) (*keys.App, error) {
	app, err := a.d.apps.Login(p.Key)
	if err != nil {
		return nil, toRPC(err)
	}
	a.d.conns.trust(ctx)
	return &app, nil
}

// DeviceParams selects a device: a path, a master fingerprint, or "" for the only one.
type DeviceParams struct {
	Device string `json:"device,omitempty"`
}

// V1Devices lists the devices the app may use, from the hub's cache (never waits).
func (a *API) V1Devices(ctx context.Context, auth keys.Auth, raw json.RawMessage) ([]device.Info, error) {
	ctx, done := a.d.conns.bind(ctx)
	defer done()
	c, err := a.d.begin(ctx, "v1Devices", auth, raw, &struct{}{})
	if err != nil {
		return nil, toRPC(err)
	}
	out := allowedDevices(c.app, a.d.cfg.Hub.Devices())
	if out == nil {
		out = []device.Info{}
	}
	return out, nil
}

// V1Features reports a device's features.
func (a *API) V1Features(ctx context.Context, auth keys.Auth, raw json.RawMessage) (*device.Features, error) {
	ctx, done := a.d.conns.bind(ctx)
	defer done()
	var p DeviceParams
	c, err := a.d.begin(ctx, "v1Features", auth, raw, &p)
	if err != nil {
		return nil, toRPC(err)
	}
	var f device.Features
	path, err := c.device(ctx, p.Device)
	if err == nil {
		err = c.do(ctx, path, func(ctx context.Context, d device.Device) error {
			f, err = d.Features(ctx)
			return err
		})
	}
	if err := c.finish("features", err); err != nil {
		return nil, err
	}
	return &f, nil
}

// FingerprintResult is a master key fingerprint.
type FingerprintResult struct {
	Fingerprint string `json:"fingerprint"` // 8 hex digits
	Path        string `json:"path"`        // the device it is of
}

// V1Fingerprint returns a device's master fingerprint (read once, then cached).
func (a *API) V1Fingerprint(ctx context.Context, auth keys.Auth, raw json.RawMessage) (*FingerprintResult, error) {
	ctx, done := a.d.conns.bind(ctx)
	defer done()
	var p DeviceParams
	c, err := a.d.begin(ctx, "v1Fingerprint", auth, raw, &p)
	if err != nil {
		return nil, toRPC(err)
	}
	path, err := c.device(ctx, p.Device)
	if err != nil {
		return nil, toRPC(err)
	}
	fp, err := a.d.cfg.Hub.Fingerprint(ctx, path)
	if err != nil {
		return nil, toRPC(err)
	}
	return &FingerprintResult{Fingerprint: fp.String(), Path: path}, nil
}

// XPubParams asks for an extended public key.
type XPubParams struct {
	Device  string `json:"device,omitempty"`
	Path    string `json:"path"`
	Network string `json:"network,omitempty"` // mainnet (default), testnet, signet, regtest
	Display bool   `json:"display,omitempty"`
	// SwitchApp: the person asked for this, so a Ledger may close the open app and open
	// the one needed (as with display); without it a lookup never switches apps.
	SwitchApp bool `json:"switch_app,omitempty"`
}

// XPubResult is an extended public key.
type XPubResult struct {
	XPub        string `json:"xpub"`
	Fingerprint string `json:"fingerprint"`
	Path        string `json:"path"`
}

// V1Xpub returns the extended public key at a path (cached after the first read).
func (a *API) V1Xpub(ctx context.Context, auth keys.Auth, raw json.RawMessage) (res *XPubResult, err error) {
	a.d.workers.run(func() { res, err = a.v1Xpub(ctx, auth, raw) })
	return res, err
}

func (a *API) v1Xpub(ctx context.Context, auth keys.Auth, raw json.RawMessage) (*XPubResult, error) {
	ctx, done := a.d.conns.bind(ctx)
	defer done()
	var p XPubParams
	c, err := a.d.begin(ctx, "v1Xpub", auth, raw, &p)
	if err != nil {
		return nil, toRPC(err)
	}
	res, err := func() (*XPubResult, error) {
		path, net, err := parsePathNet(p.Path, p.Network)
		if err != nil {
			return nil, err
		}
		if err := c.chain(device.ChainBTC); err != nil {
			return nil, err
		}
		dev, err := c.device(ctx, p.Device)
		if err != nil {
			return nil, err
		}
		x, err := a.d.cfg.Hub.XPub(appSwitchIf(ctx, p.Display || p.SwitchApp), dev, c.label(), device.XPubRequest{Path: path, Network: net, Display: p.Display})
		if err != nil {
			return nil, err
		}
		fp, err := a.d.cfg.Hub.Fingerprint(ctx, dev)
		if err != nil {
			return nil, err
		}
		return &XPubResult{XPub: x, Fingerprint: fp.String(), Path: path.String()}, nil
	}()
	if err := c.finish("xpub "+p.Path+displayNote(p.Display), err); err != nil {
		return nil, err
	}
	return res, nil
}

func displayNote(d bool) string {
	if d {
		return " (shown on the device)"
	}
	return ""
}

// AddressParams asks for an address.
type AddressParams struct {
	Device  string `json:"device,omitempty"`
	Chain   string `json:"chain"` // btc or eth
	Path    string `json:"path"`
	Type    string `json:"type,omitempty"`    // btc: wpkh (default), tr, sh-wpkh, pkh
	Network string `json:"network,omitempty"` // btc
	Display bool   `json:"display,omitempty"`
	// SwitchApp: as in XPubParams.
	SwitchApp bool `json:"switch_app,omitempty"`
}

// AddressResult is an address.
type AddressResult struct {
	Address string `json:"address"`
	Path    string `json:"path"`
	// Shown is the string the device displayed when it differs from Address (a Ledger's
	// test app shows tb1… for a regtest bcrt1… address: the same script).
	Shown string `json:"shown,omitempty"`
}

// V1Address returns an address, showing it on the device if asked.
func (a *API) V1Address(ctx context.Context, auth keys.Auth, raw json.RawMessage) (res *AddressResult, err error) {
	a.d.workers.run(func() { res, err = a.v1Address(ctx, auth, raw) })
	return res, err
}

func (a *API) v1Address(ctx context.Context, auth keys.Auth, raw json.RawMessage) (*AddressResult, error) {
	ctx, done := a.d.conns.bind(ctx)
	defer done()
	var p AddressParams
	c, err := a.d.begin(ctx, "v1Address", auth, raw, &p)
	if err != nil {
		return nil, toRPC(err)
	}
	var addr string
	ctx, shown := device.WithShown(ctx)
	err = func() error {
		path, net, err := parsePathNet(p.Path, p.Network)
		if err != nil {
			return err
		}
		req := device.AddressRequest{Chain: device.Chain(p.Chain), Path: path, Network: net, Display: p.Display}
		switch req.Chain {
		case device.ChainBTC:
			req.Script = device.ScriptWPKH
			if p.Type != "" {
				req.Script = device.ScriptType(p.Type)
			}
			if _, err := req.Script.Purpose(); err != nil {
				return err
			}
		case device.ChainETH:
			req.Network = nil
		default:
			return fmt.Errorf("%w: chain %q (use btc or eth)", device.ErrInvalidInput, p.Chain)
		}
		return c.onDevice(ctx, p.Device, req.Chain, func(ctx context.Context, d device.Device) error {
			addr, err = d.Address(appSwitchIf(ctx, req.Display || p.SwitchApp), req)
			return err
		})
	}()
	if err := c.finish(fmt.Sprintf("%s address %s%s: %s", p.Chain, p.Path, displayNote(p.Display), addr), err); err != nil {
		return nil, err
	}
	res := &AddressResult{Address: addr, Path: p.Path}
	if sh := shown.String(); sh != addr {
		res.Shown = sh
	}
	return res, nil
}

// SignPSBTParams carries a PSBT to sign.
type SignPSBTParams struct {
	Device  string `json:"device,omitempty"`
	PSBT    string `json:"psbt"` // base64
	Network string `json:"network,omitempty"`
}

// PSBTResult is a signed PSBT.
type PSBTResult struct {
	PSBT string `json:"psbt"` // base64
}

// V1SignPsbt signs the inputs of a PSBT that the device holds keys for.
func (a *API) V1SignPsbt(ctx context.Context, auth keys.Auth, raw json.RawMessage) (*PSBTResult, error) {
	ctx, done := a.d.conns.bind(ctx)
	defer done()
	var p SignPSBTParams
	c, err := a.d.begin(ctx, "v1SignPsbt", auth, raw, &p)
	if err != nil {
		return nil, toRPC(err)
	}
	var summary string
	var out string
	err = func() error {
		if len(p.PSBT) > maxPSBT {
			return fmt.Errorf("%w: psbt larger than %d characters", device.ErrInvalidInput, maxPSBT)
		}
		net, err := parseNetwork(p.Network)
		if err != nil {
			return err
		}
		pk, err := psbt.NewFromRawBytes(strings.NewReader(strings.TrimSpace(p.PSBT)), true)
		if err != nil {
			return fmt.Errorf("%w: psbt: %v", device.ErrInvalidInput, err)
		}
		summary = describePSBT(pk, net)
		if err := c.onDevice(ctx, p.Device, device.ChainBTC, func(ctx context.Context, d device.Device) error {
			return a.d.signPSBT(device.WithAppSwitch(ctx), d, pk, net)
		}); err != nil {
			return err
		}
		out, err = pk.B64Encode()
		return err
	}()
	if err := c.finish(summary, err); err != nil {
		return nil, err
	}
	return &PSBTResult{PSBT: out}, nil
}

// describePSBT summarises a PSBT for the audit log: txid, inputs, outputs and fee.
func describePSBT(p *psbt.Packet, net *chaincfg.Params) string {
	tx := p.UnsignedTx
	var b strings.Builder
	fmt.Fprintf(&b, "psbt txid %s, %d inputs, outputs:", tx.TxHash(), len(tx.TxIn))
	var out int64
	for _, o := range tx.TxOut {
		out += o.Value
		addr := hex.EncodeToString(o.PkScript)
		if _, addrs, _, err := txscript.ExtractPkScriptAddrs(o.PkScript, net); err == nil && len(addrs) == 1 {
			addr = addrs[0].EncodeAddress()
		}
		fmt.Fprintf(&b, " %s %s;", addr, btcutil.Amount(o.Value))
	}
	if fee, err := psbt.SumUtxoInputValues(p); err == nil {
		fmt.Fprintf(&b, " fee %s", btcutil.Amount(fee-out))
	}
	return b.String()
}

// SignMessageParams asks for a message signature.
type SignMessageParams struct {
	Device  string `json:"device,omitempty"`
	Chain   string `json:"chain"` // btc (BIP-137) or eth (EIP-191 personal_sign)
	Path    string `json:"path"`
	Message string `json:"message"`        // UTF-8 text
	Type    string `json:"type,omitempty"` // btc: wpkh (default), sh-wpkh, pkh
	Network string `json:"network,omitempty"`
}

// V1SignMessage signs a message.
func (a *API) V1SignMessage(ctx context.Context, auth keys.Auth, raw json.RawMessage) (sig *device.MessageSignature, err error) {
	a.d.workers.run(func() { sig, err = a.v1SignMessage(ctx, auth, raw) })
	return sig, err
}

func (a *API) v1SignMessage(ctx context.Context, auth keys.Auth, raw json.RawMessage) (*device.MessageSignature, error) {
	ctx, done := a.d.conns.bind(ctx)
	defer done()
	var p SignMessageParams
	c, err := a.d.begin(ctx, "v1SignMessage", auth, raw, &p)
	if err != nil {
		return nil, toRPC(err)
	}
	var sig device.MessageSignature
	err = func() error {
		if len(p.Message) > maxMessage {
			return fmt.Errorf("%w: message longer than %d bytes", device.ErrInvalidInput, maxMessage)
		}
		path, net, err := parsePathNet(p.Path, p.Network)
		if err != nil {
			return err
		}
		req := device.MessageRequest{Chain: device.Chain(p.Chain), Path: path, Message: []byte(p.Message), Network: net}
		switch req.Chain {
		case device.ChainBTC:
			req.Script = device.ScriptWPKH
			if p.Type != "" {
				req.Script = device.ScriptType(p.Type)
			}
		case device.ChainETH:
			req.Network = nil
		default:
			return fmt.Errorf("%w: chain %q (use btc or eth)", device.ErrInvalidInput, p.Chain)
		}
		return c.onDevice(ctx, p.Device, req.Chain, func(ctx context.Context, d device.Device) error {
			sig, err = d.SignMessage(device.WithAppSwitch(ctx), req)
			return err
		})
	}()
	if err := c.finish(fmt.Sprintf("%s message with %s: %q", p.Chain, p.Path, clip(p.Message, 200)), err); err != nil {
		return nil, err
	}
	return &sig, nil
}

// EthSignTxParams asks the device to sign an Ethereum transaction.
type EthSignTxParams struct {
	Device  string `json:"device,omitempty"`
	Path    string `json:"path"`     // default m/44'/60'/0'/0/0
	Tx      string `json:"tx"`       // hex of the unsigned transaction's binary encoding (RLP, or type ‖ RLP)
	ChainID string `json:"chain_id"` // decimal
}

// EthTxResult is a signed Ethereum transaction.
type EthTxResult struct {
	Raw  hexutil.Bytes `json:"raw"`
	Hash string        `json:"hash"`
	From string        `json:"from"`
}

// V1EthSignTx signs an Ethereum transaction (legacy or EIP-1559) without broadcasting it.
func (a *API) V1EthSignTx(ctx context.Context, auth keys.Auth, raw json.RawMessage) (*EthTxResult, error) {
	ctx, done := a.d.conns.bind(ctx)
	defer done()
	var p EthSignTxParams
	c, err := a.d.begin(ctx, "v1EthSignTx", auth, raw, &p)
	if err != nil {
		return nil, toRPC(err)
	}
	var res *EthTxResult
	var summary string
	err = func() error {
		if len(p.Tx) > 2*maxEthTx {
			return fmt.Errorf("%w: transaction larger than %d bytes", device.ErrInvalidInput, maxEthTx)
		}
		b, err := hexutil.Decode(withHexPrefix(p.Tx))
		if err != nil {
			return fmt.Errorf("%w: tx: %v", device.ErrInvalidInput, err)
		}
		tx := new(types.Transaction)
		if err := tx.UnmarshalBinary(b); err != nil {
			return fmt.Errorf("%w: tx: %v", device.ErrInvalidInput, err)
		}
		chainID, ok := new(big.Int).SetString(p.ChainID, 10)
		if !ok || chainID.Sign() <= 0 {
			return fmt.Errorf("%w: chain_id %q must be a positive decimal", device.ErrInvalidInput, p.ChainID)
		}
		summary = describeEthTx(tx, chainID)
		path, err := ethPath(p.Path)
		if err != nil {
			return err
		}
		res, err = c.signEth(ctx, p.Device, path, tx, chainID)
		return err
	}()
	if err := c.finish(summary, err); err != nil {
		return nil, err
	}
	return res, nil
}

// signEth has the device sign tx and checks the sender against the device's address.
func (c *call) signEth(ctx context.Context, sel string, path hdpath.Path, tx *types.Transaction, chainID *big.Int) (*EthTxResult, error) {
	var signed *types.Transaction
	var acct *ethereum.Account
	err := c.onDevice(ctx, sel, device.ChainETH, func(ctx context.Context, d device.Device) error {
		ctx = device.WithAppSwitch(ctx) // signing: the person is at the device
		var err error
		if acct, err = ethereum.OpenAccount(ctx, d, path); err != nil {
			return err
		}
		signed, err = d.SignEthTx(ctx, path, tx, chainID)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := ethereum.CheckSigned(tx, signed, chainID, acct.Address); err != nil {
		return nil, err
	}
	rawTx, err := signed.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return &EthTxResult{Raw: rawTx, Hash: signed.Hash().Hex(), From: acct.Address.Hex()}, nil
}

func describeEthTx(tx *types.Transaction, chainID *big.Int) string {
	to := "contract creation"
	if tx.To() != nil {
		to = tx.To().Hex()
	}
	s := fmt.Sprintf("eth tx chain %s nonce %d to %s value %s ETH gas %d", chainID, tx.Nonce(), to, ethereum.FormatEther(tx.Value()), tx.Gas())
	if call, ok := ethereum.DecodeTokenCall(tx.Data()); ok {
		s += fmt.Sprintf(" erc20 %s to %s amount %s", call.Method, call.To.Hex(), call.Amount)
	} else if len(tx.Data()) > 0 {
		s += fmt.Sprintf(" data %d bytes", len(tx.Data()))
	}
	return s
}

// EthTypedDataParams asks for an EIP-712 signature.
type EthTypedDataParams struct {
	Device string          `json:"device,omitempty"`
	Path   string          `json:"path,omitempty"` // default m/44'/60'/0'/0/0
	Data   json.RawMessage `json:"data"`           // eth_signTypedData_v4 document
}

// SignatureResult is a 65-byte r‖s‖v signature (v 27/28).
type SignatureResult struct {
	Signature hexutil.Bytes `json:"signature"`
	Address   string        `json:"address"`
}

// V1EthSignTypedData signs EIP-712 typed data (hashed on the host, signed on the device).
func (a *API) V1EthSignTypedData(ctx context.Context, auth keys.Auth, raw json.RawMessage) (*SignatureResult, error) {
	ctx, done := a.d.conns.bind(ctx)
	defer done()
	var p EthTypedDataParams
	c, err := a.d.begin(ctx, "v1EthSignTypedData", auth, raw, &p)
	if err != nil {
		return nil, toRPC(err)
	}
	var res *SignatureResult
	var summary string
	err = func() error {
		td, err := ethereum.ParseTypedData(p.Data)
		if err != nil {
			return err
		}
		summary = fmt.Sprintf("eip-712 %s domain %v digest %x", td.Data.PrimaryType, td.Domain(), td.Digest)
		path, err := ethPath(p.Path)
		if err != nil {
			return err
		}
		res, err = c.signTyped(ctx, p.Device, path, td)
		return err
	}()
	if err := c.finish(summary, err); err != nil {
		return nil, err
	}
	return res, nil
}

// EthTypedHashParams asks for an EIP-712 signature over precomputed hashes (the device shows
// the hashes).
type EthTypedHashParams struct {
	Device          string `json:"device,omitempty"`
	Path            string `json:"path,omitempty"`         // default m/44'/60'/0'/0/0
	DomainSeparator string `json:"domain_separator"`       // 32 bytes, hex
	MessageHash     string `json:"message_hash,omitempty"` // 32 bytes, hex; empty for domain-only data
}

// V1EthSignTypedHash signs EIP-712 hashes computed by the caller.
func (a *API) V1EthSignTypedHash(ctx context.Context, auth keys.Auth, raw json.RawMessage) (*SignatureResult, error) {
	ctx, done := a.d.conns.bind(ctx)
	defer done()
	var p EthTypedHashParams
	c, err := a.d.begin(ctx, "v1EthSignTypedHash", auth, raw, &p)
	if err != nil {
		return nil, toRPC(err)
	}
	var sig []byte
	err = func() error {
		ds, err := hexutil.Decode(withHexPrefix(p.DomainSeparator))
		if err != nil || len(ds) != 32 {
			return fmt.Errorf("%w: domain_separator must be 32 bytes of hex", device.ErrInvalidInput)
		}
		var mh []byte
		if p.MessageHash != "" {
			if mh, err = hexutil.Decode(withHexPrefix(p.MessageHash)); err != nil || len(mh) != 32 {
				return fmt.Errorf("%w: message_hash must be 32 bytes of hex", device.ErrInvalidInput)
			}
		}
		path, err := ethPath(p.Path)
		if err != nil {
			return err
		}
		return c.onDevice(ctx, p.Device, device.ChainETH, func(ctx context.Context, d device.Device) error {
			sig, err = d.SignTypedHash(ctx, path, [32]byte(ds), mh)
			return err
		})
	}()
	if err := c.finish(fmt.Sprintf("eip-712 hashes domain %s message %s with %s", p.DomainSeparator, p.MessageHash, p.Path), err); err != nil {
		return nil, err
	}
	return &SignatureResult{Signature: sig}, nil
}

func (c *call) signTyped(ctx context.Context, sel string, path hdpath.Path, td *ethereum.TypedData) (*SignatureResult, error) {
	var sig []byte
	var acct *ethereum.Account
	err := c.onDevice(ctx, sel, device.ChainETH, func(ctx context.Context, d device.Device) error {
		ctx = device.WithAppSwitch(ctx) // signing: the person is at the device
		var err error
		if acct, err = ethereum.OpenAccount(ctx, d, path); err != nil {
			return err
		}
		sig, err = acct.SignTypedData(ctx, td)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &SignatureResult{Signature: sig, Address: acct.Address.Hex()}, nil
}

// EthBroadcastParams is a signed transaction to send.
type EthBroadcastParams struct {
	RPC string `json:"rpc"`
	Raw string `json:"raw"` // hex
}

// V1EthBroadcast sends a signed Ethereum transaction.
func (a *API) V1EthBroadcast(ctx context.Context, auth keys.Auth, raw json.RawMessage) (*EthTxResult, error) {
	ctx, done := a.d.conns.bind(ctx)
	defer done()
	var p EthBroadcastParams
	c, err := a.d.begin(ctx, "v1EthBroadcast", auth, raw, &p)
	if err != nil {
		return nil, toRPC(err)
	}
	var res *EthTxResult
	summary := "eth broadcast via " + ethereum.RedactURL(p.RPC)
	err = func() error {
		if err := c.chain(device.ChainETH); err != nil {
			return err
		}
		b, err := hexutil.Decode(withHexPrefix(p.Raw))
		if err != nil || len(b) > maxEthTx {
			return fmt.Errorf("%w: raw must be the hex of a signed transaction", device.ErrInvalidInput)
		}
		tx := new(types.Transaction)
		if err := tx.UnmarshalBinary(b); err != nil {
			return fmt.Errorf("%w: raw: %v", device.ErrInvalidInput, err)
		}
		from, err := types.Sender(types.LatestSignerForChainID(tx.ChainId()), tx)
		if err != nil {
			return fmt.Errorf("%w: raw is not signed: %v", device.ErrInvalidInput, err)
		}
		summary += ": " + describeEthTx(tx, tx.ChainId())
		cl, err := a.d.chains.ethClient(ctx, p.RPC)
		if err != nil {
			return err
		}
		h, err := cl.Broadcast(ctx, nil, tx)
		if err != nil {
			return err
		}
		res = &EthTxResult{Raw: b, Hash: h.Hex(), From: from.Hex()}
		return nil
	}()
	if err := c.finish(summary, err); err != nil {
		return nil, err
	}
	return res, nil
}

// V1Events subscribes to device events (attach, detach) and "confirm on your device"
// prompts of the app's own requests (an admin app sees every prompt).
func (a *API) V1Events(ctx context.Context, auth keys.Auth, raw json.RawMessage) (*rpc.Subscription, error) {
	c, err := a.d.begin(ctx, "v1Events", auth, raw, &struct{}{})
	if err != nil {
		return nil, toRPC(err)
	}
	n, ok := rpc.NotifierFromContext(ctx)
	if !ok {
		return nil, rpc.ErrNotificationsUnsupported
	}
	sub := n.CreateSubscription()
	events, stop := a.d.cfg.Hub.Subscribe(64)
	go func() {
		defer stop()
		for {
			select {
			case e := <-events:
				if !c.app.AllowsDevice(e.Path, "") && len(c.app.Limits.Devices) > 0 {
					continue
				}
				if (e.Type == device.EventPrompt || e.Type == device.EventPairing) && !c.app.Has(keys.ScopeAdmin) && !strings.HasPrefix(e.Label, c.app.ID+"/") {
					continue
				}
				if err := n.Notify(sub.ID, e); err != nil {
					return
				}
			case <-sub.Err():
				return
			case <-a.d.ctx.Done():
				return
			}
		}
	}()
	return sub, nil
}

// AppParams names an app.
type AppParams struct {
	ID     string       `json:"id"`
	Scopes []keys.Scope `json:"scopes,omitempty"` // approve: narrow the requested scopes
	// OverlapSeconds is how long the old key keeps working after a rotation (the
	// daemon's default if 0; -1: none).
	OverlapSeconds int64 `json:"overlap_seconds,omitempty"`
}

// V1AppsList lists paired and pending apps (admin).
func (a *API) V1AppsList(ctx context.Context, auth keys.Auth, raw json.RawMessage) ([]keys.App, error) {
	ctx, done := a.d.conns.bind(ctx)
	defer done()
	if _, err := a.d.begin(ctx, "v1AppsList", auth, raw, &struct{}{}); err != nil {
		return nil, toRPC(err)
	}
	return a.d.apps.List(), nil
}

// V1AppsApprove approves a pending pairing request (admin).
func (a *API) V1AppsApprove(ctx context.Context, auth keys.Auth, raw json.RawMessage) (*keys.App, error) {
	ctx, done := a.d.conns.bind(ctx)
	defer done()
	var p AppParams
	c, err := a.d.begin(ctx, "v1AppsApprove", auth, raw, &p)
	if err != nil {
		return nil, toRPC(err)
	}
	app, err := a.d.apps.Approve(p.ID, p.Scopes)
	if err := c.finish(fmt.Sprintf("approve app %s (%s) scopes %v limits %+v", p.ID, app.Name, app.Scopes, app.Limits), err); err != nil {
		return nil, err
	}
	return &app, nil
}

// V1AppsDeny refuses a pending pairing request (admin).
func (a *API) V1AppsDeny(ctx context.Context, auth keys.Auth, raw json.RawMessage) (bool, error) {
	ctx, done := a.d.conns.bind(ctx)
	defer done()
	var p AppParams
	c, err := a.d.begin(ctx, "v1AppsDeny", auth, raw, &p)
	if err != nil {
		return false, toRPC(err)
	}
	if err := c.finish("deny app "+p.ID, a.d.apps.Deny(p.ID)); err != nil {
		return false, err
	}
	return true, nil
}

// RotateResult is a new key, shown once.
type RotateResult struct {
	Key        string    `json:"key"`
	App        keys.App  `json:"app"`
	OldExpires time.Time `json:"old_expires"`
}

// overlap turns overlap_seconds into a duration: negative retires old keys at once, 0 is
// the configured default, above keys.MaxRotateOverlap is refused (checked before the
// multiplication, which could wrap).
func (d *Daemon) overlap(s int64) (time.Duration, error) {
	switch {
	case s < 0:
		return 0, nil
	case s == 0:
		return d.cfg.RotateOverlap, nil
	case s > int64(keys.MaxRotateOverlap/time.Second):
		return 0, fmt.Errorf("%w: overlap_seconds %d is above the %d (30 days) allowed", device.ErrInvalidInput, s, int64(keys.MaxRotateOverlap/time.Second))
	}
	return time.Duration(s) * time.Second, nil
}

// V1AppsRotate issues a new key for an app; its older keys expire after the overlap (admin).
func (a *API) V1AppsRotate(ctx context.Context, auth keys.Auth, raw json.RawMessage) (*RotateResult, error) {
	ctx, done := a.d.conns.bind(ctx)
	defer done()
	var p AppParams
	c, err := a.d.begin(ctx, "v1AppsRotate", auth, raw, &p)
	if err != nil {
		return nil, toRPC(err)
	}
	return a.d.rotate(c, p.ID, p.OverlapSeconds)
}

// V1RotateKey issues a new key for the calling app itself, so that it can rotate without
// downtime: its current keys keep working for the overlap.
func (a *API) V1RotateKey(ctx context.Context, auth keys.Auth, raw json.RawMessage) (*RotateResult, error) {
	ctx, done := a.d.conns.bind(ctx)
	defer done()
	var p struct {
		OverlapSeconds int64 `json:"overlap_seconds,omitempty"`
	}
	c, err := a.d.begin(ctx, "v1RotateKey", auth, raw, &p)
	if err != nil {
		return nil, toRPC(err)
	}
	return a.d.rotate(c, c.app.ID, p.OverlapSeconds)
}

func (d *Daemon) rotate(c *call, id string, overlapSeconds int64) (*RotateResult, error) {
	ov, err := d.overlap(overlapSeconds)
	if err != nil {
		return nil, c.finish(fmt.Sprintf("rotate key of app %s refused", id), err)
	}
	key, app, err := d.apps.Rotate(id, ov)
	if err := c.finish(fmt.Sprintf("rotate key of app %s, old keys expire in %s", id, ov), err); err != nil {
		return nil, err
	}
	return &RotateResult{Key: key, App: app, OldExpires: time.Now().Add(ov).UTC()}, nil
}

// V1AppsRevoke revokes an app and all its keys at once (admin).
func (a *API) V1AppsRevoke(ctx context.Context, auth keys.Auth, raw json.RawMessage) (bool, error) {
	ctx, done := a.d.conns.bind(ctx)
	defer done()
	var p AppParams
	c, err := a.d.begin(ctx, "v1AppsRevoke", auth, raw, &p)
	if err != nil {
		return false, toRPC(err)
	}
	if p.ID == CLIAppID {
		return false, toRPC(fmt.Errorf("%w: the cli app is re-keyed by the daemon itself", device.ErrInvalidInput))
	}
	if err := c.finish("revoke app "+p.ID, a.d.apps.Revoke(p.ID)); err != nil {
		return false, err
	}
	return true, nil
}

// parseNetwork maps a network param (the table is chains/bitcoin's).
func parseNetwork(s string) (*chaincfg.Params, error) {
	n, err := bitcoin.Network(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", device.ErrInvalidInput, err)
	}
	return n, nil
}

func parsePathNet(path, network string) (hdpath.Path, *chaincfg.Params, error) {
	p, err := hdpath.Parse(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: path: %v", device.ErrInvalidInput, err)
	}
	n, err := parseNetwork(network)
	return p, n, err
}

func ethPath(s string) (hdpath.Path, error) {
	if s == "" {
		return ethereum.DerivationPath(0)
	}
	p, err := hdpath.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%w: path: %v", device.ErrInvalidInput, err)
	}
	return p, nil
}

func withHexPrefix(s string) string {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "0x") && !strings.HasPrefix(s, "0X") {
		return "0x" + s
	}
	return s
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
