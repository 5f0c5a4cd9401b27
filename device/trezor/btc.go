package trezor

import (
	"context"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/chaincfg"
	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/internal/btcwire"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/internal/trezorpb"
)

// version is a firmware version for capability checks.
type version struct{ major, minor, patch uint32 }

func (v version) atLeast(o version) bool {
	if v.major != o.major {
		return v.major > o.major
	}
	if v.minor != o.minor {
		return v.minor > o.minor
	}
	return v.patch >= o.patch
}

// Firmware landmarks (trezor.md §12): model "1" is the legacy firmware, every other model
// runs core.
var (
	landmarkTaproot = map[bool]version{true: {1, 10, 4}, false: {2, 4, 3}}
	landmarkEIP1559 = map[bool]version{true: {1, 10, 4}, false: {2, 4, 2}}
	landmarkEIP712  = map[bool]version{true: {1, 10, 5}, false: {2, 4, 3}}
)

// isLegacy: model "1" (or no model, as firmware before 1.8 sent) runs the legacy firmware.
func isLegacy(f *trezorpb.Features) bool { return f.GetModel() == "1" || f.GetModel() == "" }

// capabilities: EIP-712 is hash-only on the Trezor One (EthereumSignTypedHash, 1.10.5) and
// struct streaming only on core (EthereumSignTypedData, 2.4.3; core has no hash message).
func capabilities(f *trezorpb.Features) device.Capabilities {
	v := version{f.GetMajorVersion(), f.GetMinorVersion(), f.GetPatchVersion()}
	legacy := isLegacy(f)
	eip712 := v.atLeast(landmarkEIP712[legacy])
	return device.Capabilities{
		Taproot:        v.atLeast(landmarkTaproot[legacy]),
		Multisig:       true,
		EIP1559:        v.atLeast(landmarkEIP1559[legacy]),
		EIP712Hash:     legacy && eip712,
		EIP712:         eip712,
		DisplayAddress: true,
	}
}

// hasCapability reports whether Features lists c.
func hasCapability(f *trezorpb.Features, c trezorpb.Capability) bool {
	for _, x := range f.GetCapabilities() {
		if x == c {
			return true
		}
	}
	return false
}

func (d *Driver) toFeatures(f *trezorpb.Features) device.Features {
	model := f.GetModel()
	if model == "" {
		model = "1"
	}
	return device.Features{
		Family:       device.FamilyTrezor,
		Model:        model,
		Vendor:       f.GetVendor(),
		Version:      fmt.Sprintf("%d.%d.%d", f.GetMajorVersion(), f.GetMinorVersion(), f.GetPatchVersion()),
		Label:        f.GetLabel(),
		DeviceID:     f.GetDeviceId(),
		Initialized:  f.GetInitialized(),
		PINProtected: f.GetPinProtection(),
		Passphrase:   f.GetPassphraseProtection(),
		Unlocked:     !f.GetPinProtection() || f.GetUnlocked(),
		Emulator:     d.opts.Emulator,
		Capabilities: capabilities(f),
	}
}

// Features asks the device for its current Features.
func (d *Driver) Features(ctx context.Context) (device.Features, error) {
	var out device.Features
	err := d.do(ctx, "get features", func(s *session) error {
		f, err := expect[*trezorpb.Features](s, &trezorpb.GetFeatures{})
		if err != nil {
			return err
		}
		d.features = f
		out = d.toFeatures(f)
		return nil
	})
	return out, err
}

// caps returns the capabilities from the Features of the current session.
func (s *session) caps() device.Capabilities { return capabilities(s.d.features) }

func (s *session) legacy() bool { return isLegacy(s.d.features) }

// Fingerprint returns the master key fingerprint: the parent fingerprint of m/0' (as HWI
// does), or root_fingerprint where the firmware reports it. It is cached for the session.
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
	pk, err := expect[*trezorpb.PublicKey](s, &trezorpb.GetPublicKey{
		AddressN: []uint32{hdpath.Hardened}, CoinName: proto.String("Bitcoin"),
	})
	if err != nil {
		return 0, err
	}
	if pk.GetNode() == nil {
		return 0, fmt.Errorf("%w: public key without node", device.ErrProtocol)
	}
	fp := device.Fingerprint(pk.GetNode().GetFingerprint())
	if pk.RootFingerprint != nil {
		fp = device.Fingerprint(pk.GetRootFingerprint())
	}
	s.d.fp = &fp
	return fp, nil
}

// coinName maps chain parameters to the firmware's coin names (trezor.md §11). nil means
// mainnet.
func coinName(net *chaincfg.Params) (string, error) {
	if net == nil {
		return "Bitcoin", nil
	}
	switch net.Net {
	case chaincfg.MainNetParams.Net:
		return "Bitcoin", nil
	case chaincfg.TestNet3Params.Net, chaincfg.SigNetParams.Net:
		return "Testnet", nil
	case chaincfg.RegressionNetParams.Net:
		return "Regtest", nil
	}
	return "", fmt.Errorf("trezor: network %q: %w (use mainnet, testnet, signet or regtest)", net.Name, errors.ErrUnsupported)
}

// inputScriptType maps a single-key script type to the firmware's InputScriptType.
func inputScriptType(st device.ScriptType) (trezorpb.InputScriptType, error) {
	switch st {
	case device.ScriptPKH, "":
		return trezorpb.InputScriptType_SPENDADDRESS, nil
	case device.ScriptSHWPKH:
		return trezorpb.InputScriptType_SPENDP2SHWITNESS, nil
	case device.ScriptWPKH:
		return trezorpb.InputScriptType_SPENDWITNESS, nil
	case device.ScriptTR:
		return trezorpb.InputScriptType_SPENDTAPROOT, nil
	}
	return 0, fmt.Errorf("%w: script type %q (use pkh, sh-wpkh, wpkh or tr)", device.ErrInvalidInput, string(st))
}

// XPub returns the extended public key at the path with plain xpub/tpub version bytes.
func (d *Driver) XPub(ctx context.Context, req device.XPubRequest) (string, error) {
	coin, err := coinName(req.Network)
	if err != nil {
		return "", err
	}
	var xpub string
	err = d.do(ctx, "get xpub", func(s *session) error {
		pk, err := expect[*trezorpb.PublicKey](s, &trezorpb.GetPublicKey{
			AddressN:        req.Path,
			ShowDisplay:     proto.Bool(req.Display),
			CoinName:        proto.String(coin),
			ScriptType:      trezorpb.InputScriptType_SPENDADDRESS.Enum(),
			IgnoreXpubMagic: proto.Bool(true),
		})
		if err != nil {
			return err
		}
		xpub = pk.GetXpub()
		return btcwire.CheckXPub(xpub, pk.GetNode().GetPublicKey(), btcwire.NetOrMain(req.Network), len(req.Path))
	})
	return xpub, err
}

// Address returns a Bitcoin or Ethereum address, shown on the device if req.Display.
func (d *Driver) Address(ctx context.Context, req device.AddressRequest) (string, error) {
	switch req.Chain {
	case device.ChainBTC:
		return d.btcAddress(ctx, req)
	case device.ChainETH:
		return d.ethAddress(ctx, req.Path, req.Display)
	}
	return "", fmt.Errorf("trezor: address: %w: chain %q (use btc or eth)", device.ErrInvalidInput, string(req.Chain))
}

func (d *Driver) btcAddress(ctx context.Context, req device.AddressRequest) (string, error) {
	coin, err := coinName(req.Network)
	if err != nil {
		return "", err
	}
	st, err := inputScriptType(req.Script)
	if err != nil {
		return "", fmt.Errorf("trezor: address: %w", err)
	}
	var addr string
	err = d.do(ctx, "get address", func(s *session) error {
		if st == trezorpb.InputScriptType_SPENDTAPROOT && !s.caps().Taproot {
			return fmt.Errorf("taproot addresses need firmware 2.4.3 (model T) or 1.10.4 (model one): update the firmware: %w", errors.ErrUnsupported)
		}
		a, err := expect[*trezorpb.Address](s, &trezorpb.GetAddress{
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

// SignMessage signs a Bitcoin message (BIP-137 header by script type) or an Ethereum
// personal_sign message (EIP-191).
func (d *Driver) SignMessage(ctx context.Context, req device.MessageRequest) (device.MessageSignature, error) {
	switch req.Chain {
	case device.ChainBTC:
		return d.btcSignMessage(ctx, req)
	case device.ChainETH:
		return d.ethSignMessage(ctx, req)
	}
	return device.MessageSignature{}, fmt.Errorf("trezor: sign message: %w: chain %q (use btc or eth)", device.ErrInvalidInput, string(req.Chain))
}

func (d *Driver) btcSignMessage(ctx context.Context, req device.MessageRequest) (device.MessageSignature, error) {
	coin, err := coinName(req.Network)
	if err != nil {
		return device.MessageSignature{}, err
	}
	st, err := inputScriptType(req.Script)
	if err != nil {
		return device.MessageSignature{}, fmt.Errorf("trezor: sign message: %w", err)
	}
	if st == trezorpb.InputScriptType_SPENDTAPROOT {
		return device.MessageSignature{}, fmt.Errorf("trezor: sign message: BIP-137 has no taproot signatures (use pkh, sh-wpkh or wpkh): %w", errors.ErrUnsupported)
	}
	var out device.MessageSignature
	err = d.do(ctx, "sign message", func(s *session) error {
		sig, err := expect[*trezorpb.MessageSignature](s, &trezorpb.SignMessage{
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
