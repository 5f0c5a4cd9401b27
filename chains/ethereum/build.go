package ethereum

import (
	"context"
	"fmt"
	"math/big"
	"sync/atomic"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// TxRequest is what a caller wants done; Prepare fills in nonce, gas and fees.
type TxRequest struct {
	From    common.Address
	To      common.Address
	Value   *big.Int // wei; nil means 0
	Data    []byte
	ChainID *big.Int // the chain the caller expects; nil accepts the node's
	Fees    FeeOptions
}

// Prepared is an unsigned transaction with everything needed to show it, sign it and
// broadcast it. Its nonce is reserved in the Client until it is broadcast or released.
type Prepared struct {
	Tx      *types.Transaction // unsigned
	ChainID *big.Int
	From    common.Address
	Fees    Fees
	MaxCost *big.Int   // value + gas × max fee per gas, wei
	Token   *Token     // the token, for ERC-20 calls
	Call    *TokenCall // the decoded ERC-20 call, for ERC-20 calls

	c    *Client
	done atomic.Bool // broadcast or released
}

// Release gives the nonce back when the transaction will not be broadcast (rejected on the
// device, the user said no). It does nothing after Broadcast.
func (p *Prepared) Release() {
	if p.done.CompareAndSwap(false, true) {
		p.c.releaseNonce(p.From, p.Tx.Nonce())
	}
}

// Prepare builds an unsigned transaction: it checks the chain, picks fees, estimates gas
// (unless given), checks the sender can pay value + gas × max fee, and reserves a nonce.
func (c *Client) Prepare(ctx context.Context, req TxRequest) (*Prepared, error) {
	chainID, err := c.CheckChain(ctx, req.ChainID)
	if err != nil {
		return nil, err
	}
	value := req.Value
	if value == nil {
		value = new(big.Int)
	}
	if value.Sign() < 0 || value.BitLen() > 256 {
		return nil, fmt.Errorf("%w: value must be between 0 and 2^256-1 wei", ErrInvalidAmount)
	}
	fees, err := c.SuggestFees(ctx, req.Fees)
	if err != nil {
		return nil, err
	}
	to := req.To
	gas := req.Fees.GasLimit
	if gas == 0 {
		msg := ethereum.CallMsg{From: req.From, To: &to, Value: value, Data: req.Data}
		if gas, err = c.EstimateGas(ctx, msg); err != nil {
			return nil, err
		}
	}
	maxCost := new(big.Int).Mul(new(big.Int).SetUint64(gas), fees.PerGas())
	maxCost.Add(maxCost, value)
	bal, err := c.Balance(ctx, req.From)
	if err != nil {
		return nil, err
	}
	if bal.Cmp(maxCost) < 0 {
		return nil, fmt.Errorf("%w: %s holds %s ETH, but this transaction may cost up to %s ETH (value %s + gas %d × %s wei): fund the account or send less",
			ErrInsufficientFunds, req.From.Hex(), FormatEther(bal), FormatEther(maxCost), FormatEther(value), gas, fees.PerGas())
	}
	nonce, err := c.reserveNonce(ctx, req.From)
	if err != nil {
		return nil, err
	}
	var inner types.TxData
	if fees.Dynamic {
		inner = &types.DynamicFeeTx{ChainID: chainID, Nonce: nonce, GasTipCap: fees.TipCap, GasFeeCap: fees.FeeCap, Gas: gas, To: &to, Value: value, Data: req.Data}
	} else {
		inner = &types.LegacyTx{Nonce: nonce, GasPrice: fees.Price, Gas: gas, To: &to, Value: value, Data: req.Data}
	}
	p := &Prepared{Tx: types.NewTx(inner), ChainID: chainID, From: req.From, Fees: fees, MaxCost: maxCost, c: c}
	c.log.Debug("prepared transaction", "from", req.From, "to", to, "nonce", nonce, "gas", gas, "dynamic", fees.Dynamic)
	return p, nil
}

// TokenTransfer is an ERC-20 transfer to build.
type TokenTransfer struct {
	From    common.Address
	Token   Token
	To      common.Address
	Amount  *big.Int // base units (use ParseUnits with Token.Decimals)
	ChainID *big.Int
	Fees    FeeOptions
}

// PrepareTokenTransfer builds an ERC-20 transfer(to, amount) call to the token contract
// with no ETH value, after checking that From holds enough of the token.
func (c *Client) PrepareTokenTransfer(ctx context.Context, t TokenTransfer) (*Prepared, error) {
	if _, err := c.CheckChain(ctx, t.ChainID); err != nil {
		return nil, err
	}
	data, err := TransferData(t.To, t.Amount)
	if err != nil {
		return nil, err
	}
	bal, err := c.TokenBalance(ctx, t.Token.Address, t.From)
	if err != nil {
		return nil, err
	}
	if bal.Cmp(t.Amount) < 0 {
		return nil, fmt.Errorf("%w: %s holds %s %s, the transfer needs %s %s", ErrInsufficientFunds, t.From.Hex(),
			FormatUnits(bal, t.Token.Decimals), t.Token.Symbol, FormatUnits(t.Amount, t.Token.Decimals), t.Token.Symbol)
	}
	p, err := c.Prepare(ctx, TxRequest{From: t.From, To: t.Token.Address, Data: data, ChainID: t.ChainID, Fees: t.Fees})
	if err != nil {
		return nil, err
	}
	tok := t.Token
	p.Token = &tok
	p.Call = &TokenCall{Method: "transfer", To: t.To, Amount: new(big.Int).Set(t.Amount)}
	return p, nil
}

// Summary is what will be signed, in units people read; the CLI shows it and asks.
type Summary struct {
	Type         string `json:"type"` // "eip1559" or "legacy"
	ChainID      string `json:"chain_id"`
	From         string `json:"from"`
	To           string `json:"to"` // the recipient (the token's recipient for a token transfer)
	Value        string `json:"value_eth"`
	Token        *Token `json:"token,omitempty"`
	TokenAmount  string `json:"token_amount,omitempty"`
	Contract     string `json:"contract,omitempty"` // the token contract the transaction calls
	Nonce        uint64 `json:"nonce"`
	GasLimit     uint64 `json:"gas_limit"`
	MaxFeeGwei   string `json:"max_fee_per_gas_gwei,omitempty"`
	TipGwei      string `json:"max_priority_fee_per_gas_gwei,omitempty"`
	GasPriceGwei string `json:"gas_price_gwei,omitempty"`
	MaxFeeETH    string `json:"max_fee_eth"` // gas limit × fee cap: the most the fee can be
	DataBytes    int    `json:"data_bytes"`
	// OnDevice is what each device family shows before it signs (display only).
	OnDevice []string `json:"on_device,omitempty"`
}

// Summary describes p for the user.
func (p *Prepared) Summary() Summary {
	tx := p.Tx
	s := Summary{
		Type: "eip1559", ChainID: p.ChainID.String(), From: p.From.Hex(), To: tx.To().Hex(),
		Value: FormatEther(tx.Value()), Nonce: tx.Nonce(), GasLimit: tx.Gas(), DataBytes: len(tx.Data()),
	}
	fee := new(big.Int).Mul(new(big.Int).SetUint64(tx.Gas()), p.Fees.PerGas())
	s.MaxFeeETH = FormatEther(fee)
	if p.Fees.Dynamic {
		s.MaxFeeGwei = FormatUnits(tx.GasFeeCap(), 9)
		s.TipGwei = FormatUnits(tx.GasTipCap(), 9)
	} else {
		s.Type = "legacy"
		s.GasPriceGwei = FormatUnits(tx.GasPrice(), 9)
	}
	if p.Token != nil && p.Call != nil {
		s.Token = p.Token
		s.Contract = p.Token.Address.Hex()
		s.To = p.Call.To.Hex()
		s.TokenAmount = FormatUnits(p.Call.Amount, p.Token.Decimals)
	}
	s.OnDevice = onDevice(p)
	return s
}

// Lines renders the summary as "name: value" lines for a terminal.
func (s Summary) Lines() []string {
	l := []string{"chain id:   " + s.ChainID, "from:       " + s.From}
	if s.Token != nil {
		l = append(l, "token:      "+s.Token.Symbol+" ("+s.Contract+", "+fmt.Sprint(s.Token.Decimals)+" decimals)",
			"to:         "+s.To, "amount:     "+s.TokenAmount+" "+s.Token.Symbol)
		if s.Value != "0" {
			l = append(l, "value:      "+s.Value+" ETH")
		}
	} else {
		l = append(l, "to:         "+s.To, "value:      "+s.Value+" ETH")
		if s.DataBytes > 0 {
			l = append(l, fmt.Sprintf("data:       %d bytes", s.DataBytes))
		}
	}
	l = append(l, fmt.Sprintf("nonce:      %d", s.Nonce), fmt.Sprintf("gas limit:  %d", s.GasLimit))
	if s.Type == "legacy" {
		l = append(l, "gas price:  "+s.GasPriceGwei+" gwei (legacy transaction)")
	} else {
		l = append(l, "fee cap:    "+s.MaxFeeGwei+" gwei/gas (priority "+s.TipGwei+" gwei/gas)")
	}
	l = append(l, "max fee:    "+s.MaxFeeETH+" ETH")
	for _, d := range s.OnDevice {
		l = append(l, "on device:  "+d)
	}
	return l
}
