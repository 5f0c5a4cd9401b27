// Drives hwemu's KeepKey persona with KeepKey's own client, @shapeshiftoss/hdwallet-keepkey
// (pinned in package.json), for emulator/keepkey's TestHDWalletKeepKey. The plan (the UDP
// port and the calls) comes on stdin as JSON; the answers go to stdout as one JSON object
// keyed by call name, each {ok, value} or {ok: false, error}. Every check of the answers
// is done by the Go test.
//
// The transport: hdwallet-keepkey does its own "?##" framing and hands 64-byte chunks to a
// TransportDelegate (writeChunk/readChunk). npm's only Node delegate for the emulator,
// @shapeshiftoss/hdwallet-keepkey-tcp, stops at 1.11.1 and is built on the older
// KeepKeyTransport class that hdwallet-keepkey 1.62 no longer exports; its successor
// (keepkey/hdwallet packages/hdwallet-keepkey-tcp) is not published and talks to the
// kkemu container's HTTP bridge (scripts/emulator/bridge.py), which forwards each chunk as
// one datagram to the emulator's UDP port 11044. This delegate does that forwarding itself:
// one chunk per datagram to and from the emulator's UDP port, as the bridge does.
'use strict';

const fs = require('fs');
const dgram = require('dgram');
const core = require('@shapeshiftoss/hdwallet-core');
const keepkey = require('@shapeshiftoss/hdwallet-keepkey');

const plan = JSON.parse(fs.readFileSync(0, 'utf8'));

class UdpDelegate {
  constructor(port) {
    this.port = port;
    this.sock = null;
    this.queue = [];
    this.waiters = [];
  }
  async isOpened() { return this.sock !== null; }
  async getDeviceID() { return `udp:127.0.0.1:${this.port}`; }
  async connect() {
    this.sock = dgram.createSocket('udp4');
    this.sock.on('message', msg => {
      if (msg.length === 8 && msg.toString() === 'PONGPONG') return;
      const w = this.waiters.shift();
      if (w) w(new Uint8Array(msg)); else this.queue.push(new Uint8Array(msg));
    });
    await new Promise((resolve, reject) => this.sock.connect(this.port, '127.0.0.1', err => (err ? reject(err) : resolve())));
  }
  async tryConnectDebugLink() { return false; }
  async disconnect() { if (this.sock) { this.sock.close(); this.sock = null; } }
  async writeChunk(buf) {
    await new Promise((resolve, reject) => this.sock.send(Buffer.from(buf), err => (err ? reject(err) : resolve())));
  }
  async readChunk() {
    if (this.queue.length) return this.queue.shift();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no datagram from the emulator in 20 s')), 20000);
      this.waiters.push(chunk => { clearTimeout(t); resolve(chunk); });
    });
  }
}

(async () => {
  const delegate = new UdpDelegate(plan.port);
  const Adapter = keepkey.Adapter.fromDelegate({
    async getTransportDelegate() { return delegate; },
    async inspectDevice() { return { serialNumber: 'hwemu', productName: 'KeepKey' }; },
    async getDevice() { return 'hwemu'; },
  });
  const keyring = new core.Keyring();
  const out = {};
  let wallet;
  try {
    wallet = await Adapter.useKeyring(keyring).pairRawDevice('hwemu');
  } catch (e) {
    out.pair = { ok: false, error: String(e && (e.message || e)) };
    process.stdout.write(JSON.stringify(out));
    await delegate.disconnect();
    return;
  }
  wallet.transport.on(core.Events.BUTTON_REQUEST, () => {}); // the client acks by itself
  if (plan.pin) {
    // What a wallet UI does with its PIN matrix: the positions the user clicked.
    wallet.transport.on(core.Events.PIN_REQUEST, () => { wallet.sendPin(plan.pin).catch(() => {}); });
  }
  for (const [name, method, arg] of plan.calls) {
    try {
      const value = await wallet[method](arg);
      out[name] = { ok: true, value };
    } catch (e) {
      out[name] = { ok: false, error: String(e && (e.message || (e.message_type && JSON.stringify(e)) || e)) };
    }
  }
  process.stdout.write(JSON.stringify(out));
  await delegate.disconnect();
})().catch(e => {
  process.stderr.write(String(e && e.stack || e) + '\n');
  process.exit(1);
});
