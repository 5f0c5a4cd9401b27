package trezoremu

import (
	"encoding/hex"
	"fmt"
	"strings"

	pb "github.com/hwbridge/hwbridge/internal/trezorpb"
)

// Model names a Trezor persona as `hwemu --trezor-model` takes it.
type Model string

const (
	ModelOne   Model = "1"      // Trezor One (T1B1), legacy firmware
	ModelT     Model = "T"      // Trezor Model T (T2T1), core firmware
	ModelSafe3 Model = "Safe 3" // Trezor Safe 3 (T2B1), core firmware
	ModelSafe5 Model = "Safe 5" // Trezor Safe 5 (T3T1), core firmware
)

// ParseModel accepts 1, T, Safe3 / "Safe 3", Safe5 / "Safe 5" and the internal names
// (T1B1, T2T1, T2B1, T3T1), case-insensitively.
func ParseModel(s string) (Model, error) {
	switch strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), " ", "")) {
	case "1", "ONE", "T1B1":
		return ModelOne, nil
	case "T", "", "T2T1":
		return ModelT, nil
	case "SAFE3", "T2B1":
		return ModelSafe3, nil
	case "SAFE5", "T3T1":
		return ModelSafe5, nil
	}
	return "", fmt.Errorf("trezoremu: unknown trezor model %q (use 1, T, Safe3 or Safe5)", s)
}

// persona is what one model's firmware reports and how it behaves. Each value is read from
// the firmware tag named in source; the revision is that tag's commit, which is also the
// firmware_revision of the release @trezor/connect 9.7.3 bundles for the version
// (connect-common/files/firmware/<model>/universal/<model>-<version>-universal.json).
type persona struct {
	model         Model
	internalModel string // core's MODEL_INTERNAL_NAME; legacy firmware sends none
	version       [3]uint32
	revision      string // 40 hex digits: the git commit of the firmware tag
	source        string
	// legacy: the Trezor One firmware (legacy/firmware). Its Features carry a different
	// field set, it has no on-device passphrase entry, EIP-712 is hash-only
	// (EthereumSignTypedHash), and NO on an address screen toggles the QR view and asks
	// again instead of cancelling (fsm_msgGetAddress → fsm_layoutAddress loop).
	legacy bool
	caps   []pb.Capability
	// core hardware traits (core/site_scons/models/<model>/*.py features_available).
	homescreenFormat pb.HomescreenFormat
	homescreenW      uint32
	homescreenH      uint32
	sdCard           bool // USE_SD_CARD: Features.sd_card_present/sd_protection are sent
	haptic           bool // USE_HAPTIC: Features.haptic_feedback
	optiga           bool // USE_OPTIGA: Features.optiga_sec
}

// coreCaps is core 2.9.1's universal capability list (core/src/apps/base.py get_features).
var coreCaps = []pb.Capability{
	pb.Capability_Capability_Bitcoin, pb.Capability_Capability_Bitcoin_like, pb.Capability_Capability_Binance,
	pb.Capability_Capability_Cardano, pb.Capability_Capability_Crypto, pb.Capability_Capability_Ethereum,
	pb.Capability_Capability_Monero, pb.Capability_Capability_Ripple, pb.Capability_Capability_Stellar,
	pb.Capability_Capability_Tezos, pb.Capability_Capability_U2F, pb.Capability_Capability_Shamir,
	pb.Capability_Capability_ShamirGroups, pb.Capability_Capability_PassphraseEntry, pb.Capability_Capability_Solana,
	pb.Capability_Capability_Translations,
}

func withCaps(extra ...pb.Capability) []pb.Capability {
	return append(append([]pb.Capability{}, coreCaps...), extra...)
}

const (
	rev1131 = "2a65d18200580005dc419b9569ed97fae440806a" // tag legacy/v1.13.1
	rev291  = "acd56d0113a547e9b5983510b0ce9de079e30e05" // tag core/v2.9.1
)

var personas = map[Model]*persona{
	ModelOne: {
		model: ModelOne, version: [3]uint32{1, 13, 1}, revision: rev1131, legacy: true,
		source: "trezor-firmware legacy/v1.13.1: legacy/firmware/fsm_msg_common.h (get_features), fsm_msg_coin.h (GetAddress), fsm_msg_ethereum.h (EthereumSignTypedHash)",
		caps: []pb.Capability{
			pb.Capability_Capability_Bitcoin, pb.Capability_Capability_Bitcoin_like, pb.Capability_Capability_Crypto,
			pb.Capability_Capability_Ethereum, pb.Capability_Capability_NEM, pb.Capability_Capability_Stellar,
			pb.Capability_Capability_U2F,
		},
	},
	ModelT: {
		model: ModelT, internalModel: "T2T1", version: [3]uint32{2, 9, 1}, revision: rev291,
		source: "trezor-firmware core/v2.9.1: core/src/apps/base.py (get_features), core/embed/models/T2T1, core/site_scons/models/T2T1/trezor_t.py",
		// T2T1 keeps NEM and EOS; backlight gives Brightness.
		caps:             withCaps(pb.Capability_Capability_NEM, pb.Capability_Capability_EOS, pb.Capability_Capability_Brightness),
		homescreenFormat: pb.HomescreenFormat_Jpeg, homescreenW: 240, homescreenH: 240, sdCard: true,
	},
	ModelSafe3: {
		model: ModelSafe3, internalModel: "T2B1", version: [3]uint32{2, 9, 1}, revision: rev291,
		source:           "trezor-firmware core/v2.9.1: core/src/apps/base.py (get_features), core/embed/models/T2B1, core/site_scons/models/T2B1/trezor_r_v10.py",
		caps:             withCaps(),
		homescreenFormat: pb.HomescreenFormat_ToiG, homescreenW: 128, homescreenH: 64, optiga: true,
	},
	ModelSafe5: {
		model: ModelSafe5, internalModel: "T3T1", version: [3]uint32{2, 9, 1}, revision: rev291,
		source:           "trezor-firmware core/v2.9.1: core/src/apps/base.py (get_features), core/embed/models/T3T1, core/site_scons/models/T3T1/trezor_t3t1_revE.py",
		caps:             withCaps(pb.Capability_Capability_Haptic, pb.Capability_Capability_Brightness),
		homescreenFormat: pb.HomescreenFormat_Jpeg, homescreenW: 240, homescreenH: 240, sdCard: true, haptic: true, optiga: true,
	},
}

func (p *persona) revisionBytes() []byte {
	b, err := hex.DecodeString(p.revision)
	if err != nil {
		panic("trezoremu: bad persona revision " + p.revision) // a constant above
	}
	return b
}
