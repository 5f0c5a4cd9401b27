package main

// hwbridge hwi: the command-line contract Bitcoin Core's -signer runs (Bitcoin Core
// src/external_signer.cpp, doc/external-signer.md), as HWI implements it: global flags
// before the command, one line of JSON on stdout, errors as {"error": MSG, "code": N} with
// HWI's codes and exit status 0 (Core reads only the first stdout line and treats a
// non-zero exit as a failure that hides the message), usage errors with exit status 2.
//
//	bitcoind -signer="hwbridge hwi"
//	hwbridge hwi [--fingerprint FP] [--chain main|test|testnet4|signet|regtest] [--stdin] COMMAND
//	  enumerate
//	  getmasterxpub [--addr-type legacy|sh_wit|wit|tap] [--account N]
//	  getxpub PATH
//	  signmessage MESSAGE PATH
//	  getkeypool [--keypool|--nokeypool] [--internal] [--addr-type T|--all] [--account N] [--path P] START END
//	  getdescriptors [--account N]
//	  displayaddress --desc DESC
//	  signtx PSBT
//	  promptpin | sendpin PIN | togglepassphrase | installudevrules

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"

	"github.com/hwbridge/hwbridge/chains/bitcoin"
	"github.com/hwbridge/hwbridge/daemon"
	"github.com/hwbridge/hwbridge/device"
	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// HWI's error codes (hwilib/errors.py).
const (
	hwiNoDeviceType         = -1
	hwiMissingArguments     = -2
	hwiDeviceConnError      = -3
	hwiUnknownDeviceType    = -4
	hwiInvalidTx            = -5
	hwiNoPassword           = -6
	hwiBadArgument          = -7
	hwiNotImplemented       = -8
	hwiUnavailableAction    = -9
	hwiDeviceAlreadyInit    = -10
	hwiDeviceAlreadyUnlock  = -11
	hwiDeviceNotReady       = -12
	hwiUnknownError         = -13
	hwiActionCanceled       = -14
	hwiDeviceBusy           = -15
	hwiNeedToBeRoot         = -16
	hwiHelpText             = -17
	hwiDeviceNotInitialized = -18
)

// hwiError is an error with an HWI code.
type hwiError struct {
	code int
	msg  string
}

func (e *hwiError) Error() string { return e.msg }

func hwiErrorf(code int, format string, args ...any) *hwiError {
	return &hwiError{code: code, msg: fmt.Sprintf(format, args...)}
}

// hwiCode maps an error onto HWI's codes through the device error taxonomy.
func hwiCode(err error) int {
	var he *hwiError
	switch {
	case errors.As(err, &he):
		return he.code
	case errors.Is(err, device.ErrUserRejected):
		return hwiActionCanceled
	case errors.Is(err, device.ErrBusy):
		return hwiDeviceBusy
	case errors.Is(err, device.ErrLocked), errors.Is(err, device.ErrWrongApp):
		return hwiDeviceNotReady
	case isNoDevice(err), errors.Is(err, device.ErrDisconnected), errors.Is(err, device.ErrLinkLost):
		return hwiDeviceConnError
	case errors.Is(err, device.ErrInvalidInput):
		return hwiBadArgument
	case errors.Is(err, errors.ErrUnsupported):
		return hwiUnavailableAction
	}
	return hwiUnknownError
}

// hwiChains are the --chain values Bitcoin Core passes (ChainTypeToString); each is a name
// of chains/bitcoin's network table.
var hwiChains = []string{"main", "test", "testnet4", "signet", "regtest"}

// HWI's fixed emulator addresses, which --emulators probes (hwilib/devices/trezor.py's
// UdpTransport default and ledger.py's SIMULATOR_PATH).
const (
	hwiTrezorEmulatorPath = "udp:127.0.0.1:21324"
	hwiLedgerEmulatorPath = "tcp:127.0.0.1:9999"
)

// hwiCandidate is a device enumerate reports and --fingerprint searches.
type hwiCandidate struct {
	path  string
	model string // the transport's model ("nanosp", "trezor1"), or ""
	probe bool   // an emulator address tried for --emulators: left out when nothing answers
}

// hwiSigner runs one HWI command.
type hwiSigner struct {
	out         io.Writer
	warn        io.Writer // stderr: notes that are not part of the JSON answer
	net         *chaincfg.Params
	fingerprint string // lower-case hex, or ""
	path        string // --device-path / --device, or ""
	emulators   bool   // --emulators: also probe HWI's fixed emulator addresses
	// candidates lists the devices enumerate reports and --fingerprint searches.
	candidates func(ctx context.Context) ([]hwiCandidate, error)
	// open opens a device path.
	open func(ctx context.Context, path string) (device.Device, error)
}

// runHWI is the "hwi" subcommand. Handled errors are printed as HWI JSON and return nil, so
// the process exits 0 as HWI does; usage errors exit 2 after their JSON.
func runHWI(ctx context.Context, e *env, args []string) error {
	s := &hwiSigner{
		out: e.stdout,
		candidates: func(ctx context.Context) ([]hwiCandidate, error) {
			var cands []hwiCandidate
			named := e.device
			if named == "" {
				named = e.getenv("HWBRIDGE_DEVICE")
			}
			for p := range strings.SplitSeq(named, ",") {
				if p = strings.TrimSpace(p); strings.Contains(p, ":") {
					cands = append(cands, hwiCandidate{path: p})
				}
			}
			infos, err := e.usable(ctx)
			if err != nil {
				return cands, err
			}
			for _, in := range infos {
				cands = append(cands, hwiCandidate{path: in.Path, model: in.Model})
			}
			return cands, nil
		},
		open: e.openPath,
	}
	e.hwiThroughDaemon(ctx, s)
	return s.run(ctx, args, e.stdin, e.stderr)
}

// hwiThroughDaemon makes s use hwbridged's devices when the daemon runs (its socket exists
// and --direct is not given), as every other command does: Bitcoin Core then signs through
// the daemon that holds the device instead of failing to open it. A daemon that cannot be
// reached is reported the HWI way, in enumerate's entries or as the command's error.
func (e *env) hwiThroughDaemon(ctx context.Context, s *hwiSigner) {
	sock, err := e.daemonSocket()
	if err == nil && sock == "" {
		return
	}
	var c *daemon.Client
	if err == nil {
		c, err = e.daemonClient(ctx, sock, e.dataDir(""))
	}
	s.candidates = func(ctx context.Context) ([]hwiCandidate, error) {
		if err != nil {
			return nil, err
		}
		var infos []device.Info
		if err := c.Call(ctx, "v1Devices", nil, &infos); err != nil {
			return nil, err
		}
		var cands []hwiCandidate
		for _, in := range infos {
			cands = append(cands, hwiCandidate{path: in.Path, model: in.Model})
		}
		return cands, nil
	}
	s.open = func(ctx context.Context, path string) (device.Device, error) {
		if err != nil {
			return nil, err
		}
		return &remoteDevice{c: c, sel: path}, nil
	}
}

// reply prints v as one line of JSON.
func (s *hwiSigner) reply(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(s.out, "%s\n", b)
	return err
}

func (s *hwiSigner) replyError(err error) error {
	return s.reply(map[string]any{"error": err.Error(), "code": hwiCode(err)})
}

func (s *hwiSigner) run(ctx context.Context, args []string, stdin io.Reader, stderr io.Writer) error {
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
	fs.StringVar(&password, "password", "", "accepted for HWI compatibility; unused")
	fs.StringVar(&password, "p", "", "short for --password")
	fs.BoolVar(&stdinPass, "stdinpass", false, "accepted for HWI compatibility; unused")
	fs.BoolVar(&debug, "debug", false, "accepted for HWI compatibility; use HWBRIDGE_DEBUG=1")
	fs.BoolVar(&expert, "expert", false, "getxpub: also decode the key (testnet, depth, parent_fingerprint, child_num, chaincode, pubkey)")
	fs.BoolVar(&emulators, "emulators", false, "also list the emulators at HWI's addresses ("+hwiTrezorEmulatorPath+", "+hwiLedgerEmulatorPath+") when they answer")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: hwbridge hwi [--fingerprint FP] [--chain main|test|testnet4|signet|regtest] [--stdin] [--emulators] [--device PATH] COMMAND")
		fmt.Fprintln(stderr, "commands: "+strings.Join(hwiCommands, " | "))
		fs.PrintDefaults()
	}
	usage := func(format string, a ...any) error {
		msg := fmt.Sprintf(format, a...)
		if err := s.reply(map[string]any{"error": "hwbridge hwi: error: " + msg, "code": hwiMissingArguments}); err != nil {
			return err
		}
		return usagef("hwi: %s", msg)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return s.reply(map[string]any{"error": "Help text requested", "code": hwiHelpText})
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
	net, err := bitcoin.Network(chain)
	ok := err == nil && slices.Contains(hwiChains, chain)
	if !ok {
		return usage("argument --chain: invalid choice: %q (choose from main, test, testnet4, signet, regtest)", chain)
	}
	s.net = net
	s.path = devPath
	s.emulators = emulators
	s.warn = stderr
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
	case cmd == "displayaddress" && desc == "" && kpPath == "":
		return usage("displayaddress: one of the arguments --desc --path is required")
	case cmd == "displayaddress" && desc != "" && kpPath != "":
		return usage("argument --path: not allowed with argument --desc")
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
		err = hwiErrorf(hwiUnavailableAction, "hwbridge hwi does not install udev rules: run sudo \"$(command -v hwbridge)\" udev install (or hwbridge udev install --print to see them)")
	default:
		var d device.Device
		d, err = s.find(ctx)
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
				if kpPath != "" {
					result, err = s.displayPath(ctx, d, kpPath, addrType)
				} else {
					result, err = s.displayAddress(ctx, d, desc)
				}
			case "signtx":
				result, err = s.signTx(ctx, d, pos[0])
			case "promptpin", "sendpin", "togglepassphrase":
				pin := ""
				if cmd == "sendpin" {
					pin = pos[0]
				}
				result, err = s.pinCommand(ctx, d, cmd, pin)
			}
			err = s.ledgerRefusal(ctx, d, err)
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
	"displayaddress --desc DESC",
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

// parseInterspersed parses flags that may come before or after positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// maxStdinArgs bounds what --stdin reads (a large PSBT is a few hundred kB of base64).
const maxStdinArgs = 16 << 20

// readStdinArgs reads lines until an empty line or EOF and splits each as a POSIX shell
// would (HWI uses shlex.split).
func readStdinArgs(r io.Reader) ([]string, error) {
	if r == nil {
		return nil, nil
	}
	sc := bufio.NewScanner(io.LimitReader(r, maxStdinArgs))
	sc.Buffer(make([]byte, 0, 64<<10), maxStdinArgs)
	var out []string
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			break
		}
		words, err := shellSplit(line)
		if err != nil {
			return nil, err
		}
		out = append(out, words...)
	}
	return out, sc.Err()
}

// shellSplit splits a line into words with POSIX shell quoting: single quotes, double
// quotes (with \ escaping \ " $ ` and newline) and backslash escapes.
func shellSplit(line string) ([]string, error) {
	var (
		words  []string
		cur    strings.Builder
		inWord bool
	)
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\\':
			inWord = true
			if i+1 < len(line) {
				i++
				cur.WriteByte(line[i])
			}
		case c == '\'':
			inWord = true
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("no closing quotation")
			}
			cur.WriteString(line[i+1 : i+1+j])
			i += j + 1
		case c == '"':
			inWord = true
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' && i+1 < len(line) && strings.IndexByte("\\\"$`\n", line[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(line[i])
			}
			if i >= len(line) {
				return nil, errors.New("no closing quotation")
			}
		default:
			inWord = true
			cur.WriteByte(c)
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// hwiDevice is one entry of enumerate's answer (hwilib's enumerate).
type hwiDevice struct {
	Type                string  `json:"type"`
	Model               string  `json:"model"`
	Label               *string `json:"label"`
	Path                string  `json:"path"`
	Fingerprint         string  `json:"fingerprint,omitempty"`
	NeedsPinSent        bool    `json:"needs_pin_sent"`
	NeedsPassphraseSent bool    `json:"needs_passphrase_sent"`
	Error               string  `json:"error,omitempty"`
	Code                int     `json:"code,omitempty"`
}

// allCandidates is what enumerate reports and find searches: --device-path first, then the
// devices found, then (with --emulators) HWI's emulator addresses, each path once. A failed
// search is a note on stderr: HWI answers [] when nothing is reachable.
func (s *hwiSigner) allCandidates(ctx context.Context) []hwiCandidate {
	found, err := s.candidates(ctx)
	if err != nil {
		fmt.Fprintf(s.warnOut(), "hwbridge hwi: %v\n", err)
	}
	var out []hwiCandidate
	if s.path != "" {
		out = append(out, hwiCandidate{path: s.path})
	}
	out = append(out, found...)
	if s.emulators {
		out = append(out, hwiCandidate{path: hwiTrezorEmulatorPath, probe: true}, hwiCandidate{path: hwiLedgerEmulatorPath, probe: true})
	}
	seen := map[string]bool{}
	uniq := out[:0]
	for _, c := range out {
		if !seen[c.path] {
			seen[c.path] = true
			uniq = append(uniq, c)
		}
	}
	return uniq
}

func (s *hwiSigner) warnOut() io.Writer {
	if s.warn == nil {
		return io.Discard
	}
	return s.warn
}

func (s *hwiSigner) enumerate(ctx context.Context) ([]hwiDevice, error) {
	out := []hwiDevice{}
	for _, c := range s.allCandidates(ctx) {
		entry, reached, err := s.describe(ctx, c)
		if c.probe && !reached {
			continue // as HWI: an emulator that does not answer is not listed
		}
		if entry.Type == string(device.FamilyLedger) && errors.Is(err, device.ErrWrongApp) {
			// As HWI: a Ledger outside the Bitcoin app is left out (UnknownDeviceError);
			// say so on stderr, which Bitcoin Core does not read.
			fmt.Fprintf(s.warnOut(), "hwbridge hwi: the Ledger at %s is left out: %v\n", c.path, err)
			continue
		}
		out = append(out, entry)
	}
	return out, nil
}

// describe opens the device at c.path and reports it; failures go into the entry, as HWI
// does, and are returned. reached says whether the device answered at all.
func (s *hwiSigner) describe(ctx context.Context, c hwiCandidate) (entry hwiDevice, reached bool, err error) {
	entry = hwiDevice{Path: c.path, Type: "unknown", Model: "unknown"}
	fail := func(err error) hwiDevice {
		entry.Error = "Could not open client or get fingerprint information: " + err.Error()
		entry.Code = hwiCode(err)
		if errors.Is(err, device.ErrLocked) {
			entry.NeedsPinSent = true
		}
		return entry
	}
	d, err := s.open(ctx, c.path)
	if err != nil {
		return fail(err), false, err
	}
	f, err := d.Features(ctx)
	if err != nil {
		return fail(err), false, err
	}
	entry.Type = string(f.Family)
	entry.Model = hwiModel(f, c)
	if f.Label != "" && f.Family != device.FamilyLedger {
		label := f.Label
		entry.Label = &label
	}
	if f.Family == device.FamilyTrezor && f.PINProtected && !f.Unlocked {
		entry.NeedsPinSent = true
		entry.Error = "Could not open client or get fingerprint information: Trezor is locked. Unlock by using 'promptpin' and then 'sendpin'."
		entry.Code = hwiDeviceNotReady
		return entry, true, device.ErrLocked
	}
	if !f.Initialized {
		entry.Error = "Not initialized"
		entry.Code = hwiDeviceNotInitialized
		return entry, true, nil
	}
	fp, err := d.Fingerprint(ctx)
	if err != nil {
		return fail(err), true, err
	}
	entry.Fingerprint = fp.String()
	return entry, true, nil
}

// hwiLedgerModels are HWI's Ledger model names (hwilib/devices/ledger.py LEDGER_MODEL_IDS)
// by the transport's model name (transport.DeviceInfo.Model).
var hwiLedgerModels = map[string]string{
	"nanos": "ledger_nano_s", "nanox": "ledger_nano_x", "nanosp": "ledger_nano_s_plus",
	"stax": "ledger_stax", "flex": "ledger_flex", "apex": "ledger_nano_gen5",
}

// hwiModel names a model as HWI does. Trezor: "trezor_" and Features' model in lower case
// ("trezor_t", "trezor_safe 3"), "_simulator" on a udp: path. Ledger: the USB product's
// model ("ledger_nano_s_plus"); HWI sees its tcp emulator as a Nano S, "ledger_nano_s_simulator".
func hwiModel(f device.Features, c hwiCandidate) string {
	switch f.Family {
	case device.FamilyTrezor:
		m := "trezor_" + strings.ToLower(f.Model)
		if strings.HasPrefix(c.path, "udp:") {
			m += "_simulator"
		}
		return m
	case device.FamilyLedger:
		if strings.HasPrefix(c.path, "tcp:") {
			return "ledger_nano_s_simulator"
		}
		if m, ok := hwiLedgerModels[c.model]; ok {
			return m
		}
		if c.model != "" {
			return "ledger_" + strings.ToLower(c.model)
		}
	}
	m := strings.ToLower(strings.Join(strings.Fields(string(f.Family)+" "+f.Model), "_"))
	if f.Emulator {
		m += "_simulator"
	}
	return m
}

// find opens the device the command runs on: --device-path, else the first candidate with
// the --fingerprint (HWI's find_device).
func (s *hwiSigner) find(ctx context.Context) (device.Device, error) {
	if s.path != "" {
		d, err := s.open(ctx, s.path)
		if err != nil {
			return nil, hwiErrorf(hwiDeviceConnError, "%v", err)
		}
		if s.fingerprint != "" {
			fp, err := d.Fingerprint(ctx)
			if err != nil {
				return nil, err
			}
			if fp.String() != s.fingerprint {
				return nil, hwiErrorf(hwiDeviceConnError, "the device at %s has fingerprint %s, not %s", s.path, fp, s.fingerprint)
			}
		}
		return d, nil
	}
	if s.fingerprint == "" {
		return nil, hwiErrorf(hwiNoDeviceType, "You must specify a device type or fingerprint for all commands except enumerate")
	}
	for _, c := range s.allCandidates(ctx) {
		d, err := s.open(ctx, c.path)
		if err != nil {
			continue
		}
		fp, err := d.Fingerprint(ctx)
		if err == nil && fp.String() == s.fingerprint {
			return d, nil
		}
	}
	return nil, hwiErrorf(hwiDeviceConnError, "Could not find device with specified fingerprint or type (name emulators with --device or HWBRIDGE_DEVICE, or pass --emulators)")
}

// parseHWIPath parses a BIP-32 path as HWI's parse_path: an optional leading "m", steps
// hardened by a trailing h, H or ' (or a leading -).
func parseHWIPath(p string) (hdpath.Path, error) {
	if p == "" {
		return hdpath.Path{}, nil
	}
	parts := strings.Split(p, "/")
	if parts[0] == "m" {
		parts = parts[1:]
	}
	out := hdpath.Path{}
	for _, x := range parts {
		hard := false
		switch {
		case strings.HasPrefix(x, "-"):
			hard, x = true, x[1:]
		case strings.HasSuffix(x, "h"), strings.HasSuffix(x, "H"), strings.HasSuffix(x, "'"):
			hard, x = true, x[:len(x)-1]
		}
		n, err := strconv.ParseUint(x, 10, 32)
		if err != nil || n >= uint64(hdpath.Hardened) {
			return nil, hwiErrorf(hwiBadArgument, "Invalid BIP32 path %q", p)
		}
		if hard {
			n += uint64(hdpath.Hardened)
		}
		out = append(out, uint32(n))
	}
	return out, nil
}

// accountPath is HWI's get_master_xpub path, m/purpose'/coin'/account'.
func (s *hwiSigner) accountPath(st device.ScriptType, account uint32) hdpath.Path {
	purpose, _ := st.Purpose()
	return hdpath.Path{purpose + hdpath.Hardened, coinType(s.net) + hdpath.Hardened, account + hdpath.Hardened}
}

func (s *hwiSigner) getMasterXPub(ctx context.Context, d device.Device, addrType string, account uint32) (map[string]string, error) {
	xpub, err := d.XPub(ctx, device.XPubRequest{Path: s.accountPath(addrTypeScript(addrType), account), Network: s.net})
	if err != nil {
		return nil, err
	}
	return map[string]string{"xpub": xpub}, nil
}

// getXPub is HWI's getxpub; with --expert the key's fields are added as HWI's
// ExtendedKey.get_printable_dict gives them.
func (s *hwiSigner) getXPub(ctx context.Context, d device.Device, path string, expert bool) (map[string]any, error) {
	p, err := parseHWIPath(path)
	if err != nil {
		return nil, err
	}
	xpub, err := s.xpubAt(ctx, d, p)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"xpub": xpub}
	if !expert {
		return out, nil
	}
	k, err := hdkeychain.NewKeyFromString(xpub)
	if err != nil {
		return nil, fmt.Errorf("the device's xpub %q: %w", xpub, err)
	}
	pub, err := k.ECPubKey()
	if err != nil {
		return nil, fmt.Errorf("the device's xpub %q: %w", xpub, err)
	}
	version := k.Version()
	out["testnet"] = !bytes.Equal(version, chaincfg.MainNetParams.HDPublicKeyID[:]) && !bytes.Equal(version, chaincfg.MainNetParams.HDPrivateKeyID[:])
	out["private"] = k.IsPrivate()
	out["depth"] = k.Depth()
	out["parent_fingerprint"] = fmt.Sprintf("%08x", k.ParentFingerprint())
	out["child_num"] = k.ChildIndex()
	out["chaincode"] = hex.EncodeToString(k.ChainCode())
	out["pubkey"] = hex.EncodeToString(pub.SerializeCompressed())
	return out, nil
}

// xpubAt is HWI's get_pubkey_at_path: a Ledger app serves a non-standard path only when the
// key is shown for the person to confirm, so that is asked when the silent request is refused.
func (s *hwiSigner) xpubAt(ctx context.Context, d device.Device, p hdpath.Path) (string, error) {
	xpub, err := d.XPub(ctx, device.XPubRequest{Path: p, Network: s.net})
	if err == nil || !errors.Is(err, device.ErrInvalidInput) {
		return xpub, err
	}
	if f, ferr := d.Features(ctx); ferr != nil || f.Family != device.FamilyLedger {
		return "", err
	}
	return d.XPub(ctx, device.XPubRequest{Path: p, Network: s.net, Display: true})
}

// signMessage signs with Bitcoin Core's signed-message format (BIP-137 header of a
// compressed P2PKH key, as HWI's Trezor and Ledger clients do), base64.
func (s *hwiSigner) signMessage(ctx context.Context, d device.Device, msg, path string) (map[string]string, error) {
	if !strings.HasPrefix(path, "m/") {
		return nil, hwiErrorf(hwiBadArgument, "Invalid keypath %q: it starts with m/", path)
	}
	p, err := parseHWIPath(path)
	if err != nil {
		return nil, err
	}
	sig, err := d.SignMessage(device.WithAppSwitch(ctx), device.MessageRequest{Chain: device.ChainBTC, Path: p, Message: []byte(msg), Script: device.ScriptPKH, Network: s.net})
	if err != nil {
		return nil, err
	}
	return map[string]string{"signature": base64.StdEncoding.EncodeToString(sig.Signature)}, nil
}

// keypoolRequest is getkeypool's arguments.
type keypoolRequest struct {
	path              string
	start, end        int
	internal, keypool bool
	account           uint32
	addrType          string
	all               bool
}

// hwiKeypoolEntry is one element of getkeypool's answer, ready for importdescriptors.
type hwiKeypoolEntry struct {
	Desc      string `json:"desc"`
	Range     [2]int `json:"range"`
	Timestamp string `json:"timestamp"`
	Internal  bool   `json:"internal"`
	Keypool   bool   `json:"keypool"`
	Active    bool   `json:"active"`
	Watchonly bool   `json:"watchonly"`
}

// getKeypool is HWI's getkeypool: without --path and --internal, a receive and a change
// descriptor for each address type asked for (--all: legacy, wit, sh_wit, tap, the last
// only on a device that signs taproot); otherwise the one descriptor asked for.
func (s *hwiSigner) getKeypool(ctx context.Context, d device.Device, req keypoolRequest) ([]hwiKeypoolEntry, error) {
	f, err := d.Features(ctx)
	if err != nil {
		return nil, err
	}
	types := []string{req.addrType}
	if req.all {
		types = slices.Clone(hwiAddrTypes)
	} else if req.addrType == "tap" && !f.Capabilities.Taproot {
		return nil, hwiErrorf(hwiUnavailableAction, "Device does not support Taproot")
	}
	if !f.Capabilities.Taproot {
		types = slices.DeleteFunc(types, func(t string) bool { return t == "tap" })
	}
	fp, err := d.Fingerprint(ctx)
	if err != nil {
		return nil, err
	}
	out := []hwiKeypoolEntry{}
	if req.path == "" && !req.internal {
		for _, t := range types {
			for _, internal := range []bool{false, true} {
				e, err := s.keypoolEntry(ctx, d, fp, req, t, internal)
				if err != nil {
					return nil, err
				}
				out = append(out, e)
			}
		}
		return out, nil
	}
	if len(types) != 1 {
		return nil, hwiErrorf(hwiBadArgument, "--all gives every address type's receive and change descriptors: leave out --path and --internal")
	}
	e, err := s.keypoolEntry(ctx, d, fp, req, types[0], req.internal)
	if err != nil {
		return nil, err
	}
	return append(out, e), nil
}

// keypoolEntry is HWI's getdescriptor: the key at the path's last hardened step, the steps
// after it, and /*.
func (s *hwiSigner) keypoolEntry(ctx context.Context, d device.Device, fp device.Fingerprint, req keypoolRequest, addrType string, internal bool) (hwiKeypoolEntry, error) {
	st := addrTypeScript(addrType)
	var full hdpath.Path
	if req.path == "" {
		full = append(s.accountPath(st, req.account), 0)
		if internal {
			full[3] = 1
		}
	} else {
		if !strings.HasPrefix(req.path, "m") {
			return hwiKeypoolEntry{}, hwiErrorf(hwiBadArgument, "Path must start with m/")
		}
		if !strings.HasSuffix(req.path, "*") {
			return hwiKeypoolEntry{}, hwiErrorf(hwiBadArgument, "Path must end with /*")
		}
		var err error
		if full, err = parseHWIPath(strings.TrimSuffix(req.path, "/*")); err != nil {
			return hwiKeypoolEntry{}, err
		}
		if len(full) == 0 {
			return hwiKeypoolEntry{}, hwiErrorf(hwiBadArgument, "Path %q has no step before /*", req.path)
		}
	}
	// HWI's loop: the origin ends after the last hardened step, or after the first step
	// when none is hardened.
	cut := 1
	for i := len(full) - 1; i >= 0; i-- {
		if full[i] >= hdpath.Hardened {
			cut = i + 1
			break
		}
	}
	origin := full[:cut]
	xpub, err := s.xpubAt(ctx, d, origin)
	if err != nil {
		return hwiKeypoolEntry{}, fmt.Errorf("xpub at %s: %w", origin, err)
	}
	key := fmt.Sprintf("[%s%s]%s%s/*", fp, originSuffix(origin), xpub, originSuffix(full[cut:]))
	desc, err := addChecksum(wrapScript(st, key))
	if err != nil {
		return hwiKeypoolEntry{}, err
	}
	return hwiKeypoolEntry{Desc: desc, Range: [2]int{req.start, req.end}, Timestamp: "now", Internal: internal,
		Keypool: req.keypool, Active: req.keypool, Watchonly: true}, nil
}

// pinCommand answers promptpin, sendpin and togglepassphrase as HWI's device clients do
// for a device that needs no PIN or passphrase from the host.
func (s *hwiSigner) pinCommand(ctx context.Context, d device.Device, cmd, pin string) (map[string]bool, error) {
	f, err := d.Features(ctx)
	if err != nil {
		return nil, err
	}
	if f.Family == device.FamilyLedger {
		if cmd == "togglepassphrase" {
			return nil, hwiErrorf(hwiUnavailableAction, "The Ledger Nano S and X do not support toggling passphrase from the host")
		}
		return nil, hwiErrorf(hwiUnavailableAction, "The Ledger Nano S and X do not need a PIN sent from the host")
	}
	switch {
	case cmd == "togglepassphrase":
		return nil, hwiErrorf(hwiUnavailableAction, "hwbridge does not change device settings: turn passphrase protection on or off with the vendor's tool (trezorctl set passphrase enabled|disabled)")
	case cmd == "sendpin" && !isDigits(pin):
		return nil, hwiErrorf(hwiBadArgument, "Non-numeric PIN provided")
	case !f.PINProtected:
		return nil, hwiErrorf(hwiDeviceAlreadyUnlock, "This device does not need a PIN")
	case f.Unlocked:
		return nil, hwiErrorf(hwiDeviceAlreadyUnlock, "The PIN has already been sent to this device")
	}
	return nil, hwiErrorf(hwiUnavailableAction, "hwbridge does not take the PIN matrix from the host: enter the PIN on the device when it asks, then run the command again")
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// ledgerRefusal gives a refusal on a Ledger HWI's code for it: HWI's Ledger client lets the
// app's deny error through as an unknown error (-13), where a Trezor refusal is -14.
func (s *hwiSigner) ledgerRefusal(ctx context.Context, d device.Device, err error) error {
	if err == nil || !errors.Is(err, device.ErrUserRejected) {
		return err
	}
	if f, ferr := d.Features(ctx); ferr == nil && f.Family == device.FamilyLedger {
		return &hwiError{code: hwiUnknownError, msg: err.Error()}
	}
	return err
}

// hwiScripts are the single-key script types getdescriptors reports, in HWI's order
// (list(AddressType): legacy, wit, sh_wit, tap).
var hwiScripts = []device.ScriptType{device.ScriptPKH, device.ScriptWPKH, device.ScriptSHWPKH, device.ScriptTR}

// hwiDescriptors is getdescriptors' answer, receive first as HWI prints it.
type hwiDescriptors struct {
	Receive  []string `json:"receive"`
	Internal []string `json:"internal"`
}

func coinType(net *chaincfg.Params) uint32 {
	if net.Net == chaincfg.MainNetParams.Net {
		return 0
	}
	return 1
}

func (s *hwiSigner) getDescriptors(ctx context.Context, d device.Device, account uint32) (*hwiDescriptors, error) {
	fp, err := d.Fingerprint(ctx)
	if err != nil {
		return nil, err
	}
	f, err := d.Features(ctx)
	if err != nil {
		return nil, err
	}
	out := &hwiDescriptors{Receive: []string{}, Internal: []string{}}
	for _, st := range hwiScripts {
		if st == device.ScriptTR && !f.Capabilities.Taproot {
			continue // as HWI: a device without taproot gets no tr() descriptors
		}
		purpose, _ := st.Purpose()
		origin := hdpath.Path{purpose + hdpath.Hardened, coinType(s.net) + hdpath.Hardened, account + hdpath.Hardened}
		xpub, err := d.XPub(ctx, device.XPubRequest{Path: origin, Network: s.net})
		if err != nil {
			return nil, fmt.Errorf("xpub at %s: %w", origin, err)
		}
		for i, branch := range []*[]string{&out.Receive, &out.Internal} {
			key := fmt.Sprintf("[%s%s]%s/%d/*", fp, originSuffix(origin), xpub, i)
			desc, err := addChecksum(wrapScript(st, key))
			if err != nil {
				return nil, err
			}
			*branch = append(*branch, desc)
		}
	}
	return out, nil
}

// originSuffix renders a path as descriptors do, "/84h/1h/0h".
func originSuffix(p hdpath.Path) string {
	var b strings.Builder
	for _, c := range p {
		if c >= hdpath.Hardened {
			fmt.Fprintf(&b, "/%dh", c-hdpath.Hardened)
		} else {
			fmt.Fprintf(&b, "/%d", c)
		}
	}
	return b.String()
}

func wrapScript(st device.ScriptType, key string) string {
	switch st {
	case device.ScriptPKH:
		return "pkh(" + key + ")"
	case device.ScriptSHWPKH:
		return "sh(wpkh(" + key + "))"
	case device.ScriptWPKH:
		return "wpkh(" + key + ")"
	}
	return "tr(" + key + ")"
}

// singleKeyDesc is a parsed single-key descriptor for one address.
type singleKeyDesc struct {
	script device.ScriptType
	fp     string      // origin fingerprint, lower-case hex
	origin hdpath.Path // origin path (where the key or xpub sits)
	xpub   string      // the extended key, or ""
	pubHex string      // the raw key in hex (33 bytes, or 32 x-only for tr), or ""
	derive hdpath.Path // steps below the xpub, with * taken as 0
}

// parseSingleKeyDesc parses pkh(K), sh(wpkh(K)), wpkh(K) and tr(K) with K =
// [fp/path]xpub/steps or [fp/path]hexkey, checking the checksum when present.
func parseSingleKeyDesc(desc string) (*singleKeyDesc, error) {
	body, sum, hasSum := strings.Cut(desc, "#")
	if hasSum {
		want, err := descChecksum(body)
		if err != nil {
			return nil, hwiErrorf(hwiBadArgument, "descriptor %q: %v", desc, err)
		}
		if sum != want {
			// HWI's parse_descriptor raises a ValueError, which it answers as -13.
			return nil, hwiErrorf(hwiUnknownError, "descriptor %q: invalid checksum (want %s)", desc, want)
		}
	}
	var d singleKeyDesc
	var key string
	for _, w := range []struct {
		st           device.ScriptType
		prefix, tail string
	}{
		{device.ScriptSHWPKH, "sh(wpkh(", "))"},
		{device.ScriptPKH, "pkh(", ")"},
		{device.ScriptWPKH, "wpkh(", ")"},
		{device.ScriptTR, "tr(", ")"},
	} {
		if strings.HasPrefix(body, w.prefix) && strings.HasSuffix(body, w.tail) {
			d.script, key = w.st, body[len(w.prefix):len(body)-len(w.tail)]
			break
		}
	}
	if d.script == "" {
		return nil, hwiErrorf(hwiBadArgument, "descriptor %q: only pkh(), sh(wpkh()), wpkh() and tr() with one key are supported", desc)
	}
	if !strings.HasPrefix(key, "[") {
		return nil, hwiErrorf(hwiBadArgument, "Descriptor missing origin info: %s", desc)
	}
	originStr, keyStr, ok := strings.Cut(key[1:], "]")
	if !ok {
		return nil, hwiErrorf(hwiBadArgument, "descriptor %q: unclosed key origin", desc)
	}
	fpStr, pathStr, _ := strings.Cut(originStr, "/")
	if _, ok := parseFingerprint(strings.ToLower(fpStr)); !ok {
		return nil, hwiErrorf(hwiBadArgument, "descriptor %q: bad origin fingerprint %q", desc, fpStr)
	}
	d.fp = strings.ToLower(fpStr)
	origin, err := parseDescPath(pathStr, false)
	if err != nil {
		return nil, hwiErrorf(hwiBadArgument, "descriptor %q: origin path: %v", desc, err)
	}
	d.origin = origin
	keyPart, steps, _ := strings.Cut(keyStr, "/")
	if b, err := hex.DecodeString(keyPart); err == nil {
		if steps != "" {
			return nil, hwiErrorf(hwiBadArgument, "descriptor %q: a raw key has no derivation steps", desc)
		}
		if (d.script == device.ScriptTR && len(b) != 32 && len(b) != 33) || (d.script != device.ScriptTR && len(b) != 33) {
			return nil, hwiErrorf(hwiBadArgument, "descriptor %q: key of %d bytes", desc, len(b))
		}
		d.pubHex = strings.ToLower(keyPart)
		return &d, nil
	}
	if _, err := hdkeychain.NewKeyFromString(keyPart); err != nil {
		return nil, hwiErrorf(hwiBadArgument, "descriptor %q: key %q is neither an extended public key nor hex: %v", desc, keyPart, err)
	}
	d.xpub = keyPart
	if d.derive, err = parseDescPath(steps, true); err != nil {
		return nil, hwiErrorf(hwiBadArgument, "descriptor %q: derivation: %v", desc, err)
	}
	return &d, nil
}

// parseDescPath parses "84h/1h/0h" or "0/*"; star allows a final * (taken as index 0, as
// HWI's get_full_derivation_path(0)).
func parseDescPath(s string, star bool) (hdpath.Path, error) {
	if s == "" {
		return hdpath.Path{}, nil
	}
	parts := strings.Split(s, "/")
	out := make(hdpath.Path, 0, len(parts))
	for i, p := range parts {
		if p == "*" && star && i == len(parts)-1 {
			out = append(out, 0)
			continue
		}
		hard := strings.HasSuffix(p, "h") || strings.HasSuffix(p, "'") || strings.HasSuffix(p, "H")
		if hard {
			p = p[:len(p)-1]
		}
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil || n >= uint64(hdpath.Hardened) {
			return nil, fmt.Errorf("bad step %q", parts[i])
		}
		if hard {
			n += uint64(hdpath.Hardened)
		}
		out = append(out, uint32(n))
	}
	return out, nil
}

// expectedAddress derives the address the descriptor names.
func (d *singleKeyDesc) expectedAddress(net *chaincfg.Params) (string, error) {
	var pub []byte
	if d.xpub != "" {
		k, err := hdkeychain.NewKeyFromString(d.xpub)
		if err != nil {
			return "", err
		}
		for _, c := range d.derive {
			if k, err = k.Derive(c); err != nil {
				return "", err
			}
		}
		ec, err := k.ECPubKey()
		if err != nil {
			return "", err
		}
		pub = ec.SerializeCompressed()
	} else {
		pub, _ = hex.DecodeString(d.pubHex)
	}
	var (
		addr btcutil.Address
		err  error
	)
	switch d.script {
	case device.ScriptPKH:
		addr, err = btcutil.NewAddressPubKeyHash(btcutil.Hash160(pub), net)
	case device.ScriptWPKH:
		addr, err = btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(pub), net)
	case device.ScriptSHWPKH:
		var redeem []byte
		redeem, err = txscript.NewScriptBuilder().AddOp(txscript.OP_0).AddData(btcutil.Hash160(pub)).Script()
		if err == nil {
			addr, err = btcutil.NewAddressScriptHash(redeem, net)
		}
	case device.ScriptTR:
		xonly := pub
		if len(pub) == 33 {
			xonly = pub[1:]
		}
		internal, perr := schnorr.ParsePubKey(xonly)
		if perr != nil {
			return "", perr
		}
		addr, err = btcutil.NewAddressTaproot(schnorr.SerializePubKey(txscript.ComputeTaprootKeyNoScript(internal)), net)
	}
	if err != nil {
		return "", err
	}
	return addr.EncodeAddress(), nil
}

func (s *hwiSigner) displayAddress(ctx context.Context, d device.Device, desc string) (map[string]string, error) {
	sd, err := parseSingleKeyDesc(desc)
	if err != nil {
		return nil, err
	}
	fp, err := d.Fingerprint(ctx)
	if err != nil {
		return nil, err
	}
	if sd.fp != fp.String() {
		return nil, hwiErrorf(hwiBadArgument, "Descriptor fingerprint does not match device: %s", desc)
	}
	xpub, err := d.XPub(ctx, device.XPubRequest{Path: sd.origin, Network: s.net})
	if err != nil {
		return nil, err
	}
	if !sameKey(sd, xpub) {
		return nil, hwiErrorf(hwiBadArgument, "Key in descriptor does not match device: %s", desc)
	}
	want, err := sd.expectedAddress(s.net)
	if err != nil {
		return nil, hwiErrorf(hwiBadArgument, "descriptor %q: %v", desc, err)
	}
	full := append(append(hdpath.Path{}, sd.origin...), sd.derive...)
	got, err := d.Address(device.WithAppSwitch(ctx), device.AddressRequest{Chain: device.ChainBTC, Path: full, Script: sd.script, Network: s.net, Display: true})
	if err != nil {
		return nil, err
	}
	if got != want {
		return nil, hwiErrorf(hwiUnknownError, "the device showed %s but the descriptor gives %s: do not use this address", got, want)
	}
	return map[string]string{"address": got}, nil
}

// displayPath is displayaddress --path: the single-key address of the type at the path,
// shown on the device (HWI's display_singlesig_address).
func (s *hwiSigner) displayPath(ctx context.Context, d device.Device, path, addrType string) (map[string]string, error) {
	p, err := parseHWIPath(path)
	if err != nil {
		return nil, err
	}
	if len(p) == 0 {
		return nil, hwiErrorf(hwiBadArgument, "--path %q names the master key, which has no address", path)
	}
	got, err := d.Address(device.WithAppSwitch(ctx), device.AddressRequest{Chain: device.ChainBTC, Path: p, Script: addrTypeScript(addrType), Network: s.net, Display: true})
	if err != nil {
		return nil, err
	}
	return map[string]string{"address": got}, nil
}

// sameKey compares the descriptor's key with the device's xpub at the origin path: the same
// public key and chain code for an xpub (whatever the version bytes), the same public key
// for a raw key.
func sameKey(sd *singleKeyDesc, deviceXPub string) bool {
	dk, err := hdkeychain.NewKeyFromString(deviceXPub)
	if err != nil {
		return false
	}
	dpub, err := dk.ECPubKey()
	if err != nil {
		return false
	}
	if sd.xpub != "" {
		k, err := hdkeychain.NewKeyFromString(sd.xpub)
		if err != nil {
			return false
		}
		pub, err := k.ECPubKey()
		return err == nil && bytes.Equal(pub.SerializeCompressed(), dpub.SerializeCompressed()) && bytes.Equal(k.ChainCode(), dk.ChainCode())
	}
	compressed := hex.EncodeToString(dpub.SerializeCompressed())
	return sd.pubHex == compressed || sd.pubHex == compressed[2:]
}

func (s *hwiSigner) signTx(ctx context.Context, d device.Device, b64 string) (map[string]any, error) {
	p, err := psbt.NewFromRawBytes(strings.NewReader(strings.TrimSpace(b64)), true)
	if err != nil {
		return nil, hwiErrorf(hwiInvalidTx, "the PSBT does not decode (base64 BIP-174 expected): %v", err)
	}
	if err := d.SignPSBT(device.WithAppSwitch(ctx), p, s.net); err != nil {
		return nil, err
	}
	out, err := p.B64Encode()
	if err != nil {
		return nil, hwiErrorf(hwiInvalidTx, "encode the signed PSBT: %v", err)
	}
	return map[string]any{"psbt": out, "signed": out != strings.TrimSpace(b64)}, nil
}

// descChecksum is BIP-380's checksum of a descriptor without its "#...", from chains/bitcoin.
func descChecksum(desc string) (string, error) { return bitcoin.DescriptorChecksum(desc) }

func addChecksum(desc string) (string, error) {
	sum, err := descChecksum(desc)
	if err != nil {
		return "", err
	}
	return desc + "#" + sum, nil
}
