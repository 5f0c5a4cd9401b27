package ethereum

import (
	"context"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// Signer is the part of device.Device this package signs with. Pass a device wrapped with
// device.Verify; this package checks the sender of every transaction on its own as well.
type Signer interface {
	Address(ctx context.Context, req device.AddressRequest) (string, error)
	SignEthTx(ctx context.Context, path hdpath.Path, tx *types.Transaction, chainID *big.Int) (*types.Transaction, error)
	SignMessage(ctx context.Context, req device.MessageRequest) (device.MessageSignature, error)
	SignTypedHash(ctx context.Context, path hdpath.Path, domainSeparator [32]byte, messageHash []byte) ([]byte, error)
}

// DerivationPath is the standard Ethereum account path m/44'/60'/0'/0/index (as Trezor
// Suite, Ledger Live "legacy" and MetaMask use it).
func DerivationPath(index uint32) (hdpath.Path, error) {
	if index >= hdpath.Hardened {
		return nil, fmt.Errorf("%w: address index %d must be below 2^31", device.ErrInvalidInput, index)
	}
	return hdpath.Path{44 + hdpath.Hardened, 60 + hdpath.Hardened, hdpath.Hardened, 0, index}, nil
}

// Account is a device key at a path, with its address as the device reported it.
type Account struct {
	Signer  Signer
	Path    hdpath.Path
	Address common.Address
}

// OpenAccount asks the device for its address at path (without showing it).
func OpenAccount(ctx context.Context, s Signer, path hdpath.Path) (*Account, error) {
	a, err := s.Address(ctx, device.AddressRequest{Chain: device.ChainETH, Path: path})
	if err != nil {
		return nil, fmt.Errorf("address at %s: %w", path, err)
	}
	addr, err := parseAddress(a)
	if err != nil {
		return nil, fmt.Errorf("the device gave %q for %s: %w", a, path, device.ErrProtocol)
	}
	return &Account{Signer: s, Path: path, Address: addr}, nil
}

// SignTx has the device sign p and returns the signed transaction only if it is p's
// transaction, for p's chain, and its recovered sender is this account's address. Anything
// else is ErrSenderMismatch (device.ErrBadSignature): never broadcast it.
func (a *Account) SignTx(ctx context.Context, p *Prepared) (*types.Transaction, error) {
	if p.From != a.Address {
		return nil, fmt.Errorf("%w: the transaction was prepared for %s, but the device's address at %s is %s", device.ErrInvalidInput, p.From.Hex(), a.Path, a.Address.Hex())
	}
	signed, err := a.Signer.SignEthTx(ctx, a.Path, p.Tx, p.ChainID)
	if err != nil {
		return nil, fmt.Errorf("sign on the device: %w", err)
	}
	if err := CheckSigned(p.Tx, signed, p.ChainID, a.Address); err != nil {
		return nil, err
	}
	return signed, nil
}

// CheckSigned verifies a signed transaction against the unsigned one it should be: same
// type and signing payload, for chainID, and recovering to want.
func CheckSigned(unsigned, signed *types.Transaction, chainID *big.Int, want common.Address) error {
	if signed == nil {
		return fmt.Errorf("%w: no transaction came back", ErrSenderMismatch)
	}
	signer := types.LatestSignerForChainID(chainID)
	if signed.Type() != unsigned.Type() || signer.Hash(signed) != signer.Hash(unsigned) {
		return fmt.Errorf("%w: the device returned a different transaction than it was given", ErrSenderMismatch)
	}
	if signed.Type() != types.LegacyTxType || signed.Protected() {
		if signed.ChainId().Cmp(chainID) != 0 {
			return fmt.Errorf("%w: signed for chain %s, not %s", ErrSenderMismatch, signed.ChainId(), chainID)
		}
	} else {
		return fmt.Errorf("%w: the legacy signature has no EIP-155 replay protection", ErrSenderMismatch)
	}
	from, err := types.Sender(signer, signed)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSenderMismatch, err)
	}
	if from != want {
		return fmt.Errorf("%w: the signature recovers %s, the device's address is %s: nothing was broadcast", ErrSenderMismatch, from.Hex(), want.Hex())
	}
	return nil
}

// SignPersonal signs msg with personal_sign (EIP-191 version 0x45) and checks the
// signature recovers to the account. The signature is r‖s‖v with v 27 or 28.
func (a *Account) SignPersonal(ctx context.Context, msg []byte) ([]byte, error) {
	sig, err := a.Signer.SignMessage(ctx, device.MessageRequest{Chain: device.ChainETH, Path: a.Path, Message: msg})
	if err != nil {
		return nil, fmt.Errorf("sign message on the device: %w", err)
	}
	if err := checkRecovers(accounts.TextHash(msg), sig.Signature, a.Address); err != nil {
		return nil, err
	}
	return sig.Signature, nil
}

// checkRecovers checks a 65-byte r‖s‖v signature (v 27/28 or 0/1) over digest recovers to
// want.
func checkRecovers(digest, sig []byte, want common.Address) error {
	from, err := RecoverSigner(digest, sig)
	if err != nil {
		return err
	}
	if from != want {
		return fmt.Errorf("%w: the signature recovers %s, the device's address is %s", ErrSenderMismatch, from.Hex(), want.Hex())
	}
	return nil
}

// RecoverSigner recovers the address behind a 65-byte r‖s‖v signature of digest (v 27/28
// or 0/1).
func RecoverSigner(digest, sig []byte) (common.Address, error) {
	if len(sig) != crypto.SignatureLength {
		return common.Address{}, fmt.Errorf("%w: signature of %d bytes, want 65", ErrSenderMismatch, len(sig))
	}
	rsv := append([]byte(nil), sig...)
	if rsv[64] >= 27 {
		rsv[64] -= 27
	}
	if rsv[64] > 1 {
		return common.Address{}, fmt.Errorf("%w: recovery byte %d", ErrSenderMismatch, sig[64])
	}
	pub, err := crypto.SigToPub(digest, rsv)
	if err != nil {
		return common.Address{}, fmt.Errorf("%w: %v", ErrSenderMismatch, err)
	}
	return crypto.PubkeyToAddress(*pub), nil
}
