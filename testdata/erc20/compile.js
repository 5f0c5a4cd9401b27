// Compiles TestToken.sol with solc-js (npm solc@0.8.37) through the standard JSON interface:
// optimizer on (200 runs), evmVersion shanghai (solc 0.8.37 defaults to osaka, which older
// dev nodes reject; shanghai bytecode runs everywhere). Writes TestToken.bin (hex, no 0x)
// and TestToken.abi (JSON) next to this file. Usage: see README.md.
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const dir = __dirname;
const input = {
  language: 'Solidity',
  sources: { 'TestToken.sol': { content: fs.readFileSync(path.join(dir, 'TestToken.sol'), 'utf8') } },
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: 'shanghai',
    metadata: { bytecodeHash: 'none' },
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
  },
};
const out = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (out.errors || []).filter((e) => e.severity === 'error');
for (const e of out.errors || []) console.error(e.formattedMessage);
if (errors.length) process.exit(1);
const c = out.contracts['TestToken.sol'].TestToken;
fs.writeFileSync(path.join(dir, 'TestToken.bin'), c.evm.bytecode.object + '\n');
fs.writeFileSync(path.join(dir, 'TestToken.abi'), JSON.stringify(c.abi, null, 2) + '\n');
console.log('solc', solc.version(), 'bytecode', c.evm.bytecode.object.length / 2, 'bytes');
