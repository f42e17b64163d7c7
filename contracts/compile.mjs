#!/usr/bin/env node
// Compile the project's Solidity contracts with the pinned npm `solc` (no downloads).
//
// Usage: node contracts/compile.mjs [outDir]     (default: contracts/build)
//
// Writes <outDir>/<ContractName>.json for every contract in CONTRACTS. The output is
// deterministic (sorted keys, repo-relative source names, trailing newline), so the
// committed artifacts can be checked by recompiling and comparing byte for byte.
// Exits non-zero and prints the compiler messages on any error; warnings are printed
// to stderr but do not fail the build.

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const solc = require("solc");

const EXPECTED_COMPILER = "0.8.30";
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const NODE_MODULES = path.join(REPO_ROOT, "node_modules");

// Source unit names are repo-relative so the metadata hash does not depend on where
// the checkout lives.
const CONTRACTS = [
  { source: "contracts/src/TestUSDC.sol", name: "TestUSDC" },
  { source: "contracts/src/MintToken.sol", name: "MintToken" },
  { source: "contracts/src/TestWallet.sol", name: "TestWallet" },
  { source: "contracts/src/TestWallet.sol", name: "TestWalletFactory" },
  { source: "contracts/src/TestWallet.sol", name: "TestGasBurner" },
];

const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: "cancun",
  outputSelection: {
    "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "evm.methodIdentifiers"] },
  },
};

function fail(message) {
  process.stderr.write(`compile.mjs: ${message}\n`);
  process.exit(1);
}

function isSafeRelative(p) {
  return !path.isAbsolute(p) && !p.split(/[\\/]/).includes("..");
}

// Resolve imports: "@openzeppelin/..." from node_modules, "contracts/..." from the repo.
function findImports(importPath) {
  if (!isSafeRelative(importPath)) {
    return { error: `refusing to import ${importPath}` };
  }
  let file;
  if (importPath.startsWith("@openzeppelin/")) {
    file = path.join(NODE_MODULES, importPath);
  } else if (importPath.startsWith("contracts/")) {
    file = path.join(REPO_ROOT, importPath);
  } else {
    return { error: `unsupported import ${importPath}` };
  }
  try {
    return { contents: readFileSync(file, "utf8") };
  } catch (err) {
    return { error: `cannot read ${importPath}: ${err.message}` };
  }
}

// Recursively sort object keys so JSON output is stable.
function sortKeys(value) {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === "object") {
    const out = {};
    for (const key of Object.keys(value).sort()) out[key] = sortKeys(value[key]);
    return out;
  }
  return value;
}

function main() {
  const longVersion = solc.version();
  const shortVersion = longVersion.split("+")[0];
  if (shortVersion !== EXPECTED_COMPILER) {
    fail(`expected solc ${EXPECTED_COMPILER}, got ${longVersion} (run npm install)`);
  }

  const outDir = process.argv[2]
    ? path.resolve(process.cwd(), process.argv[2])
    : path.join(REPO_ROOT, "contracts", "build");

  const sources = {};
  for (const { source } of CONTRACTS) {
    sources[source] = { content: readFileSync(path.join(REPO_ROOT, source), "utf8") };
  }
  const input = { language: "Solidity", sources, settings: SETTINGS };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));

  let hasError = false;
  for (const msg of output.errors ?? []) {
    const text = msg.formattedMessage ?? `${msg.severity}: ${msg.message}`;
    process.stderr.write(`${text}\n`);
    if (msg.severity === "error") hasError = true;
  }
  if (hasError) fail("compilation failed");

  mkdirSync(outDir, { recursive: true });
  for (const { source, name } of CONTRACTS) {
    const contract = output.contracts?.[source]?.[name];
    if (!contract) fail(`no output for ${source}:${name}`);
    const bytecode = contract.evm.bytecode.object;
    if (!bytecode) fail(`${name} has empty bytecode (abstract contract?)`);
    const artifact = sortKeys({
      contractName: name,
      sourceName: source,
      abi: contract.abi,
      bytecode: `0x${bytecode}`,
      deployedBytecode: `0x${contract.evm.deployedBytecode.object}`,
      methodIdentifiers: contract.evm.methodIdentifiers,
      compiler: shortVersion,
      compilerLongVersion: longVersion,
      settings: { optimizer: SETTINGS.optimizer, evmVersion: SETTINGS.evmVersion },
    });
    const file = path.join(outDir, `${name}.json`);
    writeFileSync(file, `${JSON.stringify(artifact, null, 2)}\n`);
    process.stdout.write(`wrote ${path.relative(process.cwd(), file) || file}\n`);
  }
}

main();
