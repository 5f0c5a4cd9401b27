package trezor

// Multisig addresses (GetAddress with a MultisigRedeemScriptType), as HWI's
// display_multisig_address sends them (hwilib/devices/trezor.py): the cosigners' keys as HD
// nodes plus the non-hardened steps below each, in script order (the host sorts for
// sortedmulti: the firmware never does), and the device's own key by its full path.

import (
	"context"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/internal/trezorpb"
)

// MultisigAddress returns (and with Display shows, with its cosigners) a multisig address.
// The caller compares it with the address it computes from the same keys.
func (d *Driver) MultisigAddress(ctx context.Context, req device.MultisigAddressRequest) (string, error) {
	coin, err := coinName(req.Network)
	if err != nil {
		return "", err
	}
	var st trezorpb.InputScriptType
	switch req.Script {
	case device.MultisigSH:
		st = trezorpb.InputScriptType_SPENDMULTISIG
	case device.MultisigSHWSH:
		st = trezorpb.InputScriptType_SPENDP2SHWITNESS
	case device.MultisigWSH:
		st = trezorpb.InputScriptType_SPENDWITNESS
	default:
		return "", fmt.Errorf("trezor: multisig address: %w: script %q (use sh, sh-wsh or wsh)", device.ErrInvalidInput, req.Script)
	}
	if req.Threshold < 1 || req.Threshold > len(req.Keys) || len(req.Keys) > maxMultisigKeys {
		return "", fmt.Errorf("trezor: multisig address: %w: %d of %d keys (1-%d keys)", device.ErrInvalidInput, req.Threshold, len(req.Keys), maxMultisigKeys)
	}
	ms := &trezorpb.MultisigRedeemScriptType{M: proto.Uint32(uint32(req.Threshold))}
	for _, k := range req.Keys {
		if k.XPub == "" {
			if len(k.Pub) != 33 || len(k.Steps) > 0 {
				return "", fmt.Errorf("trezor: multisig address: %w: a plain cosigner key is 33 bytes with no steps", device.ErrInvalidInput)
			}
			ms.Pubkeys = append(ms.Pubkeys, &trezorpb.HDNodePathType{
				Node: &trezorpb.HDNodeType{
					Depth: proto.Uint32(0), Fingerprint: proto.Uint32(0), ChildNum: proto.Uint32(0),
					ChainCode: make([]byte, 32), PublicKey: append([]byte{}, k.Pub...),
				},
				AddressN: []uint32{},
			})
			ms.Signatures = append(ms.Signatures, []byte{})
			continue
		}
		x, err := hdkeychain.NewKeyFromString(k.XPub)
		if err != nil || x.IsPrivate() {
			return "", fmt.Errorf("trezor: multisig address: %w: cosigner key %q is not an extended public key", device.ErrInvalidInput, k.XPub)
		}
		pub, err := x.ECPubKey()
		if err != nil {
			return "", fmt.Errorf("trezor: multisig address: %w: cosigner key: %w", device.ErrInvalidInput, err)
		}
		for _, s := range k.Steps {
			if s >= hdpath.Hardened {
				return "", fmt.Errorf("trezor: multisig address: %w: hardened step below a cosigner's xpub", device.ErrInvalidInput)
			}
		}
		ms.Pubkeys = append(ms.Pubkeys, &trezorpb.HDNodePathType{
			Node: &trezorpb.HDNodeType{
				Depth:       proto.Uint32(uint32(x.Depth())),
				Fingerprint: proto.Uint32(x.ParentFingerprint()),
				ChildNum:    proto.Uint32(x.ChildIndex()),
				ChainCode:   x.ChainCode(),
				PublicKey:   pub.SerializeCompressed(),
			},
			AddressN: append([]uint32{}, k.Steps...),
		})
		ms.Signatures = append(ms.Signatures, []byte{})
	}
	var addr string
	err = d.do(ctx, "get address", func(s *session) error {
		a, err := expect[*trezorpb.Address](s, &trezorpb.GetAddress{
			AddressN:    req.Path,
			CoinName:    proto.String(coin),
			ShowDisplay: proto.Bool(req.Display),
			ScriptType:  st.Enum(),
			Multisig:    ms,
		})
		if err != nil {
			return err
		}
		if addr = a.GetAddress(); addr == "" {
			return fmt.Errorf("%w: empty address", device.ErrProtocol)
		}
		if req.Display {
			device.NoteShown(ctx, addr)
		}
		return nil
	})
	if err != nil && errors.Is(err, device.ErrInvalidInput) {
		return "", fmt.Errorf("trezor: multisig address: %w", err)
	}
	return addr, err
}
