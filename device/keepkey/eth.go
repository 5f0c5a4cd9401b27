package keepkey

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/internal/keepkeypb"
)

// Ethereum signing as keepkey-firmware lib/firmware/ethereum.c (7.10.0) does it.
const (
	ethChunk = 1024 // calldata bytes per message
	// ethMaxData is ethereum.c's data_length limit.
	ethMaxData = 16000000
	// ethMaxFullV is ethereum.c's MAX_CHAIN_ID: up to it a legacy signature's v is
	// recid+35+2·chainId, above it the bare recovery id.
	ethMaxFullV = 2147483630
	// ethMax1559Chain: ethereum.c hashes one byte of the chain id of an EIP-1559
	// transaction (hash_rlp_field(&chain_id, 1)), so only chain ids up to 255 sign right.
	ethMax1559Chain = 255
)

func (d *Driver) ethAddress(ctx context.Context, path hdpath.Path, display bool) (string, error) {
	var addr string
	err := d.do(ctx, "get ethereum address", func(s *session) error {
		a, err := expect[*keepkeypb.EthereumAddress](s, &keepkeypb.EthereumGetAddress{
			AddressN: path, ShowDisplay: proto.Bool(display),
		})
		if err != nil {
			return err
		}
		if len(a.GetAddress()) != common.AddressLength {
			return fmt.Errorf("%w: ethereum address of %d bytes", device.ErrProtocol, len(a.GetAddress()))
		}
		addr = common.BytesToAddress(a.GetAddress()).Hex()
		return nil
	})
	return addr, err
}

func (d *Driver) ethSignMessage(ctx context.Context, req device.MessageRequest) (device.MessageSignature, error) {
	if len(req.Message) > maxMessage {
		return device.MessageSignature{}, fmt.Errorf("keepkey: sign ethereum message: %w: %d bytes (keepkey signs at most %d)", device.ErrInvalidInput, len(req.Message), maxMessage)
	}
	var out device.MessageSignature
	err := d.do(ctx, "sign ethereum message", func(s *session) error {
		sig, err := expect[*keepkeypb.EthereumMessageSignature](s, &keepkeypb.EthereumSignMessage{
			AddressN: req.Path, Message: req.Message,
		})
		if err != nil {
			return err
		}
		if len(sig.GetSignature()) != 65 || len(sig.GetAddress()) != common.AddressLength {
			return fmt.Errorf("%w: ethereum message signature of %d bytes for an address of %d", device.ErrProtocol, len(sig.GetSignature()), len(sig.GetAddress()))
		}
		out = device.MessageSignature{Address: common.BytesToAddress(sig.GetAddress()).Hex(), Signature: bytes.Clone(sig.GetSignature())}
		return nil
	})
	return out, err
}

// SignTypedHash signs EIP-712 hashes with EthereumSignTypedHash (id 112). The firmware shows
// the address and both hashes but does not let the user decline them (its confirm results
// are unchecked in fsm_msgEthereumSignTypedHash).
func (d *Driver) SignTypedHash(ctx context.Context, path hdpath.Path, domainSeparator [32]byte, messageHash []byte) ([]byte, error) {
	if messageHash != nil && len(messageHash) != 32 {
		return nil, fmt.Errorf("keepkey: sign typed hash: %w: message hash of %d bytes", device.ErrInvalidInput, len(messageHash))
	}
	var sig []byte
	err := d.do(ctx, "sign typed hash", func(s *session) error {
		if !capabilities(s.d.features).EIP712Hash {
			return fmt.Errorf("eip-712 hashes need keepkey firmware 7.4.0: update the firmware: %w", errors.ErrUnsupported)
		}
		r, err := expect[*keepkeypb.EthereumTypedDataSignature](s, &keepkeypb.EthereumSignTypedHash{
			AddressN: path, DomainSeparatorHash: domainSeparator[:], MessageHash: messageHash,
		})
		if err != nil {
			return err
		}
		if len(r.GetSignature()) != 65 {
			return fmt.Errorf("%w: typed data signature of %d bytes", device.ErrProtocol, len(r.GetSignature()))
		}
		sig = bytes.Clone(r.GetSignature())
		return nil
	})
	return sig, err
}

func u64Bytes(v uint64) []byte { return new(big.Int).SetUint64(v).Bytes() }

// SignEthTx signs a legacy (EIP-155) or dynamic-fee (EIP-1559) transaction and returns it
// with the signature attached. KeepKey takes both in EthereumSignTx (type 2 for EIP-1559);
// it has no access lists and hashes one byte of an EIP-1559 chain id, so those are refused.
func (d *Driver) SignEthTx(ctx context.Context, path hdpath.Path, tx *types.Transaction, chainID *big.Int) (*types.Transaction, error) {
	if chainID == nil || chainID.Sign() <= 0 || !chainID.IsUint64() {
		return nil, fmt.Errorf("keepkey: sign ethereum tx: %w: chain id must be a positive number", device.ErrInvalidInput)
	}
	if chainID.Uint64() > 0xffffffff {
		return nil, fmt.Errorf("keepkey: sign ethereum tx: chain id %s (keepkey's chain_id is 32 bits): %w", chainID, errors.ErrUnsupported)
	}
	data := tx.Data()
	if len(data) > ethMaxData {
		return nil, fmt.Errorf("keepkey: sign ethereum tx: %w: %d bytes of calldata (keepkey takes at most %d)", device.ErrInvalidInput, len(data), ethMaxData)
	}
	if tx.To() == nil && len(data) == 0 {
		return nil, fmt.Errorf("keepkey: sign ethereum tx: %w: contract creation without data", device.ErrInvalidInput)
	}
	first := data[:min(len(data), ethChunk)]
	msg := &keepkeypb.EthereumSignTx{
		AddressN:    path,
		Nonce:       u64Bytes(tx.Nonce()),
		GasLimit:    u64Bytes(tx.Gas()),
		Value:       tx.Value().Bytes(),
		DataLength:  proto.Uint32(uint32(len(data))),
		ChainId:     proto.Uint32(uint32(chainID.Uint64())),
		AddressType: keepkeypb.OutputAddressType_SPEND.Enum(),
	}
	if len(first) > 0 {
		msg.DataInitialChunk = first
	}
	if tx.To() != nil {
		msg.To = tx.To().Bytes()
	}
	var signer types.Signer
	switch tx.Type() {
	case types.LegacyTxType:
		msg.GasPrice = tx.GasPrice().Bytes()
		signer = types.NewEIP155Signer(chainID)
	case types.DynamicFeeTxType:
		if tx.ChainId().Cmp(chainID) != 0 {
			return nil, fmt.Errorf("keepkey: sign ethereum tx: %w: the transaction is for chain %s, not %s", device.ErrInvalidInput, tx.ChainId(), chainID)
		}
		if len(tx.AccessList()) > 0 {
			return nil, fmt.Errorf("keepkey: sign ethereum tx: eip-1559 access lists (keepkey firmware signs only an empty one): %w", errors.ErrUnsupported)
		}
		if chainID.Uint64() > ethMax1559Chain {
			return nil, fmt.Errorf("keepkey: sign ethereum tx: eip-1559 on chain %s (keepkey firmware hashes one byte of the chain id, so only chains up to %d): %w", chainID, ethMax1559Chain, errors.ErrUnsupported)
		}
		msg.MaxFeePerGas = tx.GasFeeCap().Bytes()
		msg.MaxPriorityFeePerGas = tx.GasTipCap().Bytes()
		msg.Type = proto.Uint32(2)
		signer = types.NewLondonSigner(chainID)
	default:
		return nil, fmt.Errorf("keepkey: sign ethereum tx: transaction type %d (keepkey signs legacy and eip-1559 transactions): %w", tx.Type(), errors.ErrUnsupported)
	}
	var signed *types.Transaction
	err := d.do(ctx, "sign ethereum tx", func(s *session) error {
		if tx.Type() == types.DynamicFeeTxType && !capabilities(s.d.features).EIP1559 {
			return fmt.Errorf("eip-1559 transactions need keepkey firmware 7.2.1: update the firmware: %w", errors.ErrUnsupported)
		}
		sent := len(first)
		var req proto.Message = msg
		for {
			r, err := expect[*keepkeypb.EthereumTxRequest](s, req)
			if err != nil {
				return err
			}
			if r.DataLength == nil {
				sig, err := ethTxSignature(r, tx.Type(), chainID)
				if err != nil {
					return err
				}
				if sent != len(data) {
					return fmt.Errorf("%w: device signed after %d of %d calldata bytes", device.ErrProtocol, sent, len(data))
				}
				signed, err = tx.WithSignature(signer, sig)
				if err != nil {
					return fmt.Errorf("%w: %w", device.ErrProtocol, err)
				}
				return nil
			}
			n := int(r.GetDataLength())
			if n == 0 || n > ethChunk || n > len(data)-sent {
				return fmt.Errorf("%w: device asked for %d calldata bytes with %d left", device.ErrProtocol, n, len(data)-sent)
			}
			req = &keepkeypb.EthereumTxAck{DataChunk: data[sent : sent+n]}
			sent += n
		}
	})
	return signed, err
}

// ethTxSignature turns the final EthereumTxRequest into r‖s‖recid (ethereum.c
// send_signature: EIP-1559 and chain ids above MAX_CHAIN_ID give the recovery id, EIP-155
// gives recid+35+2·chainId).
func ethTxSignature(r *keepkeypb.EthereumTxRequest, txType uint8, chainID *big.Int) ([]byte, error) {
	if len(r.GetSignatureR()) != 32 || len(r.GetSignatureS()) != 32 || r.SignatureV == nil {
		return nil, fmt.Errorf("%w: incomplete transaction signature", device.ErrProtocol)
	}
	v := uint64(r.GetSignatureV())
	c := chainID.Uint64()
	var recid uint64
	switch {
	case txType == types.DynamicFeeTxType || c > ethMaxFullV:
		recid = v
	case v >= 35+2*c:
		recid = v - 35 - 2*c
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
