// Package emulator is the common core of hwbridge's virtual hardware wallets: the key store
// (Wallet: BIP-39 seed, BIP-32 derivation), the approval policy and screen transcript
// (Approver), fault injection (Faults) and the loopback control API. The device families
// live below it: emulator/trezor (Trezor-class, Codec v1 over UDP or an in-process pipe),
// emulator/ledger (Ledger-class, APDUs over Speculos TCP) and emulator/coldcard
// (Coldcard-class, its USB protocol on the Coldcard simulator's unix datagram socket). None
// of them imports the drivers in device/...: the emulator is written from the protocol
// notes, independently.
//
// # Screens and approval
//
// Whenever a device would show something and wait for a button, it calls Approver.Ask with
// a Screen (title and lines: address, amount, fee, chain, message text). The screen goes
// into the transcript; the policy decides it: auto approves, reject rejects, prompt waits
// for Approver.Press (from the control API, a Trezor DebugLink decision or a test).
//
// # Faults
//
// Faults arms one-shot faults on a device: drop the next N outgoing packets, corrupt the
// next N outgoing packets, drop or corrupt only the N-th outgoing packet from now
// (drop_at, corrupt_at: a fault at one message index of a flow), disconnect at the N-th
// incoming message (the device forgets the exchange and closes the link), and a delay
// before every reply. Its state also counts the packets sent and messages received, so a
// flow's length can be read off before sweeping faults across it.
//
// # Control API
//
// NewControlHandler serves a small JSON API for tests and people driving hwemu by hand
// (hwemu --control 127.0.0.1:PORT). It answers loopback Host names only and refuses any
// request with an Origin or Referer header. "device" names a device ("trezor", "ledger",
// "coldcard", "keepkey"); it may be left out when only one device is served (for /press and
// /fault also when only one device has a screen waiting).
//
//	GET  /health                       {"ok":true,"devices":["ledger","trezor"]}
//	GET  /transcript[?device=trezor]   [{"device":"trezor","title":"Confirm output",
//	                                     "lines":["bc1q…","0.001 BTC"],"time":"…","outcome":"approved"}, …]
//	                                   outcome: pending, approved, rejected, cancelled, shown
//	POST /press   {"device":"trezor","approve":true}     answer the waiting screen (policy prompt;
//	                                                     409 otherwise). A press made before the
//	                                                     screen appears is held for it.
//	POST /policy  {"device":"trezor","policy":"reject"}  auto | reject | prompt; without device:
//	                                                     every device
//	POST /fault   {"device":"trezor","drop":1,"corrupt":0,"drop_at":0,"corrupt_at":0,"disconnect_at":2,"delay_ms":50,"clear":false}
//	                                                     arm faults (see FaultSpec); the reply
//	                                                     shows what is armed
//
// Errors come back as {"ok":false,"error":"…"} with a 4xx status.
package emulator
