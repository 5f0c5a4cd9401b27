package ledger

// Bitcoin app v2 commands (CLA 0xE1, P2 = protocol version 1). Spec: app-bitcoin-new
// doc/bitcoin.md; /work/shared/protocols/ledger.md §5.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// Operation names (also used to pick extended error texts).
const (
	opFingerprint = "get fingerprint"
	opXPub        = "get xpub"
	opAddress     = "get address"
	opRegister    = "register wallet"
	opSignPSBT    = "sign psbt"
	opSignMessage = "sign message"
)

// maxInterrupts bounds the client-command round trips of one command (a 512-input PSBT
// needs far fewer than this per input).
const maxInterrupts = 1 << 20

// btcCommand builds an E1 command with P1 0 and P2 the protocol version.
func btcCommand(ins byte, data []byte) command {
	return command{cla: claBTC, ins: ins, p1: 0x00, p2: btcProtocolP2, data: data}
}

// screenRule says, for each client command the device sends during a command, whether the
// device's next reply (to the host's CONTINUE) may come only after a screen.
type screenRule func(req []byte) bool

// everyReply: any reply of the command may follow a screen (commands that fetch what they
// then show: an address, a wallet policy, a message).
func everyReply([]byte) bool { return true }

// noReply: no screen in the command.
func noReply([]byte) bool { return false }

// run sends c and answers the device's client commands from h until a final status word.
// screens decides which CONTINUE replies may follow a screen (c.screen decides for c).
func (s *session) run(c command, h *clientHandler, screens screenRule) ([]byte, error) {
	for range maxInterrupts {
		data, sw, err := s.exchange(c)
		if err != nil {
			return nil, err
		}
		switch sw {
		case swOK:
			return data, nil
		case swInterrupted:
			resp, err := h.execute(data)
			if err != nil {
				return nil, err
			}
			c = command{cla: claFramework, ins: insContinue, p1: 0x00, p2: btcProtocolP2, data: resp, screen: screens(data)}
		default:
			return nil, s.statusError(sw, data)
		}
	}
	return nil, fmt.Errorf("%w: more than %d client commands", device.ErrProtocol, maxInterrupts)
}

// fingerprint returns the master fingerprint (E1 05), cached for the driver's life until
// the device locks.
func (s *session) fingerprint() (device.Fingerprint, error) {
	if s.d.fp != nil {
		return *s.d.fp, nil
	}
	data, err := s.call(btcCommand(insFingerprint, nil))
	if err != nil {
		return 0, err
	}
	if len(data) != 4 {
		return 0, fmt.Errorf("%w: fingerprint reply of %d bytes", device.ErrProtocol, len(data))
	}
	fp := device.Fingerprint(binary.BigEndian.Uint32(data))
	s.d.fp = &fp
	return fp, nil
}

// xpub returns the extended public key at path (E1 00), as the open app encodes it.
func (s *session) xpub(path hdpath.Path, display bool) (string, error) {
	key := s.app + path.String()
	if x, ok := s.d.xpubs[key]; ok && !display {
		return x, nil
	}
	pb, err := encodePath(path)
	if err != nil {
		return "", err
	}
	c := btcCommand(insGetXPub, append([]byte{boolByte(display)}, pb...))
	c.screen = display
	data, err := s.call(c)
	if err != nil {
		return "", err
	}
	if len(data) < 100 || len(data) > 120 || !printable(string(data)) {
		return "", fmt.Errorf("%w: xpub reply of %d bytes", device.ErrProtocol, len(data))
	}
	if _, err := parseXPub(string(data)); err != nil {
		return "", fmt.Errorf("%w: device xpub does not parse: %w", device.ErrProtocol, err)
	}
	s.d.xpubs[key] = string(data)
	return string(data), nil
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// Fingerprint returns the master key fingerprint; it needs a Bitcoin app (mainnet or test)
// open. As every call, it switches apps only with a context from device.WithAppSwitch
// (lookups and listings never pass one, so that they never close the app the person
// uses): otherwise another app open fails with device.ErrWrongApp saying to open the
// Bitcoin app.
func (d *Driver) Fingerprint(ctx context.Context) (device.Fingerprint, error) {
	d.mu.Lock()
	if d.fp != nil {
		fp := *d.fp
		d.mu.Unlock()
		return fp, nil
	}
	d.mu.Unlock()
	var fp device.Fingerprint
	err := d.do(ctx, opFingerprint, "", func(s *session) error {
		info, err := s.appInfo()
		if err != nil {
			return err
		}
		s.app = AppBitcoin
		if info.Name == AppBitcoinTest {
			s.app = AppBitcoinTest
		}
		if err := s.ensureApp(); err != nil {
			return err
		}
		fp, err = s.fingerprint()
		return err
	})
	return fp, err
}

// XPub returns the extended public key at req.Path (xpub on mainnet, tpub on the test
// networks). Without Display the app serves only standard paths (0x6A82 otherwise).
func (d *Driver) XPub(ctx context.Context, req device.XPubRequest) (string, error) {
	var x string
	err := d.do(ctx, opXPub, bitcoinApp(req.Network), func(s *session) error {
		var err error
		x, err = s.xpub(req.Path, req.Display)
		return err
	})
	return x, err
}

// btcAddress is Address for Bitcoin: the default wallet policy of the path's account,
// GET_WALLET_ADDRESS, and a check that the device's address has the script the account
// xpub gives (the test app prints tb1… on regtest too: scripts are compared, strings
// re-encoded for net). With Display, the string the device showed is recorded for
// device.WithShown.
func (d *Driver) btcAddress(ctx context.Context, req device.AddressRequest) (string, error) {
	net := netOrMain(req.Network)
	purpose, err := req.Script.Purpose()
	if err != nil {
		return "", err
	}
	acct, change, index, ok := standardAccount(req.Path)
	if !ok || acct.purpose != purpose || acct.coin != net.HDCoinType || index > maxDefaultIndex {
		return "", fmt.Errorf("%w: a ledger shows %s addresses only on m/%d'/%d'/account'/change/index with account ≤ %d, change 0 or 1 and index ≤ %d (got %s)",
			device.ErrInvalidInput, req.Script, purpose, net.HDCoinType, maxDefaultAccount, maxDefaultIndex, req.Path)
	}
	var addr string
	err = d.do(ctx, opAddress, bitcoinApp(net), func(s *session) error {
		fp, err := s.fingerprint()
		if err != nil {
			return err
		}
		xpub, err := s.xpub(acct.path(), false)
		if err != nil {
			return err
		}
		pol, err := DefaultPolicy(purpose, fp, acct.path(), xpub)
		if err != nil {
			return err
		}
		got, err := s.walletAddress(pol, [32]byte{}, change, index, req.Display)
		if err != nil {
			return err
		}
		want, err := addressFromXPub(xpub, req.Script, change, index, net)
		if err != nil {
			return err
		}
		if err := sameScript(got, want, net); err != nil {
			return err
		}
		addr = want.EncodeAddress()
		if req.Display {
			device.NoteShown(ctx, got) // tb1… on regtest: the test app's encoding
		}
		return nil
	})
	return addr, err
}

// walletAddress runs GET_WALLET_ADDRESS for a policy (hmac zero for default policies).
func (s *session) walletAddress(pol device.WalletPolicy, hmac [32]byte, change, index uint32, display bool) (string, error) {
	h := newClientHandler()
	registerPolicy(pol, h)
	id := PolicyID(pol)
	data := make([]byte, 0, 70)
	data = append(data, boolByte(display))
	data = append(data, id[:]...)
	data = append(data, hmac[:]...)
	data = append(data, byte(change))
	data = binary.BigEndian.AppendUint32(data, index)
	c, screens := btcCommand(insWalletAddr, data), noReply
	if display {
		c.screen, screens = true, everyReply
	}
	out, err := s.run(c, h, screens)
	if err != nil {
		return "", err
	}
	if len(out) == 0 || len(out) > 100 || !printable(string(out)) {
		return "", fmt.Errorf("%w: address reply of %d bytes", device.ErrProtocol, len(out))
	}
	return string(out), nil
}

// sameScript checks that the address the device printed pays to the same script as want.
// The device prints mainnet or testnet strings; regtest and signet share the test app's.
func sameScript(got string, want btcutil.Address, net *chaincfg.Params) error {
	printNet := net
	if net.HDCoinType != 0 {
		printNet = &chaincfg.TestNet3Params
	}
	a, err := btcutil.DecodeAddress(got, printNet)
	if err != nil {
		return fmt.Errorf("%w: device address %q does not decode for %s: %w", device.ErrProtocol, got, printNet.Name, err)
	}
	gs, err := txscript.PayToAddrScript(a)
	if err != nil {
		return fmt.Errorf("%w: device address %q: %w", device.ErrProtocol, got, err)
	}
	ws, err := txscript.PayToAddrScript(want)
	if err != nil {
		return err
	}
	if !bytes.Equal(gs, ws) {
		return fmt.Errorf("%w: device address %s is not the one its xpub gives (%s): do not use it", device.ErrProtocol, got, want)
	}
	return nil
}

// addressFromXPub derives the single-key address at change/index of an account xpub.
func addressFromXPub(xpub string, st device.ScriptType, change, index uint32, net *chaincfg.Params) (btcutil.Address, error) {
	k, err := parseXPub(xpub)
	if err != nil {
		return nil, err
	}
	for _, step := range []uint32{change, index} {
		if k, err = k.Derive(step); err != nil {
			return nil, err
		}
	}
	pub, err := k.ECPubKey()
	if err != nil {
		return nil, err
	}
	return singleKeyAddress(pub, st, net)
}

// singleKeyAddress is the address paying to pub as st.
func singleKeyAddress(pub *btcec.PublicKey, st device.ScriptType, net *chaincfg.Params) (btcutil.Address, error) {
	h := btcutil.Hash160(pub.SerializeCompressed())
	switch st {
	case device.ScriptPKH:
		return btcutil.NewAddressPubKeyHash(h, net)
	case device.ScriptWPKH:
		return btcutil.NewAddressWitnessPubKeyHash(h, net)
	case device.ScriptSHWPKH:
		redeem, err := txscript.NewScriptBuilder().AddOp(txscript.OP_0).AddData(h).Script()
		if err != nil {
			return nil, err
		}
		return btcutil.NewAddressScriptHash(redeem, net)
	case device.ScriptTR:
		out := txscript.ComputeTaprootKeyNoScript(pub)
		return btcutil.NewAddressTaproot(schnorr.SerializePubKey(out), net)
	}
	return nil, fmt.Errorf("%w: script type %q", device.ErrInvalidInput, st)
}

// RegisterWallet registers a wallet policy (the user reviews its name, template and keys
// on the device) and returns its HMAC, which the driver keeps for later signing. Keep it
// to pass in Options.Wallets next time: registration is stateless on the device.
func (d *Driver) RegisterWallet(ctx context.Context, pol device.WalletPolicy, net *chaincfg.Params) ([32]byte, error) {
	var hmac [32]byte
	err := d.do(ctx, opRegister, bitcoinApp(net), func(s *session) error {
		var err error
		hmac, err = s.register(pol)
		return err
	})
	return hmac, err
}

func (s *session) register(pol device.WalletPolicy) ([32]byte, error) {
	var hmac [32]byte
	if err := checkPolicy(pol); err != nil {
		return hmac, err
	}
	if pol.Name == "" {
		return hmac, fmt.Errorf("%w: a registered wallet needs a name", device.ErrInvalidInput)
	}
	h := newClientHandler()
	registerPolicy(pol, h)
	ser := SerializePolicy(pol)
	var data bytes.Buffer
	_ = wire.WriteVarInt(&data, 0, uint64(len(ser)))
	data.Write(ser)
	c := btcCommand(insRegister, data.Bytes())
	c.screen = true // the name, the template and every key are reviewed
	out, err := s.run(c, h, everyReply)
	if err != nil {
		return hmac, err
	}
	if len(out) != 64 {
		return hmac, fmt.Errorf("%w: register reply of %d bytes, want 64", device.ErrProtocol, len(out))
	}
	id := PolicyID(pol)
	if !bytes.Equal(out[:32], id[:]) {
		return hmac, fmt.Errorf("%w: the device registered wallet id %x, not %x", device.ErrProtocol, out[:32], id)
	}
	copy(hmac[:], out[32:])
	s.d.wallets[id] = device.RegisteredWallet{Policy: pol, HMAC: hmac}
	s.d.log.Info("registered ledger wallet policy", "name", pol.Name, "template", pol.Template, "id", fmt.Sprintf("%x", id))
	return hmac, nil
}

// btcSignMessage signs a BIP-137 message (E1 10). The app answers with the compressed-key
// header 31/32; the header returned is re-based for the script type (BIP-137: 31–34
// p2pkh, 35–38 p2sh-p2wpkh, 39–42 p2wpkh).
func (d *Driver) btcSignMessage(ctx context.Context, req device.MessageRequest) (device.MessageSignature, error) {
	net := netOrMain(req.Network)
	st := req.Script
	if st == "" {
		st = device.ScriptPKH
	}
	var base byte
	switch st {
	case device.ScriptPKH:
		base = 31
	case device.ScriptSHWPKH:
		base = 35
	case device.ScriptWPKH:
		base = 39
	default:
		return device.MessageSignature{}, fmt.Errorf("ledger: sign message: BIP-137 has no header for %s addresses: %w", st, errors.ErrUnsupported)
	}
	if len(req.Path) >= 2 && req.Path[1] >= hdpath.Hardened && req.Path[1]-hdpath.Hardened != net.HDCoinType && req.Path[0] != 45+hdpath.Hardened {
		return device.MessageSignature{}, fmt.Errorf("ledger: sign message: %w: path %s is not for %s", device.ErrInvalidInput, req.Path, net.Name)
	}
	pb, err := encodePath(req.Path)
	if err != nil {
		return device.MessageSignature{}, fmt.Errorf("ledger: sign message: %w", err)
	}
	var sig []byte
	err = d.do(ctx, opSignMessage, bitcoinApp(net), func(s *session) error {
		h := newClientHandler()
		var chunks [][]byte
		for m := req.Message; len(m) > 0; {
			n := min(64, len(m))
			chunks = append(chunks, m[:n])
			m = m[n:]
		}
		tree := h.addList(chunks)
		var data bytes.Buffer
		data.Write(pb)
		_ = wire.WriteVarInt(&data, 0, uint64(len(req.Message)))
		root := tree.Root()
		data.Write(root[:])
		c := btcCommand(insSignMessage, data.Bytes())
		c.screen = true // the message (or its hash) is reviewed before the signature
		out, err := s.run(c, h, everyReply)
		if err != nil {
			return err
		}
		if len(out) != 65 || out[0] < 31 || out[0] > 34 {
			return fmt.Errorf("%w: message signature reply of %d bytes (header %x)", device.ErrProtocol, len(out), out[:min(1, len(out))])
		}
		sig = out
		return nil
	})
	if err != nil {
		return device.MessageSignature{}, err
	}
	recid := (sig[0] - 27) & 3
	pub, _, err := ecdsa.RecoverCompact(sig, bitcoinMessageDigest(req.Message))
	if err != nil {
		return device.MessageSignature{}, fmt.Errorf("ledger: sign message: %w: signature does not recover: %w", device.ErrBadSignature, err)
	}
	addr, err := singleKeyAddress(pub, st, net)
	if err != nil {
		return device.MessageSignature{}, err
	}
	out := append([]byte{base + recid}, sig[1:]...)
	return device.MessageSignature{Address: addr.EncodeAddress(), Signature: out}, nil
}

// bitcoinMessageDigest is SHA256d(varstr("Bitcoin Signed Message:\n") ‖ varstr(msg)).
func bitcoinMessageDigest(msg []byte) []byte {
	var buf bytes.Buffer
	_ = wire.WriteVarString(&buf, 0, "Bitcoin Signed Message:\n")
	_ = wire.WriteVarBytes(&buf, 0, msg)
	first := sha256.Sum256(buf.Bytes())
	second := sha256.Sum256(first[:])
	return second[:]
}

// parseXPub parses an extended public key of any network.
func parseXPub(s string) (*hdkeychain.ExtendedKey, error) {
	k, err := hdkeychain.NewKeyFromString(s)
	if err != nil {
		return nil, err
	}
	if k.IsPrivate() {
		return nil, fmt.Errorf("a private extended key where an xpub belongs")
	}
	return k, nil
}
