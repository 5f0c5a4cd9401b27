package keepkeyemu

import (
	"bytes"
	"context"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/emulator"
	pb "github.com/hwbridge/hwbridge/internal/keepkeypb"
)

// maxChainID1559 is the largest chain id KeepKey 7.10.0 signs EIP-1559 transactions for
// correctly: ethereum.c hashes one byte of it (hash_rlp_field(&chain_id, 1)). This
// emulator refuses larger ones instead of signing a hash over the wrong chain id.
const maxChainID1559 = 255

// maxChainIDLegacy is ethereum.c's MAX_CHAIN_ID: above it v is the bare recovery id.
const maxChainIDLegacy = 2147483630

// canonical reports whether b is a minimal big-endian number (no leading zero byte). The
// firmware hashes the bytes as sent; go-ethereum's encoding is minimal, so this emulator
// refuses the others rather than sign a different hash than the host expects.
func canonical(b []byte) bool { return len(b) == 0 || b[0] != 0 }

// ethSignTx follows ethereum_signing_init and its data rounds (ethereum.c): the initial
// chunk, then EthereumTxRequest{data_length} / EthereumTxAck rounds of at most 1024 bytes,
// then EthereumTxRequest with the signature and the hash.
func (d *Device) ethSignTx(ctx context.Context, s *session, m *pb.EthereumSignTx) (*pb.EthereumTxRequest, error) {
	if m.ChainId != nil && m.GetChainId() < 1 {
		return nil, syntaxError("Chain Id out of bounds")
	}
	if m.TxType != nil {
		return nil, syntaxError("Txtype out of bounds") // Wanchain, not emulated
	}
	txType := m.GetType()
	if txType != 0 && txType != 2 {
		return nil, syntaxError("Ethereum tx type out of bounds")
	}
	total := m.GetDataLength()
	initial := m.GetDataInitialChunk()
	switch {
	case total > 0 && len(initial) == 0:
		return nil, fail(pb.FailureType_Failure_Other, "Data length provided, but no initial chunk")
	case total > maxEthData:
		return nil, syntaxError("Data length exceeds limit")
	case uint32(len(initial)) > total || len(initial) > ethChunk:
		return nil, fail(pb.FailureType_Failure_Other, "Invalid size of initial chunk")
	}
	if len(m.GetTo()) != 0 && len(m.GetTo()) != 20 {
		return nil, syntaxError("Safety check failed")
	}
	for _, f := range []struct {
		name string
		b    []byte
	}{{"nonce", m.GetNonce()}, {"gas_price", m.GetGasPrice()}, {"gas_limit", m.GetGasLimit()}, {"value", m.GetValue()},
		{"max_fee_per_gas", m.GetMaxFeePerGas()}, {"max_priority_fee_per_gas", m.GetMaxPriorityFeePerGas()}} {
		if len(f.b) > 32 {
			return nil, syntaxError("Safety check failed")
		}
		if !canonical(f.b) {
			return nil, syntaxError("Field %s has leading zero bytes (unsupported by this emulator)", f.name)
		}
	}
	chainID := uint64(m.GetChainId())
	if txType == 2 {
		if m.ChainId == nil || chainID > maxChainID1559 {
			return nil, syntaxError("EIP-1559 chain id %d is unsupported (KeepKey 7.10 hashes one byte of it)", chainID)
		}
		if m.MaxFeePerGas == nil || m.MaxPriorityFeePerGas == nil {
			return nil, syntaxError("EIP-1559 transaction without max_fee_per_gas and max_priority_fee_per_gas")
		}
	}
	p, _, err := d.ethKey(m.AddressN)
	if err != nil {
		return nil, err
	}
	var to *common.Address
	recipient := "new contract"
	if len(m.GetTo()) == 20 {
		a := common.BytesToAddress(m.GetTo())
		to, recipient = &a, a.Hex()
	}
	value := new(big.Int).SetBytes(m.GetValue())
	gasLimit := new(big.Int).SetBytes(m.GetGasLimit())
	if !gasLimit.IsUint64() || !new(big.Int).SetBytes(m.GetNonce()).IsUint64() {
		return nil, syntaxError("Safety check failed")
	}
	lines := []string{"Send " + fmtWei(value) + " to " + recipient}
	if total > 0 {
		lines = append(lines, fmt.Sprintf("with %d bytes of data", total))
	}
	if err := s.confirm(ctx, pb.ButtonRequestType_ButtonRequest_ConfirmOutput, emulator.Screen{Title: "Transaction", Lines: lines}); err != nil {
		return nil, ethCancelled(err)
	}
	var fee *big.Int
	if txType == 2 {
		fee = new(big.Int).Mul(gasLimit, new(big.Int).SetBytes(m.GetMaxFeePerGas()))
	} else {
		fee = new(big.Int).Mul(gasLimit, new(big.Int).SetBytes(m.GetGasPrice()))
	}
	if err := s.confirm(ctx, pb.ButtonRequestType_ButtonRequest_SignTx, emulator.Screen{Title: "Transaction",
		Lines: []string{"Really send " + fmtWei(value) + " paying up to " + fmtWei(fee) + " for gas?", fmt.Sprintf("Chain ID: %d", chainID)}}); err != nil {
		return nil, ethCancelled(err)
	}
	data := bytes.Clone(initial)
	for uint32(len(data)) < total {
		want := min(total-uint32(len(data)), ethChunk)
		ack, err := expect[*pb.EthereumTxAck](ctx, s, &pb.EthereumTxRequest{DataLength: proto.Uint32(want)}, pb.MessageType_MessageType_EthereumTxAck)
		if err != nil {
			return nil, err
		}
		c := ack.GetDataChunk()
		if len(c) == 0 || uint32(len(c)) > want {
			return nil, fail(pb.FailureType_Failure_Other, "Invalid data chunk")
		}
		data = append(data, c...)
	}
	nonce := new(big.Int).SetBytes(m.GetNonce()).Uint64()
	var tx *types.Transaction
	var signer types.Signer
	switch {
	case txType == 2:
		cid := new(big.Int).SetUint64(chainID)
		tx = types.NewTx(&types.DynamicFeeTx{ChainID: cid, Nonce: nonce, GasTipCap: new(big.Int).SetBytes(m.GetMaxPriorityFeePerGas()),
			GasFeeCap: new(big.Int).SetBytes(m.GetMaxFeePerGas()), Gas: gasLimit.Uint64(), To: to, Value: value, Data: data})
		signer = types.NewLondonSigner(cid)
	case chainID != 0:
		tx = types.NewTx(&types.LegacyTx{Nonce: nonce, GasPrice: new(big.Int).SetBytes(m.GetGasPrice()), Gas: gasLimit.Uint64(), To: to, Value: value, Data: data})
		signer = types.NewEIP155Signer(new(big.Int).SetUint64(chainID))
	default:
		tx = types.NewTx(&types.LegacyTx{Nonce: nonce, GasPrice: new(big.Int).SetBytes(m.GetGasPrice()), Gas: gasLimit.Uint64(), To: to, Value: value, Data: data})
		signer = types.HomesteadSigner{}
	}
	hash := signer.Hash(tx)
	sig, err := d.ethSign(p, hash[:])
	if err != nil {
		return nil, err
	}
	// send_signature: the recovery id for EIP-1559 and chain ids above MAX_CHAIN_ID,
	// v+2·chain_id+35 for EIP-155, v+27 without a chain id.
	v := uint32(sig[64])
	switch {
	case txType == 2 || chainID > maxChainIDLegacy:
	case chainID != 0:
		v += uint32(2*chainID + 35)
	default:
		v += 27
	}
	return &pb.EthereumTxRequest{
		SignatureV: proto.Uint32(v),
		SignatureR: bytes.Clone(sig[:32]),
		SignatureS: bytes.Clone(sig[32:64]),
		Hash:       hash[:],
	}, nil
}

// ethCancelled is ethereum.c's answer to a NO: "Signing cancelled by user".
func ethCancelled(err error) error {
	if err == errRejected {
		return fail(pb.FailureType_Failure_ActionCancelled, "Signing cancelled by user")
	}
	return err
}
