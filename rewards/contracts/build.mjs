#!/usr/bin/env node
// Compiles Crowdmint's contracts with the pinned solc-js (no binary download) and writes one
// artifacts/<Contract>.json each, which Python loads at runtime so it never needs Node:
//   RewardToken        the platform's own token, minted per payout batch
//   RewardDistributor  payouts in an existing ERC-20 (a stablecoin), pulled from a treasury
//   MockStablecoin     a 6-decimal test token (tests and local nodes only)
//
// Usage: node build.mjs [--out DIR]   (DIR defaults to ./artifacts next to this file)
//
// The build is deterministic: pinned compiler and OpenZeppelin (package-lock.json), fixed
// source unit names, and no metadata hash in the bytecode, so a rebuild must equal the
// committed artifacts byte for byte (tests/chain/test_artifacts.py checks it).

import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const solc = require("solc");

const HERE = dirname(fileURLToPath(import.meta.url));
const EXPECTED_SOLC = "0.8.37";
// Every source of ours, by source unit name; imports between them resolve by these names.
const SOURCES = [
  "BatchPayouts.sol",
  "RewardDistributor.sol",
  "RewardToken.sol",
  "test/MockStablecoin.sol",
];
const CONTRACTS = {
  RewardToken: "RewardToken.sol",
  RewardDistributor: "RewardDistributor.sol",
  MockStablecoin: "test/MockStablecoin.sol",
};

// evmVersion is pinned because solc 0.8.37 defaults to osaka, which py-evm cannot execute.
// viaIR + runs=10000: the batch loops are the hot path; the IR pipeline saves ~330 gas per
// recipient over the legacy one (bench/gas/results.md). bytecodeHash "none" keeps the bytecode
// free of a metadata hash, so the committed artifacts are reproducible byte for byte.
const SETTINGS = {
  evmVersion: "cancun",
  optimizer: { enabled: true, runs: 10000 },
  viaIR: true,
  metadata: { bytecodeHash: "none" },
  outputSelection: Object.fromEntries(
    Object.entries(CONTRACTS).map(([name, source]) => [
      source,
      { [name]: ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] },
    ]),
  ),
};

function parseOut(argv) {
  const i = argv.indexOf("--out");
  if (i === -1) return join(HERE, "artifacts");
  if (!argv[i + 1]) throw new Error("--out needs a directory");
  return resolve(argv[i + 1]);
}

function findImports(path) {
  // Only npm-installed packages are importable; nothing is vendored into the repo.
  try {
    return { contents: readFileSync(require.resolve(path), "utf8") };
  } catch (err) {
    return { error: `cannot resolve import ${path}: ${err.message}` };
  }
}

function main() {
  const version = solc.version();
  if (!version.startsWith(`${EXPECTED_SOLC}+`)) {
    throw new Error(`solc ${EXPECTED_SOLC} required, got ${version}; run npm ci`);
  }
  const contents = Object.fromEntries(
    SOURCES.map((name) => [name, readFileSync(join(HERE, name), "utf8")]),
  );
  // One digest of every source of ours: a change to any of them needs a rebuild.
  const sourcesSha256 = createHash("sha256");
  for (const name of SOURCES) sourcesSha256.update(`${name}\n${contents[name]}\n`);
  const input = {
    language: "Solidity",
    sources: Object.fromEntries(SOURCES.map((name) => [name, { content: contents[name] }])),
    settings: SETTINGS,
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));

  const diagnostics = output.errors ?? [];
  for (const d of diagnostics) process.stderr.write(`${d.formattedMessage ?? d.message}\n`);
  if (diagnostics.some((d) => d.severity === "error")) process.exit(1);

  const outDir = parseOut(process.argv.slice(2));
  mkdirSync(outDir, { recursive: true });
  for (const [name, source] of Object.entries(CONTRACTS)) {
    const compiled = output.contracts[source][name];
    const artifact = {
      contractName: name,
      sourceName: source,
      abi: compiled.abi,
      bytecode: `0x${compiled.evm.bytecode.object}`,
      deployedBytecode: `0x${compiled.evm.deployedBytecode.object}`,
      compiler: { version, settings: SETTINGS },
      sourcesSha256: sourcesSha256.copy().digest("hex"),
    };
    const outFile = join(outDir, `${name}.json`);
    writeFileSync(outFile, `${JSON.stringify(artifact, null, 2)}\n`);
    const size = compiled.evm.deployedBytecode.object.length / 2;
    process.stdout.write(`wrote ${outFile} (${size} bytes runtime)\n`);
  }
}

main();
