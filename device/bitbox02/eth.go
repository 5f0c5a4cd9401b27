package bitbox02

import (
	"context"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/hwbridge/hwbridge/device"
	pb "github.com/hwbridge/hwbridge/internal/bitbox02pb"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// Ethereum on the BitBox02 (bitbox02-firmware hww/api/ethereum, bitbox-api-rs src/eth.rs):
// ETHPubRequest for addresses; ETHSignRequest (legacy, EIP-155) and ETHSignEIP1559Request
// for transactions, ETHSignMessageRequest for EIP-191 messages, each with the anti-klepto
// exchange (ETHResponse.antiklepto_signer_commitment, then ETHRequest.antiklepto_signature).

// maxInlineData is the most call data sent inside the sign request; the firmware streams
// longer data with data_length and chunk requests, which this driver does not do.
const maxInlineData = 6144

// maxEthMessage is the longest message the firmware signs (hww/api/ethereum/sign_msg.rs).
const maxEthMessage = 1024

func ethCall(ctx context.Context, c *channel, op string, req *pb.ETHRequest) (*pb.ETHResponse, error) {
	r, err := c.call(ctx, op, &pb.Request{Request: &pb.Request_Eth{Eth: req}})
	if err != nil {
		return nil, err
	}
	e := r.GetEth()
	if e == nil {
		return nil, unexpected(op, r)
	}
	return e, nil
}

func (d *Driver) ethAddress(ctx context.Context, req device.AddressRequest) (string, error) {
	var addr string
	err := d.do(ctx, "eth address", func(c *channel) error {
		r, err := ethCall(ctx, c, "eth address", &pb.ETHRequest{Request: &pb.ETHRequest_Pub{Pub: &pb.ETHPubRequest{
			Keypath: req.Path, Coin: pb.ETHCoin_ETH, OutputType: pb.ETHPubRequest_ADDRESS, Display: req.Display, ChainId: 1,
		}}})
		if err != nil {
			return err
		}
		addr = r.GetPub().GetPub()
		if !common.IsHexAddress(addr) {
			return fmt.Errorf("%w: eth address %q", device.ErrProtocol, addr)
		}
		return nil
	})
	if err == nil && req.Display {
		device.NoteShown(ctx, addr)
	}
	return addr, err
}

// ethSign finishes an anti-klepto exchange started by req and returns the 65-byte
// r‖s‖recid signature, verified against the host nonce.
func ethSign(ctx context.Context, c *channel, op string, req *pb.ETHRequest, nonce []byte) ([]byte, error) {
	r, err := ethCall(ctx, c, op, req)
	if err != nil {
		return nil, err
	}
	com := r.GetAntikleptoSignerCommitment().GetCommitment()
	if com == nil {
		return nil, fmt.Errorf("%w: %s: no anti-klepto signer commitment (%T)", device.ErrProtocol, op, r.GetResponse())
	}
	r, err = ethCall(ctx, c, op, &pb.ETHRequest{Request: &pb.ETHRequest_AntikleptoSignature{
		AntikleptoSignature: &pb.AntiKleptoSignatureRequest{HostNonce: nonce},
	}})
	if err != nil {
		return nil, err
	}
	sig := r.GetSign().GetSignature()
	if len(sig) != 65 || sig[64] > 1 {
		return nil, fmt.Errorf("%w: %s: signature of %d bytes", device.ErrProtocol, op, len(sig))
	}
	if err := verifyAntiKlepto(nonce, com, sig); err != nil {
		return nil, err
	}
	return sig, nil
}

// minimal is the smallest big-endian serialisation (empty for zero), as the firmware wants.
func minimal(v *big.Int) []byte {
	if v == nil {
		return nil
	}
	return v.Bytes()
}

// SignEthTx implements device.Device.
func (d *Driver) SignEthTx(ctx context.Context, path hdpath.Path, tx *types.Transaction, chainID *big.Int) (*types.Transaction, error) {
	if tx == nil || chainID == nil || !chainID.IsUint64() || chainID.Sign() == 0 {
		return nil, fmt.Errorf("bitbox02: sign eth tx: %w: transaction and a chain id (1..2^64-1) are required", device.ErrInvalidInput)
	}
	if tx.To() == nil {
		return nil, fmt.Errorf("bitbox02: sign eth tx: contract creation is not supported by the device: %w", errors.ErrUnsupported)
	}
	if len(tx.Data()) > maxInlineData {
		return nil, fmt.Errorf("bitbox02: sign eth tx: %w: %d bytes of call data (this driver sends at most %d)", device.ErrInvalidInput, len(tx.Data()), maxInlineData)
	}
	nonce, com, err := newHostNonce()
	if err != nil {
		return nil, err
	}
	var req *pb.ETHRequest
	switch tx.Type() {
	case types.LegacyTxType:
		req = &pb.ETHRequest{Request: &pb.ETHRequest_Sign{Sign: &pb.ETHSignRequest{
			Coin: pb.ETHCoin_ETH, Keypath: path, Nonce: new(big.Int).SetUint64(tx.Nonce()).Bytes(),
			GasPrice: minimal(tx.GasPrice()), GasLimit: new(big.Int).SetUint64(tx.Gas()).Bytes(),
			Recipient: tx.To().Bytes(), Value: minimal(tx.Value()), Data: tx.Data(),
			HostNonceCommitment: &pb.AntiKleptoHostNonceCommitment{Commitment: com}, ChainId: chainID.Uint64(),
		}}}
	case types.DynamicFeeTxType:
		req = &pb.ETHRequest{Request: &pb.ETHRequest_SignEip1559{SignEip1559: &pb.ETHSignEIP1559Request{
			ChainId: chainID.Uint64(), Keypath: path, Nonce: new(big.Int).SetUint64(tx.Nonce()).Bytes(),
			MaxPriorityFeePerGas: minimal(tx.GasTipCap()), MaxFeePerGas: minimal(tx.GasFeeCap()),
			GasLimit: new(big.Int).SetUint64(tx.Gas()).Bytes(), Recipient: tx.To().Bytes(), Value: minimal(tx.Value()),
			Data: tx.Data(), HostNonceCommitment: &pb.AntiKleptoHostNonceCommitment{Commitment: com},
		}}}
		if len(tx.AccessList()) > 0 {
			return nil, fmt.Errorf("bitbox02: sign eth tx: access lists are not supported by the device: %w", errors.ErrUnsupported)
		}
	default:
		return nil, fmt.Errorf("bitbox02: sign eth tx: transaction type %d is not supported by the device: %w", tx.Type(), errors.ErrUnsupported)
	}
	var signed *types.Transaction
	err = d.do(ctx, "sign eth tx", func(c *channel) error {
		sig, err := ethSign(ctx, c, "sign eth tx", req, nonce)
		if err != nil {
			return err
		}
		signed, err = tx.WithSignature(types.LatestSignerForChainID(chainID), sig)
		return err
	})
	return signed, err
}

func (d *Driver) ethMessage(ctx context.Context, req device.MessageRequest) (device.MessageSignature, error) {
	if len(req.Message) > maxEthMessage {
		return device.MessageSignature{}, fmt.Errorf("bitbox02: sign message: %w: %d bytes (the device signs at most %d)", device.ErrInvalidInput, len(req.Message), maxEthMessage)
	}
	nonce, com, err := newHostNonce()
	if err != nil {
		return device.MessageSignature{}, err
	}
	var out device.MessageSignature
	err = d.do(ctx, "sign eth message", func(c *channel) error {
		sig, err := ethSign(ctx, c, "sign eth message", &pb.ETHRequest{Request: &pb.ETHRequest_SignMsg{SignMsg: &pb.ETHSignMessageRequest{
			Coin: pb.ETHCoin_ETH, Keypath: req.Path, Msg: req.Message, ChainId: 1,
			HostNonceCommitment: &pb.AntiKleptoHostNonceCommitment{Commitment: com},
		}}}, nonce)
		if err != nil {
			return err
		}
		sig[64] += 27
		out.Signature = sig
		return nil
	})
	return out, err
}
