// Package daemon is hwbridged's local API: JSON-RPC 2.0 over a unix socket, served with
// go-ethereum's rpc package (the server clef used). It owns app pairing and keys
// (daemon/keys), replay protection, the request journal (daemon/journal) and the audit log
// (daemon/audit), and reaches devices through a hub and chains through small interfaces
// that cmd/hwbridged wires.
//
// # Socket
//
// The socket is created with mode 0600 in a 0700 directory (default
// $XDG_RUNTIME_DIR/hwbridge/hwbridged.sock, else ~/.hwbridge/hwbridged.sock). Every accepted
// connection's peer uid is read with SO_PEERCRED and a peer of another uid is closed at once.
// A socket file left by a dead daemon is detected by dialling it and replaced; a live one
// makes Listen fail with ErrInUse, which says what to do.
//
// # Methods
//
// Methods are named hwbridge_v1Xxx (versioned; a v2 would sit beside them). The route table
// (routes.go) gives each method its scope; no handler checks scopes itself. hwbridge_version
// and hwbridge_v1Pair, hwbridge_v1Login need no key. Every other method takes two positional
// parameters: the auth object, then one params object:
//
//	{"jsonrpc":"2.0","id":1,"method":"hwbridge_v1Xpub","params":[
//	    {"app":"0a1b2c3d4e","key":1,"nonce":"00112233445566778899aabbccddeeff","ts":1800000000123,"mac":"99b3…"},
//	    {"path":"m/84'/0'/0'","network":"regtest"}]}
//
// Methods and the scope each needs (routes.go):
//
//	hwbridge_version                          none     daemon version and API versions
//	hwbridge_v1Pair {name,scopes,limits}      none     waits for hwbridge apps approve; returns the key once
//	hwbridge_v1Login {key}                    none     hands a key to a restarted daemon
//	hwbridge_v1Devices                        read     devices from the hub's cache (never waits)
//	hwbridge_v1Features, v1Fingerprint        read
//	hwbridge_v1Xpub {path,network,display}    read     cached after the first read
//	hwbridge_v1Address {chain,path,type,network,display}   read
//	hwbridge_v1SignPsbt {psbt,network}        sign
//	hwbridge_v1SignMessage {chain,path,message}            sign     BIP-137 or EIP-191
//	hwbridge_v1EthSignTx {path,tx,chain_id}   sign
//	hwbridge_v1EthSignTypedData {path,data}   sign     EIP-712 document, hashed here
//	hwbridge_v1EthSignTypedHash               sign     EIP-712 hashes from the caller
//	hwbridge_v1EthSend {request_id,rpc,to,value|token+amount,...}   sign+broadcast, journaled
//	hwbridge_v1BtcSend {request_id,rpc|esplora,network,type,account,to,amount,fee_rate}   sign+broadcast, journaled
//	hwbridge_v1EthBroadcast, v1BtcBroadcast   broadcast
//	hwbridge_v1AppsList/Approve/Deny/Rotate/Revoke          admin
//	hwbridge_v1BtcRegisterPolicy {name,template,keys,network}   sign   Ledger REGISTER_WALLET; HMAC kept in policies.json
//	hwbridge_v1BtcPolicyAddress {name,template,keys,hmac?,change,index,display}   read
//	hwbridge_v1BtcMultisigAddress {script,threshold,keys,path,display}   read   Trezor multisig address
//	hwbridge_v1Unlock {passphrase}            sign     a new passphrase session, kept (policies.go, session.go)
//	hwbridge_v1PromptPin, v1SendPin {pin}     sign     HWI's promptpin/sendpin, the request held by the daemon
//	hwbridge_v1PoliciesList, v1Forget {fingerprint?}        admin    what the daemon keeps for devices
//	hwbridge_v1RotateKey {overlap_seconds}    any      the calling app's own key
//
// Every params object may carry "device": a device path, a master fingerprint, or nothing
// for the only device. Apps limited to chains or devices are refused others (forbidden).
// Every call that reaches a device or a chain, and every pairing and key change, is written
// to the audit log.
//
// Notifications (device attach/detach, "confirm on your device" prompts) come through the
// rpc package's subscriptions: hwbridge_subscribe with ["v1Events", auth, {}]. An app sees
// the prompts of its own requests (an admin app sees all).
//
// # External-signer API
//
// go-ethereum's accounts/external client (geth --signer) cannot carry an app key, so the
// account_* methods (account_version, account_list, account_signTransaction,
// account_signData for text/plain, account_signTypedData) are served on a second socket,
// bound to one paired app by name (hwbridged --extapi-app NAME): every call runs with that
// app's current scopes and limits, stops at once when it is revoked, and is audited under
// it. account_list shows the first accounts m/44'/60'/0'/0/i of the device.
//
// # Request authentication and replay protection
//
// Every authenticated request (reads too, not only state-changing ones) carries in its auth
// object the app id, the key version, a nonce, a timestamp and a MAC:
//
//	mac = lower-case hex of HMAC-SHA256(key, input)
//	key = the whole key string, "hwbk1.APP.VERSION.SECRET", as ASCII bytes
//	input = "hwbridge-v1" LF method LF canonical(params) LF nonce LF ts
//
// where LF is the byte 0x0A; method is the full JSON-RPC method name
// ("hwbridge_v1SignPsbt"); params is the second positional parameter (absent: null); nonce is
// 16 to 64 characters of A-Z a-z 0-9 _ - (the Go client sends 32 hex digits of 16 random
// bytes); ts is the client's clock in unix milliseconds as a decimal integer, no sign or
// leading zeros.
//
// canonical(v) is v re-encoded as JSON with:
//   - no white space outside strings;
//   - object members sorted by the bytes of their names' UTF-8 encoding (ascending, shorter
//     first on a common prefix); a name appearing twice in one object makes the request
//     invalid;
//   - strings written as raw UTF-8 with exactly these escapes: " as \", \ as \\, U+0008 \b,
//     U+000C \f, U+000A \n, U+000D \r, U+0009 \t, other code points below U+0020 as \u00xx
//     with lower-case hex; "/" and all other characters unescaped (escapes in the input are
//     decoded first, so "\u0041" and "A" are the same string); the input must be valid UTF-8;
//   - numbers copied exactly as written in the request (send integers without exponent or
//     fraction; amounts go as decimal strings anyway);
//   - true, false, null as such; arrays in order.
//
// keys.TestMACVector pins one input and its MAC.
//
// The daemon refuses a request whose MAC does not verify (constant-time compare), whose ts is
// more than 60 s from the daemon's clock or earlier than the daemon's start, or whose
// (app, nonce) was accepted before while its timestamp is still inside the window. Nonces are
// remembered only after the MAC verified, so nobody can burn an app's nonces.
//
// Only key hashes are stored on disk. The daemon learns a key when it issues it (pairing,
// rotation) or when the app calls hwbridge_v1Login with it after a daemon restart (the Go
// Client does this by itself on a login-required error); it keeps keys in memory only. The
// key travels once per daemon run over the peer-checked socket; requests carry only MACs.
// Keys scope and audit apps; they are not a wall against other programs of the same user,
// which could read the data directory (where the CLI's own key is) as well.
//
// # Idempotent sign-and-broadcast
//
// hwbridge_v1BtcSend and hwbridge_v1EthSend take a request_id. The journal records the
// request before the device is asked, and the signed transaction before it is broadcast. A
// retry with the same id returns the first result; a retry after a crash between signing
// and broadcasting broadcasts the same signed transaction again (which cannot pay twice:
// same txid); a request that was still waiting on the device when the daemon stopped is
// reported as interrupted and never signed again.
//
// # Errors
//
// JSON-RPC errors carry the device error taxonomy: error.code is one of the Code constants
// (errors.go) and error.data {"kind":"user_rejected", "family":…, "device_code":…,
// "op":…} names the sentinel. Client.Call rebuilds the error, so errors.Is(err,
// device.ErrUserRejected) holds through the daemon as in direct mode. Auth failures carry
// the daemon/keys sentinels the same way (kind "unauthorized", "stale", "replay", …).
package daemon
