package hwi

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/hwbridge/hwbridge/chains/bitcoin"
	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// Run runs one command line (the arguments after "hwi"); stdin serves --stdin. Answers and
// device errors are printed as HWI's JSON and return nil; a usage error prints its JSON and
// returns a *UsageError; only a failure to write stdout returns another error.
func (s *Signer) Run(ctx context.Context, args []string, stdin io.Reader) error {
	stderr := s.warnOut()
	fs := flag.NewFlagSet("hwbridge hwi", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		fingerprint, chain, devPath, devType, password string
		useStdin, debug, expert, emulators, stdinPass  bool
	)
	fs.StringVar(&fingerprint, "fingerprint", "", "the master key fingerprint of the device (8 hex digits)")
	fs.StringVar(&fingerprint, "f", "", "short for --fingerprint")
	fs.StringVar(&chain, "chain", "main", "main, test, testnet4, signet or regtest")
	fs.BoolVar(&useStdin, "stdin", false, "read the rest of the command line from stdin")
	fs.StringVar(&devPath, "device-path", "", "device path (hid:, usb:, udp:, tcp:)")
	fs.StringVar(&devPath, "d", "", "short for --device-path")
	fs.StringVar(&devPath, "device", "", "device path (hid:, usb:, udp:, tcp:)")
	fs.StringVar(&devType, "device-type", "", "accepted for HWI compatibility; the path says the type")
	fs.StringVar(&devType, "t", "", "short for --device-type")
	fs.StringVar(&password, "password", "", "a Trezor's BIP-39 passphrase (through hwbridged: entered once for the session)")
	fs.StringVar(&password, "p", "", "short for --password")
	fs.BoolVar(&stdinPass, "stdinpass", false, "accepted for HWI compatibility; unused")
	fs.BoolVar(&debug, "debug", false, "accepted for HWI compatibility; use HWBRIDGE_DEBUG=1")
	fs.BoolVar(&expert, "expert", false, "getxpub: also decode the key (testnet, depth, parent_fingerprint, child_num, chaincode, pubkey)")
	fs.BoolVar(&emulators, "emulators", false, "also list the emulators at HWI's addresses ("+TrezorEmulatorPath+", "+LedgerEmulatorPath+", "+ColdcardEmulatorPath+") when they answer")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: hwbridge hwi [--fingerprint FP] [--chain main|test|testnet4|signet|regtest] [--stdin] [--emulators] [--device PATH] COMMAND")
		fmt.Fprintln(stderr, "commands: "+strings.Join(hwiCommands, " | "))
		fs.PrintDefaults()
	}
	usage := func(format string, a ...any) error {
		msg := fmt.Sprintf(format, a...)
		if err := s.reply(map[string]any{"error": "hwbridge hwi: error: " + msg, "code": CodeMissingArguments}); err != nil {
			return err
		}
		return &UsageError{Msg: "hwi: " + msg}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return s.reply(map[string]any{"error": "Help text requested", "code": CodeHelpText})
		}
		return usage("%v", err)
	}
	rest := fs.Args()
	if useStdin {
		extra, err := readStdinArgs(stdin)
		if err != nil {
			return usage("--stdin: %v", err)
		}
		// Global flags may come over stdin too, as with HWI's argparse.
		if err := fs.Parse(append(rest, extra...)); err != nil {
			return usage("%v", err)
		}
		rest = fs.Args()
	}
	net, err := bitcoin.CoreChain(chain)
	if err != nil {
		return usage("argument --chain: invalid choice: %q (choose from %s)", chain, bitcoin.CoreChainNames)
	}
	s.net = net
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "password" || f.Name == "p" {
			s.passphrase = &password
		}
	})
	if s.passphrase != nil && s.Unlock == nil {
		ctx = device.WithPassphrase(ctx, password) // for this call only, as HWI
	}
	s.path = devPath
	s.emulators = emulators
	s.Warn = stderr
	if fingerprint != "" {
		if _, ok := parseFingerprint(strings.ToLower(fingerprint)); !ok {
			return usage("--fingerprint %q: want 8 hex digits", fingerprint)
		}
		s.fingerprint = strings.ToLower(fingerprint)
	}
	if len(rest) == 0 {
		return usage("the following arguments are required: command")
	}
	cmd, cargs := rest[0], rest[1:]
	cfs := flag.NewFlagSet("hwbridge hwi "+cmd, flag.ContinueOnError)
	cfs.SetOutput(stderr)
	var (
		account            int
		desc, addrType     string
		registration       string
		index, multipath   int
		change             bool
		kpPath             string
		internal, kpAll    bool
		keypool, noKeypool bool
	)
	var posNames []string // positional arguments, in order (all required)
	switch cmd {
	case "enumerate", "promptpin", "togglepassphrase":
	case "installudevrules":
		cfs.String("location", "/etc/udev/rules.d/", "accepted for HWI compatibility; hwbridge udev install --path chooses the file")
	case "getmasterxpub":
		cfs.StringVar(&addrType, "addr-type", "wit", "legacy, sh_wit, wit or tap")
		cfs.IntVar(&account, "account", 0, "BIP-44 account")
	case "getxpub":
		posNames = []string{"path"}
	case "signmessage":
		posNames = []string{"message", "path"}
	case "sendpin":
		posNames = []string{"pin"}
	case "getkeypool":
		cfs.BoolVar(&keypool, "keypool", false, "import the keys to the keypool (the default)")
		cfs.BoolVar(&noKeypool, "nokeypool", false, "do not import the keys to the keypool")
		cfs.BoolVar(&internal, "internal", false, "change keys")
		cfs.StringVar(&addrType, "addr-type", "wit", "legacy, sh_wit, wit or tap")
		cfs.BoolVar(&kpAll, "all", false, "every standard address type")
		cfs.IntVar(&account, "account", 0, "BIP-43 account")
		cfs.StringVar(&kpPath, "path", "", "derivation path ending in /*, e.g. m/84h/0h/0h/1/*")
		posNames = []string{"start", "end"}
	case "getdescriptors":
		cfs.IntVar(&account, "account", 0, "BIP-44 account")
	case "displayaddress":
		cfs.StringVar(&desc, "desc", "", "output descriptor of the address")
		cfs.StringVar(&kpPath, "path", "", "BIP-32 path of the address's key, e.g. m/84h/0h/0h/0/0")
		cfs.StringVar(&addrType, "addr-type", "wit", "with --path: legacy, sh_wit, wit or tap")
		cfs.StringVar(&registration, "registration", "", "registration returned by the registerdescriptor command (BIP-388 policy)")
		cfs.IntVar(&index, "index", 0, "with --registration: the address index")
		cfs.IntVar(&multipath, "multipath-index", 0, "with --registration: the multipath index (0 receive, 1 change)")
		cfs.BoolVar(&change, "change", false, "with --registration: the change branch (--multipath-index 1)")
	case "registerdescriptor":
		posNames = []string{"name", "descriptor"}
	case "signtx":
		posNames = []string{"psbt"}
	default:
		return usage("argument command: invalid choice: %q (choose from %s)", cmd, strings.Join(hwiCommandNames(), ", "))
	}
	pos, err := parseInterspersed(cfs, cargs)
	if err != nil {
		return usage("%v", err)
	}
	set := map[string]bool{}
	cfs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var kpRange [2]int
	switch {
	case len(pos) < len(posNames):
		return usage("%s: the following arguments are required: %s", cmd, strings.Join(posNames[len(pos):], ", "))
	case len(pos) > len(posNames):
		return usage("unrecognized arguments: %s", strings.Join(pos[len(posNames):], " "))
	case cmd == "displayaddress" && desc == "" && kpPath == "" && registration == "":
		return usage("displayaddress: one of the arguments --desc --path --registration is required")
	case cmd == "displayaddress" && desc != "" && kpPath != "":
		return usage("argument --path: not allowed with argument --desc")
	case cmd == "displayaddress" && registration != "" && (desc != "" || kpPath != ""):
		return usage("argument --registration: not allowed with argument --desc or --path")
	case change && set["multipath-index"]:
		return usage("argument --change: not allowed with argument --multipath-index")
	case account < 0 || account >= int(hdpath.Hardened):
		return usage("--account %d: out of range", account)
	case addrType != "" && !slices.Contains(hwiAddrTypes, addrType):
		return usage("argument --addr-type: invalid choice: %q (choose from %s)", addrType, strings.Join(hwiAddrTypes, ", "))
	case keypool && noKeypool:
		return usage("argument --nokeypool: not allowed with argument --keypool")
	case kpAll && set["addr-type"]:
		return usage("argument --all: not allowed with argument --addr-type")
	case cmd == "getkeypool":
		for i := range kpRange {
			n, err := strconv.Atoi(pos[i])
			if err != nil {
				return usage("argument %s: invalid int value: %q", posNames[i], pos[i])
			}
			kpRange[i] = n
		}
	}

	var result any
	switch cmd {
	case "enumerate":
		result, err = s.enumerate(ctx)
	case "installudevrules":
		err = errorf(CodeUnavailableAction, "hwbridge hwi does not install udev rules: run sudo \"$(command -v hwbridge)\" udev install (or hwbridge udev install --print to see them)")
	default:
		var d device.Device
		d, err = s.find(ctx)
		var appBefore string
		if err == nil && switchingCommands[cmd] {
			appBefore = s.openApp(ctx, d)
		}
		if err == nil {
			switch cmd {
			case "getmasterxpub":
				result, err = s.getMasterXPub(ctx, d, addrType, uint32(account))
			case "getxpub":
				result, err = s.getXPub(ctx, d, pos[0], expert)
			case "signmessage":
				result, err = s.signMessage(ctx, d, pos[0], pos[1])
			case "getkeypool":
				req := keypoolRequest{path: kpPath, start: kpRange[0], end: kpRange[1], internal: internal,
					keypool: !noKeypool, account: uint32(account), addrType: addrType, all: kpAll}
				result, err = s.getKeypool(ctx, d, req)
			case "getdescriptors":
				result, err = s.getDescriptors(ctx, d, uint32(account))
			case "displayaddress":
				var idx, mp *int
				if set["index"] {
					idx = &index
				}
				if change {
					multipath = 1
				}
				if set["multipath-index"] || change {
					mp = &multipath
				}
				if registration != "" || idx != nil || mp != nil {
					result, err = s.displayPolicy(ctx, d, registration, idx, mp)
				} else if kpPath != "" {
					result, err = s.displayPath(ctx, d, kpPath, addrType)
				} else {
					result, err = s.displayAddress(ctx, d, desc)
				}
			case "signtx":
				result, err = s.signTx(ctx, d, pos[0])
			case "registerdescriptor":
				result, err = s.registerDescriptor(ctx, d, pos[0], pos[1])
			case "promptpin", "sendpin", "togglepassphrase":
				pin := ""
				if cmd == "sendpin" {
					pin = pos[0]
				}
				result, err = s.pinCommand(ctx, d, cmd, pin)
			}
			err = s.ledgerRefusal(ctx, d, err)
			if appBefore != "" {
				if now := s.openApp(ctx, d); now != "" && now != appBefore {
					// HWI leaves the device in the app it opened without a word.
					fmt.Fprintf(s.warnOut(), "hwbridge hwi: the Ledger now has the %s app open (it had %s): open %s again for what used it\n", now, appBefore, appBefore)
				}
			}
		}
	}
	if err != nil {
		return s.replyError(err)
	}
	return s.reply(result)
}

// hwiCommands are the commands hwbridge hwi answers, with their arguments.
var hwiCommands = []string{
	"enumerate",
	"getmasterxpub [--addr-type T] [--account N]",
	"getxpub PATH",
	"signmessage MESSAGE PATH",
	"getkeypool [--keypool|--nokeypool] [--internal] [--addr-type T|--all] [--account N] [--path P] START END",
	"getdescriptors [--account N]",
	"displayaddress (--desc DESC | --path P [--addr-type T] | --registration R --index N [--multipath-index N|--change])",
	"registerdescriptor NAME DESCRIPTOR",
	"signtx PSBT",
	"promptpin", "sendpin PIN", "togglepassphrase", "installudevrules",
}

func hwiCommandNames() []string {
	var out []string
	for _, c := range hwiCommands {
		out = append(out, strings.Fields(c)[0])
	}
	return out
}

// hwiAddrTypes are HWI's AddressType names (hwilib/common.py), as --addr-type takes them.
var hwiAddrTypes = []string{"legacy", "wit", "sh_wit", "tap"}

func addrTypeScript(t string) device.ScriptType {
	switch t {
	case "legacy":
		return device.ScriptPKH
	case "sh_wit":
		return device.ScriptSHWPKH
	case "tap":
		return device.ScriptTR
	}
	return device.ScriptWPKH
}

// reply prints v as one line of JSON.
func (s *Signer) reply(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(s.Out, "%s\n", b)
	return err
}

func (s *Signer) replyError(err error) error {
	return s.reply(map[string]any{"error": err.Error(), "code": Code(err)})
}

// switchingCommands are the commands that act at the device, so a Ledger may open the app
// they need (device.WithAppSwitch); the others never change the open app.
var switchingCommands = map[string]bool{"signmessage": true, "displayaddress": true, "signtx": true, "registerdescriptor": true}

// openApp names the app a Ledger has open ("" for other devices, or when unknown).
func (s *Signer) openApp(ctx context.Context, d device.Device) string {
	f, err := d.Features(ctx)
	if err != nil || f.Family != device.FamilyLedger {
		return ""
	}
	return f.App
}
