package psbt

import (
	"encoding/binary"
	"slices"

	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/btcutil/psbt"
)

// GlobalXPubType is the BIP-174 key type of PSBT_GLOBAL_XPUB.
const GlobalXPubType = 0x01

// GlobalXPub is one PSBT_GLOBAL_XPUB entry: an extended public key and its origin.
type GlobalXPub struct {
	Key *hdkeychain.ExtendedKey // with the version bytes the PSBT carries
	// Fingerprint is the master key fingerprint as btcd's Bip32Derivation.MasterKeyFingerprint
	// holds it (the 4 bytes read little-endian), so the two compare directly.
	Fingerprint uint32
	Path        []uint32 // from the master key
}

// GlobalXPubs reads the PSBT_GLOBAL_XPUB entries of p (btcutil/psbt keeps them in
// Unknowns): key 0x01 ‖ 78-byte BIP-32 serialization, value fingerprint ‖ path (u32 LE
// each). Entries that do not have that shape or hold no valid public key are left out.
func GlobalXPubs(p *psbt.Packet) []GlobalXPub {
	var out []GlobalXPub
	for _, u := range p.Unknowns {
		if len(u.Key) != 1+78 || u.Key[0] != GlobalXPubType || len(u.Value) < 4 || len(u.Value)%4 != 0 {
			continue
		}
		k := u.Key[1:]
		key := hdkeychain.NewExtendedKey(k[0:4], k[45:78], k[13:45], k[5:9], k[4], binary.BigEndian.Uint32(k[9:13]), false)
		if _, err := key.ECPubKey(); err != nil {
			continue
		}
		path := make([]uint32, 0, len(u.Value)/4-1)
		for o := 4; o < len(u.Value); o += 4 {
			path = append(path, binary.LittleEndian.Uint32(u.Value[o:]))
		}
		out = append(out, GlobalXPub{Key: key, Fingerprint: binary.LittleEndian.Uint32(u.Value[:4]), Path: path})
	}
	return out
}

// FindGlobalXPub returns the PSBT_GLOBAL_XPUB whose origin is fingerprint (as btcd holds it)
// and path.
func FindGlobalXPub(p *psbt.Packet, fingerprint uint32, path []uint32) (GlobalXPub, bool) {
	for _, x := range GlobalXPubs(p) {
		if x.Fingerprint == fingerprint && slices.Equal(x.Path, path) {
			return x, true
		}
	}
	return GlobalXPub{}, false
}
