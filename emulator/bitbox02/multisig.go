package bitbox02

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"strconv"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"

	pb "github.com/hwbridge/hwbridge/internal/bitbox02pb"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// Multisig as bitbox02-firmware hww/api/bitcoin/multisig.rs and registration.rs serve it:
// an account is m/48'/coin'/account'/2' (p2wsh) or /1' (p2wsh-p2sh); its cosigners'
// account xpubs come with every request; the witness script is sortedmulti (keys derived at
// change/index and sorted); the account must be registered on the device (with a name the
// person confirms) before addresses or signatures.

const maxCosigners = 15

// msConfig is a validated multisig script config.
type msConfig struct {
	threshold uint32
	xpubs     []*hdkeychain.ExtendedKey
	ours      int
	nested    bool // p2wsh-p2sh
	account   []uint32
}

func xpubOf(x *pb.XPub, net *chaincfg.Params) (*hdkeychain.ExtendedKey, error) {
	if len(x.GetDepth()) != 1 || len(x.GetParentFingerprint()) != 4 || len(x.GetChainCode()) != 32 || len(x.GetPublicKey()) != 33 {
		return nil, errInvalidInput
	}
	k := hdkeychain.NewExtendedKey(net.HDPublicKeyID[:], x.GetPublicKey(), x.GetChainCode(), x.GetParentFingerprint(), x.GetDepth()[0], x.GetChildNum(), false)
	if _, err := k.ECPubKey(); err != nil {
		return nil, errInvalidInput
	}
	return k, nil
}

// multisigConfig validates m at account keypath kp for the device.
func (d *Device) multisigConfig(m *pb.BTCScriptConfig_Multisig, kp []uint32, net *chaincfg.Params, coinType uint32) (*msConfig, error) {
	n := len(m.GetXpubs())
	if n < 2 || n > maxCosigners || m.GetThreshold() == 0 || int(m.GetThreshold()) > n || int(m.GetOurXpubIndex()) >= n {
		return nil, errInvalidInput
	}
	c := &msConfig{threshold: m.GetThreshold(), ours: int(m.GetOurXpubIndex()), nested: m.GetScriptType() == pb.BTCScriptConfig_Multisig_P2WSH_P2SH, account: kp}
	scriptIdx := uint32(2)
	if c.nested {
		scriptIdx = 1
	}
	if len(kp) != 4 || kp[0] != 48+hardened || kp[1] != coinType+hardened || kp[2] < hardened || kp[2] >= hardened+100 || kp[3] != scriptIdx+hardened {
		return nil, errInvalidInput
	}
	seen := map[string]bool{}
	for _, x := range m.GetXpubs() {
		k, err := xpubOf(x, net)
		if err != nil {
			return nil, err
		}
		id := string(x.GetPublicKey()) + string(x.GetChainCode())
		if seen[id] {
			return nil, errInvalidInput
		}
		seen[id] = true
		c.xpubs = append(c.xpubs, k)
	}
	own, err := d.wallet.Public(hdpath.Path(kp), net.HDPublicKeyID[:])
	if err != nil {
		return nil, errGeneric
	}
	if own.String() != c.xpubs[c.ours].String() {
		return nil, errInvalidInput // our xpub is not at our_xpub_index
	}
	return c, nil
}

// regKey identifies a registration: coin, script type, threshold, the sorted xpubs and the
// account keypath (the firmware hashes the same parts, xpubs sorted since 9.3.0).
func (c *msConfig) regKey(coin pb.BTCCoin) string {
	h := sha256.New()
	h.Write([]byte{byte(coin), map[bool]byte{false: 0, true: 1}[c.nested]})
	h.Write(binary.LittleEndian.AppendUint32(nil, c.threshold))
	var xs [][]byte
	for _, k := range c.xpubs {
		pub, _ := k.ECPubKey()
		xs = append(xs, append(pub.SerializeCompressed(), k.ChainCode()...))
	}
	slices.SortFunc(xs, bytes.Compare)
	for _, x := range xs {
		h.Write(x)
	}
	for _, s := range c.account {
		h.Write(binary.LittleEndian.AppendUint32(nil, s))
	}
	return string(h.Sum(nil))
}

func (d *Device) registeredName(key string) (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	name, ok := d.registered[key]
	return name, ok
}

// witnessScript is the sortedmulti script at change/index.
func (c *msConfig) witnessScript(change, index uint32) ([]byte, error) {
	var pubs [][]byte
	for _, x := range c.xpubs {
		k, err := x.Derive(change)
		if err == nil {
			k, err = k.Derive(index)
		}
		if err != nil {
			return nil, errGeneric
		}
		pub, err := k.ECPubKey()
		if err != nil {
			return nil, errGeneric
		}
		pubs = append(pubs, pub.SerializeCompressed())
	}
	slices.SortFunc(pubs, bytes.Compare)
	b := txscript.NewScriptBuilder().AddInt64(int64(c.threshold))
	for _, p := range pubs {
		b.AddData(p)
	}
	ws, err := b.AddInt64(int64(len(pubs))).AddOp(txscript.OP_CHECKMULTISIG).Script()
	if err != nil {
		return nil, errGeneric
	}
	return ws, nil
}

// scripts returns the output script and the BIP-143 script code source at keypath kp
// (account + change/index).
func (c *msConfig) scripts(kp []uint32) (pkScript, ws []byte, err error) {
	if len(kp) != 6 || !slices.Equal(kp[:4], c.account) || kp[4] > 1 || kp[5] >= 10000 {
		return nil, nil, errInvalidInput
	}
	ws, err = c.witnessScript(kp[4], kp[5])
	if err != nil {
		return nil, nil, err
	}
	h := sha256.Sum256(ws)
	wsh := append([]byte{txscript.OP_0, 32}, h[:]...)
	if !c.nested {
		return wsh, ws, nil
	}
	p2sh, _ := txscript.NewScriptBuilder().AddOp(txscript.OP_HASH160).AddData(btcutil.Hash160(wsh)).AddOp(txscript.OP_EQUAL).Script()
	return p2sh, ws, nil
}

func (w *apiWorker) registration(r *pb.BTCScriptConfigRegistration) (*msConfig, pb.BTCCoin, error) {
	net, coinType, err := coinParams(r.GetCoin())
	if err != nil {
		return nil, 0, err
	}
	m := r.GetScriptConfig().GetMultisig()
	if m == nil {
		return nil, 0, errInvalidInput // policies are not emulated
	}
	c, err := w.cn.d.multisigConfig(m, r.GetKeypath(), net, coinType)
	return c, r.GetCoin(), err
}

func (w *apiWorker) isRegistered(r *pb.BTCIsScriptConfigRegisteredRequest) (*pb.Response, error) {
	c, coin, err := w.registration(r.GetRegistration())
	if err != nil {
		return nil, err
	}
	_, ok := w.cn.d.registeredName(c.regKey(coin))
	return &pb.Response{Response: &pb.Response_Btc{Btc: &pb.BTCResponse{Response: &pb.BTCResponse_IsScriptConfigRegistered{
		IsScriptConfigRegistered: &pb.BTCIsScriptConfigRegisteredResponse{IsRegistered: ok},
	}}}}, nil
}

func (w *apiWorker) register(r *pb.BTCRegisterScriptConfigRequest) (*pb.Response, error) {
	c, coin, err := w.registration(r.GetRegistration())
	if err != nil {
		return nil, err
	}
	name := r.GetName()
	if name == "" || len(name) > 30 {
		return nil, errInvalidInput // entering the name on the device is not emulated
	}
	for _, ch := range name {
		if ch < 0x20 || ch > 0x7e {
			return nil, errInvalidInput
		}
	}
	kind := "p2wsh"
	if c.nested {
		kind = "p2wsh-p2sh"
	}
	lines := []string{name, strconv.Itoa(int(c.threshold)) + "-of-" + strconv.Itoa(len(c.xpubs)) + " " + kind, hdpath.Path(c.account).String()}
	for i, x := range c.xpubs {
		lines = append(lines, "Cosigner "+strconv.Itoa(i+1)+": "+x.String())
	}
	if err := w.ask("Register", lines...); err != nil {
		return nil, err
	}
	d := w.cn.d
	d.mu.Lock()
	if d.registered == nil {
		d.registered = map[string]string{}
	}
	d.registered[c.regKey(coin)] = name
	d.mu.Unlock()
	return &pb.Response{Response: &pb.Response_Btc{Btc: &pb.BTCResponse{Response: &pb.BTCResponse_Success{Success: &pb.BTCSuccess{}}}}}, nil
}
