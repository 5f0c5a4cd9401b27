package device

import "context"

type appSwitchKey struct{}

// WithAppSwitch returns a context whose calls may change what runs on the device: a Ledger
// driver may then close the open app (QUIT_APP) and open the one the call needs. Only
// commands where the person asked for an action at the device (signing, showing an address
// to compare) pass it; listings, fingerprint lookups and xpub reads never do, so that they
// never close the app the person has open, and fail with ErrWrongApp naming the app to open.
func WithAppSwitch(ctx context.Context) context.Context {
	return context.WithValue(ctx, appSwitchKey{}, true)
}

// AppSwitchAllowed reports whether ctx came from WithAppSwitch.
func AppSwitchAllowed(ctx context.Context) bool {
	ok, _ := ctx.Value(appSwitchKey{}).(bool)
	return ok
}
