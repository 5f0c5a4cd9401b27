package keepkey

import (
	"context"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/internal/keepkeypb"
)

// errNoTaproot is what the driver says for taproot requests: KeepKey firmware 7.10.0 has no
// taproot signing (transaction.c: "we don't handle spendtaproot input types") and no
// taproot addresses of its own keys.
var errNoTaproot = fmt.Errorf("keepkey firmware has no taproot keys or signing (7.10.0 pays to taproot addresses but cannot spend from them): %w", errors.ErrUnsupported)

// Firmware landmarks: EIP-1559 in EthereumSignTx from 7.2.1 (hdwallet-keepkey's
// ethSupportsEIP1559), EthereumSignTypedHash from 7.4.0 (its handler first appears in
// lib/firmware/fsm_msg_ethereum.h at tag v7.4.0).
var (
	landmarkEIP1559   = [3]uint32{7, 2, 1}
	landmarkTypedHash = [3]uint32{7, 4, 0}
)

func atLeast(f *keepkeypb.Features, v [3]uint32) bool {
	have := [3]uint32{f.GetMajorVersion(), f.GetMinorVersion(), f.GetPatchVersion()}
	for i := range have {
		if have[i] != v[i] {
			return have[i] > v[i]
		}
	}
	return true
}

// capabilities by firmware version. No taproot and no multisig here (the firmware has p2sh
// multisig; the driver does not map PSBT multisig onto it); EIP-712 only as hashes.
func capabilities(f *keepkeypb.Features) device.Capabilities {
	hash := atLeast(f, landmarkTypedHash)
	return device.Capabilities{
		EIP1559:        atLeast(f, landmarkEIP1559),
		EIP712Hash:     hash,
		EIP712:         hash,
		DisplayAddress: true,
	}
}

func (d *Driver) toFeatures(f *keepkeypb.Features) device.Features {
	return device.Features{
		Family:       device.FamilyKeepKey,
		Model:        f.GetModel(),
		Vendor:       f.GetVendor(),
		Version:      fmt.Sprintf("%d.%d.%d", f.GetMajorVersion(), f.GetMinorVersion(), f.GetPatchVersion()),
		Label:        f.GetLabel(),
		DeviceID:     f.GetDeviceId(),
		Initialized:  f.GetInitialized(),
		PINProtected: f.GetPinProtection(),
		Passphrase:   f.GetPassphraseProtection(),
		Unlocked:     !f.GetPinProtection() || f.GetPinCached(),
		Emulator:     d.opts.Emulator,
		Capabilities: capabilities(f),
	}
}

// Features asks the device for its current Features.
func (d *Driver) Features(ctx context.Context) (device.Features, error) {
	var out device.Features
	err := d.do(ctx, "get features", func(s *session) error {
		f, err := expect[*keepkeypb.Features](s, &keepkeypb.GetFeatures{})
		if err != nil {
			return err
		}
		d.features = f
		out = d.toFeatures(f)
		return nil
	})
	return out, err
}

// Fingerprint returns the master key fingerprint: the parent fingerprint of m/0' (as HWI
// does for KeepKey). It is cached for the session.
func (d *Driver) Fingerprint(ctx context.Context) (device.Fingerprint, error) {
	var fp device.Fingerprint
	err := d.do(ctx, "get fingerprint", func(s *session) error {
		var err error
		fp, err = s.fingerprint()
		return err
	})
	return fp, err
}

func (s *session) fingerprint() (device.Fingerprint, error) {
	if s.d.fp != nil {
		return *s.d.fp, nil
	}
	pk, err := expect[*keepkeypb.PublicKey](s, &keepkeypb.GetPublicKey{
		AddressN: []uint32{hdpath.Hardened}, CoinName: proto.String("Bitcoin"),
	})
	if err != nil {
		return 0, err
	}
	if pk.GetNode() == nil || pk.GetNode().GetDepth() != 1 {
		return 0, fmt.Errorf("%w: public key of m/0' without its node", device.ErrProtocol)
	}
	fp := device.Fingerprint(pk.GetNode().GetFingerprint())
	s.d.fp = &fp
	return fp, nil
}

// coinName maps chain parameters to KeepKey's coin names (include/keepkey/firmware/
// coins.def). KeepKey has no regtest coin: its "Testnet" speaks tb1 addresses.
func coinName(net *chaincfg.Params) (string, error) {
	if net == nil {
		return "Bitcoin", nil
	}
	switch net.Net {
	case chaincfg.MainNetParams.Net:
		return "Bitcoin", nil
	case chaincfg.TestNet3Params.Net, chaincfg.SigNetParams.Net:
		return "Testnet", nil
	}
	return "", fmt.Errorf("keepkey: network %q: %w (keepkey firmware knows Bitcoin and Testnet; use mainnet, testnet or signet)", net.Name, errors.ErrUnsupported)
}

func netOrMain(net *chaincfg.Params) *chaincfg.Params {
	if net == nil {
		return &chaincfg.MainNetParams
	}
	return net
}

// inputScriptType maps a single-key script type to KeepKey's InputScriptType.
func inputScriptType(st device.ScriptType) (keepkeypb.InputScriptType, error) {
	switch st {
	case device.ScriptPKH, "":
		return keepkeypb.InputScriptType_SPENDADDRESS, nil
	case device.ScriptSHWPKH:
		return keepkeypb.InputScriptType_SPENDP2SHWITNESS, nil
	case device.ScriptWPKH:
		return keepkeypb.InputScriptType_SPENDWITNESS, nil
	case device.ScriptTR:
		return 0, errNoTaproot
	}
	return 0, fmt.Errorf("%w: script type %q (use pkh, sh-wpkh or wpkh)", device.ErrInvalidInput, string(st))
}

// XPub returns the extended public key at the path with plain xpub/tpub version bytes
// (script type SPENDADDRESS selects the coin's xpub_magic in fsm_msgGetPublicKey).
func (d *Driver) XPub(ctx context.Context, req device.XPubRequest) (string, error) {
	coin, err := coinName(req.Network)
	if err != nil {
		return "", err
	}
	var xpub string
	err = d.do(ctx, "get xpub", func(s *session) error {
		pk, err := expect[*keepkeypb.PublicKey](s, &keepkeypb.GetPublicKey{
			AddressN:    req.Path,
			ShowDisplay: proto.Bool(req.Display),
			CoinName:    proto.String(coin),
			ScriptType:  keepkeypb.InputScriptType_SPENDADDRESS.Enum(),
		})
		if err != nil {
			return err
		}
		xpub = pk.GetXpub()
		return checkXPub(xpub, pk.GetNode(), netOrMain(req.Network), len(req.Path))
	})
	return xpub, err
}

// checkXPub makes sure the xpub string parses, is for net, and agrees with the node.
func checkXPub(xpub string, node *keepkeypb.HDNodeType, net *chaincfg.Params, depth int) error {
	k, err := hdkeychain.NewKeyFromString(xpub)
	if err != nil {
		return fmt.Errorf("%w: device returned an xpub that does not parse: %w", device.ErrProtocol, err)
	}
	if !k.IsForNet(net) {
		return fmt.Errorf("%w: device returned an xpub for another network", device.ErrProtocol)
	}
	if k.IsPrivate() || int(k.Depth()) != depth%256 {
		return fmt.Errorf("%w: device returned an xpub at depth %d for a path of depth %d", device.ErrProtocol, k.Depth(), depth)
	}
	if node != nil && len(node.GetPublicKey()) > 0 {
		pub, err := k.ECPubKey()
		if err != nil || string(pub.SerializeCompressed()) != string(node.GetPublicKey()) {
			return fmt.Errorf("%w: the xpub and the node the device returned disagree", device.ErrProtocol)
		}
	}
	return nil
}

// Address returns a Bitcoin or Ethereum address, shown on the device if req.Display.
func (d *Driver) Address(ctx context.Context, req device.AddressRequest) (string, error) {
	switch req.Chain {
	case device.ChainBTC:
		return d.btcAddress(ctx, req)
	case device.ChainETH:
		return d.ethAddress(ctx, req.Path, req.Display)
	}
	return "", fmt.Errorf("keepkey: address: %w: chain %q (use btc or eth)", device.ErrInvalidInput, string(req.Chain))
}

func (d *Driver) btcAddress(ctx context.Context, req device.AddressRequest) (string, error) {
	coin, err := coinName(req.Network)
	if err != nil {
		return "", err
	}
	st, err := inputScriptType(req.Script)
	if err != nil {
		return "", fmt.Errorf("keepkey: address: %w", err)
	}
	var addr string
	err = d.do(ctx, "get address", func(s *session) error {
		a, err := expect[*keepkeypb.Address](s, &keepkeypb.GetAddress{
			AddressN:    req.Path,
			CoinName:    proto.String(coin),
			ShowDisplay: proto.Bool(req.Display),
			ScriptType:  st.Enum(),
		})
		if err != nil {
			return err
		}
		addr = a.GetAddress()
		if addr == "" {
			return fmt.Errorf("%w: empty address", device.ErrProtocol)
		}
		return nil
	})
	return addr, err
}

// SignMessage signs a Bitcoin message (BIP-137 header by script type: 31/35/39 + recid, as
// crypto.c cryptoMessageSign) or an Ethereum personal_sign message (EIP-191).
func (d *Driver) SignMessage(ctx context.Context, req device.MessageRequest) (device.MessageSignature, error) {
	switch req.Chain {
	case device.ChainBTC:
		return d.btcSignMessage(ctx, req)
	case device.ChainETH:
		return d.ethSignMessage(ctx, req)
	}
	return device.MessageSignature{}, fmt.Errorf("keepkey: sign message: %w: chain %q (use btc or eth)", device.ErrInvalidInput, string(req.Chain))
}

// maxMessage is SignMessage.message's max_size and EthereumSignMessage.message's in the
// firmware's nanopb options (1024 bytes).
const maxMessage = 1024

func (d *Driver) btcSignMessage(ctx context.Context, req device.MessageRequest) (device.MessageSignature, error) {
	coin, err := coinName(req.Network)
	if err != nil {
		return device.MessageSignature{}, err
	}
	st, err := inputScriptType(req.Script)
	if err != nil {
		return device.MessageSignature{}, fmt.Errorf("keepkey: sign message: %w", err)
	}
	if len(req.Message) > maxMessage {
		return device.MessageSignature{}, fmt.Errorf("keepkey: sign message: %w: %d bytes (keepkey signs at most %d)", device.ErrInvalidInput, len(req.Message), maxMessage)
	}
	var out device.MessageSignature
	err = d.do(ctx, "sign message", func(s *session) error {
		sig, err := expect[*keepkeypb.MessageSignature](s, &keepkeypb.SignMessage{
			AddressN:   req.Path,
			Message:    req.Message,
			CoinName:   proto.String(coin),
			ScriptType: st.Enum(),
		})
		if err != nil {
			return err
		}
		if len(sig.GetSignature()) != 65 {
			return fmt.Errorf("%w: message signature of %d bytes, want 65", device.ErrProtocol, len(sig.GetSignature()))
		}
		out = device.MessageSignature{Address: sig.GetAddress(), Signature: sig.GetSignature()}
		return nil
	})
	return out, err
}
