package bitbox02

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/emulator"
	pb "github.com/hwbridge/hwbridge/internal/bitbox02pb"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// apiWorker runs the protobuf API of one connection in its own goroutine, as the firmware
// runs it in one async task: a request that starts a flow (BTC signing, anti-klepto)
// answers with a response and then waits, in next, for the host's next request.
type apiWorker struct {
	cn   *conn
	in   chan delivery
	quit chan struct{}
	cur  delivery
}

type delivery struct {
	j   *job
	req []byte
	out chan *pb.Response
}

// apiError is an API failure: its code goes back as an Error response.
type apiError struct{ code int32 }

func (e apiError) Error() string { return fmt.Sprintf("bitbox02 api error %d", e.code) }

var (
	errInvalidInput = apiError{codeInvalidInput}
	errUserAbort    = apiError{codeUserAbort}
	errDisabled     = apiError{codeDisabled}
	errGeneric      = apiError{codeGeneric}
	errGone         = errors.New("bitbox02emu: connection gone")
)

func newAPIWorker(cn *conn) *apiWorker {
	w := &apiWorker{cn: cn, in: make(chan delivery), quit: make(chan struct{})}
	go w.run()
	return w
}

func (w *apiWorker) stop() { close(w.quit) }

func (w *apiWorker) run() {
	for {
		select {
		case <-w.quit:
			return
		case d := <-w.in:
			w.cur = d
			resp, err := w.dispatch(d.req)
			if errors.Is(err, errGone) {
				return
			}
			w.reply(resp, err)
		}
	}
}

// reply answers the request in hand.
func (w *apiWorker) reply(resp *pb.Response, err error) {
	if err != nil {
		var ae apiError
		if !errors.As(err, &ae) {
			ae = errGeneric
		}
		if ae.code == codeUserAbort {
			w.cn.d.log.Debug("bitbox02 emulator: rejected on the device")
		}
		resp = errorResponse(ae.code)
	}
	w.cur.out <- resp
}

// handle passes one decrypted request to the worker and waits for its response.
func (w *apiWorker) handle(j *job, plain []byte) *pb.Response {
	out := make(chan *pb.Response, 1)
	select {
	case w.in <- delivery{j: j, req: plain, out: out}:
	case <-w.cn.ctx.Done():
		return errorResponse(codeGeneric)
	}
	select {
	case r := <-out:
		return r
	case <-w.cn.ctx.Done():
		return errorResponse(codeGeneric)
	}
}

// next sends resp for the request in hand and waits for the host's next request.
func (w *apiWorker) next(resp *pb.Response) (*pb.Request, error) {
	w.cur.out <- resp
	select {
	case <-w.quit:
		return nil, errGone
	case <-w.cn.ctx.Done():
		return nil, errGone
	case d := <-w.in:
		w.cur = d
	}
	req := new(pb.Request)
	if err := proto.Unmarshal(w.cur.req, req); err != nil || req.Request == nil {
		return nil, errInvalidInput
	}
	return req, nil
}

// ask puts up a confirmation screen; a rejection is errUserAbort.
func (w *apiWorker) ask(title string, lines ...string) error {
	ok, err := w.cn.ask(w.cur.j, title, lines...)
	if err != nil {
		return errGone
	}
	if !ok {
		return errUserAbort
	}
	return nil
}

func (w *apiWorker) dispatch(raw []byte) (*pb.Response, error) {
	req := new(pb.Request)
	if err := proto.Unmarshal(raw, req); err != nil || req.Request == nil {
		return nil, errInvalidInput
	}
	d := w.cn.d
	switch r := req.Request.(type) {
	case *pb.Request_DeviceInfo:
		return &pb.Response{Response: &pb.Response_DeviceInfo{DeviceInfo: &pb.DeviceInfoResponse{
			Name: "hwbridge BitBox02 emulator", Initialized: true, Version: Version,
			SecurechipModel: "ATECC608B", PasswordStretchingAlgo: "V0",
		}}}, nil
	case *pb.Request_Fingerprint:
		fp := d.wallet.Fingerprint()
		return &pb.Response{Response: &pb.Response_Fingerprint{Fingerprint: &pb.RootFingerprintResponse{
			Fingerprint: []byte{byte(fp >> 24), byte(fp >> 16), byte(fp >> 8), byte(fp)},
		}}}, nil
	case *pb.Request_BtcPub:
		return w.btcPub(r.BtcPub)
	case *pb.Request_BtcSignInit:
		return w.signTx(r.BtcSignInit)
	case *pb.Request_Btc:
		switch q := r.Btc.Request.(type) {
		case *pb.BTCRequest_SignMessage:
			return w.btcSignMessage(q.SignMessage)
		case *pb.BTCRequest_IsScriptConfigRegistered:
			return w.isRegistered(q.IsScriptConfigRegistered)
		case *pb.BTCRequest_RegisterScriptConfig:
			return w.register(q.RegisterScriptConfig)
		}
		return nil, errInvalidInput // prevtx and anti-klepto requests come only inside a flow
	case *pb.Request_Eth:
		if d.btcOnly {
			return nil, errDisabled
		}
		return w.eth(r.Eth)
	}
	return nil, errInvalidInput
}

// coinParams are a coin's network and BIP-44 coin type.
func coinParams(c pb.BTCCoin) (*chaincfg.Params, uint32, error) {
	switch c {
	case pb.BTCCoin_BTC:
		return &chaincfg.MainNetParams, 0, nil
	case pb.BTCCoin_TBTC:
		return &chaincfg.TestNet3Params, 1, nil
	case pb.BTCCoin_RBTC:
		return &chaincfg.RegressionNetParams, 1, nil
	}
	return nil, 0, errInvalidInput // no Litecoin in the emulator
}

const hardened = hdkeychain.HardenedKeyStart

// purposeOf is the BIP-44-style purpose of a single-sig script type.
func purposeOf(st pb.BTCScriptConfig_SimpleType) (uint32, emulator.ScriptKind, error) {
	switch st {
	case pb.BTCScriptConfig_P2WPKH_P2SH:
		return 49, emulator.P2SHP2WPKH, nil
	case pb.BTCScriptConfig_P2WPKH:
		return 84, emulator.P2WPKH, nil
	case pb.BTCScriptConfig_P2TR:
		return 86, emulator.P2TR, nil
	}
	return 0, 0, errInvalidInput
}

// validAccount checks purpose'/coin'/account' as the firmware's keypath checks do
// (hww/api/bitcoin/keypath.rs: the purpose of the script type, the coin's coin type,
// account below 100).
func validAccount(kp []uint32, purpose, coinType uint32) bool {
	return len(kp) >= 3 && kp[0] == purpose+hardened && kp[1] == coinType+hardened &&
		kp[2] >= hardened && kp[2] < hardened+100
}

// usualXPubPath is keypath.rs validate_xpub: a single-sig account (49', 84', 86'), a
// multisig account (48'/coin'/account'[/1' or /2']) or m/45'.
func usualXPubPath(kp []uint32, coinType uint32) bool {
	if len(kp) == 1 && kp[0] == 45+hardened {
		return true
	}
	if len(kp) == 4 && kp[0] == 48+hardened && (kp[3] == 1+hardened || kp[3] == 2+hardened) {
		return validAccount(kp[:3], 48, coinType)
	}
	if len(kp) != 3 {
		return false
	}
	for _, p := range []uint32{48, 49, 84, 86} {
		if validAccount(kp, p, coinType) {
			return true
		}
	}
	return false
}

// validAddressPath checks a full receive or change path below a valid account.
func validAddressPath(kp []uint32, purpose, coinType uint32) bool {
	return len(kp) == 5 && validAccount(kp, purpose, coinType) && kp[3] <= 1 && kp[4] < 10000
}

func (w *apiWorker) btcPub(r *pb.BTCPubRequest) (*pb.Response, error) {
	net, coinType, err := coinParams(r.GetCoin())
	if err != nil {
		return nil, err
	}
	d := w.cn.d
	pub := func(s string) *pb.Response {
		return &pb.Response{Response: &pb.Response_Pub{Pub: &pb.PubResponse{Pub: s}}}
	}
	switch o := r.Output.(type) {
	case *pb.BTCPubRequest_XpubType:
		var version []byte
		switch o.XpubType {
		case pb.BTCPubRequest_XPUB:
			version = chaincfg.MainNetParams.HDPublicKeyID[:]
		case pb.BTCPubRequest_TPUB:
			version = chaincfg.TestNet3Params.HDPublicKeyID[:]
		default:
			return nil, errInvalidInput // SLIP-132 versions: not emulated
		}
		kp := r.GetKeypath()
		if len(kp) > 10 {
			return nil, errInvalidInput
		}
		// As the firmware (bitcoin.rs xpub, keypath.rs validate_xpub): account keypaths of the
		// single-sig and multisig script types and m/45' are exported at once, anything else
		// after the person accepts a warning.
		unusual := !usualXPubPath(kp, coinType)
		if unusual {
			title := "Export xpub"
			if r.GetDisplay() {
				title = "xpub"
			}
			if err := w.ask(title, "Warning: unusual keypath "+hdpath.Path(kp).String()+". Proceed only if you know what you are doing."); err != nil {
				return nil, err
			}
		}
		k, err := d.wallet.Public(hdpath.Path(kp), version)
		if err != nil {
			return nil, errInvalidInput
		}
		x := k.String()
		if r.GetDisplay() {
			title := ""
			if !unusual && len(kp) >= 3 {
				title = "Bitcoin account #" + strconv.Itoa(int(kp[2]-hardened+1))
			}
			if err := w.ask(title, x); err != nil {
				return nil, err
			}
		}
		return pub(x), nil
	case *pb.BTCPubRequest_ScriptConfig:
		st, ok := o.ScriptConfig.GetConfig().(*pb.BTCScriptConfig_SimpleType_)
		if !ok {
			return nil, errInvalidInput // multisig and policies need registration: not emulated
		}
		purpose, kind, err := purposeOf(st.SimpleType)
		if err != nil {
			return nil, err
		}
		kp := r.GetKeypath()
		if !validAddressPath(kp, purpose, coinType) {
			return nil, errInvalidInput
		}
		addr, err := w.address(kp, kind, net)
		if err != nil {
			return nil, err
		}
		if r.GetDisplay() {
			if err := w.ask("Receive address", addr); err != nil {
				return nil, err
			}
		}
		return pub(addr), nil
	}
	return nil, errInvalidInput
}

func (w *apiWorker) address(kp []uint32, kind emulator.ScriptKind, net *chaincfg.Params) (string, error) {
	k, err := w.cn.d.wallet.PubKey(hdpath.Path(kp))
	if err != nil {
		return "", errGeneric
	}
	a, err := emulator.Address(k, kind, net)
	if err != nil {
		return "", errGeneric
	}
	return a.EncodeAddress(), nil
}
