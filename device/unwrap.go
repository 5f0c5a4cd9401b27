package device

// Inner returns the driver Verify wraps (d itself when it is not wrapped), for the optional
// interfaces a caller looks for at its point of use (a Ledger's wallet policies, a Trezor's
// multisig addresses): calls that return no signature, so nothing is left unverified.
func Inner(d Device) Device {
	if v, ok := d.(*verifier); ok {
		return v.Device
	}
	return d
}
