package trezoremu

import (
	"bytes"
	"context"
	"encoding/hex"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	pb "github.com/hwbridge/hwbridge/internal/trezorpb"
)

const (
	// ethChunk is the most calldata one EthereumTxRequest asks for.
	ethChunk = 1024
	// maxEthData caps total calldata (the firmware streams it; we hash it whole).
	maxEthData = 1 << 20
	// maxEIP155Chain is the largest chain id whose v fits the uint32 signature_v field
	// ((2³²−1−36)/2); above it the device returns only the parity.
	maxEIP155Chain = 2147483629
	// maxAccessList bounds access list entries and storage keys per entry.
	maxAccessList = 64
)

func (d *Device) ethAddress(ctx context.Context, s *session, path []uint32) (*emulator.Wallet, hdpath.Path, common.Address, error) {
	p, err := checkPath(path)
	if err != nil {
		return nil, nil, common.Address{}, err
	}
	w, err := d.wallet(ctx, s)
	if err != nil {
		return nil, nil, common.Address{}, err
	}
	a, err := w.EthAddress(p)
	if err != nil {
		return nil, nil, common.Address{}, fail(pb.FailureType_Failure_ProcessError, "Key derivation failed")
	}
	return w, p, a, nil
}

func (d *Device) ethGetAddress(ctx context.Context, s *session, m *pb.EthereumGetAddress) (*pb.EthereumAddress, error) {
	_, p, a, err := d.ethAddress(ctx, s, m.AddressN)
	if err != nil {
		return nil, err
	}
	if m.GetShowDisplay() {
		if err := s.confirmAddress(ctx, emulator.Screen{Title: "Receive address", Lines: []string{a.Hex(), p.String(), "Ethereum"}}); err != nil {
			return nil, err
		}
	}
	return &pb.EthereumAddress{Address: proto.String(a.Hex())}, nil
}

func (d *Device) ethGetPublicKey(ctx context.Context, s *session, m *pb.EthereumGetPublicKey) (*pb.EthereumPublicKey, error) {
	p, err := checkPath(m.AddressN)
	if err != nil {
		return nil, err
	}
	w, err := d.wallet(ctx, s)
	if err != nil {
		return nil, err
	}
	node, xpub, err := hdNode(w, p, versionBytes(coins["Bitcoin"].xpub))
	if err != nil {
		return nil, err
	}
	if m.GetShowDisplay() {
		if err := s.confirm(ctx, pb.ButtonRequestType_ButtonRequest_PublicKey, emulator.Screen{Title: "Public key", Lines: []string{xpub, p.String(), "Ethereum"}}); err != nil {
			return nil, err
		}
	}
	return &pb.EthereumPublicKey{Node: node, Xpub: proto.String(xpub)}, nil
}

// ethNumber reads a big-endian unsigned number of at most 32 bytes.
func ethNumber(b []byte, field string) (*big.Int, error) {
	if len(b) > 32 {
		return nil, dataError("Field %s is too long", field)
	}
	return new(big.Int).SetBytes(b), nil
}

// ethTo parses the recipient: empty (contract creation) or 40 hex digits with optional 0x.
func ethTo(to string) (*common.Address, error) {
	if to == "" {
		return nil, nil
	}
	h := strings.TrimPrefix(strings.TrimPrefix(to, "0x"), "0X")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 20 {
		return nil, dataError("Invalid recipient address")
	}
	a := common.BytesToAddress(b)
	return &a, nil
}

// fmtWei prints wei as a decimal ETH amount.
func fmtWei(wei *big.Int, unit string) string {
	q, r := new(big.Int).QuoRem(wei, big.NewInt(1e18), new(big.Int))
	s := q.String()
	if r.Sign() != 0 {
		frac := r.String()
		s += "." + strings.TrimRight(strings.Repeat("0", 18-len(frac))+frac, "0")
	}
	return s + " " + unit
}

// ethData gathers the calldata: the initial chunk, then EthereumTxRequest/EthereumTxAck
// rounds of at most 1024 bytes.
func (d *Device) ethData(ctx context.Context, s *session, initial []byte, total uint32) ([]byte, error) {
	data := bytes.Clone(initial)
	for uint32(len(data)) < total {
		want := min(total-uint32(len(data)), ethChunk)
		ack, err := expect[*pb.EthereumTxAck](ctx, s, &pb.EthereumTxRequest{DataLength: proto.Uint32(want)}, pb.MessageType_MessageType_EthereumTxAck)
		if err != nil {
			return nil, err
		}
		c := ack.GetDataChunk()
		if len(c) == 0 || uint32(len(c)) > want {
			return nil, dataError("Too much data")
		}
		data = append(data, c...)
	}
	return data, nil
}

func checkEthData(initial []byte, total uint32) error {
	switch {
	case len(initial) > ethChunk:
		return dataError("Initial data chunk too long")
	case total > maxEthData:
		return dataError("Data too long")
	case total > 0 && len(initial) == 0:
		return dataError("Data length provided, but no initial chunk")
	case uint32(len(initial)) > total:
		return dataError("Invalid size of initial chunk")
	}
	return nil
}

// ethConfirm shows the recipient and amount, then the fee, as the firmware does. The
// Trezor One (legacy/firmware/ethereum.c 1.13.1) asks every screen with ButtonRequest
// SignTx: the recipient and amount, the data (when there is data), then the fee (one screen
// for a legacy transaction; maximum fee per gas, priority fee per gas and maximum fee for
// EIP-1559), as the recorded transcripts in device/trezor/testdata show.
func (s *session) ethConfirm(ctx context.Context, to *common.Address, value, maxFee *big.Int, gasLimit uint64, chainID uint64, dataLen uint32, feeLines ...string) error {
	recipient := "new contract"
	if to != nil {
		recipient = to.Hex()
	}
	lines := []string{recipient, fmtWei(value, "ETH"), "Chain ID: " + new(big.Int).SetUint64(chainID).String()}
	if s.d.persona.legacy {
		signTx := pb.ButtonRequestType_ButtonRequest_SignTx
		if err := s.confirm(ctx, signTx, emulator.Screen{Title: "Confirm sending", Lines: lines}); err != nil {
			return err
		}
		if dataLen > 0 {
			if err := s.confirm(ctx, signTx, emulator.Screen{Title: "Transaction data", Lines: []string{"Size: " + new(big.Int).SetUint64(uint64(dataLen)).String() + " bytes"}}); err != nil {
				return err
			}
		}
		screens := []emulator.Screen{{Title: "Confirm fee", Lines: append([]string{"Maximum fee: " + fmtWei(maxFee, "ETH")}, feeLines...)}}
		if len(feeLines) == 2 { // EIP-1559: one screen per fee figure
			screens = []emulator.Screen{
				{Title: "Maximum fee per gas", Lines: feeLines[:1]},
				{Title: "Priority fee per gas", Lines: feeLines[1:]},
				{Title: "Maximum fee", Lines: []string{fmtWei(maxFee, "ETH")}},
			}
		}
		for _, sc := range screens {
			if err := s.confirm(ctx, signTx, sc); err != nil {
				return err
			}
		}
		return nil
	}
	if dataLen > 0 {
		lines = append(lines, "Data: "+new(big.Int).SetUint64(uint64(dataLen)).String()+" bytes")
	}
	if err := s.confirm(ctx, pb.ButtonRequestType_ButtonRequest_ConfirmOutput, emulator.Screen{Title: "Confirm sending", Lines: lines}); err != nil {
		return err
	}
	fl := append([]string{"Maximum fee: " + fmtWei(maxFee, "ETH"), "Gas limit: " + new(big.Int).SetUint64(gasLimit).String()}, feeLines...)
	fl = append(fl, "Chain ID: "+new(big.Int).SetUint64(chainID).String())
	return s.confirm(ctx, pb.ButtonRequestType_ButtonRequest_SignTx, emulator.Screen{Title: "Confirm fee", Lines: fl})
}

func gwei(v *big.Int) string {
	return fmtWei(new(big.Int).Mul(v, big.NewInt(1e9)), "Gwei")
}

// ethFields are what both transaction types carry, checked as the firmware checks them.
type ethFields struct {
	nonce, gasLimit, value *big.Int
	to                     *common.Address // nil: contract creation
}

func ethTxFields(nonceB, gasLimitB, valueB []byte, toS string, dataInit []byte, dataLen uint32) (ethFields, error) {
	var f ethFields
	var err error
	if f.nonce, err = ethNumber(nonceB, "nonce"); err != nil {
		return f, err
	}
	if f.gasLimit, err = ethNumber(gasLimitB, "gas_limit"); err != nil {
		return f, err
	}
	if f.value, err = ethNumber(valueB, "value"); err != nil {
		return f, err
	}
	if !f.nonce.IsUint64() || !f.gasLimit.IsUint64() {
		return f, dataError("Nonce or gas limit out of range")
	}
	if f.to, err = ethTo(toS); err != nil {
		return f, err
	}
	if f.to == nil && dataLen == 0 {
		return f, dataError("Contract creation without data")
	}
	return f, checkEthData(dataInit, dataLen)
}

func (d *Device) ethSignTx(ctx context.Context, s *session, m *pb.EthereumSignTx) (*pb.EthereumTxRequest, error) {
	if m.GetTxType() != 0 {
		return nil, dataError("Wanchain transactions are unsupported by this emulator")
	}
	if m.GasPrice == nil || m.GasLimit == nil {
		return nil, dataError("Missing field: gas_price and gas_limit are required")
	}
	if m.GetChainId() == 0 {
		return nil, dataError("Chain ID out of bounds")
	}
	f, err := ethTxFields(m.GetNonce(), m.GetGasLimit(), m.GetValue(), m.GetTo(), m.GetDataInitialChunk(), m.GetDataLength())
	if err != nil {
		return nil, err
	}
	gasPrice, err := ethNumber(m.GetGasPrice(), "gas_price")
	if err != nil {
		return nil, err
	}
	nonce, gasLimit, value, to := f.nonce, f.gasLimit, f.value, f.to
	w, p, _, err := d.ethAddress(ctx, s, m.AddressN)
	if err != nil {
		return nil, err
	}
	fee := new(big.Int).Mul(gasPrice, gasLimit)
	if err := s.ethConfirm(ctx, to, value, fee, gasLimit.Uint64(), m.GetChainId(), m.GetDataLength(), "Gas price: "+gwei(gasPrice)); err != nil {
		return nil, err
	}
	data, err := d.ethData(ctx, s, m.GetDataInitialChunk(), m.GetDataLength())
	if err != nil {
		return nil, err
	}
	chainID := new(big.Int).SetUint64(m.GetChainId())
	tx := types.NewTx(&types.LegacyTx{Nonce: nonce.Uint64(), GasPrice: gasPrice, Gas: gasLimit.Uint64(), To: to, Value: value, Data: data})
	sig, err := ethSign(w, p, types.NewEIP155Signer(chainID).Hash(tx).Bytes())
	if err != nil {
		return nil, err
	}
	v := uint32(sig[64])
	if m.GetChainId() <= maxEIP155Chain {
		v += 35 + 2*uint32(m.GetChainId())
	}
	return &pb.EthereumTxRequest{SignatureV: proto.Uint32(v), SignatureR: sig[:32], SignatureS: sig[32:64]}, nil
}

func (d *Device) ethSignTx1559(ctx context.Context, s *session, m *pb.EthereumSignTxEIP1559) (*pb.EthereumTxRequest, error) {
	if m.MaxGasFee == nil || m.MaxPriorityFee == nil || m.GasLimit == nil {
		return nil, dataError("Missing field: max_gas_fee, max_priority_fee and gas_limit are required")
	}
	if m.GetChainId() == 0 {
		return nil, dataError("Chain ID out of bounds")
	}
	f, err := ethTxFields(m.GetNonce(), m.GetGasLimit(), m.GetValue(), m.GetTo(), m.GetDataInitialChunk(), m.GetDataLength())
	if err != nil {
		return nil, err
	}
	maxFee, err := ethNumber(m.GetMaxGasFee(), "max_gas_fee")
	if err != nil {
		return nil, err
	}
	tip, err := ethNumber(m.GetMaxPriorityFee(), "max_priority_fee")
	if err != nil {
		return nil, err
	}
	nonce, gasLimit, value, to := f.nonce, f.gasLimit, f.value, f.to
	if len(m.AccessList) > maxAccessList {
		return nil, dataError("Access list too long")
	}
	var al types.AccessList
	for _, e := range m.AccessList {
		a, err := ethTo(e.GetAddress())
		if err != nil || a == nil {
			return nil, dataError("Invalid access list address")
		}
		if len(e.StorageKeys) > maxAccessList {
			return nil, dataError("Too many storage keys")
		}
		t := types.AccessTuple{Address: *a, StorageKeys: []common.Hash{}}
		for _, k := range e.StorageKeys {
			if len(k) != 32 {
				return nil, dataError("Invalid storage key")
			}
			t.StorageKeys = append(t.StorageKeys, common.BytesToHash(k))
		}
		al = append(al, t)
	}
	w, p, _, err := d.ethAddress(ctx, s, m.AddressN)
	if err != nil {
		return nil, err
	}
	fee := new(big.Int).Mul(maxFee, gasLimit)
	if err := s.ethConfirm(ctx, to, value, fee, gasLimit.Uint64(), m.GetChainId(), m.GetDataLength(), "Max fee per gas: "+gwei(maxFee), "Priority fee per gas: "+gwei(tip)); err != nil {
		return nil, err
	}
	data, err := d.ethData(ctx, s, m.GetDataInitialChunk(), m.GetDataLength())
	if err != nil {
		return nil, err
	}
	chainID := new(big.Int).SetUint64(m.GetChainId())
	tx := types.NewTx(&types.DynamicFeeTx{ChainID: chainID, Nonce: nonce.Uint64(), GasTipCap: tip, GasFeeCap: maxFee, Gas: gasLimit.Uint64(), To: to, Value: value, Data: data, AccessList: al})
	sig, err := ethSign(w, p, types.NewLondonSigner(chainID).Hash(tx).Bytes())
	if err != nil {
		return nil, err
	}
	return &pb.EthereumTxRequest{SignatureV: proto.Uint32(uint32(sig[64])), SignatureR: sig[:32], SignatureS: sig[32:64]}, nil
}

// ethSign returns r ‖ s ‖ recid (low-s, as go-ethereum and the firmware produce).
func ethSign(w *emulator.Wallet, p hdpath.Path, hash []byte) ([]byte, error) {
	k, err := w.EthKey(p)
	if err != nil {
		return nil, fail(pb.FailureType_Failure_ProcessError, "Key derivation failed")
	}
	sig, err := crypto.Sign(hash, k)
	if err != nil {
		return nil, fail(pb.FailureType_Failure_ProcessError, "Signing failed")
	}
	return sig, nil
}

func (d *Device) ethSignMessage(ctx context.Context, s *session, m *pb.EthereumSignMessage) (*pb.EthereumMessageSignature, error) {
	if len(m.GetMessage()) > maxEthData {
		return nil, dataError("Message too long")
	}
	w, p, a, err := d.ethAddress(ctx, s, m.AddressN)
	if err != nil {
		return nil, err
	}
	if err := s.legacyVerifyAddress(ctx, a.Hex()); err != nil {
		return nil, err
	}
	lines := append([]string{a.Hex()}, messageLines(m.GetMessage())...)
	if err := s.confirm(ctx, pb.ButtonRequestType_ButtonRequest_Other, emulator.Screen{Title: "Sign message", Lines: lines}); err != nil {
		return nil, err
	}
	sig, err := ethSign(w, p, accounts.TextHash(m.GetMessage()))
	if err != nil {
		return nil, err
	}
	sig[64] += 27
	return &pb.EthereumMessageSignature{Signature: sig, Address: proto.String(a.Hex())}, nil
}

func (d *Device) ethVerifyMessage(ctx context.Context, s *session, m *pb.EthereumVerifyMessage) (*pb.Success, error) {
	if len(m.GetMessage()) > maxEthData {
		return nil, dataError("Message too long")
	}
	want, err := ethTo(m.GetAddress())
	if err != nil || want == nil {
		return nil, dataError("Invalid address")
	}
	sig := bytes.Clone(m.GetSignature())
	if len(sig) != 65 {
		return nil, dataError("Invalid signature")
	}
	switch {
	case sig[64] >= 27:
		sig[64] -= 27
	}
	if sig[64] > 1 {
		return nil, dataError("Invalid signature")
	}
	pub, err := crypto.SigToPub(accounts.TextHash(m.GetMessage()), sig)
	if err != nil || crypto.PubkeyToAddress(*pub) != *want {
		return nil, fail(pb.FailureType_Failure_InvalidSignature, "Invalid signature")
	}
	lines := append([]string{want.Hex()}, messageLines(m.GetMessage())...)
	if err := s.confirm(ctx, pb.ButtonRequestType_ButtonRequest_Other, emulator.Screen{Title: "Verify message", Lines: lines}); err != nil {
		return nil, err
	}
	return &pb.Success{Message: proto.String("Message verified")}, nil
}

// ethSignTypedHash signs keccak256(0x19 0x01 ‖ domainSeparator ‖ messageHash), the
// message hash left out for domain-only data (primaryType EIP712Domain).
func (d *Device) ethSignTypedHash(ctx context.Context, s *session, m *pb.EthereumSignTypedHash) (*pb.EthereumTypedDataSignature, error) {
	dom, msg := m.GetDomainSeparatorHash(), m.GetMessageHash()
	if len(dom) != 32 {
		return nil, dataError("Invalid domain separator hash")
	}
	if m.MessageHash != nil && len(msg) != 32 {
		return nil, dataError("Invalid message hash")
	}
	w, p, a, err := d.ethAddress(ctx, s, m.AddressN)
	if err != nil {
		return nil, err
	}
	// legacy/firmware/fsm_msg_ethereum.h fsm_msgEthereumSignTypedHash: the blind-signing
	// warning (ProtectCall), the signing address, the domain hash, the message hash.
	other := pb.ButtonRequestType_ButtonRequest_Other
	screens := []struct {
		code pb.ButtonRequestType
		sc   emulator.Screen
	}{
		{pb.ButtonRequestType_ButtonRequest_ProtectCall, emulator.Screen{Title: "Unable to show EIP-712 data", Lines: []string{"Sign at your own risk."}}},
		{other, emulator.Screen{Title: "Confirm address", Lines: []string{a.Hex()}}},
		{other, emulator.Screen{Title: "EIP-712 domain hash", Lines: []string{"0x" + hex.EncodeToString(dom)}}},
	}
	if m.MessageHash != nil {
		screens = append(screens, struct {
			code pb.ButtonRequestType
			sc   emulator.Screen
		}{other, emulator.Screen{Title: "EIP-712 message hash", Lines: []string{"0x" + hex.EncodeToString(msg)}}})
	}
	for _, x := range screens {
		if err := s.confirm(ctx, x.code, x.sc); err != nil {
			return nil, err
		}
	}
	pre := append([]byte{0x19, 0x01}, dom...)
	if m.MessageHash != nil {
		pre = append(pre, msg...)
	}
	sig, err := ethSign(w, p, crypto.Keccak256(pre))
	if err != nil {
		return nil, err
	}
	sig[64] += 27
	return &pb.EthereumTypedDataSignature{Signature: sig, Address: proto.String(a.Hex())}, nil
}
