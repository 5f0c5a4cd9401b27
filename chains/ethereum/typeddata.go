package ethereum

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/hwbridge/hwbridge/device"
)

// MaxTypedDataSize caps an EIP-712 JSON document read from outside.
const MaxTypedDataSize = 1 << 20

// ErrInvalidTypedData is typed data that does not parse or encode.
var ErrInvalidTypedData = fmt.Errorf("%w: eip-712 typed data", device.ErrInvalidInput)

// TypedData is a parsed EIP-712 document with its hashes computed on the host.
type TypedData struct {
	Data            apitypes.TypedData
	DomainSeparator [32]byte // hashStruct(EIP712Domain, domain)
	MessageHash     []byte   // hashStruct(primaryType, message); nil for domain-only data
	Digest          [32]byte // keccak256(0x19 0x01 ‖ domainSeparator ‖ messageHash)
}

// ParseTypedData parses an eth_signTypedData_v4 JSON document ({types, primaryType,
// domain, message}) and computes the domain separator, message hash and digest. A
// primaryType of EIP712Domain means domain-only data (no message hash).
func ParseTypedData(raw []byte) (*TypedData, error) {
	if len(raw) > MaxTypedDataSize {
		return nil, fmt.Errorf("%w: %d bytes is more than %d", ErrInvalidTypedData, len(raw), MaxTypedDataSize)
	}
	var td apitypes.TypedData
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&td); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidTypedData, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the JSON document", ErrInvalidTypedData)
	}
	msg, err := exactNumbers(map[string]any(td.Message), 0)
	if err != nil {
		return nil, err
	}
	if td.Message != nil {
		td.Message = msg.(map[string]any)
	}
	return HashTypedData(td)
}

// maxTypedDataDepth caps nesting in a message (apitypes recurses per level).
const maxTypedDataDepth = 32

// exactNumbers replaces JSON numbers (decoded as json.Number) with exact integers, since
// apitypes would otherwise see float64 and lose precision above 2^53; a number with a
// fraction or exponent is an error.
func exactNumbers(v any, depth int) (any, error) {
	if depth > maxTypedDataDepth {
		return nil, fmt.Errorf("%w: nested deeper than %d levels", ErrInvalidTypedData, maxTypedDataDepth)
	}
	switch x := v.(type) {
	case json.Number:
		n, ok := new(big.Int).SetString(x.String(), 10)
		if !ok {
			return nil, fmt.Errorf("%w: %s is not an integer (write big numbers as decimal strings)", ErrInvalidTypedData, x)
		}
		return n, nil
	case map[string]any:
		for k, e := range x {
			c, err := exactNumbers(e, depth+1)
			if err != nil {
				return nil, err
			}
			x[k] = c
		}
	case []any:
		for i, e := range x {
			c, err := exactNumbers(e, depth+1)
			if err != nil {
				return nil, err
			}
			x[i] = c
		}
	}
	return v, nil
}

// HashTypedData computes the EIP-712 hashes of td.
func HashTypedData(td apitypes.TypedData) (*TypedData, error) {
	if _, ok := td.Types["EIP712Domain"]; !ok {
		return nil, fmt.Errorf("%w: types has no EIP712Domain", ErrInvalidTypedData)
	}
	if td.PrimaryType == "" {
		return nil, fmt.Errorf("%w: no primaryType", ErrInvalidTypedData)
	}
	if _, ok := td.Types[td.PrimaryType]; !ok {
		return nil, fmt.Errorf("%w: primaryType %q is not among the types", ErrInvalidTypedData, td.PrimaryType)
	}
	out := &TypedData{Data: td}
	ds, err := safeHashStruct(&td, "EIP712Domain", td.Domain.Map())
	if err != nil {
		return nil, fmt.Errorf("%w: domain: %v", ErrInvalidTypedData, err)
	}
	copy(out.DomainSeparator[:], ds)
	if td.PrimaryType != "EIP712Domain" {
		if td.Message == nil {
			return nil, fmt.Errorf("%w: no message for primaryType %s", ErrInvalidTypedData, td.PrimaryType)
		}
		if out.MessageHash, err = safeHashStruct(&td, td.PrimaryType, td.Message); err != nil {
			return nil, fmt.Errorf("%w: message: %v", ErrInvalidTypedData, err)
		}
	}
	copy(out.Digest[:], device.TypedDataDigest(out.DomainSeparator, out.MessageHash))
	return out, nil
}

// safeHashStruct runs apitypes' encoder, turning a panic on malformed input into an error.
func safeHashStruct(td *apitypes.TypedData, typ string, data map[string]any) (h []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cannot encode %s: %v", typ, r)
		}
	}()
	return td.HashStruct(typ, data)
}

// SignTypedData has the device sign the document: the whole document where the signer
// takes it (device.TypedDataSigner: a Trezor T/Safe streams and shows the fields), else
// its hashes (a Trezor One, a Ledger); then it checks the signature recovers to the
// account. It returns r‖s‖v, v 27 or 28.
func (a *Account) SignTypedData(ctx context.Context, td *TypedData) ([]byte, error) {
	var sig []byte
	var err error
	if s, ok := a.Signer.(device.TypedDataSigner); ok {
		sig, err = s.SignTypedData(ctx, a.Path, &device.TypedData{Data: td.Data, DomainSeparator: td.DomainSeparator, MessageHash: td.MessageHash})
	} else {
		sig, err = a.Signer.SignTypedHash(ctx, a.Path, td.DomainSeparator, td.MessageHash)
	}
	if err != nil {
		return nil, fmt.Errorf("sign typed data on the device: %w", err)
	}
	if err := checkRecovers(td.Digest[:], sig, a.Address); err != nil {
		return nil, err
	}
	return sig, nil
}

// Domain describes the signing domain for display.
func (td *TypedData) Domain() map[string]string {
	d := map[string]string{}
	dom := td.Data.Domain
	if dom.Name != "" {
		d["name"] = dom.Name
	}
	if dom.Version != "" {
		d["version"] = dom.Version
	}
	if dom.ChainId != nil {
		d["chainId"] = (*big.Int)(dom.ChainId).String()
	}
	if dom.VerifyingContract != "" {
		d["verifyingContract"] = dom.VerifyingContract
		if common.IsHexAddress(dom.VerifyingContract) {
			d["verifyingContract"] = common.HexToAddress(dom.VerifyingContract).Hex()
		}
	}
	if dom.Salt != "" {
		d["salt"] = dom.Salt
	}
	return d
}
