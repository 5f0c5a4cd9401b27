package device

import (
	"context"
	"fmt"

	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// TypedData is an EIP-712 document (eth_signTypedData_v4: arrays of structs hashed as
// MetaMask v4 does, which is what go-ethereum's apitypes computes) with its hashes
// computed on the host.
type TypedData struct {
	Data            apitypes.TypedData
	DomainSeparator [32]byte // hashStruct(EIP712Domain, domain)
	MessageHash     []byte   // hashStruct(primaryType, message); nil for domain-only data
}

// TypedDataSigner is a Device that can be given a whole EIP-712 document, so that it shows
// the fields and hashes them itself (Trezor T/Safe: EthereumSignTypedData streaming).
// Devices without it sign the hashes (SignTypedHash).
type TypedDataSigner interface {
	SignTypedData(ctx context.Context, path hdpath.Path, td *TypedData) ([]byte, error)
}

// SignTypedData signs td with d: the whole document when d takes it (TypedDataSigner),
// else its hashes. It returns 65 bytes r‖s‖v with v 27 or 28.
func SignTypedData(ctx context.Context, d Device, path hdpath.Path, td *TypedData) ([]byte, error) {
	if td == nil {
		return nil, fmt.Errorf("%w: no typed data", ErrInvalidInput)
	}
	if s, ok := d.(TypedDataSigner); ok {
		return s.SignTypedData(ctx, path, td)
	}
	return d.SignTypedHash(ctx, path, td.DomainSeparator, td.MessageHash)
}

// SignTypedData signs td through the wrapped device (see SignTypedData) and checks that
// the signature recovers to the device's address for path over td's digest.
func (v *verifier) SignTypedData(ctx context.Context, path hdpath.Path, td *TypedData) ([]byte, error) {
	sig, err := SignTypedData(ctx, v.Device, path, td)
	if err != nil {
		return nil, err
	}
	from, err := recoverETH(TypedDataDigest(td.DomainSeparator, td.MessageHash), sig)
	if err != nil {
		return nil, err
	}
	if err := v.checkETHSigner(ctx, path, from); err != nil {
		return nil, err
	}
	return sig, nil
}
