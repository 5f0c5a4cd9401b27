package device

import "context"

type passphraseKey struct{}

// WithPassphrase returns a context carrying a BIP-39 passphrase the person gave for this
// call (hwbridged's v1Unlock): a driver answers the device's next passphrase request with
// it. The passphrase lives only as long as the call's context; nothing keeps it.
func WithPassphrase(ctx context.Context, passphrase string) context.Context {
	return context.WithValue(ctx, passphraseKey{}, passphrase)
}

// PassphraseFrom returns the passphrase WithPassphrase put in ctx.
func PassphraseFrom(ctx context.Context) (string, bool) {
	p, ok := ctx.Value(passphraseKey{}).(string)
	return p, ok
}
