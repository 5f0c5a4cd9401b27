package hwi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/hwbridge/hwbridge/device"
)

// deviceEntry is one entry of enumerate's answer (hwilib's enumerate).
type deviceEntry struct {
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
func (s *Signer) allCandidates(ctx context.Context) []Candidate {
	found, err := s.Candidates(ctx)
	if err != nil {
		fmt.Fprintf(s.warnOut(), "hwbridge hwi: %v\n", err)
	}
	var out []Candidate
	if s.path != "" {
		out = append(out, Candidate{Path: s.path})
	}
	out = append(out, found...)
	if s.emulators {
		out = append(out, Candidate{Path: TrezorEmulatorPath, probe: true}, Candidate{Path: LedgerEmulatorPath, probe: true},
			Candidate{Path: ColdcardEmulatorPath, probe: true})
	}
	seen := map[string]bool{}
	uniq := out[:0]
	for _, c := range out {
		if !seen[c.Path] {
			seen[c.Path] = true
			uniq = append(uniq, c)
		}
	}
	return uniq
}

func (s *Signer) warnOut() io.Writer {
	if s.Warn == nil {
		return io.Discard
	}
	return s.Warn
}

func (s *Signer) enumerate(ctx context.Context) ([]deviceEntry, error) {
	out := []deviceEntry{}
	for _, c := range s.allCandidates(ctx) {
		entry, reached, err := s.describe(ctx, c)
		if c.probe && !reached {
			continue // as HWI: an emulator that does not answer is not listed
		}
		if entry.Type == string(device.FamilyLedger) && errors.Is(err, device.ErrWrongApp) {
			// As HWI: a Ledger outside the Bitcoin app is left out (UnknownDeviceError);
			// say so on stderr, which Bitcoin Core does not read.
			fmt.Fprintf(s.warnOut(), "hwbridge hwi: the Ledger at %s is left out: %v\n", c.Path, err)
			continue
		}
		out = append(out, entry)
	}
	return out, nil
}

// describe opens the device at c.Path and reports it; failures go into the entry, as HWI
// does, and are returned. reached says whether the device answered at all.
func (s *Signer) describe(ctx context.Context, c Candidate) (entry deviceEntry, reached bool, err error) {
	entry = deviceEntry{Path: c.Path, Type: "unknown", Model: "unknown"}
	fail := func(err error) deviceEntry {
		entry.Error = "Could not open client or get fingerprint information: " + err.Error()
		entry.Code = Code(err)
		if errors.Is(err, device.ErrLocked) {
			entry.NeedsPinSent = true
		}
		return entry
	}
	d, err := s.Open(ctx, c.Path)
	if err != nil {
		return fail(err), false, err
	}
	if err := s.unlock(ctx, d); err != nil {
		return fail(err), true, err
	}
	f, err := d.Features(ctx)
	if err != nil {
		return fail(err), false, err
	}
	entry.Type = string(f.Family)
	entry.Model = model(f, c)
	if f.Label != "" && (f.Family == device.FamilyTrezor || f.Family == device.FamilyKeepKey) { // HWI: None for the others
		label := f.Label
		entry.Label = &label
	}
	if (f.Family == device.FamilyTrezor || f.Family == device.FamilyKeepKey) && f.PINProtected && !f.Unlocked {
		entry.NeedsPinSent = true
		name := "Trezor"
		if f.Family == device.FamilyKeepKey {
			name = "Keepkey" // hwilib/devices/keepkey.py
		}
		entry.Error = "Could not open client or get fingerprint information: " + name + " is locked. Unlock by using 'promptpin' and then 'sendpin'."
		entry.Code = CodeDeviceNotReady
		return entry, true, device.ErrLocked
	}
	if !f.Initialized {
		entry.Error = "Not initialized"
		entry.Code = CodeDeviceNotInitialized
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

// model names a model as HWI does. Trezor: "trezor_" and Features' model in lower case
// ("trezor_t", "trezor_safe 3"), "_simulator" on a udp: path. Ledger: the USB product's
// model ("ledger_nano_s_plus"); HWI sees its tcp emulator as a Nano S, "ledger_nano_s_simulator".
func model(f device.Features, c Candidate) string {
	switch f.Family {
	case device.FamilyTrezor:
		m := "trezor_" + strings.ToLower(f.Model)
		if strings.HasPrefix(c.Path, "udp:") {
			m += "_simulator"
		}
		return m
	case device.FamilyKeepKey:
		// hwilib/devices/keepkey.py enumerate: "keepkey", "_simulator" on a udp: path.
		if strings.HasPrefix(c.Path, "udp:") {
			return "keepkey_simulator"
		}
		return "keepkey"
	case device.FamilyColdcard:
		// hwilib/devices/coldcard.py enumerate: "coldcard", "_simulator" for its simulator.
		if f.Emulator {
			return "coldcard_simulator"
		}
		return "coldcard"
	case device.FamilyBitBox02:
		// hwilib/devices/bitbox02.py enumerate: the edition, "bitbox02_multi" or
		// "bitbox02_btconly" (its simulator included).
		if strings.Contains(f.Model, "btconly") {
			return "bitbox02_btconly"
		}
		return "bitbox02_multi"
	case device.FamilyLedger:
		if strings.HasPrefix(c.Path, "tcp:") {
			return "ledger_nano_s_simulator"
		}
		if m, ok := hwiLedgerModels[c.Model]; ok {
			return m
		}
		if c.Model != "" {
			return "ledger_" + strings.ToLower(c.Model)
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
func (s *Signer) find(ctx context.Context) (device.Device, error) {
	if s.path != "" {
		d, err := s.Open(ctx, s.path)
		if err != nil {
			return nil, errorf(CodeDeviceConnError, "%v", err)
		}
		if err := s.unlock(ctx, d); err != nil {
			return nil, err
		}
		if s.fingerprint != "" {
			fp, err := d.Fingerprint(ctx)
			if err != nil {
				return nil, err
			}
			if fp.String() != s.fingerprint {
				return nil, errorf(CodeDeviceConnError, "the device at %s has fingerprint %s, not %s", s.path, fp, s.fingerprint)
			}
		}
		return d, nil
	}
	if s.fingerprint == "" {
		return nil, errorf(CodeNoDeviceType, "You must specify a device type or fingerprint for all commands except enumerate")
	}
	for _, c := range s.allCandidates(ctx) {
		d, err := s.Open(ctx, c.Path)
		if err != nil || s.unlock(ctx, d) != nil {
			continue
		}
		fp, err := d.Fingerprint(ctx)
		if err == nil && fp.String() == s.fingerprint {
			return d, nil
		}
	}
	return nil, errorf(CodeDeviceConnError, "Could not find device with specified fingerprint or type (name emulators with --device or HWBRIDGE_DEVICE, or pass --emulators)")
}

// unlock hands -p's passphrase to an opened device through Unlock (hwbridged's session).
func (s *Signer) unlock(ctx context.Context, d device.Device) error {
	if s.passphrase == nil || s.Unlock == nil {
		return nil
	}
	return s.Unlock(ctx, d, *s.passphrase)
}
