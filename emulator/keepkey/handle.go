package keepkeyemu

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/emulator"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	pb "github.com/hwbridge/hwbridge/internal/keepkeypb"
)

// Firmware identity: keepkey-firmware 7.10.0 (CMakeLists.txt project VERSION) at commit
// d54797ee604f12c82ac6e5e02490b62dc04bf2dd (tag v7.10.0), as its emulator build reports it.
var (
	fwVersion  = [3]uint32{7, 10, 0}
	fwRevision = "d54797ee604f12c82ac6e5e02490b62dc04bf2dd"
)

const (
	vendor  = "keepkey.com" // fsm_msgGetFeatures
	model   = "K1-14AM"     // flash_getModel on EMULATOR builds
	variant = "Emulator"    // variant_getName on EMULATOR builds
	// maxMessage is the longest message SignMessage takes (SignMessage.message max_size 1024
	// in keepkey-firmware include/keepkey/transport/messages.options).
	maxMessage = 1024
	// ethChunk is the largest data chunk per EthereumTxRequest (ethereum.c).
	ethChunk = 1024
	// maxEthData is ethereum.c's data_length limit.
	maxEthData = 16000000
	// maxEthMessage is EthereumSignMessage.message's max_size (messages-ethereum.options).
	maxEthMessage = 1024
)

// policies are include/keepkey/firmware/policy.h's defaults: name and enabled.
var policies = []struct {
	name    string
	enabled bool
}{{"ShapeShift", false}, {"Pin Caching", true}, {"Experimental", false}, {"AdvancedMode", false}}

// handle answers one top-level message. It returns the reply, or a *failure, or an error
// that ends the flow without an answer.
func (d *Device) handle(ctx context.Context, s *session, f frame) (proto.Message, error) {
	// lib/board/messages.c: a message without a handler is "Unknown message".
	unknown := fail(pb.FailureType_Failure_UnexpectedMessage, "Unknown message")
	msg, err := pb.Unmarshal(pb.MessageType(f.typ), f.body)
	if err != nil {
		if _, known := pb.New(pb.MessageType(f.typ)); !known {
			return nil, unknown
		}
		return nil, syntaxError("Could not parse protocol buffer message")
	}
	switch msg.(type) {
	case *pb.GetPublicKey, *pb.GetAddress, *pb.SignMessage, *pb.SignTx, *pb.EthereumGetAddress, *pb.EthereumSignTx,
		*pb.EthereumSignMessage, *pb.EthereumSignTypedHash:
		// CHECK_PIN (fsm.c) comes first in these handlers.
		if err := d.unlock(ctx, s); err != nil {
			return nil, err
		}
	}
	switch m := msg.(type) {
	case *pb.Initialize, *pb.GetFeatures:
		return d.features(), nil
	case *pb.Ping:
		if m.GetButtonProtection() {
			if err := s.confirm(ctx, pb.ButtonRequestType_ButtonRequest_Ping, emulator.Screen{Title: "Ping", Lines: []string{m.GetMessage()}}); err != nil {
				return nil, err
			}
		}
		return &pb.Success{Message: proto.String(m.GetMessage())}, nil
	case *pb.ClearSession:
		d.dropState() // session_clear(true): the cached PIN goes too
		return &pb.Success{Message: proto.String("Session cleared")}, nil
	case *pb.Cancel:
		// fsm_msgCancel outside a workflow: "Aborted".
		return nil, fail(pb.FailureType_Failure_ActionCancelled, "Aborted")
	case *pb.GetPublicKey:
		return d.getPublicKey(ctx, s, m)
	case *pb.GetAddress:
		return d.getAddress(ctx, s, m)
	case *pb.SignMessage:
		return d.signMessage(ctx, s, m)
	case *pb.SignTx:
		return d.signTx(ctx, s, m)
	case *pb.EthereumGetAddress:
		return d.ethGetAddress(ctx, s, m)
	case *pb.EthereumSignTx:
		return d.ethSignTx(ctx, s, m)
	case *pb.EthereumSignMessage:
		return d.ethSignMessage(ctx, s, m)
	case *pb.EthereumSignTypedHash:
		return d.ethSignTypedHash(ctx, s, m)
	}
	return nil, unknown
}

// features builds Features as fsm_msgGetFeatures does on an emulator build: no bootloader or
// firmware hash, no language unless set, auto_lock_delay_ms only when non-zero.
func (d *Device) features() *pb.Features {
	rev, _ := hex.DecodeString(fwRevision)
	d.mu.Lock()
	cached := d.pinCached
	d.mu.Unlock()
	f := &pb.Features{
		Vendor:               proto.String(vendor),
		MajorVersion:         proto.Uint32(fwVersion[0]),
		MinorVersion:         proto.Uint32(fwVersion[1]),
		PatchVersion:         proto.Uint32(fwVersion[2]),
		DeviceId:             proto.String(d.deviceID),
		Model:                proto.String(model),
		FirmwareVariant:      proto.String(variant),
		PinProtection:        proto.Bool(d.opts.PIN != ""),
		PassphraseProtection: proto.Bool(false),
		Revision:             rev,
		Label:                proto.String(d.opts.Label),
		Initialized:          proto.Bool(true),
		Imported:             proto.Bool(false),
		NoBackup:             proto.Bool(false),
		PinCached:            proto.Bool(d.opts.PIN != "" && cached),
		PassphraseCached:     proto.Bool(false),
		AutoLockDelayMs:      proto.Uint32(10 * 60 * 1000), // storage default
	}
	for _, p := range policies {
		f.Policies = append(f.Policies, &pb.PolicyType{PolicyName: proto.String(p.name), Enabled: proto.Bool(p.enabled)})
	}
	return f
}

// unlock is pin_protect_cached (lib/firmware/pin_sm.c): nothing without a PIN or with the
// PIN cached; otherwise PinMatrixRequest (Current), then the positions are checked and
// decoded through the matrix (the identity here) and compared.
func (d *Device) unlock(ctx context.Context, s *session) error {
	d.mu.Lock()
	ok := d.opts.PIN == "" || d.pinCached
	d.mu.Unlock()
	if ok {
		return nil
	}
	d.approver.Show(emulator.Screen{Device: "keepkey", Title: "Enter Your PIN", Lines: []string{"(matrix 1-9, identity)"}})
	ack, err := expect[*pb.PinMatrixAck](ctx, s, &pb.PinMatrixRequest{Type: pb.PinMatrixRequestType_PinMatrixRequestType_Current.Enum()}, pb.MessageType_MessageType_PinMatrixAck)
	if err == errCancelled {
		return fail(pb.FailureType_Failure_PinCancelled, "PIN Cancelled")
	}
	if err != nil {
		return err
	}
	pin := ack.GetPin()
	if len(pin) < 1 || len(pin) > 9 || strings.Trim(pin, "123456789") != "" {
		return fail(pb.FailureType_Failure_PinCancelled, "PIN must be at least 1 digit consisting of numbers from 1 to 9")
	}
	if subtle.ConstantTimeCompare([]byte(pin), []byte(d.opts.PIN)) != 1 {
		return fail(pb.FailureType_Failure_PinInvalid, "Invalid PIN")
	}
	d.mu.Lock()
	d.pinCached = true
	d.mu.Unlock()
	return nil
}

// coin is one entry of include/keepkey/firmware/coins.def (the Bitcoin-family fields used).
type coin struct {
	name       string
	shortcut   string
	params     *chaincfg.Params
	xpub, ypub uint32
	zpub       uint32
	maxFeeKB   uint64 // maxfee_kb, satoshi per 1000 bytes
}

var coins = map[string]*coin{
	"Bitcoin": {name: "Bitcoin", shortcut: "BTC", params: &chaincfg.MainNetParams, xpub: 76067358, ypub: 77429938, zpub: 78792518, maxFeeKB: 100000},
	"Testnet": {name: "Testnet", shortcut: "TEST", params: &chaincfg.TestNet3Params, xpub: 70617039, ypub: 71979618, zpub: 73342198, maxFeeKB: 10000000},
}

func coinByName(name string) (*coin, error) {
	if c, ok := coins[name]; ok {
		return c, nil
	}
	return nil, syntaxError("Invalid coin name")
}

func versionBytes(v uint32) []byte {
	return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}

func checkPath(p []uint32) (hdpath.Path, error) {
	if len(p) > hdpath.MaxDepth {
		return nil, syntaxError("Invalid path")
	}
	return hdpath.Path(p), nil
}

// scriptKind maps a single-key input script type; taproot and the rest are refused.
func scriptKind(t pb.InputScriptType) (emulator.ScriptKind, error) {
	switch t {
	case pb.InputScriptType_SPENDADDRESS:
		return emulator.P2PKH, nil
	case pb.InputScriptType_SPENDP2SHWITNESS:
		return emulator.P2SHP2WPKH, nil
	case pb.InputScriptType_SPENDWITNESS:
		return emulator.P2WPKH, nil
	}
	return 0, syntaxError("Invalid script type")
}

func fmtAmount(sat uint64, unit string) string {
	s := strconv.FormatUint(sat/1e8, 10)
	if frac := sat % 1e8; frac != 0 {
		s += "." + strings.TrimRight(fmt.Sprintf("%08d", frac), "0")
	}
	return s + " " + unit
}

func (d *Device) getPublicKey(ctx context.Context, s *session, m *pb.GetPublicKey) (*pb.PublicKey, error) {
	if c := m.GetEcdsaCurveName(); c != "" && c != "secp256k1" {
		return nil, syntaxError("Unsupported curve")
	}
	c, err := coinByName(m.GetCoinName())
	if err != nil {
		return nil, err
	}
	p, err := checkPath(m.AddressN)
	if err != nil {
		return nil, err
	}
	// fsm_msgGetPublicKey: xpub_magic for SPENDADDRESS, the segwit magics for the two
	// segwit types, and the plain xpub magic for anything else.
	ver := c.xpub
	switch m.GetScriptType() {
	case pb.InputScriptType_SPENDP2SHWITNESS:
		ver = c.ypub
	case pb.InputScriptType_SPENDWITNESS:
		ver = c.zpub
	}
	k, err := d.wallet.Public(p, versionBytes(ver))
	if err != nil {
		return nil, fail(pb.FailureType_Failure_Other, "Failed to derive private key")
	}
	pub, err := k.ECPubKey()
	if err != nil {
		return nil, fail(pb.FailureType_Failure_Other, "Failed to derive private key")
	}
	xpub := k.String()
	if m.GetShowDisplay() {
		if err := s.confirm(ctx, pb.ButtonRequestType_ButtonRequest_Address, emulator.Screen{Title: "Extended public key", Lines: []string{xpub, p.String()}}); err != nil {
			return nil, err
		}
	}
	return &pb.PublicKey{
		Node: &pb.HDNodeType{
			Depth:       proto.Uint32(uint32(k.Depth())),
			Fingerprint: proto.Uint32(k.ParentFingerprint()),
			ChildNum:    proto.Uint32(k.ChildIndex()),
			ChainCode:   bytes.Clone(k.ChainCode()),
			PublicKey:   pub.SerializeCompressed(),
		},
		Xpub: proto.String(xpub),
	}, nil
}

// address is the address of the key at p for a single-key script kind.
func (d *Device) address(c *coin, p hdpath.Path, kind emulator.ScriptKind) (string, []byte, error) {
	pub, err := d.wallet.PubKey(p)
	if err != nil {
		return "", nil, fail(pb.FailureType_Failure_Other, "Failed to derive private key")
	}
	a, err := emulator.Address(pub, kind, c.params)
	if err != nil {
		return "", nil, fail(pb.FailureType_Failure_Other, "Can't encode address")
	}
	script, err := emulator.PkScript(pub, kind)
	if err != nil {
		return "", nil, fail(pb.FailureType_Failure_Other, "Can't encode address")
	}
	return a.EncodeAddress(), script, nil
}

func (d *Device) getAddress(ctx context.Context, s *session, m *pb.GetAddress) (*pb.Address, error) {
	c, err := coinByName(m.GetCoinName())
	if err != nil {
		return nil, err
	}
	if m.Multisig != nil {
		return nil, syntaxError("Multisig addresses are unsupported by this emulator")
	}
	p, err := checkPath(m.AddressN)
	if err != nil {
		return nil, err
	}
	kind, err := scriptKind(m.GetScriptType())
	if err != nil {
		return nil, err
	}
	addr, _, err := d.address(c, p, kind)
	if err != nil {
		return nil, err
	}
	if m.GetShowDisplay() {
		if err := s.confirmAddress(ctx, emulator.Screen{Title: c.shortcut + " address", Lines: []string{addr, p.String()}}); err != nil {
			if err == errRejected {
				return nil, fail(pb.FailureType_Failure_ActionCancelled, "Show address cancelled")
			}
			return nil, err
		}
	}
	return &pb.Address{Address: proto.String(addr)}, nil
}

// messageDigest is SHA-256d(varint(24) ‖ "Bitcoin Signed Message:\n" ‖ varint(len) ‖ msg).
func messageDigest(msg []byte) []byte {
	var b bytes.Buffer
	_ = wire.WriteVarString(&b, 0, "Bitcoin Signed Message:\n")
	_ = wire.WriteVarInt(&b, 0, uint64(len(msg)))
	b.Write(msg)
	return chainhash.DoubleHashB(b.Bytes())
}

func messageLines(msg []byte) []string {
	if utf8.Valid(msg) {
		return strings.Split(string(msg), "\n")
	}
	return []string{"hex:" + hex.EncodeToString(msg)}
}

// signMessage: fsm_msgSignMessage; the header byte is 31, 35 or 39 plus the recovery id
// for p2pkh, p2sh-p2wpkh and p2wpkh (crypto.c cryptoMessageSign).
func (d *Device) signMessage(ctx context.Context, s *session, m *pb.SignMessage) (*pb.MessageSignature, error) {
	c, err := coinByName(m.GetCoinName())
	if err != nil {
		return nil, err
	}
	if len(m.GetMessage()) > maxMessage {
		return nil, syntaxError("Message too long")
	}
	p, err := checkPath(m.AddressN)
	if err != nil {
		return nil, err
	}
	kind, err := scriptKind(m.GetScriptType())
	if err != nil {
		return nil, err
	}
	if err := s.confirm(ctx, pb.ButtonRequestType_ButtonRequest_SignMessage, emulator.Screen{Title: "Sign Message", Lines: messageLines(m.GetMessage())}); err != nil {
		if err == errRejected {
			return nil, fail(pb.FailureType_Failure_ActionCancelled, "Sign message cancelled")
		}
		return nil, err
	}
	addr, _, err := d.address(c, p, kind)
	if err != nil {
		return nil, err
	}
	priv, err := d.wallet.PrivKey(p)
	if err != nil {
		return nil, fail(pb.FailureType_Failure_Other, "Error signing message")
	}
	sig := ecdsa.SignCompact(priv, messageDigest(m.GetMessage()), true) // header 31+recid
	switch kind {
	case emulator.P2SHP2WPKH:
		sig[0] += 4
	case emulator.P2WPKH:
		sig[0] += 8
	}
	return &pb.MessageSignature{Address: proto.String(addr), Signature: sig}, nil
}

// decodeAddress parses an output address for the coin (base58 or bech32/bech32m).
func decodeAddress(a string, c *coin) (btcutil.Address, error) {
	addr, err := btcutil.DecodeAddress(a, c.params)
	if err != nil || !addr.IsForNet(c.params) {
		return nil, syntaxError("Invalid output address")
	}
	return addr, nil
}

// Ethereum.

func (d *Device) ethKey(path []uint32) (hdpath.Path, common.Address, error) {
	p, err := checkPath(path)
	if err != nil {
		return nil, common.Address{}, err
	}
	a, err := d.wallet.EthAddress(p)
	if err != nil {
		return nil, common.Address{}, fail(pb.FailureType_Failure_Other, "Failed to derive private key")
	}
	return p, a, nil
}

func (d *Device) ethGetAddress(ctx context.Context, s *session, m *pb.EthereumGetAddress) (*pb.EthereumAddress, error) {
	p, a, err := d.ethKey(m.AddressN)
	if err != nil {
		return nil, err
	}
	if m.GetShowDisplay() {
		if err := s.confirmAddress(ctx, emulator.Screen{Title: "ETH address", Lines: []string{a.Hex(), p.String()}}); err != nil {
			if err == errRejected {
				return nil, fail(pb.FailureType_Failure_ActionCancelled, "Show address cancelled")
			}
			return nil, err
		}
	}
	return &pb.EthereumAddress{Address: a.Bytes(), AddressStr: proto.String(a.Hex())}, nil
}

func (d *Device) ethSign(p hdpath.Path, hash []byte) ([]byte, error) {
	k, err := d.wallet.EthKey(p)
	if err != nil {
		return nil, fail(pb.FailureType_Failure_Other, "Failed to derive private key")
	}
	sig, err := crypto.Sign(hash, k)
	if err != nil {
		return nil, fail(pb.FailureType_Failure_Other, "Signing failed")
	}
	return sig, nil
}

// ethSignMessage: fsm_msgEthereumSignMessage (EIP-191 personal_sign, v 27 or 28). The
// screen says "Sign Message" for printable text and "Sign Bytes" (hex) otherwise.
func (d *Device) ethSignMessage(ctx context.Context, s *session, m *pb.EthereumSignMessage) (*pb.EthereumMessageSignature, error) {
	if len(m.GetMessage()) > maxEthMessage {
		return nil, syntaxError("Message too long")
	}
	p, a, err := d.ethKey(m.AddressN)
	if err != nil {
		return nil, err
	}
	title, lines := "Sign Message", []string{string(m.GetMessage())}
	for _, b := range m.GetMessage() {
		if b < 0x20 || b > 0x7e {
			title, lines = "Sign Bytes", []string{hex.EncodeToString(m.GetMessage())}
			break
		}
	}
	if err := s.confirm(ctx, pb.ButtonRequestType_ButtonRequest_ProtectCall, emulator.Screen{Title: title, Lines: lines}); err != nil {
		if err == errRejected {
			return nil, fail(pb.FailureType_Failure_ActionCancelled, "Signing cancelled")
		}
		return nil, err
	}
	sig, err := d.ethSign(p, accounts.TextHash(m.GetMessage()))
	if err != nil {
		return nil, err
	}
	sig[64] += 27
	return &pb.EthereumMessageSignature{Address: a.Bytes(), Signature: sig}, nil
}

// ethSignTypedHash: fsm_msgEthereumSignTypedHash. The firmware shows the address, the domain
// hash and the message hash, but ignores the answers (its confirm() results are unchecked),
// so a NO does not stop it; a host Cancel does end the exchange here.
func (d *Device) ethSignTypedHash(ctx context.Context, s *session, m *pb.EthereumSignTypedHash) (*pb.EthereumTypedDataSignature, error) {
	dom, msg := m.GetDomainSeparatorHash(), m.GetMessageHash()
	if len(dom) != 32 || (m.MessageHash != nil && len(msg) != 32) {
		return nil, fail(pb.FailureType_Failure_Other, "Invalid EIP-712 hash length")
	}
	p, a, err := d.ethKey(m.AddressN)
	if err != nil {
		return nil, err
	}
	screens := []emulator.Screen{
		{Title: "Verify Address", Lines: []string{a.Hex()}},
		{Title: "Typed Data domain", Lines: []string{hex.EncodeToString(dom)}},
		{Title: "Typed Data message", Lines: []string{"No message"}},
	}
	if m.MessageHash != nil {
		screens[2].Lines = []string{hex.EncodeToString(msg)}
	}
	for _, sc := range screens {
		if err := s.confirm(ctx, pb.ButtonRequestType_ButtonRequest_Other, sc); err != nil && err != errRejected {
			return nil, err
		}
	}
	data := append([]byte{0x19, 0x01}, dom...)
	if m.MessageHash != nil {
		data = append(data, msg...)
	}
	sig, err := d.ethSign(p, crypto.Keccak256(data))
	if err != nil {
		return nil, err
	}
	sig[64] += 27
	out := &pb.EthereumTypedDataSignature{
		Signature: sig, Address: proto.String(a.Hex()),
		DomainSeparatorHash: bytes.Clone(dom), HasMsgHash: proto.Bool(m.MessageHash != nil),
	}
	if m.MessageHash != nil {
		out.MessageHash = bytes.Clone(msg)
	}
	return out, nil
}

func ethNumber(b []byte, field string) (*big.Int, error) {
	if len(b) > 32 {
		return nil, syntaxError("Field %s is too long", field)
	}
	return new(big.Int).SetBytes(b), nil
}

// fmtWei prints wei as a decimal ETH amount.
func fmtWei(wei *big.Int) string {
	q, r := new(big.Int).QuoRem(wei, big.NewInt(1e18), new(big.Int))
	s := q.String()
	if r.Sign() != 0 {
		frac := r.String()
		s += "." + strings.TrimRight(strings.Repeat("0", 18-len(frac))+frac, "0")
	}
	return s + " ETH"
}
