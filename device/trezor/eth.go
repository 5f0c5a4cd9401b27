package trezor

import (
	"context"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/internal/ethwire"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/internal/trezorpb"
)

// Ethereum signing limits (trezor.md §7).
const (
	ethChunk = 1024 // calldata bytes per message
	// ethMaxFullV is the largest chain id for which the firmware returns the full EIP-155 v
	// (recid + 35 + 2·chainId); above it, it returns only the parity.
	ethMaxFullV = 2147483629
)

func (d *Driver) ethAddress(ctx context.Context, path hdpath.Path, display bool) (string, error) {
	var addr string
	err := d.do(ctx, "get ethereum address", func(s *session) error {
		var err error
		addr, err = s.ethAddress(path, display)
		return err
	})
	return addr, err
}

func (s *session) ethAddress(path hdpath.Path, display bool) (string, error) {
	a, err := expect[*trezorpb.EthereumAddress](s, &trezorpb.EthereumGetAddress{
		AddressN: path, ShowDisplay: proto.Bool(display),
	})
	if err != nil {
		return "", err
	}
	switch {
	case a.GetAddress() != "":
		if !common.IsHexAddress(a.GetAddress()) {
			return "", fmt.Errorf("%w: device returned a malformed address %q", device.ErrProtocol, a.GetAddress())
		}
		return common.HexToAddress(a.GetAddress()).Hex(), nil
	case len(a.GetXOldAddress()) == common.AddressLength:
		return common.BytesToAddress(a.GetXOldAddress()).Hex(), nil
	}
	return "", fmt.Errorf("%w: device returned no ethereum address", device.ErrProtocol)
}

func (d *Driver) ethSignMessage(ctx context.Context, req device.MessageRequest) (device.MessageSignature, error) {
	var out device.MessageSignature
	err := d.do(ctx, "sign ethereum message", func(s *session) error {
		sig, err := expect[*trezorpb.EthereumMessageSignature](s, &trezorpb.EthereumSignMessage{
			AddressN: req.Path, Message: req.Message,
		})
		if err != nil {
			return err
		}
		if len(sig.GetSignature()) != 65 {
			return fmt.Errorf("%w: message signature of %d bytes, want 65", device.ErrProtocol, len(sig.GetSignature()))
		}
		addr := sig.GetAddress()
		if common.IsHexAddress(addr) {
			addr = common.HexToAddress(addr).Hex()
		}
		out = device.MessageSignature{Address: addr, Signature: sig.GetSignature()}
		return nil
	})
	return out, err
}

// SignTypedHash signs an EIP-712 hash pair with EthereumSignTypedHash, which only the
// Trezor One has; core firmware (model T, Safe) signs typed data only from the whole
// document (SignTypedData).
func (d *Driver) SignTypedHash(ctx context.Context, path hdpath.Path, domainSeparator [32]byte, messageHash []byte) ([]byte, error) {
	if messageHash != nil && len(messageHash) != 32 {
		return nil, fmt.Errorf("trezor: sign typed hash: %w: message hash of %d bytes, want 32 (or none for domain-only data)", device.ErrInvalidInput, len(messageHash))
	}
	var out []byte
	err := d.do(ctx, "sign typed hash", func(s *session) error {
		if !s.legacy() {
			return fmt.Errorf("a trezor %s signs eip-712 only from the whole typed data, not from hashes (sign the document instead): %w", s.d.features.GetModel(), errors.ErrUnsupported)
		}
		if !s.caps().EIP712Hash {
			return fmt.Errorf("eip-712 hash signing needs firmware 1.10.5 on a trezor one: %w", errors.ErrUnsupported)
		}
		var err error
		out, err = s.signTypedHash(path, domainSeparator, messageHash)
		return err
	})
	return out, err
}

func (s *session) signTypedHash(path hdpath.Path, domainSeparator [32]byte, messageHash []byte) ([]byte, error) {
	sig, err := expect[*trezorpb.EthereumTypedDataSignature](s, &trezorpb.EthereumSignTypedHash{
		AddressN: path, DomainSeparatorHash: domainSeparator[:], MessageHash: messageHash,
	})
	if err != nil {
		return nil, err
	}
	if len(sig.GetSignature()) != 65 {
		return nil, fmt.Errorf("%w: typed data signature of %d bytes, want 65", device.ErrProtocol, len(sig.GetSignature()))
	}
	return sig.GetSignature(), nil
}

// beBytes encodes a number as the firmware wants it: big-endian, minimal, zero as empty.
func beBytes(v *big.Int) []byte {
	if v == nil {
		return []byte{}
	}
	return v.Bytes()
}

func u64Bytes(v uint64) []byte { return new(big.Int).SetUint64(v).Bytes() }

// SignEthTx signs a legacy (EIP-155) or dynamic-fee (EIP-1559) transaction and returns it
// with the signature attached.
func (d *Driver) SignEthTx(ctx context.Context, path hdpath.Path, tx *types.Transaction, chainID *big.Int) (*types.Transaction, error) {
	if chainID == nil || chainID.Sign() <= 0 || !chainID.IsUint64() {
		return nil, fmt.Errorf("trezor: sign ethereum tx: %w: chain id must be a positive 64-bit number", device.ErrInvalidInput)
	}
	to := ""
	if tx.To() != nil {
		to = tx.To().Hex()
	} else if len(tx.Data()) == 0 {
		return nil, fmt.Errorf("trezor: sign ethereum tx: %w: contract creation without data", device.ErrInvalidInput)
	}
	data := tx.Data()
	first := data[:min(len(data), ethChunk)]
	var msg proto.Message
	var signer types.Signer
	switch tx.Type() {
	case types.LegacyTxType:
		msg = &trezorpb.EthereumSignTx{
			AddressN:         path,
			Nonce:            u64Bytes(tx.Nonce()),
			GasPrice:         beBytes(tx.GasPrice()),
			GasLimit:         u64Bytes(tx.Gas()),
			To:               proto.String(to),
			Value:            beBytes(tx.Value()),
			DataInitialChunk: first,
			DataLength:       proto.Uint32(uint32(len(data))),
			ChainId:          proto.Uint64(chainID.Uint64()),
		}
		signer = types.NewEIP155Signer(chainID)
	case types.DynamicFeeTxType:
		if tx.ChainId().Cmp(chainID) != 0 {
			return nil, fmt.Errorf("trezor: sign ethereum tx: %w: the transaction is for chain %s, not %s", device.ErrInvalidInput, tx.ChainId(), chainID)
		}
		var al []*trezorpb.EthereumAccessList
		for _, t := range tx.AccessList() {
			e := &trezorpb.EthereumAccessList{Address: proto.String(t.Address.Hex())}
			for _, k := range t.StorageKeys {
				e.StorageKeys = append(e.StorageKeys, k.Bytes())
			}
			al = append(al, e)
		}
		msg = &trezorpb.EthereumSignTxEIP1559{
			AddressN:         path,
			Nonce:            u64Bytes(tx.Nonce()),
			MaxGasFee:        beBytes(tx.GasFeeCap()),
			MaxPriorityFee:   beBytes(tx.GasTipCap()),
			GasLimit:         u64Bytes(tx.Gas()),
			To:               proto.String(to),
			Value:            beBytes(tx.Value()),
			DataInitialChunk: first,
			DataLength:       proto.Uint32(uint32(len(data))),
			ChainId:          proto.Uint64(chainID.Uint64()),
			AccessList:       al,
		}
		signer = types.NewLondonSigner(chainID)
	default:
		return nil, fmt.Errorf("trezor: sign ethereum tx: transaction type %d (trezor signs legacy and eip-1559 transactions): %w", tx.Type(), errors.ErrUnsupported)
	}
	if len(data) > 1<<24 {
		return nil, fmt.Errorf("trezor: sign ethereum tx: %w: %d bytes of calldata is too much", device.ErrInvalidInput, len(data))
	}
	var signed *types.Transaction
	err := d.do(ctx, "sign ethereum tx", func(s *session) error {
		if tx.Type() == types.DynamicFeeTxType && !s.caps().EIP1559 {
			return fmt.Errorf("eip-1559 transactions need firmware 2.4.2 (model T) or 1.10.4 (model one): %w", errors.ErrUnsupported)
		}
		sig, err := ethwire.StreamTx(msg, data, len(first), ethChunk,
			func(req proto.Message) (*trezorpb.EthereumTxRequest, error) {
				return expect[*trezorpb.EthereumTxRequest](s, req)
			},
			func(chunk []byte) proto.Message { return &trezorpb.EthereumTxAck{DataChunk: chunk} },
			func(r *trezorpb.EthereumTxRequest) ([]byte, error) { return ethTxSignature(r, tx.Type(), chainID) })
		if err != nil {
			return err
		}
		signed, err = tx.WithSignature(signer, sig)
		if err != nil {
			return fmt.Errorf("%w: %w", device.ErrProtocol, err)
		}
		return nil
	})
	return signed, err
}

// ethTxSignature turns the final EthereumTxRequest into r‖s‖recid (§7: legacy v is
// recid+35+2·chainId up to ethMaxFullV, else the parity; EIP-1559 v is the parity).
func ethTxSignature(r *trezorpb.EthereumTxRequest, txType uint8, chainID *big.Int) ([]byte, error) {
	if len(r.GetSignatureR()) != 32 || len(r.GetSignatureS()) != 32 || r.SignatureV == nil {
		return nil, fmt.Errorf("%w: incomplete transaction signature", device.ErrProtocol)
	}
	v := uint64(r.GetSignatureV())
	var recid uint64
	switch {
	case v <= 1:
		recid = v
	case txType == types.LegacyTxType && chainID.Uint64() <= ethMaxFullV && v >= 35+2*chainID.Uint64():
		recid = v - 35 - 2*chainID.Uint64()
	default:
		return nil, fmt.Errorf("%w: signature v=%d does not fit chain %s", device.ErrProtocol, v, chainID)
	}
	if recid > 1 {
		return nil, fmt.Errorf("%w: signature v=%d does not fit chain %s", device.ErrProtocol, v, chainID)
	}
	sig := make([]byte, 0, 65)
	sig = append(append(append(sig, r.GetSignatureR()...), r.GetSignatureS()...), byte(recid))
	return sig, nil
}
