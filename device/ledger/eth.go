package ledger

// Ethereum app commands (CLA 0xE0). Spec: app-ethereum doc/ethapp.adoc; hw-app-eth
// (Eth.ts, utils.ts); /work/shared/protocols/ledger.md §6.
//
//	GET_ETH_PUBLIC_ADDRESS E0 02 P1(0 silent/1 display) 00: path → u8 65 ‖ 04‖X‖Y ‖ u8 40 ‖ hex address
//	SIGN_ETH_TRANSACTION   E0 04 P1(00 first/80 next) 00: path ‖ tx…, ≤255-byte chunks → v ‖ r ‖ s
//	SIGN_PERSONAL_MESSAGE  E0 08 P1(00 first/80 next) 00: path ‖ u32 len ‖ msg…, 150-byte chunks → v ‖ r ‖ s
//	SIGN_EIP712_MESSAGE    E0 0C 00 00 (v0, hashed): path ‖ domainSeparator ‖ hashStruct(message) → v ‖ r ‖ s

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// Operation names.
const (
	opEthAddress  = "get eth address"
	opEthSignTx   = "sign eth tx"
	opEthPersonal = "sign eth message"
	opEthTyped    = "sign typed data"
)

// personalChunk is hw-app-eth's chunk size for SIGN_PERSONAL_MESSAGE (not 255).
const personalChunk = 150

// Address returns a Bitcoin address (the default wallet policy of the path's account) or
// an Ethereum address, shown on the device when req.Display is set.
func (d *Driver) Address(ctx context.Context, req device.AddressRequest) (string, error) {
	switch req.Chain {
	case device.ChainBTC, "":
		return d.btcAddress(ctx, req)
	case device.ChainETH:
		return d.ethAddress(ctx, req.Path, req.Display)
	}
	return "", fmt.Errorf("ledger: %s: %w: chain %q", opAddress, device.ErrInvalidInput, req.Chain)
}

// SignMessage signs a Bitcoin (BIP-137) or Ethereum (EIP-191 personal_sign) message.
func (d *Driver) SignMessage(ctx context.Context, req device.MessageRequest) (device.MessageSignature, error) {
	switch req.Chain {
	case device.ChainBTC, "":
		return d.btcSignMessage(ctx, req)
	case device.ChainETH:
		return d.ethSignMessage(ctx, req.Path, req.Message)
	}
	return device.MessageSignature{}, fmt.Errorf("ledger: %s: %w: chain %q", opSignMessage, device.ErrInvalidInput, req.Chain)
}

func (d *Driver) ethAddress(ctx context.Context, path hdpath.Path, display bool) (string, error) {
	pb, err := encodePath(path)
	if err != nil {
		return "", fmt.Errorf("ledger: %s: %w", opEthAddress, err)
	}
	var addr common.Address
	err = d.do(ctx, opEthAddress, AppEthereum, func(s *session) error {
		p1 := byte(0)
		if display {
			p1 = p1EthDisplay
		}
		data, err := s.call(command{cla: claETH, ins: insEthAddress, p1: p1, data: pb, screen: display})
		if err != nil {
			return err
		}
		addr, err = parseEthAddress(data)
		return err
	})
	if err != nil {
		return "", err
	}
	return addr.Hex(), nil
}

// parseEthAddress decodes u8 65 ‖ uncompressed pubkey ‖ u8 40 ‖ 40 hex chars [‖ chain code]
// and checks that the address is the pubkey's.
func parseEthAddress(b []byte) (common.Address, error) {
	bad := func(what string) (common.Address, error) {
		return common.Address{}, fmt.Errorf("%w: eth address reply of %d bytes: %s", device.ErrProtocol, len(b), what)
	}
	if len(b) < 1+65+1+40 || b[0] != 65 || b[66] != 40 {
		return bad("bad layout")
	}
	if rest := len(b) - (1 + 65 + 1 + 40); rest != 0 && rest != 32 {
		return bad("trailing bytes")
	}
	pub, err := crypto.UnmarshalPubkey(b[1:66])
	if err != nil {
		return bad("public key does not parse")
	}
	addr := crypto.PubkeyToAddress(*pub)
	text := string(b[67:107])
	if !strings.EqualFold(text, strings.TrimPrefix(addr.Hex(), "0x")) {
		return bad("address " + text + " is not the public key's")
	}
	return addr, nil
}

// ethTxPayload returns the bytes the app hashes and signs: the EIP-155 RLP list of a
// legacy tx, or type ‖ RLP(...) of an EIP-2930/EIP-1559 tx.
func ethTxPayload(tx *types.Transaction, chainID *big.Int) ([]byte, error) {
	var body []any
	switch tx.Type() {
	case types.LegacyTxType:
		b, err := rlp.EncodeToBytes([]any{tx.Nonce(), tx.GasPrice(), tx.Gas(), tx.To(), tx.Value(), tx.Data(), chainID, uint(0), uint(0)})
		return b, err
	case types.AccessListTxType:
		body = []any{chainID, tx.Nonce(), tx.GasPrice(), tx.Gas(), tx.To(), tx.Value(), tx.Data(), tx.AccessList()}
	case types.DynamicFeeTxType:
		body = []any{chainID, tx.Nonce(), tx.GasTipCap(), tx.GasFeeCap(), tx.Gas(), tx.To(), tx.Value(), tx.Data(), tx.AccessList()}
	default:
		return nil, fmt.Errorf("transaction type %d: %w", tx.Type(), errors.ErrUnsupported)
	}
	b, err := rlp.EncodeToBytes(body)
	if err != nil {
		return nil, err
	}
	return append([]byte{tx.Type()}, b...), nil
}

// chunkEthTx cuts path ‖ payload into ≤255-byte APDU data as hw-app-eth's
// safeChunkTransaction does: typed txs at 255; legacy txs with a chunk size that never
// leaves a last chunk of 1..len([chainId,0,0] items) bytes, which old apps took for a
// complete pre-EIP-155 tx.
func chunkEthTx(path, payload []byte, typed bool, chainID *big.Int) [][]byte {
	all := append(append([]byte{}, path...), payload...)
	size := maxAPDUData
	if len(all) > maxAPDUData && !typed {
		cid, _ := rlp.EncodeToBytes(chainID)
		tail := len(cid) + 2
		for size = maxAPDUData; size > 1; size-- {
			if last := len(all) % size; last == 0 || last > tail {
				break
			}
		}
	}
	var chunks [][]byte
	for len(all) > 0 {
		n := min(size, len(all))
		chunks = append(chunks, all[:n])
		all = all[n:]
	}
	return chunks
}

// chainIDUint32 is the app's view of a chain id: the first ≤4 bytes of its big-endian
// encoding.
func chainIDUint32(chainID *big.Int) uint32 {
	b := chainID.Bytes()
	if len(b) > 4 {
		b = b[:4]
	}
	var v uint32
	for _, c := range b {
		v = v<<8 | uint32(c)
	}
	return v
}

// ethParity recovers the y parity from the app's v byte: typed txs send it as is; legacy
// txs send (u32(chainId)·2 + 35 + parity) mod 256 (hw-app-eth getParity).
func ethParity(v byte, typed bool, chainID *big.Int) (byte, error) {
	if typed {
		if v > 1 {
			return 0, fmt.Errorf("%w: typed tx signature with v %d", device.ErrProtocol, v)
		}
		return v, nil
	}
	base := byte(uint64(chainIDUint32(chainID))*2 + 35)
	switch v {
	case base:
		return 0, nil
	case base + 1:
		return 1, nil
	}
	return 0, fmt.Errorf("%w: legacy tx signature with v %d for chain %s", device.ErrProtocol, v, chainID)
}

// SignEthTx signs a legacy (EIP-155) or typed (EIP-2930, EIP-1559) transaction.
func (d *Driver) SignEthTx(ctx context.Context, path hdpath.Path, tx *types.Transaction, chainID *big.Int) (*types.Transaction, error) {
	fail := func(err error) (*types.Transaction, error) {
		return nil, fmt.Errorf("ledger: %s: %w", opEthSignTx, err)
	}
	if tx == nil || chainID == nil || chainID.Sign() <= 0 {
		return fail(fmt.Errorf("%w: a transaction and a positive chain id are needed", device.ErrInvalidInput))
	}
	typed := tx.Type() != types.LegacyTxType
	if typed && tx.ChainId().Cmp(chainID) != 0 {
		return fail(fmt.Errorf("%w: the transaction is for chain %s, not %s", device.ErrInvalidInput, tx.ChainId(), chainID))
	}
	payload, err := ethTxPayload(tx, chainID)
	if err != nil {
		return fail(err)
	}
	signer := types.LatestSignerForChainID(chainID)
	if h := signer.Hash(tx); !bytes.Equal(crypto.Keccak256(payload), h[:]) {
		return fail(fmt.Errorf("%w: the encoded transaction does not hash to its signing hash", device.ErrProtocol))
	}
	pb, err := encodePath(path)
	if err != nil {
		return fail(err)
	}
	tok, haveTok, err := d.tokenDescriptor(ctx, tx, chainID)
	if err != nil {
		return fail(err)
	}
	var reply []byte
	err = d.do(ctx, opEthSignTx, AppEthereum, func(s *session) error {
		if typed {
			if v, ok := parseVersion(s.info.Version); ok && versionLess(v, minEthEIP1559) {
				return fmt.Errorf("the ethereum app %s signs only legacy transactions: update it to 1.9.0 or later: %w", s.info.Version, errors.ErrUnsupported)
			}
		}
		provided := false
		if haveTok {
			var err error
			if provided, err = s.provideToken(tok); err != nil {
				return err
			}
		}
		chunks := chunkEthTx(pb, payload, typed, chainID)
		for i, c := range chunks {
			p1 := p1EthFirst
			if i > 0 {
				p1 = p1EthMore
			}
			// the app reviews the transaction once it has the last chunk, then answers
			data, sw, err := s.exchange(command{cla: claETH, ins: insEthSignTx, p1: p1, data: c, screen: i == len(chunks)-1})
			if err != nil {
				return err
			}
			if sw == swIncorrectData && len(tx.Data()) > 0 {
				return s.refusedData(tx, sw, chainID, provided)
			}
			if sw != swOK {
				return s.statusError(sw, nil)
			}
			if i < len(chunks)-1 && len(data) != 0 {
				return fmt.Errorf("%w: reply of %d bytes to chunk %d of %d", device.ErrProtocol, len(data), i+1, len(chunks))
			}
			reply = data
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(reply) != 65 {
		return fail(fmt.Errorf("%w: signature reply of %d bytes", device.ErrProtocol, len(reply)))
	}
	parity, err := ethParity(reply[0], typed, chainID)
	if err != nil {
		return fail(err)
	}
	sig := append(append([]byte{}, reply[1:65]...), parity)
	signed, err := tx.WithSignature(signer, sig)
	if err != nil {
		return fail(fmt.Errorf("%w: %w", device.ErrBadSignature, err))
	}
	return signed, nil
}

// erc20Selectors are the calls the app's built-in ERC-20 parser takes over (app-ethereum
// 1.22.0 src/plugins/erc20/erc20_plugin.c): transfer(address,uint256) and
// approve(address,uint256).
var erc20Selectors = [][]byte{{0xa9, 0x05, 0x9c, 0xbb}, {0x09, 0x5e, 0xa7, 0xb3}}

// erc20MaxData is the longest call data the ERC-20 parser accepts: the selector, two
// 32-byte arguments and two 32-byte chunks of "extra data".
const erc20MaxData = 4 + 4*32

// erc20Refused reports whether the app's ERC-20 parser refuses tx's data, whatever the
// blind-signing setting: data to a contract that starts with the transfer or approve
// selector goes to that parser, which fails (0x6A80) when the transaction also carries
// ether or when the data is longer than erc20MaxData (logic_sign_tx.c custom_processor,
// erc20_plugin.c).
func erc20Refused(tx *types.Transaction) bool {
	data := tx.Data()
	if tx.To() == nil || len(data) < 4 {
		return false
	}
	match := false
	for _, sel := range erc20Selectors {
		match = match || bytes.Equal(data[:4], sel)
	}
	return match && (tx.Value().Sign() != 0 || len(data) > erc20MaxData)
}

// refusedData explains the app's 0x6A80 to a transaction with data by its cause: data
// the ERC-20 parser refuses (ErrInvalidERC20Data), blind signing off
// (ErrBlindSigningDisabled, read from the app's configuration), or other data the app
// refused.
func (s *session) refusedData(tx *types.Transaction, sw uint16, chainID *big.Int, provided bool) error {
	if erc20Refused(tx) {
		return fmt.Errorf("%w: %w", ErrInvalidERC20Data, &device.Error{Op: s.op, Family: device.FamilyLedger, Code: int(sw),
			Message: "the ethereum app refused the erc-20 call data", Kind: device.ErrInvalidInput})
	}
	data, csw, err := s.exchange(command{cla: claETH, ins: insEthConfig})
	if err == nil && csw == swOK && len(data) == 4 && data[0]&0x01 != 0 { // flag 0x01: blind signing on
		return &device.Error{Op: s.op, Family: device.FamilyLedger, Code: int(sw), Kind: device.ErrInvalidInput,
			Message: "the ethereum app refused the transaction's data (blind signing is on)"}
	}
	if isTokenCall(tx.Data()) && !provided {
		return fmt.Errorf("%w: %w", ErrBlindSigningDisabled, &device.Error{Op: s.op, Family: device.FamilyLedger, Code: int(sw), Kind: device.ErrInvalidInput,
			Message: fmt.Sprintf("the ethereum app can show this token call only with token information, and hwbridge has none for %s on chain %s "+
				"(it carries Ledger's signed descriptors of USDT and USDC): enable blind signing in the ethereum app to sign it as a contract call", tx.To().Hex(), chainID)})
	}
	return blindSigningError(s.op, sw)
}

// provideToken sends PROVIDE ERC 20 TOKEN INFORMATION before SIGN when the app says it
// needs token information (GET APP CONFIGURATION flag 0x02, as hw-app-eth reads it). It
// reports whether the app took the descriptor; an app too old for the command (0x6D00)
// has its tokens built in, and a descriptor it refuses (0x6A80: a key it does not trust)
// leaves the transaction to blind signing, which SIGN then reports.
func (s *session) provideToken(tok TokenDescriptor) (bool, error) {
	cfg, err := s.call(command{cla: claETH, ins: insEthConfig})
	if err != nil {
		return false, err
	}
	if len(cfg) != 4 {
		return false, fmt.Errorf("%w: app configuration of %d bytes", device.ErrProtocol, len(cfg))
	}
	if cfg[0]&0x02 == 0 {
		return false, nil // the app does not take external token information
	}
	data, sw, err := s.exchange(command{cla: claETH, ins: insEthProvideERC20, data: tok.Payload})
	switch {
	case err != nil:
		return false, err
	case sw == swINSNotSupported:
		return false, nil
	case sw == swIncorrectData:
		s.d.log.Debug("ledger: the app refused the token descriptor", "ticker", tok.Ticker, "contract", tok.Contract.Hex())
		return false, nil
	case sw != swOK:
		return false, s.statusError(sw, data)
	case len(data) != 1:
		return false, fmt.Errorf("%w: token information reply of %d bytes", device.ErrProtocol, len(data))
	}
	return true, nil
}

// blindSigningError is the app's 0x6A80 to a tx or hash it would have to sign blind.
func blindSigningError(op string, sw uint16) error {
	return fmt.Errorf("%w: %w", ErrBlindSigningDisabled, &device.Error{Op: op, Family: device.FamilyLedger, Code: int(sw),
		Message: "blind signing is disabled in the ethereum app", Kind: device.ErrInvalidInput})
}

// personalChunks cuts path ‖ u32 len ‖ msg as hw-app-eth signPersonalMessage does: the
// first APDU carries at most 150 bytes, later ones 150 bytes of message.
func personalChunks(path, msg []byte) [][]byte {
	first := append(append([]byte{}, path...), binary.BigEndian.AppendUint32(nil, uint32(len(msg)))...)
	n := min(len(msg), personalChunk-len(first))
	chunks := [][]byte{append(first, msg[:n]...)}
	for msg = msg[n:]; len(msg) > 0; {
		n := min(personalChunk, len(msg))
		chunks = append(chunks, msg[:n])
		msg = msg[n:]
	}
	return chunks
}

// parseEthSignature checks v ‖ r ‖ s with v 27 or 28 and returns r ‖ s ‖ v.
func parseEthSignature(b []byte) ([]byte, error) {
	if len(b) != 65 || (b[0] != 27 && b[0] != 28) {
		return nil, fmt.Errorf("%w: signature reply of %d bytes (v %x)", device.ErrProtocol, len(b), b[:min(1, len(b))])
	}
	return append(append([]byte{}, b[1:]...), b[0]), nil
}

func (d *Driver) ethSignMessage(ctx context.Context, path hdpath.Path, msg []byte) (device.MessageSignature, error) {
	pb, err := encodePath(path)
	if err != nil {
		return device.MessageSignature{}, fmt.Errorf("ledger: %s: %w", opEthPersonal, err)
	}
	var sig []byte
	err = d.do(ctx, opEthPersonal, AppEthereum, func(s *session) error {
		var reply []byte
		chunks := personalChunks(pb, msg)
		for i, c := range chunks {
			p1 := p1EthFirst
			if i > 0 {
				p1 = p1EthMore
			}
			data, err := s.call(command{cla: claETH, ins: insEthPersonal, p1: p1, data: c, screen: i == len(chunks)-1})
			if err != nil {
				return err
			}
			reply = data
		}
		var err error
		sig, err = parseEthSignature(reply)
		return err
	})
	if err != nil {
		return device.MessageSignature{}, err
	}
	digest := crypto.Keccak256([]byte(fmt.Sprintf("\x19Ethereum Signed Message:\n%d", len(msg))), msg)
	addr, err := recoverEth(digest, sig)
	if err != nil {
		return device.MessageSignature{}, fmt.Errorf("ledger: %s: %w", opEthPersonal, err)
	}
	return device.MessageSignature{Address: addr.Hex(), Signature: sig}, nil
}

func recoverEth(digest, sig []byte) (common.Address, error) {
	rsv := append([]byte{}, sig...)
	rsv[64] -= 27
	pub, err := crypto.SigToPub(digest, rsv)
	if err != nil {
		return common.Address{}, fmt.Errorf("%w: %w", device.ErrBadSignature, err)
	}
	return crypto.PubkeyToAddress(*pub), nil
}

// SignTypedHash signs an EIP-712 message given as domain separator and message hash (the
// app's v0 "hashed" mode, which needs blind signing enabled). The app always signs
// 0x1901 ‖ domain ‖ message, so domain-only data (nil messageHash) is not supported.
func (d *Driver) SignTypedHash(ctx context.Context, path hdpath.Path, domainSeparator [32]byte, messageHash []byte) ([]byte, error) {
	if messageHash == nil {
		return nil, fmt.Errorf("ledger: %s: the ethereum app signs eip-712 hashes only with a message hash (no domain-only data): %w", opEthTyped, errors.ErrUnsupported)
	}
	if len(messageHash) != 32 {
		return nil, fmt.Errorf("ledger: %s: %w: message hash of %d bytes", opEthTyped, device.ErrInvalidInput, len(messageHash))
	}
	pb, err := encodePath(path)
	if err != nil {
		return nil, fmt.Errorf("ledger: %s: %w", opEthTyped, err)
	}
	var sig []byte
	err = d.do(ctx, opEthTyped, AppEthereum, func(s *session) error {
		data := append(append(append([]byte{}, pb...), domainSeparator[:]...), messageHash...)
		reply, sw, err := s.exchange(command{cla: claETH, ins: insEthEIP712, p2: p2EthEIP712Hash, data: data, screen: true})
		if err != nil {
			return err
		}
		if sw == swIncorrectData {
			return blindSigningError(s.op, sw)
		}
		if sw != swOK {
			return s.statusError(sw, nil)
		}
		sig, err = parseEthSignature(reply)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sig, nil
}
