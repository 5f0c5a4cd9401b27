// Package external runs the devicetest conformance suite against a device outside the test
// process: Speculos (a Ledger app built from its public sources), the Trezor emulator,
// hwemu, or a real device behind one of them.
//
// The device and the one who approves its screens are named by environment variables:
//
//	HWBRIDGE_CONFORMANCE_DEVICE   tcp:HOST:PORT (Speculos' APDU port, Ledger-class),
//	                              udp:HOST:PORT (the Trezor emulator's wire port) or
//	                              keepkey:HOST:PORT (the KeepKey emulator's, default 11044)
//	HWBRIDGE_CONFORMANCE_APPROVER device          the device approves by itself (hwemu --approve auto)
//	                              speculos:URL    Speculos' REST API (e.g. http://127.0.0.1:5000):
//	                                              screens are read from /events, buttons pressed
//	                                              through /button
//	                              trezor-debug[:udp:HOST:PORT]  the Trezor (or KeepKey) debug link
//	                                              (default: the wire port + 1; KeepKey's
//	                                              DebugLinkDecision.yes_no has the bytes of
//	                                              Trezor's button YES): one DebugLinkDecision per
//	                                              ButtonRequest, never unsolicited (the legacy
//	                                              firmware answers an unsolicited one with Failure
//	                                              on the wire link)
//	                              person          a person at the device (scenarios wait for them)
//	HWBRIDGE_CONFORMANCE_GROUPS   optional: bitcoin,bitcoin-test,ethereum or all. Default: all
//	                              for a Trezor; bitcoin,ethereum for a KeepKey (no regtest coin);
//	                              for a Ledger the group of the app that is open
//	                              (Speculos runs one app and has no dashboard: QUIT_APP ends it)
//	HWBRIDGE_CONFORMANCE_RECORD   optional: a directory; each scenario's Ledger APDU exchanges
//	                              are written there as "=> command" / "<= reply" lines
//
// The device must run from devicetest.Mnemonic (Speculos: --seed "abandon … about"). App
// switching is allowed only when every group runs on a Ledger (hwemu has a dashboard).
package external

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/device/devicetest"
	"github.com/hwbridge/hwbridge/device/keepkey"
	"github.com/hwbridge/hwbridge/device/ledger"
	"github.com/hwbridge/hwbridge/device/trezor"
	"github.com/hwbridge/hwbridge/internal/keepkeypb"
	"github.com/hwbridge/hwbridge/internal/trezorpb"
	"github.com/hwbridge/hwbridge/transport"
)

// Environment variables read by FromEnv.
const (
	EnvDevice   = "HWBRIDGE_CONFORMANCE_DEVICE"
	EnvApprover = "HWBRIDGE_CONFORMANCE_APPROVER"
	EnvGroups   = "HWBRIDGE_CONFORMANCE_GROUPS"
	EnvRecord   = "HWBRIDGE_CONFORMANCE_RECORD"
)

// ErrConfig is wrapped by errors in the environment's settings.
var ErrConfig = errors.New("conformance settings")

// Config is an external device and its approver.
type Config struct {
	Device    transport.Path
	Approver  string // "device", "speculos:URL", "trezor-debug[:udp:HOST:PORT]", "person"
	Groups    []devicetest.Group
	RecordDir string
}

// FromEnv reads the settings; ok is false when EnvDevice is unset.
func FromEnv(getenv func(string) string) (cfg Config, ok bool, err error) {
	dev := getenv(EnvDevice)
	if dev == "" {
		return Config{}, false, nil
	}
	p, err := transport.ParsePath(dev)
	if err != nil || p.USB() {
		return Config{}, true, fmt.Errorf("%w: %s=%q: use tcp:HOST:PORT (Speculos), udp:HOST:PORT (Trezor emulator) or keepkey:HOST:PORT (KeepKey emulator)", ErrConfig, EnvDevice, dev)
	}
	cfg = Config{Device: p, Approver: getenv(EnvApprover), RecordDir: getenv(EnvRecord)}
	if cfg.Approver == "" {
		cfg.Approver = "device"
	}
	kind, _, _ := strings.Cut(cfg.Approver, ":")
	switch kind {
	case "device", "person", "speculos", "trezor-debug":
	default:
		return Config{}, true, fmt.Errorf("%w: %s=%q: use device, speculos:URL, trezor-debug or person", ErrConfig, EnvApprover, cfg.Approver)
	}
	if kind == "trezor-debug" && p.Scheme != transport.SchemeUDP && p.Scheme != transport.SchemeKeepKey || kind == "speculos" && p.Scheme != transport.SchemeTCP {
		return Config{}, true, fmt.Errorf("%w: approver %s does not go with %s", ErrConfig, cfg.Approver, dev)
	}
	switch g := getenv(EnvGroups); g {
	case "":
	case "all":
		cfg.Groups = []devicetest.Group{devicetest.GroupBitcoin, devicetest.GroupBitcoinTest, devicetest.GroupEthereum}
	default:
		for _, s := range strings.Split(g, ",") {
			switch gr := devicetest.Group(strings.TrimSpace(s)); gr {
			case devicetest.GroupBitcoin, devicetest.GroupBitcoinTest, devicetest.GroupEthereum:
				cfg.Groups = append(cfg.Groups, gr)
			default:
				return Config{}, true, fmt.Errorf("%w: %s: unknown group %q (bitcoin, bitcoin-test, ethereum, all)", ErrConfig, EnvGroups, s)
			}
		}
	}
	return cfg, true, nil
}

// groupOfApp is the scenario group a Ledger app serves.
func groupOfApp(app string) (devicetest.Group, bool) {
	switch app {
	case ledger.AppBitcoin, "Bitcoin Recovery":
		return devicetest.GroupBitcoin, true
	case ledger.AppBitcoinTest:
		return devicetest.GroupBitcoinTest, true
	case ledger.AppEthereum:
		return devicetest.GroupEthereum, true
	}
	return "", false
}

// Run runs the suite against cfg's device: it reads the device's features once to declare
// its capabilities and groups, then opens the device afresh for every scenario.
func Run(t *testing.T, cfg Config) {
	ctx := t.Context()
	kind, arg, _ := strings.Cut(cfg.Approver, ":")
	var appr approver = noApprover{}
	switch kind {
	case "speculos":
		s := newSpeculosApprover(arg)
		s.start(ctx, t)
		appr = s
	case "trezor-debug":
		addr := arg
		if addr == "" {
			addr = debugAddr(cfg.Device.Addr)
		} else {
			addr = strings.TrimPrefix(addr, "udp:")
		}
		appr = &trezorDebug{addr: addr}
	case "person":
		t.Log("confirm every request on the device; the suite waits up to its scenario timeout")
	}
	first := open(t, cfg, appr, false, "features")
	f, err := first.Features(ctx)
	_ = first.Close()
	if err != nil {
		t.Fatalf("features of %s: %v", cfg.Device.Scheme+":"+cfg.Device.Addr, err)
	}
	caps := devicetest.Capabilities{
		Taproot:    f.Capabilities.Taproot,
		EIP1559:    f.Capabilities.EIP1559,
		EIP712Hash: f.Capabilities.EIP712Hash,
		EIP712:     f.Capabilities.EIP712,
		Multisig:   f.Capabilities.Multisig,
		Groups:     cfg.Groups,
	}
	mayswitch := false
	switch f.Family {
	case device.FamilyLedger:
		// The app refuses malformed ERC-20 data; hashed EIP-712 needs a message hash, the
		// suite also signs domain-only data (device/ledger TestTypedHash covers the app).
		caps.RefusesMalformedERC20, caps.EIP712Hash = true, false
		if caps.Groups == nil {
			g, ok := groupOfApp(f.App)
			if !ok {
				t.Fatalf("the Ledger shows %q: open the Bitcoin, Bitcoin Test or Ethereum app (or set %s)", f.App, EnvGroups)
			}
			caps.Groups = []devicetest.Group{g}
		}
		mayswitch = len(caps.Groups) > 1
	case device.FamilyTrezor:
		caps.NeedsNonWitnessUTXO = true
	case device.FamilyKeepKey:
		caps.NoAccessList = true
		if caps.Groups == nil {
			caps.Groups = []devicetest.Group{devicetest.GroupBitcoin, devicetest.GroupEthereum}
		}
	}
	t.Logf("%s %s %s, app %q: groups %v", f.Family, f.Model, f.Version, f.App, caps.Groups)
	devicetest.Run(t, func(t *testing.T) device.Device {
		d := open(t, cfg, appr, mayswitch, t.Name())
		if f.Family == device.FamilyLedger {
			return noDomainOnly{d}
		}
		return d
	}, caps)
}

// noDomainOnly hides the EIP-712 hash capability, as caps declares.
type noDomainOnly struct{ device.Device }

func (n noDomainOnly) Features(ctx context.Context) (device.Features, error) {
	f, err := n.Device.Features(ctx)
	f.Capabilities.EIP712Hash = false
	return f, err
}

// open dials cfg's device and wraps its driver in device.Verify, as hwbridge does.
func open(t *testing.T, cfg Config, appr approver, mayswitch bool, name string) device.Device {
	t.Helper()
	path := cfg.Device.Scheme + ":" + cfg.Device.Addr
	switch cfg.Device.Scheme {
	case transport.SchemeTCP:
		link, err := transport.DialTCP(t.Context(), cfg.Device.Addr)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		var ex transport.APDUExchanger = transport.NewSpeculosExchanger(link)
		if cfg.RecordDir != "" {
			rec, err := newRecorder(ex, cfg.RecordDir, name)
			if err != nil {
				t.Fatal(err)
			}
			ex = rec // written when the driver closes it
		}
		if a, ok := appr.(*speculosApprover); ok {
			ex = a.watch(ex)
		}
		return device.Verify(ledger.New(ex, ledger.Options{OpenApp: mayswitch, Emulator: true}))
	case transport.SchemeKeepKey:
		link, err := transport.DialUDP(t.Context(), cfg.Device.Addr)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		opts := keepkey.Options{Emulator: true}
		if td, ok := appr.(*trezorDebug); ok {
			opts.OnButton = func(keepkeypb.ButtonRequestType) {
				if err := td.yes(t.Context()); err != nil {
					t.Errorf("debug link: %v", err)
				}
			}
		}
		return device.Verify(keepkey.New(link, opts))
	default:
		link, err := transport.DialUDP(t.Context(), cfg.Device.Addr)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		opts := trezor.Options{Emulator: true}
		if td, ok := appr.(*trezorDebug); ok {
			opts.OnButton = func(trezorpb.ButtonRequestType) {
				if err := td.yes(t.Context()); err != nil {
					t.Errorf("debug link: %v", err)
				}
			}
		}
		return device.Verify(trezor.New(link, opts))
	}
}

// approver answers the device's confirmation screens.
type approver interface{ kind() string }

type noApprover struct{}

func (noApprover) kind() string { return "device" }
