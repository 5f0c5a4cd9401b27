package trezor_test

// Transcripts recorded from Trezor One firmware (legacy/v1.13.1, built from
// trezor-firmware's public sources, run as its UDP emulator; see
// testdata/trezor-one-1.13.1/README.md) are replayed against the driver, and replayed into
// hwemu's model 1 persona to pin its answers to the firmware's.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/tyler-smith/go-bip39"
	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/devicetest"
	"github.com/hwbridge/hwbridge/device/trezor"
	"github.com/hwbridge/hwbridge/emulator"
	trezoremu "github.com/hwbridge/hwbridge/emulator/trezor"
	"github.com/hwbridge/hwbridge/internal/hdpath"
	"github.com/hwbridge/hwbridge/internal/trezorpb"
	"github.com/hwbridge/hwbridge/transport"
)

// transcriptDir holds the recorded exchanges, one file per scenario.
const transcriptDir = "testdata/trezor-one-1.13.1"

// message is one whole v1 message of a transcript.
type message struct {
	host bool // host → device
	typ  uint16
	body []byte
}

func (m message) String() string {
	dir := "<="
	if m.host {
		dir = "=>"
	}
	return fmt.Sprintf("%s %s %x", dir, trezorpb.MessageType(m.typ), m.body)
}

// readTranscript parses "=> TYPE HEX" / "<= TYPE HEX" lines ("//" lines are comments). TYPE
// is the MessageType name or number; HEX is the protobuf body (may be empty).
func readTranscript(t *testing.T, path string) []message {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []message
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "//") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 2 || (fields[0] != "=>" && fields[0] != "<=") {
			t.Fatalf("%s:%d: %q", path, n, line)
		}
		typ, ok := trezorpb.MessageType_value[fields[1]]
		if !ok {
			v, err := strconv.ParseUint(fields[1], 10, 16)
			if err != nil {
				t.Fatalf("%s:%d: message type %q", path, n, fields[1])
			}
			typ = int32(v)
		}
		var body []byte
		if len(fields) > 2 {
			if body, err = hex.DecodeString(fields[2]); err != nil {
				t.Fatalf("%s:%d: %v", path, n, err)
			}
		}
		out = append(out, message{host: fields[0] == "=>", typ: uint16(typ), body: body})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// replayLink is a transport.Link that plays a transcript: each message the host writes
// must equal the next "=>" entry, and the "<=" entries after it are what it reads.
type replayLink struct {
	t    *testing.T
	msgs []message
	next int
	wr   transport.V1Reader
	out  [][]byte // device packets not read yet
	mu   sync.Mutex
}

func (r *replayLink) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	done, err := r.wr.Add(p)
	if err != nil {
		return 0, err
	}
	if !done {
		return len(p), nil
	}
	typ, body := r.wr.Message()
	got := message{host: true, typ: typ, body: body}
	if r.next >= len(r.msgs) || !r.msgs[r.next].host {
		r.t.Errorf("host sent %v after the end of its part of the transcript (entry %d)", got, r.next)
		return 0, io.ErrClosedPipe
	}
	want := r.msgs[r.next]
	if want.typ != got.typ || !bytes.Equal(want.body, got.body) {
		r.t.Errorf("entry %d: host sent\n %v\nthe transcript has\n %v", r.next, got, want)
		return 0, io.ErrClosedPipe
	}
	r.next++
	for r.next < len(r.msgs) && !r.msgs[r.next].host {
		pkts, err := transport.V1Packets(r.msgs[r.next].typ, r.msgs[r.next].body)
		if err != nil {
			r.t.Fatal(err)
		}
		r.out = append(r.out, pkts...)
		r.next++
	}
	return len(p), nil
}

func (r *replayLink) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.out) == 0 {
		return 0, fmt.Errorf("replay: the host reads, but the transcript has no device message here (entry %d): %w", r.next, os.ErrDeadlineExceeded)
	}
	n := copy(p, r.out[0])
	r.out = r.out[1:]
	return n, nil
}

func (r *replayLink) SetDeadline(time.Time) error { return nil }
func (r *replayLink) Close() error                { return nil }

// scenario is a run of driver calls with its checks; the same function ran against the
// firmware when the transcript was recorded.
type scenario struct {
	name string
	// decisions are the user's answers to the confirmation screens, in order; screens
	// past the end are approved.
	decisions []bool
	run       func(t testing.TB, ctx context.Context, d *trezor.Driver) error
	// passphrase, when set: the device has passphrase protection on (turned on with
	// ApplySettings before recording, outside the transcript) and the driver answers
	// PassphraseRequest with it.
	passphrase string
	// raw, instead of run: host messages sent as they are (not through the driver), each
	// answered until a reply that is not a ButtonRequest; only the emulator is compared.
	raw []message
}

// driverFor opens the driver a scenario runs with.
func (sc scenario) driverFor(link transport.Link) *trezor.Driver {
	var opts trezor.Options
	if sc.passphrase != "" {
		opts.Passphrase = func(context.Context) (string, error) { return sc.passphrase, nil }
	}
	return trezor.New(link, opts)
}

func expectEq(what, got, want string) error {
	if got != want {
		return fmt.Errorf("%s: %s, want %s", what, got, want)
	}
	return nil
}

var ethPath = hdpath.MustParse("m/44'/60'/0'/0/0")

// trezorOneScenarios are the recorded scenarios (testdata/trezor-one-1.13.1/<name>.txt).
var trezorOneScenarios = []scenario{
	{name: "features", run: func(_ testing.TB, ctx context.Context, d *trezor.Driver) error {
		f, err := d.Features(ctx)
		if err != nil {
			return err
		}
		if f.Model != "1" || f.Version != "1.13.1" || !f.Capabilities.EIP712Hash || !f.Capabilities.Taproot {
			return fmt.Errorf("features %+v", f)
		}
		fp, err := d.Fingerprint(ctx)
		if err != nil {
			return err
		}
		return expectEq("fingerprint", fp.String(), devicetest.VectorFingerprint.String())
	}},
	{name: "xpub", run: func(_ testing.TB, ctx context.Context, d *trezor.Driver) error {
		for _, pw := range [][2]string{{"m/44'/0'/0'", devicetest.VectorXPub44}, {"m/86'/0'/0'", devicetest.VectorXPub86}} { // in the recorded order
			p, want := pw[0], pw[1]
			x, err := d.XPub(ctx, device.XPubRequest{Path: hdpath.MustParse(p)})
			if err != nil {
				return err
			}
			if err := expectEq("xpub "+p, x, want); err != nil {
				return err
			}
		}
		return nil
	}},
	{name: "address", run: func(_ testing.TB, ctx context.Context, d *trezor.Driver) error {
		for _, a := range []struct {
			st      device.ScriptType
			path    string
			want    string
			display bool
		}{
			{device.ScriptPKH, "m/44'/0'/0'/0/0", devicetest.VectorAddr44, false},
			{device.ScriptSHWPKH, "m/49'/0'/0'/0/0", devicetest.VectorAddr49, false},
			{device.ScriptWPKH, "m/84'/0'/0'/0/0", devicetest.VectorAddr84, false},
			{device.ScriptTR, "m/86'/0'/0'/0/0", devicetest.VectorAddr86, false},
			{device.ScriptWPKH, "m/84'/0'/0'/0/0", devicetest.VectorAddr84, true},
		} {
			got, err := d.Address(ctx, device.AddressRequest{Chain: device.ChainBTC, Path: hdpath.MustParse(a.path), Script: a.st, Network: &chaincfg.MainNetParams, Display: a.display})
			if err != nil {
				return err
			}
			if err := expectEq("address "+a.path, got, a.want); err != nil {
				return err
			}
		}
		for _, display := range []bool{false, true} {
			got, err := d.Address(ctx, device.AddressRequest{Chain: device.ChainETH, Path: ethPath, Display: display})
			if err != nil {
				return err
			}
			if err := expectEq("eth address", got, devicetest.VectorETHAddr); err != nil {
				return err
			}
		}
		return nil
	}},
	{name: "sign-message", run: func(_ testing.TB, ctx context.Context, d *trezor.Driver) error {
		msg := []byte("hwbridge transcript")
		s, err := d.SignMessage(ctx, device.MessageRequest{Chain: device.ChainBTC, Path: hdpath.MustParse("m/84'/0'/0'/0/0"), Message: msg, Script: device.ScriptWPKH, Network: &chaincfg.MainNetParams})
		if err != nil {
			return err
		}
		addr, err := device.RecoverBitcoinMessage(msg, s.Signature, device.ScriptWPKH, &chaincfg.MainNetParams)
		if err != nil {
			return err
		}
		if err := expectEq("btc message signer", addr, devicetest.VectorAddr84); err != nil {
			return err
		}
		e, err := d.SignMessage(ctx, device.MessageRequest{Chain: device.ChainETH, Path: ethPath, Message: msg})
		if err != nil {
			return err
		}
		return recovers("eth message", crypto.Keccak256([]byte(fmt.Sprintf("\x19Ethereum Signed Message:\n%d%s", len(msg), msg))), e.Signature)
	}},
	{name: "eth-tx", run: func(_ testing.TB, ctx context.Context, d *trezor.Driver) error {
		to := common.HexToAddress("0x1d1c328764a41bda0492b66baa30c4a339ff85ef")
		chain := big.NewInt(1)
		for _, tx := range []*types.Transaction{
			types.NewTx(&types.LegacyTx{Nonce: 3, GasPrice: big.NewInt(2e9), Gas: 21000, To: &to, Value: big.NewInt(1e16)}),
			types.NewTx(&types.DynamicFeeTx{ChainID: chain, Nonce: 4, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(3e9), Gas: 60000, To: &to, Value: big.NewInt(5e15), Data: bytes.Repeat([]byte{0xab}, 1500)}),
		} {
			signed, err := d.SignEthTx(ctx, ethPath, tx, chain)
			if err != nil {
				return err
			}
			from, err := types.Sender(types.LatestSignerForChainID(chain), signed)
			if err != nil {
				return err
			}
			if err := expectEq(fmt.Sprintf("type %d tx sender", tx.Type()), from.Hex(), devicetest.VectorETHAddr); err != nil {
				return err
			}
		}
		return nil
	}},
	{name: "typed-data", run: func(_ testing.TB, ctx context.Context, d *trezor.Driver) error {
		td, err := devicetest.ParseTypedData()
		if err != nil {
			return err
		}
		sig, err := d.SignTypedData(ctx, ethPath, td)
		if err != nil {
			return err
		}
		return recovers("typed data", device.TypedDataDigest(td.DomainSeparator, td.MessageHash), sig)
	}},
	// NO on an address screen: the Trezor One shows the QR code and asks again, then the
	// address again (fsm_layoutAddress); YES on the third screen returns the address.
	{name: "address-no", decisions: []bool{false, false, true}, run: func(_ testing.TB, ctx context.Context, d *trezor.Driver) error {
		got, err := d.Address(ctx, device.AddressRequest{Chain: device.ChainBTC, Path: hdpath.MustParse("m/84'/0'/0'/0/0"), Script: device.ScriptWPKH, Network: &chaincfg.MainNetParams, Display: true})
		if err != nil {
			return err
		}
		return expectEq("address after NO, NO, YES", got, devicetest.VectorAddr84)
	}},
	{name: "sign-psbt", run: func(t testing.TB, ctx context.Context, d *trezor.Driver) error {
		p := devicetest.NewSpend(t, ctx, d, &chaincfg.MainNetParams,
			[]device.ScriptType{device.ScriptWPKH, device.ScriptPKH, device.ScriptSHWPKH, device.ScriptTR}, devicetest.SpendOptions{Change: device.ScriptWPKH})
		if err := d.SignPSBT(ctx, p, &chaincfg.MainNetParams); err != nil {
			return err
		}
		_, err := devicetest.FinalizeAndExecute(p)
		return err
	}},
	// Host passphrase entry on the Trezor One (it has no on-device entry): PassphraseRequest,
	// PassphraseAck{passphrase, on_device false}, then the passphrase wallet's address.
	{name: "passphrase", passphrase: "TREZOR", run: func(_ testing.TB, ctx context.Context, d *trezor.Driver) error {
		f, err := d.Features(ctx)
		if err != nil {
			return err
		}
		if !f.Passphrase {
			return fmt.Errorf("features say no passphrase protection: %+v", f)
		}
		got, err := d.Address(ctx, device.AddressRequest{Chain: device.ChainBTC, Path: hdpath.MustParse("m/84'/0'/0'/0/0"), Script: device.ScriptWPKH, Network: &chaincfg.MainNetParams})
		if err != nil {
			return err
		}
		want, err := wpkhAddress(devicetest.Mnemonic, "TREZOR", "m/84'/0'/0'/0/0")
		if err != nil {
			return err
		}
		return expectEq("address with passphrase", got, want)
	}},
	// What the Trezor One refuses, and how: struct-streamed EIP-712 (core's message), an
	// ApplySettings with nothing in it, on-device passphrase entry it does not have, a
	// message id it does not know, and a ButtonAck nobody asked for.
	{name: "refusals", raw: []message{
		{host: true, typ: uint16(trezorpb.MessageType_MessageType_Initialize)},
		{host: true, typ: uint16(trezorpb.MessageType_MessageType_EthereumSignTypedData), body: mustHex("08ac8080800808bc808080080880808080080800080012044d61696c")},
		{host: true, typ: uint16(trezorpb.MessageType_MessageType_ApplySettings)},
		{host: true, typ: uint16(trezorpb.MessageType_MessageType_ApplySettings), body: []byte{0x40, 0x01}},
		{host: true, typ: 999},
		{host: true, typ: uint16(trezorpb.MessageType_MessageType_ButtonAck)},
		{host: true, typ: uint16(trezorpb.MessageType_MessageType_Cancel)},
	}},
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// wpkhAddress derives a p2wpkh address from a mnemonic and passphrase (BIP-39, BIP-32).
func wpkhAddress(mnemonic, passphrase, path string) (string, error) {
	k, err := hdkeychain.NewMaster(bip39.NewSeed(mnemonic, passphrase), &chaincfg.MainNetParams)
	if err != nil {
		return "", err
	}
	for _, c := range hdpath.MustParse(path) {
		if k, err = k.Derive(c); err != nil {
			return "", err
		}
	}
	pub, err := k.ECPubKey()
	if err != nil {
		return "", err
	}
	a, err := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(pub.SerializeCompressed()), &chaincfg.MainNetParams)
	if err != nil {
		return "", err
	}
	return a.EncodeAddress(), nil
}

func recovers(what string, digest, sig []byte) error {
	if len(sig) != 65 {
		return fmt.Errorf("%s: signature of %d bytes", what, len(sig))
	}
	s := bytes.Clone(sig)
	if s[64] >= 27 {
		s[64] -= 27
	}
	pub, err := crypto.SigToPub(digest, s)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return expectEq(what+" signer", crypto.PubkeyToAddress(*pub).Hex(), devicetest.VectorETHAddr)
}

// TestReplayTrezorOne replays each recorded exchange against the driver: the driver must
// send exactly what it sent to the firmware, and its results (checked against the vectors)
// must hold on the firmware's answers.
func TestReplayTrezorOne(t *testing.T) {
	for _, sc := range trezorOneScenarios {
		if sc.run == nil {
			continue // a raw exchange: nothing of the driver's in it
		}
		t.Run(sc.name, func(t *testing.T) {
			msgs := readTranscript(t, filepath.Join(transcriptDir, sc.name+".txt"))
			link := &replayLink{t: t, msgs: msgs}
			d := sc.driverFor(link)
			if err := sc.run(t, context.Background(), d); err != nil {
				t.Fatal(err)
			}
			if link.next != len(msgs) {
				t.Fatalf("the driver stopped at entry %d of %d", link.next, len(msgs))
			}
		})
	}
}

// featuresDiffer lists the Features fields in which hwemu's Trezor One knowingly differs
// from the recorded firmware, and why.
var featuresDiffer = map[string]string{
	"device_id":       "a random uuid on the firmware, EMU<fingerprint> on hwemu",
	"session_id":      "random per Initialize on both",
	"bootloader_hash": "the firmware emulator hashes its own empty bootloader area; hwemu has none",
	"imported":        "the recording loaded the seed with LoadDevice (which sets it); a device set up by reset or recovery omits it, as hwemu does",
	"label":           "set at recording time",
	"flags":           "LoadDevice leaves storage flags stored on the firmware emulator",
}

// TestEmulatorMatchesTrezorOne sends the recorded host messages to hwemu's model 1 persona
// and compares every answer with the firmware's: byte for byte (signatures included, both
// use RFC 6979 nonces), except the Features fields listed in featuresDiffer.
func TestEmulatorMatchesTrezorOne(t *testing.T) {
	for _, sc := range trezorOneScenarios {
		t.Run(sc.name, func(t *testing.T) {
			msgs := readTranscript(t, filepath.Join(transcriptDir, sc.name+".txt"))
			approver := emulator.NewApprover(emulator.PolicyPrompt)
			emu, err := trezoremu.New(trezoremu.Options{Model: trezoremu.ModelOne, Approver: approver, PassphraseProtection: sc.passphrase != ""})
			if err != nil {
				t.Fatal(err)
			}
			acks := 0
			defer emu.Close()
			link := emu.Pipe()
			defer link.Close()
			for i := 0; i < len(msgs); {
				m := msgs[i]
				if !m.host {
					t.Fatalf("entry %d: device message %v with no host message before it", i, m)
				}
				if err := transport.WriteV1(link, m.typ, m.body); err != nil {
					t.Fatal(err)
				}
				if trezorpb.MessageType(m.typ) == trezorpb.MessageType_MessageType_ButtonAck {
					yes := acks >= len(sc.decisions) || sc.decisions[acks]
					acks++
					if err := approver.Press(yes); err != nil {
						t.Fatal(err)
					}
				}
				i++
				for ; i < len(msgs) && !msgs[i].host; i++ {
					_ = link.SetDeadline(time.Now().Add(10 * time.Second))
					typ, body, err := transport.ReadV1(link)
					if err != nil {
						t.Fatalf("entry %d: hwemu did not answer: %v", i, err)
					}
					if err := sameAnswer(msgs[i], message{typ: typ, body: body}); err != nil {
						t.Errorf("entry %d (%s): %v", i, trezorpb.MessageType(msgs[i].typ), err)
					}
				}
			}
		})
	}
}

// debugPrefix is the source location a DEBUG_LINK build puts before a Failure's text.
var debugPrefix = regexp.MustCompile(`^[a-z_0-9]+\.[ch]:[0-9]+:`)

func sameAnswer(want, got message) error {
	if want.typ != got.typ {
		return fmt.Errorf("hwemu answered %s, the firmware %s", trezorpb.MessageType(got.typ), trezorpb.MessageType(want.typ))
	}
	if want.typ == uint16(trezorpb.MessageType_MessageType_TxRequest) {
		// BIP-340 signatures take fresh auxiliary randomness on the firmware: a taproot
		// signature (64 bytes) cannot repeat byte for byte. Its validity is checked by the
		// replay (FinalizeAndExecute on the firmware's) and by the conformance suite (on
		// hwemu's); here both must be 64-byte signatures for the same input.
		w, err1 := trezorpb.Unmarshal(trezorpb.MessageType(want.typ), want.body)
		g, err2 := trezorpb.Unmarshal(trezorpb.MessageType(got.typ), got.body)
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		ws, gs := w.(*trezorpb.TxRequest).GetSerialized(), g.(*trezorpb.TxRequest).GetSerialized()
		if len(ws.GetSignature()) == 64 && len(gs.GetSignature()) == 64 && ws.GetSignatureIndex() == gs.GetSignatureIndex() {
			ws.Signature, gs.Signature = nil, nil
			if !proto.Equal(w, g) {
				return fmt.Errorf("hwemu %v\nfirmware %v", g, w)
			}
			return nil
		}
	}
	if want.typ == uint16(trezorpb.MessageType_MessageType_Failure) {
		// The recording firmware is a DEBUG_LINK build, whose fsm_sendFailure prefixes the
		// text with "file.c:line:" (legacy/firmware/fsm.h); release firmware does not.
		w, err := trezorpb.Unmarshal(trezorpb.MessageType(want.typ), want.body)
		if err != nil {
			return err
		}
		wf := w.(*trezorpb.Failure)
		if m := debugPrefix.FindString(wf.GetMessage()); m != "" {
			wf.Message = proto.String(strings.TrimPrefix(wf.GetMessage(), m))
		}
		if want.body, err = proto.Marshal(wf); err != nil {
			return err
		}
	}
	if want.typ != uint16(trezorpb.MessageType_MessageType_Features) {
		if !bytes.Equal(want.body, got.body) {
			w, _ := trezorpb.Unmarshal(trezorpb.MessageType(want.typ), want.body)
			g, _ := trezorpb.Unmarshal(trezorpb.MessageType(got.typ), got.body)
			return fmt.Errorf("hwemu %v\nfirmware %v", g, w)
		}
		return nil
	}
	wm, err1 := trezorpb.Unmarshal(trezorpb.MessageType(want.typ), want.body)
	gm, err2 := trezorpb.Unmarshal(trezorpb.MessageType(got.typ), got.body)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	wf, gf := wm.(*trezorpb.Features), gm.(*trezorpb.Features)
	var diffs []string
	wr, gr := wf.ProtoReflect(), gf.ProtoReflect()
	fields := wr.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if _, ok := featuresDiffer[string(fd.Name())]; ok {
			continue
		}
		if wr.Has(fd) != gr.Has(fd) || (wr.Has(fd) && !wr.Get(fd).Equal(gr.Get(fd))) {
			diffs = append(diffs, fmt.Sprintf("%s: hwemu %v, firmware %v", fd.Name(), gr.Get(fd), wr.Get(fd)))
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("features differ:\n  %s", strings.Join(diffs, "\n  "))
	}
	return nil
}
