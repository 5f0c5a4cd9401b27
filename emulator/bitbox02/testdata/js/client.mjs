// Drives hwemu's BitBox02 persona with BitBox's own client, bitbox-api (npm, WASM), for
// emulator/bitbox02's tests. Run as
//   node --experimental-wasm-modules client.mjs '<request JSON>'
// with BITBOX_API set to the directory of the bitbox-api package. Prints one JSON object.
//
// bitbox-api 0.13 in JavaScript reaches a device only through WebHID (navigator.hid) or
// the BitBoxBridge (HTTP and a WebSocket on localhost:8178); its TCP simulator transport
// exists only in the Rust crate. So this script gives Node a minimal navigator.hid whose
// one device sends each 64-byte output report to the emulator's TCP port and turns every
// 64 bytes read back into an input report: exactly what the BitBox02 simulator carries on
// its socket. Everything above the reports (U2F HID framing, HWW, Noise, pairing,
// protobuf, anti-klepto) is bitbox-api's own WASM code. The pairing keys go to a
// localStorage shim backed by a JSON file, as a browser would keep them.

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const req = JSON.parse(process.argv[2]);

// localStorage, and a Window that globalThis is an instance of (web_sys::window()).
const storeFile = req.storage;
const store = fs.existsSync(storeFile) ? JSON.parse(fs.readFileSync(storeFile, 'utf8')) : {};
globalThis.localStorage = {
  getItem: (k) => (k in store ? store[k] : null),
  setItem: (k, v) => { store[k] = String(v); fs.writeFileSync(storeFile, JSON.stringify(store)); },
  removeItem: (k) => { delete store[k]; fs.writeFileSync(storeFile, JSON.stringify(store)); },
};
function Window() {}
Window.prototype = Object.getPrototypeOf(globalThis);
globalThis.Window = Window;

// navigator.hid with one BitBox02 on the emulator's TCP port.
function hidDevice(host, port) {
  const listeners = [];
  let sock = null;
  let pending = Buffer.alloc(0);
  const dev = {
    vendorId: 0x03eb, productId: 0x2403, productName: 'BitBox02', opened: false,
    open: () => new Promise((resolve, reject) => {
      sock = net.connect({ host, port }, () => { dev.opened = true; resolve(); });
      sock.on('error', reject);
      sock.on('data', (chunk) => {
        pending = Buffer.concat([pending, chunk]);
        while (pending.length >= 64) {
          const report = new Uint8Array(pending.subarray(0, 64)); // a copy with its own buffer
          pending = pending.subarray(64);
          for (const fn of listeners) fn({ data: new DataView(report.buffer) });
        }
      });
      sock.on('close', () => { dev.opened = false; });
    }),
    close: async () => { if (sock) sock.destroy(); dev.opened = false; },
    sendReport: async (reportId, bytes) => {
      if (reportId !== 0 || bytes.length !== 64) throw new Error(`report ${reportId} of ${bytes.length} bytes`);
      sock.write(Buffer.from(bytes));
    },
    addEventListener: (type, fn) => { if (type === 'inputreport') listeners.push(fn); },
    removeEventListener: (type, fn) => { const i = listeners.indexOf(fn); if (i >= 0) listeners.splice(i, 1); },
  };
  return dev;
}
const device = hidDevice('127.0.0.1', req.port);
globalThis.navigator = {
  hid: {
    getDevices: async ({ filters }) => filters.some((f) => f.vendorId === device.vendorId && f.productId === device.productId) ? [device] : [],
    requestDevice: async () => [device],
    addEventListener: () => {},
  },
};

const hex = (u8) => Buffer.from(u8).toString('hex');
const unhex = (s) => new Uint8Array(Buffer.from(s, 'hex'));
const bbDir = process.env.BITBOX_API;
const bb = await import(pathToFileURL(path.join(bbDir, 'bitbox_api.js')).href);

const out = {};
async function step(name, fn) {
  try {
    out[name] = await fn();
  } catch (e) {
    const err = bb.ensureError(e);
    out[name] = { error: err.message ?? String(err), code: err.code ?? '', userAbort: bb.isUserAbort(err) };
  }
}

const bitbox = await bb.bitbox02ConnectWebHID(() => {});
const pairing = await bitbox.unlockAndPair();
out.pairingCode = pairing.getPairingCode() ?? null;
const paired = await pairing.waitConfirm();
out.product = paired.product();
out.version = paired.version();
out.ethSupported = paired.ethSupported();

for (const op of req.ops) {
  switch (op.op) {
    case 'fingerprint':
      await step(op.name, () => paired.rootFingerprint());
      break;
    case 'deviceInfo':
      await step(op.name, () => paired.deviceInfo());
      break;
    case 'xpub':
      await step(op.name, () => paired.btcXpub(op.coin, op.keypath, op.xpubType, !!op.display));
      break;
    case 'address':
      await step(op.name, () => paired.btcAddress(op.coin, op.keypath, { simpleType: op.simpleType }, !!op.display));
      break;
    case 'signPSBT':
      await step(op.name, () => paired.btcSignPSBT(op.coin, op.psbt, undefined, 'default'));
      break;
    case 'signMessage':
      await step(op.name, async () => {
        const s = await paired.btcSignMessage(op.coin, { scriptConfig: { simpleType: op.simpleType }, keypath: op.keypath }, new TextEncoder().encode(op.message));
        return { sig: hex(s.sig), recid: Number(s.recid), electrumSig65: hex(s.electrumSig65) };
      });
      break;
    case 'ethAddress':
      await step(op.name, () => paired.ethAddress(BigInt(op.chainId), op.keypath, !!op.display));
      break;
    case 'ethSign':
      await step(op.name, async () => {
        const tx = { nonce: unhex(op.nonce), gasPrice: unhex(op.gasPrice), gasLimit: unhex(op.gasLimit), recipient: unhex(op.recipient), value: unhex(op.value), data: unhex(op.data) };
        const s = await paired.ethSignTransaction(BigInt(op.chainId), op.keypath, tx);
        return { r: hex(s.r), s: hex(s.s), v: hex(s.v) };
      });
      break;
    case 'ethSign1559':
      await step(op.name, async () => {
        const tx = { chainId: op.chainId, nonce: unhex(op.nonce), maxPriorityFeePerGas: unhex(op.maxPriorityFeePerGas), maxFeePerGas: unhex(op.maxFeePerGas), gasLimit: unhex(op.gasLimit), recipient: unhex(op.recipient), value: unhex(op.value), data: unhex(op.data) };
        const s = await paired.ethSign1559Transaction(op.keypath, tx);
        return { r: hex(s.r), s: hex(s.s), v: hex(s.v) };
      });
      break;
    case 'ethSignMessage':
      await step(op.name, async () => {
        const s = await paired.ethSignMessage(BigInt(op.chainId), op.keypath, new TextEncoder().encode(op.message));
        return { r: hex(s.r), s: hex(s.s), v: hex(s.v) };
      });
      break;
    case 'isRegistered':
      await step(op.name, () => paired.btcIsScriptConfigRegistered(op.coin, { multisig: op.multisig }, op.keypath));
      break;
    case 'register':
      await step(op.name, async () => {
        await paired.btcRegisterScriptConfig(op.coin, { multisig: op.multisig }, op.keypath, 'autoXpubTpub', op.label);
        return 'ok';
      });
      break;
    case 'signPSBTMultisig':
      await step(op.name, () => paired.btcSignPSBT(op.coin, op.psbt, { scriptConfig: { multisig: op.multisig }, keypath: op.keypath }, 'default'));
      break;
    case 'ethSignTypedMessage':
      await step(op.name, async () => {
        const s = await paired.ethSignTypedMessage(BigInt(op.chainId), op.keypath, JSON.parse(op.json));
        return { r: hex(s.r), s: hex(s.s), v: hex(s.v) };
      });
      break;
    default:
      throw new Error(`unknown op ${op.op}`);
  }
}
process.stdout.write(JSON.stringify(out, (k, v) => (typeof v === 'bigint' ? v.toString() : v)));
process.exit(0);
