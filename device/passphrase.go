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

type pinKey struct{}

// WithPIN returns a context whose calls answer a device's PIN request with ask (hwbridged's
// promptpin/sendpin: ask waits for the positions the person reads off the device's matrix).
func WithPIN(ctx context.Context, ask func(ctx context.Context) (string, error)) context.Context {
	return context.WithValue(ctx, pinKey{}, ask)
}

// PINFrom returns the PIN provider WithPIN put in ctx.
func PINFrom(ctx context.Context) (func(ctx context.Context) (string, error), bool) {
	f, ok := ctx.Value(pinKey{}).(func(ctx context.Context) (string, error))
	return f, ok && f != nil
}
