// Drives the pinned npm UR libraries for ur's interop tests (interop_test.go):
//   node interop.js decode            < parts      one UR part a line, in the order given; prints JSON
//   node interop.js encode-psbt HEX MAXFRAG COUNT  prints COUNT parts of crypto-psbt(HEX)
//   node interop.js encode-bytes HEX MAXFRAG COUNT prints COUNT parts of the bytes UR of message HEX
//   node interop.js encode-account JSON            prints the crypto-account UR of JSON
//     JSON: {"mfp": "hex8", "outputs": [{"scripts": [404], "key": "hex66", "chain": "hex64",
//            "path": [[84, true], [1, true], [0, true]], "parent": "hex8", "testnet": true}]}
'use strict';
const { URDecoder, UREncoder, UR } = require('@ngraveio/bc-ur');
const reg = require('@keystonehq/bc-ur-registry-btc');

function readStdin() {
  return require('fs').readFileSync(0, 'utf8').split('\n').map((s) => s.trim()).filter(Boolean);
}

function decode() {
  const dec = new reg.URRegistryDecoder();
  let accepted = 0;
  for (const part of readStdin()) {
    if (dec.receivePart(part)) accepted++;
    if (dec.isComplete()) break;
  }
  if (!dec.isComplete() || !dec.isSuccess()) {
    console.log(JSON.stringify({ complete: dec.isComplete(), error: dec.isError() ? dec.resultError() : 'incomplete', accepted }));
    process.exit(2);
  }
  const ur = dec.resultUR();
  const out = { type: ur.type, accepted };
  const item = dec.resultRegistryType();
  if (item instanceof reg.CryptoPSBT) {
    out.psbt = item.getPSBT().toString('hex');
  } else if (item instanceof reg.CryptoAccount) {
    out.mfp = item.getMasterFingerprint().toString('hex');
    out.outputs = item.getOutputDescriptors().map((o) => {
      const k = o.getHDKey();
      return {
        scripts: o.getScriptExpressions().map((s) => s.getTag()),
        xpub: k.getBip32Key(),
        path: k.getOrigin().getPath(),
        descriptor: o.toString(),
      };
    });
  } else {
    out.cbor = ur.cbor.toString('hex');
  }
  console.log(JSON.stringify(out));
}

function parts(ur, maxFrag, count) {
  const enc = new UREncoder(ur, maxFrag);
  for (let i = 0; i < count; i++) console.log(enc.nextPart());
}

function encodeAccount(spec) {
  const outputs = spec.outputs.map((o) => {
    const key = new reg.CryptoHDKey({
      isMaster: false,
      key: Buffer.from(o.key, 'hex'),
      chainCode: Buffer.from(o.chain, 'hex'),
      origin: new reg.CryptoKeypath(o.path.map(([index, hardened]) => new reg.PathComponent({ index, hardened }))),
      parentFingerprint: Buffer.from(o.parent, 'hex'),
      useInfo: o.testnet ? new reg.CryptoCoinInfo(reg.CryptoCoinInfoType.bitcoin, reg.CryptoCoinInfoNetwork.testnet) : undefined,
    });
    const scripts = o.scripts.map((t) => reg.ScriptExpressions[Object.keys(reg.ScriptExpressions).find((k) => reg.ScriptExpressions[k].getTag() === t)]);
    return new reg.CryptoOutput(scripts, key);
  });
  const acct = new reg.CryptoAccount(Buffer.from(spec.mfp, 'hex'), outputs);
  console.log(acct.toUR().toString === undefined ? '' : UREncoder.encodeSinglePart(acct.toUR()));
}

const [cmd, ...args] = process.argv.slice(2);
switch (cmd) {
  case 'decode':
    decode();
    break;
  case 'encode-psbt':
    parts(new reg.CryptoPSBT(Buffer.from(args[0], 'hex')).toUR(), Number(args[1]), Number(args[2]));
    break;
  case 'encode-bytes':
    parts(UR.fromBuffer(Buffer.from(args[0], 'hex')), Number(args[1]), Number(args[2]));
    break;
  case 'encode-account':
    encodeAccount(JSON.parse(args[0]));
    break;
  default:
    console.error('usage: interop.js decode|encode-psbt|encode-bytes|encode-account');
    process.exit(64);
}
