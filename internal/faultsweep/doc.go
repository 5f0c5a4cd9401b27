// Package faultsweep holds the link fault sweep (issue 11's "Done when"): for each of drop,
// corrupt and disconnect, at every message index of a Trezor-class SignTx and of a
// Ledger-class SIGN_PSBT, a payment sent through the journaled pipeline
// (daemon.RunBTCSend) with hwbridged's driver wiring (device/drivers) behind the hub fails
// within 10 s with a clear error, the retry under the same request id pays, and the
// in-process regtest chain shows every payment exactly once. The package has only tests;
// it sits outside the race-detector run of scripts/test.sh because its cost is waiting on
// link timeouts, not goroutines meeting.
package faultsweep
