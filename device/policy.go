package device

import (
	"slices"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/hwbridge/hwbridge/internal/hdpath"
)

// WalletPolicy is a BIP-388 wallet policy: a descriptor template over numbered keys. Devices
// that register policies (a Ledger's REGISTER_WALLET) serialize it their own way; callers
// hold it, store it and compare it as plain data.
type WalletPolicy struct {
	// Name is empty for default single-signature policies; registered policies need a name
	// (a Ledger: 1–64 printable ASCII characters with no leading or trailing space).
	Name string
	// Template is the descriptor template, e.g. "wsh(sortedmulti(2,@0/**,@1/**))".
	Template string
	// Keys are the key information strings, "[fingerprint/path']xpub".
	Keys []string
}

// Equal reports whether w and o are the same policy (name, template and keys in order).
func (w WalletPolicy) Equal(o WalletPolicy) bool {
	return w.Name == o.Name && w.Template == o.Template && slices.Equal(w.Keys, o.Keys)
}

// RegisteredWallet is a wallet policy registered on a device and the device's proof of
// registration (a Ledger's HMAC), which later calls hand back instead of registering again.
type RegisteredWallet struct {
	Policy WalletPolicy
	HMAC   [32]byte
}

// MultisigScript is the output type of a bare m-of-n multisig (sortedmulti or multi).
type MultisigScript string

const (
	MultisigSH    MultisigScript = "sh"     // p2sh
	MultisigSHWSH MultisigScript = "sh-wsh" // p2sh-p2wsh
	MultisigWSH   MultisigScript = "wsh"    // p2wsh
)

// MultisigKey is one cosigner: an extended public key and the non-hardened steps below it,
// or a plain compressed public key (Pub).
type MultisigKey struct {
	XPub  string
	Steps hdpath.Path
	Pub   []byte
}

// MultisigAddressRequest asks for the address of an m-of-n multisig the device has a key in
// (devices that take the cosigners with each request, as a Trezor does).
type MultisigAddressRequest struct {
	Script    MultisigScript
	Threshold int
	Keys      []MultisigKey // in script order
	Path      hdpath.Path   // the device's own key among Keys
	Network   *chaincfg.Params
	Display   bool
}
