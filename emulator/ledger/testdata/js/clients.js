#!/usr/bin/env node
// Ledger's own JavaScript clients (ledger-bitcoin AppClient, @ledgerhq/hw-app-eth) over
// @ledgerhq/hw-transport-node-speculos, run against hwemu's Ledger-class device by
// emulator/ledger's Go tests. Usage:
//
//   node clients.js btc  '<json request>'   Bitcoin app calls
//   node clients.js eth  '<json request>'   Ethereum app calls
//   node clients.js ethclear '<json request>'  Ethereum clear signing: token information
//                                            (hw-app-eth's own resolution from static
//                                            descriptor blobs) and full EIP-712
//
// The request carries {"port": N, ...}; the script prints one JSON object with every result
// (or {"error": ..., "statusCode": ...} for calls that are expected to fail) and exits 0, or
// prints the failure and exits 2.
"use strict";

const SpeculosTransport = require("@ledgerhq/hw-transport-node-speculos").default;
const { AppClient, DefaultWalletPolicy, WalletPolicy } = require("ledger-bitcoin");
const Eth = require("@ledgerhq/hw-app-eth").default;
const { ledgerService } = require("@ledgerhq/hw-app-eth");

function hex(b) {
  return Buffer.from(b).toString("hex");
}

// caught runs fn and reports a failure as data (for calls the test expects to fail).
async function caught(fn) {
  try {
    return { ok: await fn() };
  } catch (e) {
    return { error: String(e && e.message ? e.message : e), name: e && e.name, statusCode: e && e.statusCode };
  }
}

// openApp goes through the dashboard to the named app, as Ledger Live does.
async function openApp(transport, name) {
  await transport.send(0xb0, 0xa7, 0x00, 0x00);
  await transport.send(0xe0, 0xd8, 0x00, 0x00, Buffer.from(name, "ascii"));
  const r = await transport.send(0xb0, 0x01, 0x00, 0x00);
  return r.slice(2, 2 + r[1]).toString("ascii");
}

async function btc(transport, req) {
  const out = {};
  out.app = await openApp(transport, req.app || "Bitcoin");
  const app = new AppClient(transport);
  const fpr = await app.getMasterFingerprint();
  out.fingerprint = fpr;
  const coin = out.app === "Bitcoin Test" ? "1" : "0";
  out.xpub84 = await app.getExtendedPubkey(`m/84'/${coin}'/0'`, false);
  const wpkh = new DefaultWalletPolicy("wpkh(@0/**)", `[${fpr}/84'/${coin}'/0']${out.xpub84}`);
  out.wpkh = await app.getWalletAddress(wpkh, null, 0, 0, false);
  out.wpkhDisplayed = await app.getWalletAddress(wpkh, null, 1, 7, true);
  const xpub86 = await app.getExtendedPubkey(`m/86'/${coin}'/0'`, false);
  const tr = new DefaultWalletPolicy("tr(@0/**)", `[${fpr}/86'/${coin}'/0']${xpub86}`);
  out.tr = await app.getWalletAddress(tr, null, 0, 0, false);
  out.coinTypeRefused = await caught(() => app.getExtendedPubkey(`m/84'/${coin === "0" ? "1" : "0"}'/0'`, false));

  if (req.cosigners) {
    const ours = await app.getExtendedPubkey(`m/48'/${coin}'/0'/2'`, false);
    const keys = [`[${fpr}/48'/${coin}'/0'/2']${ours}`, ...req.cosigners];
    const policy = new WalletPolicy("Cold 2of3", "wsh(sortedmulti(2,@0/**,@1/**,@2/**))", keys);
    const [id, hmac] = await app.registerWallet(policy);
    out.multisig = {
      id: hex(id),
      hmac: hex(hmac),
      expectedId: hex(policy.getId()),
      address: await app.getWalletAddress(policy, hmac, 0, 0, false),
      keys,
    };
    if (req.multisigPsbt) {
      const sigs = await app.signPsbt(req.multisigPsbt, policy, hmac);
      out.multisig.sigs = sigs.map(([i, s]) => ({ input: i, pubkey: hex(s.pubkey), signature: hex(s.signature) }));
    }
  }
  const sign = async (psbt, policy) =>
    (await app.signPsbt(psbt, policy, null)).map(([i, s]) => ({
      input: i,
      pubkey: hex(s.pubkey),
      signature: hex(s.signature),
      tapleafHash: s.tapleafHash ? hex(s.tapleafHash) : undefined,
    }));
  if (req.wpkhPsbt) out.wpkhSigs = await sign(req.wpkhPsbt, wpkh);
  if (req.trPsbt) out.trSigs = await sign(req.trPsbt, tr);
  if (req.message) out.message = await app.signMessage(Buffer.from(req.message, "utf8"), `m/84'/${coin}'/0'/0/0`);
  return out;
}

async function eth(transport, req) {
  const out = {};
  out.app = await openApp(transport, "Ethereum");
  const eth = new Eth(transport);
  out.config = await eth.getAppConfiguration();
  const path = "44'/60'/0'/0/0";
  out.address = await eth.getAddress(path, false, true);
  out.addressDisplayed = await eth.getAddress(path, true, false);
  out.txs = [];
  for (const raw of req.txs || []) {
    out.txs.push(await caught(() => eth.signTransaction(path, raw, null)));
  }
  if (req.message) {
    out.personal = await eth.signPersonalMessage(path, Buffer.from(req.message, "utf8").toString("hex"));
  }
  if (req.eip712) {
    out.eip712 = await caught(() => eth.signEIP712HashedMessage(path, req.eip712.domain, req.eip712.message));
  }
  return out;
}

// ethclear runs hw-app-eth's clear-signing paths offline: every Ledger service URL is off,
// the ERC-20 descriptors come from req.erc20Blobs ({chainId: base64 of u32 BE len ‖ 0x0A
// payload, …}, the format of Ledger's erc20-signatures.json) and EIP-712 has no filters.
async function ethclear(transport, req) {
  const out = {};
  out.app = await openApp(transport, "Ethereum");
  const eth = new Eth(transport, "w0w", {
    pluginBaseURL: null,
    cryptoassetsBaseURL: null,
    nftExplorerBaseURL: null,
    calServiceURL: null,
    staticERC20Signatures: req.erc20Blobs || {},
    staticEIP712SignaturesV1: {},
    staticEIP712SignaturesV2: {},
  });
  out.config = await eth.getAppConfiguration();
  const path = "44'/60'/0'/0/0";
  if (req.provide) out.provided = await caught(() => eth.provideERC20TokenInformation(req.provide));
  out.txs = [];
  for (const raw of req.txs || []) {
    const resolution = await ledgerService.resolveTransaction(raw, eth.loadConfig, {
      erc20: true,
      externalPlugins: false,
      nft: false,
      uniswapV3: false,
    });
    out.txs.push({ tokens: resolution.erc20Tokens, sig: await caught(() => eth.signTransaction(path, raw, resolution)) });
  }
  if (req.typed) out.eip712 = await caught(() => eth.signEIP712Message(path, req.typed));
  return out;
}

async function main() {
  const [cmd, json] = process.argv.slice(2);
  const req = JSON.parse(json || "{}");
  const transport = await SpeculosTransport.open({ apduPort: req.port, host: "127.0.0.1" });
  try {
    let out;
    if (cmd === "btc") out = await btc(transport, req);
    else if (cmd === "eth") out = await eth(transport, req);
    else if (cmd === "ethclear") out = await ethclear(transport, req);
    else throw new Error(`unknown command ${cmd} (use btc, eth or ethclear)`);
    process.stdout.write(JSON.stringify(out) + "\n");
  } finally {
    await transport.close();
  }
}

main().catch((e) => {
  process.stderr.write(`clients.js: ${e && e.stack ? e.stack : e}\n`);
  if (e && e.statusCode !== undefined) process.stderr.write(`statusCode: 0x${e.statusCode.toString(16)}\n`);
  process.exit(2);
});
