#!/usr/bin/env node
// Compiles RewardToken.sol with the pinned solc-js (no binary download) and writes
// artifacts/RewardToken.json, which Python loads at runtime so it never needs Node.
//
// Usage: node build.mjs [--out DIR]   (DIR defaults to ./artifacts next to this file)
//
// The build is deterministic: pinned compiler and OpenZeppelin (package-lock.json), fixed
// source unit names, and no metadata hash in the bytecode, so a rebuild must equal the
// committed artifact byte for byte (tests/chain/test_artifacts.py checks it).

import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const solc = require("solc");

const HERE = dirname(fileURLToPath(import.meta.url));
const CONTRACT = "RewardToken";
const SOURCE = `${CONTRACT}.sol`;
const EXPECTED_SOLC = "0.8.37";

// evmVersion is pinned because solc 0.8.37 defaults to osaka, which py-evm cannot execute.
// viaIR + runs=10000: batchMint is the hot path; the IR pipeline saves ~330 gas per recipient
// over the legacy one (bench/gas/results.md). bytecodeHash "none" keeps the bytecode free of
// a metadata hash, so the committed artifact is reproducible byte for byte.
const SETTINGS = {
  evmVersion: "cancun",
  optimizer: { enabled: true, runs: 10000 },
  viaIR: true,
  metadata: { bytecodeHash: "none" },
  outputSelection: {
    [SOURCE]: { [CONTRACT]: ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] },
  },
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
  const source = readFileSync(join(HERE, SOURCE), "utf8");
  const input = { language: "Solidity", sources: { [SOURCE]: { content: source } }, settings: SETTINGS };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));

  const diagnostics = output.errors ?? [];
  for (const d of diagnostics) process.stderr.write(`${d.formattedMessage ?? d.message}\n`);
  if (diagnostics.some((d) => d.severity === "error")) process.exit(1);

  const compiled = output.contracts[SOURCE][CONTRACT];
  const artifact = {
    contractName: CONTRACT,
    abi: compiled.abi,
    bytecode: `0x${compiled.evm.bytecode.object}`,
    deployedBytecode: `0x${compiled.evm.deployedBytecode.object}`,
    compiler: { version, settings: SETTINGS },
    sourceSha256: createHash("sha256").update(source).digest("hex"),
  };

  const outDir = parseOut(process.argv.slice(2));
  mkdirSync(outDir, { recursive: true });
  const outFile = join(outDir, `${CONTRACT}.json`);
  writeFileSync(outFile, `${JSON.stringify(artifact, null, 2)}\n`);
  process.stdout.write(`wrote ${outFile} (${compiled.evm.deployedBytecode.object.length / 2} bytes runtime)\n`);
}

main();
