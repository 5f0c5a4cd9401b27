package ethdev

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/consensus/misc/eip1559"
	"github.com/ethereum/go-ethereum/consensus/misc/eip4844"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/eth/gasestimator"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/holiman/uint256"
)

// rpcGasCap caps eth_call and eth_estimateGas, as geth's default --rpc.gascap.
const rpcGasCap = 50_000_000

// defaultTip is the suggested priority fee when recent blocks hold no transactions.
var defaultTip = big.NewInt(params.GWei)

// ethAPI serves the eth namespace. Methods follow go-ethereum's internal/ethapi (which
// cannot be imported) for the subset wallets and ethclient use.
type ethAPI struct{ c *chain }

// netAPI serves the net namespace.
type netAPI struct{}

// Version is net_version.
func (netAPI) Version() string { return fmt.Sprint(ChainID) }

// Listening is net_listening: no p2p here.
func (netAPI) Listening() bool { return false }

// PeerCount is net_peerCount.
func (netAPI) PeerCount() hexutil.Uint { return 0 }

// web3API serves the web3 namespace.
type web3API struct{}

// ClientVersion is web3_clientVersion.
func (web3API) ClientVersion() string { return "hwbridge-ethdev" }

// ChainId is eth_chainId.
func (a *ethAPI) ChainId() *hexutil.Big { return (*hexutil.Big)(big.NewInt(ChainID)) }

// BlockNumber is eth_blockNumber.
func (a *ethAPI) BlockNumber() hexutil.Uint64 {
	return hexutil.Uint64(a.c.bc.CurrentBlock().Number.Uint64())
}

// Syncing is eth_syncing: never.
func (a *ethAPI) Syncing() bool { return false }

// Accounts is eth_accounts: this chain holds no keys.
func (a *ethAPI) Accounts() []common.Address { return []common.Address{} }

// header resolves a block tag, number or hash; "pending" is the head, as every
// transaction is mined at once.
func (a *ethAPI) header(bnh rpc.BlockNumberOrHash) (*types.Header, error) {
	if h, ok := bnh.Hash(); ok {
		hd := a.c.bc.GetHeaderByHash(h)
		if hd == nil {
			return nil, fmt.Errorf("header for hash %s not found", h.Hex())
		}
		if bnh.RequireCanonical && a.c.bc.GetCanonicalHash(hd.Number.Uint64()) != h {
			return nil, fmt.Errorf("hash %s is not currently canonical", h.Hex())
		}
		return hd, nil
	}
	n, _ := bnh.Number()
	hd := a.headerByNumber(n)
	if hd == nil {
		return nil, errors.New("header not found")
	}
	return hd, nil
}

// headerByNumber returns nil for a block that does not exist.
func (a *ethAPI) headerByNumber(n rpc.BlockNumber) *types.Header {
	switch n {
	case rpc.LatestBlockNumber, rpc.PendingBlockNumber, rpc.SafeBlockNumber, rpc.FinalizedBlockNumber:
		return a.c.bc.CurrentBlock()
	case rpc.EarliestBlockNumber:
		return a.c.bc.GetHeaderByNumber(0)
	}
	if n < 0 {
		return nil
	}
	return a.c.bc.GetHeaderByNumber(uint64(n))
}

func (a *ethAPI) state(bnh *rpc.BlockNumberOrHash) (*state.StateDB, *types.Header, error) {
	if bnh == nil {
		latest := rpc.BlockNumberOrHashWithNumber(rpc.LatestBlockNumber)
		bnh = &latest
	}
	hd, err := a.header(*bnh)
	if err != nil {
		return nil, nil, err
	}
	st, err := a.c.bc.StateAt(hd.Root, hd.Number, hd.Time)
	if err != nil {
		return nil, nil, err
	}
	return st, hd, nil
}

// GetBalance is eth_getBalance.
func (a *ethAPI) GetBalance(addr common.Address, bnh *rpc.BlockNumberOrHash) (*hexutil.Big, error) {
	st, _, err := a.state(bnh)
	if err != nil {
		return nil, err
	}
	return (*hexutil.Big)(st.GetBalance(addr).ToBig()), nil
}

// GetTransactionCount is eth_getTransactionCount; "pending" equals "latest" here.
func (a *ethAPI) GetTransactionCount(addr common.Address, bnh *rpc.BlockNumberOrHash) (hexutil.Uint64, error) {
	st, _, err := a.state(bnh)
	if err != nil {
		return 0, err
	}
	return hexutil.Uint64(st.GetNonce(addr)), nil
}

// GetCode is eth_getCode.
func (a *ethAPI) GetCode(addr common.Address, bnh *rpc.BlockNumberOrHash) (hexutil.Bytes, error) {
	st, _, err := a.state(bnh)
	if err != nil {
		return nil, err
	}
	return st.GetCode(addr), nil
}

// GetStorageAt is eth_getStorageAt.
func (a *ethAPI) GetStorageAt(addr common.Address, slot common.Hash, bnh *rpc.BlockNumberOrHash) (hexutil.Bytes, error) {
	st, _, err := a.state(bnh)
	if err != nil {
		return nil, err
	}
	v := st.GetState(addr, slot)
	return v[:], nil
}

// callArgs are eth_call's and eth_estimateGas's transaction fields.
type callArgs struct {
	From                 *common.Address   `json:"from"`
	To                   *common.Address   `json:"to"`
	Gas                  *hexutil.Uint64   `json:"gas"`
	GasPrice             *hexutil.Big      `json:"gasPrice"`
	MaxFeePerGas         *hexutil.Big      `json:"maxFeePerGas"`
	MaxPriorityFeePerGas *hexutil.Big      `json:"maxPriorityFeePerGas"`
	Value                *hexutil.Big      `json:"value"`
	Nonce                *hexutil.Uint64   `json:"nonce"`
	Data                 *hexutil.Bytes    `json:"data"`
	Input                *hexutil.Bytes    `json:"input"`
	AccessList           *types.AccessList `json:"accessList"`
}

// message turns args into a core.Message run on st at header hd with gas as its limit
// when args name none.
func (args *callArgs) message(st *state.StateDB, hd *types.Header, gas uint64) (*core.Message, error) {
	if args.GasPrice != nil && (args.MaxFeePerGas != nil || args.MaxPriorityFeePerGas != nil) {
		return nil, errors.New("both gasPrice and (maxFeePerGas or maxPriorityFeePerGas) specified")
	}
	var from common.Address
	if args.From != nil {
		from = *args.From
	}
	msg := &core.Message{
		From: from, To: args.To, Nonce: st.GetNonce(from), GasLimit: gas,
		Value: new(uint256.Int), GasPrice: new(uint256.Int), GasFeeCap: new(uint256.Int), GasTipCap: new(uint256.Int),
	}
	if args.Nonce != nil {
		msg.Nonce = uint64(*args.Nonce)
	}
	if args.Gas != nil {
		msg.GasLimit = uint64(*args.Gas)
	}
	if args.Value != nil {
		v, overflow := uint256.FromBig((*big.Int)(args.Value))
		if overflow {
			return nil, errors.New("value overflows 256 bits")
		}
		msg.Value = v
	}
	switch {
	case args.Input != nil:
		msg.Data = *args.Input
	case args.Data != nil:
		msg.Data = *args.Data
	}
	if args.AccessList != nil {
		msg.AccessList = *args.AccessList
	}
	u := func(b *hexutil.Big) *uint256.Int {
		v, _ := uint256.FromBig((*big.Int)(b))
		return v
	}
	switch {
	case args.GasPrice != nil:
		msg.GasPrice, msg.GasFeeCap, msg.GasTipCap = u(args.GasPrice), u(args.GasPrice), u(args.GasPrice)
	case args.MaxFeePerGas != nil || args.MaxPriorityFeePerGas != nil:
		if args.MaxFeePerGas != nil {
			msg.GasFeeCap = u(args.MaxFeePerGas)
		}
		if args.MaxPriorityFeePerGas != nil {
			msg.GasTipCap = u(args.MaxPriorityFeePerGas)
		}
		if msg.GasFeeCap.Cmp(msg.GasTipCap) < 0 {
			return nil, core.ErrTipAboveFeeCap
		}
		// The effective price: base fee plus tip, at most the fee cap.
		price := new(uint256.Int).Add(msg.GasTipCap, u((*hexutil.Big)(hd.BaseFee)))
		if price.Cmp(msg.GasFeeCap) > 0 {
			price.Set(msg.GasFeeCap)
		}
		msg.GasPrice = price
	}
	return msg, nil
}

// callGas is the gas a call may use when it names none: the block's limit within the RPC
// and per-transaction caps.
func (a *ethAPI) callGas(hd *types.Header) uint64 {
	gas := min(hd.GasLimit, uint64(rpcGasCap))
	if a.c.config.IsOsaka(hd.Number, hd.Time) {
		gas = min(gas, params.MaxTxGas)
	}
	return gas
}

// Call is eth_call.
func (a *ethAPI) Call(ctx context.Context, args callArgs, bnh *rpc.BlockNumberOrHash) (hexutil.Bytes, error) {
	st, hd, err := a.state(bnh)
	if err != nil {
		return nil, err
	}
	msg, err := args.message(st, hd, a.callGas(hd))
	if err != nil {
		return nil, err
	}
	blockCtx := core.NewEVMBlockContext(hd, a.c.bc, nil)
	if msg.GasFeeCap.IsZero() && msg.GasTipCap.IsZero() {
		blockCtx.BaseFee = new(big.Int)
	}
	evm := vm.NewEVM(blockCtx, st, a.c.config, vm.Config{NoBaseFee: true})
	defer evm.Release()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		<-ctx.Done()
		evm.Cancel()
	}()
	res, err := core.ApplyMessage(evm, msg, nil)
	if err != nil {
		return nil, fmt.Errorf("err: %w (supplied gas %d)", err, msg.GasLimit)
	}
	if err := st.Error(); err != nil {
		return nil, err
	}
	if errors.Is(res.Err, vm.ErrExecutionReverted) {
		return nil, newRevertError(res.Revert())
	}
	if res.Err != nil {
		return nil, res.Err
	}
	return res.Return(), nil
}

// EstimateGas is eth_estimateGas, by go-ethereum's eth/gasestimator.
func (a *ethAPI) EstimateGas(ctx context.Context, args callArgs, bnh *rpc.BlockNumberOrHash) (hexutil.Uint64, error) {
	st, hd, err := a.state(bnh)
	if err != nil {
		return 0, err
	}
	msg, err := args.message(st, hd, 0)
	if err != nil {
		return 0, err
	}
	opts := &gasestimator.Options{Config: a.c.config, Chain: a.c.bc, Header: hd, State: st, ErrorRatio: 0.015}
	gas, revert, err := gasestimator.Estimate(ctx, msg, opts, rpcGasCap)
	if err != nil {
		if len(revert) > 0 {
			return 0, newRevertError(revert)
		}
		return 0, err
	}
	return hexutil.Uint64(gas), nil
}

// revertError is geth's JSON-RPC error for a reverted call: code 3, the reason in the
// message and the raw revert data in error.data.
type revertError struct {
	msg    string
	reason string
}

func newRevertError(data []byte) *revertError {
	msg := vm.ErrExecutionReverted.Error()
	if reason, err := abi.UnpackRevert(data); err == nil {
		msg += ": " + reason
	}
	return &revertError{msg: msg, reason: hexutil.Encode(data)}
}

func (e *revertError) Error() string  { return e.msg }
func (e *revertError) ErrorCode() int { return 3 }
func (e *revertError) ErrorData() any { return e.reason }

// GasPrice is eth_gasPrice: the suggested tip plus the next block's base fee.
func (a *ethAPI) GasPrice() *hexutil.Big {
	head := a.c.bc.CurrentBlock()
	p := new(big.Int).Add(a.suggestTip(), eip1559.CalcBaseFee(a.c.config, head))
	return (*hexutil.Big)(p)
}

// MaxPriorityFeePerGas is eth_maxPriorityFeePerGas.
func (a *ethAPI) MaxPriorityFeePerGas() *hexutil.Big { return (*hexutil.Big)(a.suggestTip()) }

// suggestTip is the 60th percentile of the tips paid in the last 20 blocks, as geth's
// gas price oracle, or defaultTip when they hold none.
func (a *ethAPI) suggestTip() *big.Int {
	head := a.c.bc.CurrentBlock()
	var tips []*big.Int
	for n := int64(head.Number.Uint64()); n > 0 && n > int64(head.Number.Uint64())-20; n-- {
		b := a.c.bc.GetBlockByNumber(uint64(n))
		if b == nil {
			break
		}
		for _, tx := range b.Transactions() {
			tip, err := tx.EffectiveGasTip(b.BaseFee())
			if err == nil {
				tips = append(tips, tip)
			}
		}
	}
	if len(tips) == 0 {
		return new(big.Int).Set(defaultTip)
	}
	slices.SortFunc(tips, func(x, y *big.Int) int { return x.Cmp(y) })
	return tips[(len(tips)-1)*60/100]
}

// feeHistory is eth_feeHistory's result, as ethclient decodes it.
type feeHistory struct {
	OldestBlock      *hexutil.Big     `json:"oldestBlock"`
	Reward           [][]*hexutil.Big `json:"reward,omitempty"`
	BaseFee          []*hexutil.Big   `json:"baseFeePerGas,omitempty"`
	GasUsedRatio     []float64        `json:"gasUsedRatio"`
	BlobBaseFee      []*hexutil.Big   `json:"baseFeePerBlobGas,omitempty"`
	BlobGasUsedRatio []float64        `json:"blobGasUsedRatio,omitempty"`
}

// maxFeeHistory caps the blocks one eth_feeHistory call covers, as geth's default.
const maxFeeHistory = 1024

// FeeHistory is eth_feeHistory: per block up to last, the base fee, gas used ratio and the
// tips at the given percentiles (weighted by gas used, as geth), plus the next base fee.
func (a *ethAPI) FeeHistory(count hexutil.Uint64, last rpc.BlockNumber, percentiles []float64) (*feeHistory, error) {
	for i, p := range percentiles {
		if p < 0 || p > 100 || (i > 0 && p < percentiles[i-1]) {
			return nil, fmt.Errorf("invalid reward percentile: %f", p)
		}
	}
	head := a.headerByNumber(last)
	if head == nil {
		return nil, fmt.Errorf("requested block %d is beyond the head", last)
	}
	n := min(uint64(count), maxFeeHistory, head.Number.Uint64()+1)
	oldest := head.Number.Uint64() + 1 - n
	res := &feeHistory{OldestBlock: (*hexutil.Big)(new(big.Int).SetUint64(oldest))}
	if n == 0 {
		return res, nil
	}
	for num := oldest; num <= head.Number.Uint64(); num++ {
		b := a.c.bc.GetBlockByNumber(num)
		if b == nil {
			return nil, fmt.Errorf("block %d missing", num)
		}
		res.BaseFee = append(res.BaseFee, (*hexutil.Big)(b.BaseFee()))
		res.GasUsedRatio = append(res.GasUsedRatio, float64(b.GasUsed())/float64(b.GasLimit()))
		if ex := b.ExcessBlobGas(); ex != nil {
			res.BlobBaseFee = append(res.BlobBaseFee, (*hexutil.Big)(eip4844.CalcBlobFee(a.c.config, b.Header())))
			maxBlob := eip4844.MaxBlobGasPerBlock(a.c.config, b.Time())
			used := float64(0)
			if b.BlobGasUsed() != nil && maxBlob > 0 {
				used = float64(*b.BlobGasUsed()) / float64(maxBlob)
			}
			res.BlobGasUsedRatio = append(res.BlobGasUsedRatio, used)
		}
		if len(percentiles) > 0 {
			res.Reward = append(res.Reward, a.rewards(b, percentiles))
		}
	}
	next := eip1559.CalcBaseFee(a.c.config, head)
	res.BaseFee = append(res.BaseFee, (*hexutil.Big)(next))
	if len(res.BlobBaseFee) > 0 {
		nextHead := &types.Header{Number: new(big.Int).Add(head.Number, common.Big1), Time: head.Time + 1}
		ex := eip4844.CalcExcessBlobGas(a.c.config, head, nextHead.Time)
		nextHead.ExcessBlobGas = &ex
		res.BlobBaseFee = append(res.BlobBaseFee, (*hexutil.Big)(eip4844.CalcBlobFee(a.c.config, nextHead)))
	}
	return res, nil
}

// rewards returns block b's tips at percentiles, weighting each transaction by its gas.
func (a *ethAPI) rewards(b *types.Block, percentiles []float64) []*hexutil.Big {
	out := make([]*hexutil.Big, len(percentiles))
	txs := b.Transactions()
	if len(txs) == 0 {
		for i := range out {
			out[i] = (*hexutil.Big)(new(big.Int))
		}
		return out
	}
	receipts := a.c.bc.GetReceiptsByHash(b.Hash())
	type txGas struct {
		gas uint64
		tip *big.Int
	}
	sorted := make([]txGas, len(txs))
	for i, tx := range txs {
		tip, _ := tx.EffectiveGasTip(b.BaseFee())
		var gas uint64
		if i < len(receipts) {
			gas = receipts[i].GasUsed
		}
		sorted[i] = txGas{gas, tip}
	}
	slices.SortStableFunc(sorted, func(x, y txGas) int { return x.tip.Cmp(y.tip) })
	var txIndex int
	sum := sorted[0].gas
	for i, p := range percentiles {
		threshold := uint64(float64(b.GasUsed()) * p / 100)
		for sum < threshold && txIndex < len(sorted)-1 {
			txIndex++
			sum += sorted[txIndex].gas
		}
		out[i] = (*hexutil.Big)(sorted[txIndex].tip)
	}
	return out
}

// SendRawTransaction is eth_sendRawTransaction: the transaction is validated and mined in
// a block of its own before the call returns.
func (a *ethAPI) SendRawTransaction(input hexutil.Bytes) (common.Hash, error) {
	tx := new(types.Transaction)
	if err := tx.UnmarshalBinary(input); err != nil {
		return common.Hash{}, err
	}
	if err := a.c.submit(tx); err != nil {
		return common.Hash{}, err
	}
	return tx.Hash(), nil
}
