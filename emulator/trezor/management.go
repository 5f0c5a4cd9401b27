package trezoremu

import (
	"context"
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/emulator"
	pb "github.com/hwbridge/hwbridge/internal/trezorpb"
)

// Settings limits (core storage/device.py, legacy config.h).
const (
	labelMax       = 32         // LABEL_MAXLENGTH
	autoLockMinMs  = 10 * 1000  // AUTOLOCK_DELAY_MINIMUM / MIN_AUTOLOCK_DELAY_MS
	autoLockMaxMs  = 0x20000000 // AUTOLOCK_DELAY_MAXIMUM / MAX_AUTOLOCK_DELAY_MS
	protectCall    = pb.ButtonRequestType_ButtonRequest_ProtectCall
	settingsScreen = "Settings"
)

// applySettings follows core apps/management/apply_settings.py (2.9.1) and legacy
// fsm_msgApplySettings (1.13.1): the same checks in the same order, one confirmation
// (ButtonRequest ProtectCall) per setting, "Settings applied". A homescreen image is refused
// as the firmware refuses one it cannot decode (the emulator keeps no images).
func (d *Device) applySettings(ctx context.Context, s *session, m *pb.ApplySettings) (proto.Message, error) {
	legacy := d.persona.legacy
	if legacy {
		if m.PassphraseAlwaysOnDevice != nil {
			return nil, dataError("This firmware is incapable of passphrase entry on the device.")
		}
		if m.Label == nil && m.Language == nil && m.UsePassphrase == nil && m.Homescreen == nil &&
			m.AutoLockDelayMs == nil && m.SafetyChecks == nil {
			return nil, dataError("No setting provided")
		}
	} else if m.Homescreen == nil && m.HomescreenLength == nil && m.Label == nil && m.UsePassphrase == nil &&
		m.PassphraseAlwaysOnDevice == nil && m.DisplayRotation == nil && m.AutoLockDelayMs == nil &&
		m.SafetyChecks == nil && m.ExperimentalFeatures == nil && m.HidePassphraseFromHost == nil &&
		(m.HapticFeedback == nil || !d.persona.haptic) {
		return nil, fail(pb.FailureType_Failure_ProcessError, "No setting provided")
	}
	if err := d.unlock(ctx, s); err != nil {
		return nil, err
	}
	ask := func(lines ...string) error {
		return s.confirm(ctx, protectCall, emulator.Screen{Title: settingsScreen, Lines: lines})
	}
	set := func(f func(st *settings)) {
		d.mu.Lock()
		f(&d.settings)
		d.mu.Unlock()
	}
	if m.HomescreenLength != nil && m.Homescreen != nil && !legacy {
		return nil, fail(pb.FailureType_Failure_ProcessError, "Mutually exclusive settings")
	}
	if len(m.GetHomescreen()) > 0 || m.GetHomescreenLength() > 0 {
		return nil, dataError("Wrong homescreen format")
	}
	if m.Label != nil {
		if len(m.GetLabel()) > labelMax || !utf8.ValidString(m.GetLabel()) {
			return nil, dataError("Label too long")
		}
		if err := ask("Change label to", m.GetLabel()); err != nil {
			return nil, err
		}
		set(func(st *settings) { st.label = m.GetLabel() })
	}
	if m.Language != nil && legacy {
		if err := ask("Change language to", m.GetLanguage()); err != nil {
			return nil, err
		}
	}
	if m.UsePassphrase != nil {
		on := m.GetUsePassphrase()
		if err := ask(map[bool]string{true: "Enable passphrase protection", false: "Disable passphrase protection"}[on]); err != nil {
			return nil, err
		}
		set(func(st *settings) {
			st.passphraseProtection = on
			if !on {
				st.passphraseAlwaysOnDevice = false
			}
		})
		d.mu.Lock()
		d.passphrase = nil // the next use of the seed asks again
		d.mu.Unlock()
	}
	if m.PassphraseAlwaysOnDevice != nil {
		d.mu.Lock()
		enabled := d.settings.passphraseProtection
		d.mu.Unlock()
		if !enabled {
			return nil, dataError("Passphrase is not enabled")
		}
		on := m.GetPassphraseAlwaysOnDevice()
		if err := ask(map[bool]string{true: "Always enter passphrase on the device", false: "Passphrase entry on the host allowed"}[on]); err != nil {
			return nil, err
		}
		set(func(st *settings) { st.passphraseAlwaysOnDevice = on })
	}
	if m.AutoLockDelayMs != nil {
		ms := m.GetAutoLockDelayMs()
		switch {
		case ms < autoLockMinMs:
			return nil, fail(pb.FailureType_Failure_ProcessError, "Auto-lock delay too short")
		case ms > autoLockMaxMs:
			return nil, fail(pb.FailureType_Failure_ProcessError, "Auto-lock delay too long")
		}
		if err := ask("Auto-lock delay", fmt.Sprintf("%d ms", ms)); err != nil {
			return nil, err
		}
		set(func(st *settings) { st.autoLockDelayMs = ms })
	}
	if m.SafetyChecks != nil {
		lvl := m.GetSafetyChecks()
		if _, ok := pb.SafetyCheckLevel_name[int32(lvl)]; !ok {
			return nil, dataError("Invalid safety check level")
		}
		if err := ask("Safety checks", lvl.String()); err != nil {
			return nil, err
		}
		set(func(st *settings) { st.safetyChecks = lvl })
	}
	if legacy {
		return &pb.Success{Message: proto.String("Settings applied")}, nil
	}
	if m.DisplayRotation != nil {
		rot := m.GetDisplayRotation()
		if _, ok := pb.DisplayRotation_name[int32(rot)]; !ok {
			return nil, dataError("Invalid display rotation")
		}
		if err := ask("Display rotation", rot.String()); err != nil {
			return nil, err
		}
		set(func(st *settings) { st.displayRotation = rot })
	}
	if m.ExperimentalFeatures != nil {
		if err := ask("Experimental features", fmt.Sprint(m.GetExperimentalFeatures())); err != nil {
			return nil, err
		}
		set(func(st *settings) { st.experimental = m.GetExperimentalFeatures() })
	}
	if m.HidePassphraseFromHost != nil {
		d.mu.Lock()
		strict := d.settings.safetyChecks == pb.SafetyCheckLevel_Strict
		d.mu.Unlock()
		if strict {
			return nil, fail(pb.FailureType_Failure_ProcessError, "Safety checks are strict")
		}
		if err := ask("Hide passphrase coming from host", fmt.Sprint(m.GetHidePassphraseFromHost())); err != nil {
			return nil, err
		}
		set(func(st *settings) { st.hidePassphraseFromHost = m.GetHidePassphraseFromHost() })
	}
	if m.HapticFeedback != nil && d.persona.haptic {
		if err := ask("Haptic feedback", fmt.Sprint(m.GetHapticFeedback())); err != nil {
			return nil, err
		}
		set(func(st *settings) { st.haptic = m.GetHapticFeedback() })
	}
	return &pb.Success{Message: proto.String("Settings applied")}, nil
}

// applyFlags ORs flags into the stored ones (core apply_flags.py, legacy fsm_msgApplyFlags).
func (d *Device) applyFlags(ctx context.Context, s *session, m *pb.ApplyFlags) (proto.Message, error) {
	if m.Flags == nil {
		return nil, dataError("Missing field: flags")
	}
	if err := d.unlock(ctx, s); err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.settings.flags |= m.GetFlags()
	d.mu.Unlock()
	return &pb.Success{Message: proto.String("Flags applied")}, nil
}
