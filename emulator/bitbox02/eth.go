package bitbox02

import (
	"math/big"
	"strconv"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	pb "github.com/hwbridge/hwbridge/internal/bitbox02pb"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// Ethereum as bitbox02-firmware hww/api/ethereum serves it: addresses for
// m/44'/60'/0'/0/i, legacy (EIP-155) and EIP-1559 transactions, EIP-191 messages, each
// signature behind the anti-klepto exchange.

// maxEthData is the most call data the emulator takes inline; longer data would be
// streamed with data_length (not emulated).
const maxEthData = 6144

// validEthPath is m/44'/60'/0'/0/i with i < 10000 (keypath.rs is_valid_keypath_address).
func validEthPath(kp []uint32) bool {
	return len(kp) == 5 && kp[0] == 44+hardened && kp[1] == 60+hardened && kp[2] == hardened && kp[3] == 0 && kp[4] < 10000
}

func ethResponse(r *pb.ETHResponse) *pb.Response {
	return &pb.Response{Response: &pb.Response_Eth{Eth: r}}
}

func (w *apiWorker) eth(r *pb.ETHRequest) (*pb.Response, error) {
	switch q := r.Request.(type) {
	case *pb.ETHRequest_Pub:
		return w.ethPub(q.Pub)
	case *pb.ETHRequest_Sign:
		s := q.Sign
		if s.GetCoin() != pb.ETHCoin_ETH || s.GetChainId() == 0 || s.GetDataLength() != 0 {
			return nil, errInvalidInput
		}
		tx := &types.LegacyTx{
			Nonce: u64(s.GetNonce()), GasPrice: big.NewInt(0).SetBytes(s.GetGasPrice()), Gas: u64(s.GetGasLimit()),
			Value: new(big.Int).SetBytes(s.GetValue()), Data: s.GetData(),
		}
		return w.ethSignTx(s.GetKeypath(), s.GetChainId(), tx, s.GetRecipient(), [][]byte{s.GetNonce(), s.GetGasPrice(), s.GetGasLimit()}, s.GetValue(), s.GetHostNonceCommitment())
	case *pb.ETHRequest_SignEip1559:
		s := q.SignEip1559
		if s.GetChainId() == 0 || s.GetDataLength() != 0 {
			return nil, errInvalidInput
		}
		tx := &types.DynamicFeeTx{
			ChainID: new(big.Int).SetUint64(s.GetChainId()), Nonce: u64(s.GetNonce()),
			GasTipCap: new(big.Int).SetBytes(s.GetMaxPriorityFeePerGas()), GasFeeCap: new(big.Int).SetBytes(s.GetMaxFeePerGas()),
			Gas: u64(s.GetGasLimit()), Value: new(big.Int).SetBytes(s.GetValue()), Data: s.GetData(),
		}
		return w.ethSignTx(s.GetKeypath(), s.GetChainId(), tx, s.GetRecipient(),
			[][]byte{s.GetNonce(), s.GetMaxPriorityFeePerGas(), s.GetMaxFeePerGas(), s.GetGasLimit()}, s.GetValue(), s.GetHostNonceCommitment())
	case *pb.ETHRequest_SignMsg:
		return w.ethSignMessage(q.SignMsg)
	case *pb.ETHRequest_SignTypedMsg:
		return w.ethSignTypedMessage(q.SignTypedMsg)
	}
	return nil, errInvalidInput
}

// u64 reads a big-endian number of at most 8 bytes (callers check sizes first).
func u64(b []byte) uint64 { return new(big.Int).SetBytes(b).Uint64() }

func (w *apiWorker) ethPub(p *pb.ETHPubRequest) (*pb.Response, error) {
	if p.GetCoin() != pb.ETHCoin_ETH || p.GetOutputType() != pb.ETHPubRequest_ADDRESS || len(p.GetContractAddress()) != 0 {
		return nil, errInvalidInput // xpubs and token addresses are not emulated
	}
	if !validEthPath(p.GetKeypath()) {
		return nil, errInvalidInput
	}
	a, err := w.cn.d.wallet.EthAddress(hdpath.Path(p.GetKeypath()))
	if err != nil {
		return nil, errGeneric
	}
	if p.GetDisplay() {
		if err := w.ask("Ethereum", a.Hex()); err != nil {
			return nil, err
		}
	}
	return ethResponse(&pb.ETHResponse{Response: &pb.ETHResponse_Pub{Pub: &pb.PubResponse{Pub: a.Hex()}}}), nil
}

func (w *apiWorker) ethSignTx(kp []uint32, chainID uint64, inner types.TxData, recipient []byte, smallNums [][]byte, value []byte, hc *pb.AntiKleptoHostNonceCommitment) (*pb.Response, error) {
	if !validEthPath(kp) || len(recipient) != 20 || len(value) > 32 {
		return nil, errInvalidInput
	}
	for _, n := range smallNums {
		if len(n) > 16 || len(n) > 0 && n[0] == 0 {
			return nil, errInvalidInput
		}
	}
	to := common.BytesToAddress(recipient)
	var data []byte
	switch t := inner.(type) {
	case *types.LegacyTx:
		t.To, data = &to, t.Data
	case *types.DynamicFeeTx:
		t.To, data = &to, t.Data
	}
	if len(data) > maxEthData {
		return nil, errInvalidInput
	}
	tx := types.NewTx(inner)
	if len(smallNums[0]) > 8 || len(smallNums[len(smallNums)-1]) > 8 {
		return nil, errInvalidInput // nonce and gas limit are uint64
	}
	com := hc.GetCommitment()
	if len(com) != 32 {
		return nil, errInvalidInput
	}
	// Screens: recipient and amount, then the fee; call data is shown as hex.
	fee := new(big.Int).Mul(tx.GasFeeCap(), new(big.Int).SetUint64(tx.Gas()))
	lines := []string{to.Hex(), formatWei(tx.Value()) + " ETH"}
	if len(data) > 0 {
		lines = append(lines, "Data 0x"+common.Bytes2Hex(data))
	}
	if err := w.ask("Send", lines...); err != nil {
		return nil, err
	}
	if err := w.ask("Total", formatWei(new(big.Int).Add(tx.Value(), fee))+" ETH", "Max fee "+formatWei(fee)+" ETH", "Chain "+strconv.FormatUint(chainID, 10)); err != nil {
		return nil, err
	}
	h := types.LatestSignerForChainID(new(big.Int).SetUint64(chainID)).Hash(tx)
	return w.ethAntiKlepto(kp, h[:], com)
}

func (w *apiWorker) ethSignMessage(m *pb.ETHSignMessageRequest) (*pb.Response, error) {
	if m.GetCoin() != pb.ETHCoin_ETH || !validEthPath(m.GetKeypath()) || len(m.GetMsg()) > 1024 {
		return nil, errInvalidInput
	}
	com := m.GetHostNonceCommitment().GetCommitment()
	if len(com) != 32 {
		return nil, errInvalidInput
	}
	a, err := w.cn.d.wallet.EthAddress(hdpath.Path(m.GetKeypath()))
	if err != nil {
		return nil, errGeneric
	}
	if err := w.ask("Sign message", a.Hex(), messageText(m.GetMsg())); err != nil {
		return nil, err
	}
	return w.ethAntiKlepto(m.GetKeypath(), accounts.TextHash(m.GetMsg()), com)
}

// ethAntiKlepto answers the signer commitment, takes the host nonce and returns the
// 65-byte r‖s‖recid signature.
func (w *apiWorker) ethAntiKlepto(kp []uint32, h, com []byte) (*pb.Response, error) {
	priv, err := w.cn.d.wallet.PrivKey(hdpath.Path(kp))
	if err != nil {
		return nil, errGeneric
	}
	req, err := w.next(ethResponse(&pb.ETHResponse{Response: &pb.ETHResponse_AntikleptoSignerCommitment{
		AntikleptoSignerCommitment: &pb.AntiKleptoSignerCommitment{Commitment: s2cCommit(priv, h, com)},
	}}))
	if err != nil {
		return nil, err
	}
	nonce := req.GetEth().GetAntikleptoSignature().GetHostNonce()
	if len(nonce) != 32 || !hostCommitmentOK(nonce, com) {
		return nil, errInvalidInput
	}
	sig, recid := s2cSign(priv, h, com, nonce)
	return ethResponse(&pb.ETHResponse{Response: &pb.ETHResponse_Sign{Sign: &pb.ETHSignResponse{Signature: append(sig, recid&1)}}}), nil
}

// formatWei prints wei as ETH with up to 18 decimals, trailing zeros dropped.
func formatWei(v *big.Int) string {
	s := v.String()
	for len(s) < 19 {
		s = "0" + s
	}
	whole, frac := s[:len(s)-18], s[len(s)-18:]
	for len(frac) > 0 && frac[len(frac)-1] == '0' {
		frac = frac[:len(frac)-1]
	}
	if frac == "" {
		return whole
	}
	return whole + "." + frac
}
