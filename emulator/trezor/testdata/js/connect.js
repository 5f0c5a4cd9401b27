// Drives hwemu's Trezor-class device with Trezor's own client, @trezor/connect (pinned in
// package.json), for emulator/trezor's TestTrezorConnect. The plan (port and call
// parameters) comes on stdin as JSON; the answers go to stdout as one JSON object keyed by
// call name, each {success, payload}. Every check of the answers is done by the Go test.
//
// Offline: fetch is replaced with a function that fails like an offline network (connect
// then uses its bundled release list and definitions); nothing leaves the machine.
'use strict';

const fs = require('fs');

const offline = async url => {
  const e = new Error(`offline test: no fetch of ${url}`);
  e.name = 'FetchError';
  throw e;
};
globalThis.fetch = offline;
for (const from of [require.resolve('@trezor/connect')]) {
  try {
    const p = require.resolve('cross-fetch', { paths: [from] });
    require.cache[p] = { id: p, filename: p, loaded: true, exports: Object.assign(offline, { default: offline, fetch: offline }) };
  } catch {
    // no cross-fetch in this tree: nothing to stub
  }
}

const TrezorConnect = require('@trezor/connect').default;
const { UdpTransport } = require('@trezor/transport');

const plan = JSON.parse(fs.readFileSync(0, 'utf8'));

// The Trezor UDP transport always enumerates 127.0.0.1:21324; this one asks the test's port.
class PortUdpTransport extends UdpTransport {
  constructor(params) {
    super(params);
    const api = this.api;
    api.enumerate = async signal => {
      const path = `127.0.0.1:${plan.port}`;
      const pinged = await api.ping(path, signal).catch(() => false);
      const found = pinged ? [{ path, type: 1, product: 0, vendor: 0, id: path, apiType: api.type }] : [];
      api.handleDevicesChange(found);
      return api.success(found);
    };
  }
}

(async () => {
  const out = { events: [] };
  TrezorConnect.on('DEVICE_EVENT', ev => {
    if (ev.type === 'device-connect' || ev.type === 'device-changed') {
      out.events.push({ type: ev.type, authenticityChecks: ev.payload && ev.payload.authenticityChecks, features: !!(ev.payload && ev.payload.features) });
    }
  });
  await TrezorConnect.init({
    manifest: { email: 'tests@hwbridge.invalid', appUrl: 'https://hwbridge.invalid' },
    transports: [PortUdpTransport],
    lazyLoad: false,
    popup: false,
    transportReconnect: false,
    enableFirmwareHashCheck: false,
  });
  for (const [name, method, params] of plan.calls) {
    const started = Date.now();
    try {
      const r = await TrezorConnect[method](params);
      out[name] = { success: r.success, payload: r.payload, ms: Date.now() - started };
    } catch (e) {
      out[name] = { success: false, payload: { error: String(e) } };
    }
  }
  process.stdout.write(JSON.stringify(out));
  await TrezorConnect.dispose();
  process.exit(0);
})().catch(e => {
  console.error(e);
  process.exit(1);
});
