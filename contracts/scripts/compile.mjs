#!/usr/bin/env node
// Compile contracts/src with the npm `solc` (standard JSON) into deterministic artifacts:
// artifacts/<Name>.json = { contractName, sourceName, abi, bytecode, deployedBytecode, compiler }.
//
//   node scripts/compile.mjs               write contracts/artifacts/
//   node scripts/compile.mjs --out DIR     write DIR/ instead
//   node scripts/compile.mjs --check       compile into a temp dir; exit 1 if it differs from artifacts/
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");
const require = createRequire(import.meta.url);
const solc = require("solc");

/// Contracts that get an artifact, by source file. Everything else (bases, libraries) does not.
export const ARTIFACTS = {
  "src/PHA.sol": ["PHA"],
  "src/Registry.sol": ["Registry"],
  "src/Programs.sol": ["Programs"],
  "src/StakePools.sol": ["StakePools"],
  "src/Billing.sol": ["Billing"],
  "src/OracleAnchor.sol": ["OracleAnchor"],
  "src/PithGovernor.sol": ["PithGovernor"],
  "src/Timelock.sol": ["Timelock"],
  "src/Interfaces.sol": ["IPithOracleConsumer"],
  "src/examples/OracleConsumer.sol": ["OracleConsumer"],
  "src/examples/AgentInbox.sol": ["AgentInbox"],
};

/// Compiler settings; foundry.toml mirrors them for forge.
export const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: "cancun",
  metadata: { bytecodeHash: "none" },
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
};

function listSources(dir) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listSources(p));
    else if (entry.name.endsWith(".sol")) out.push(p);
  }
  return out.sort();
}

function findImport(importPath) {
  for (const base of [root, path.join(root, "node_modules")]) {
    const p = path.join(base, importPath);
    if (fs.existsSync(p)) return { contents: fs.readFileSync(p, "utf8") };
  }
  return { error: `import not found: ${importPath}` };
}

export function compile() {
  const sources = {};
  for (const file of listSources(path.join(root, "src"))) {
    const key = path.relative(root, file).split(path.sep).join("/");
    sources[key] = { content: fs.readFileSync(file, "utf8") };
  }
  const input = { language: "Solidity", sources, settings: SETTINGS };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport }));
  const errors = (output.errors || []).filter((e) => e.severity === "error");
  // Report errors, and warnings about our own sources (OpenZeppelin's are not ours to fix).
  for (const e of output.errors || []) {
    if (e.severity === "error" || e.sourceLocation?.file?.startsWith("src/")) process.stderr.write(e.formattedMessage + "\n");
  }
  if (errors.length) throw new Error(`solc: ${errors.length} error(s)`);
  const artifacts = {};
  for (const [sourceName, names] of Object.entries(ARTIFACTS)) {
    for (const name of names) {
      const c = output.contracts?.[sourceName]?.[name];
      if (!c) throw new Error(`no output for ${sourceName}:${name}`);
      artifacts[name] = {
        contractName: name,
        sourceName,
        abi: c.abi,
        bytecode: "0x" + c.evm.bytecode.object,
        deployedBytecode: "0x" + c.evm.deployedBytecode.object,
        compiler: { solc: solc.version(), settings: { ...SETTINGS, outputSelection: undefined } },
      };
    }
  }
  return artifacts;
}

function write(artifacts, dir) {
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, a] of Object.entries(artifacts)) {
    fs.writeFileSync(path.join(dir, `${name}.json`), JSON.stringify(a, null, 2) + "\n");
  }
}

export function diff(a, b) {
  const names = (d) => fs.readdirSync(d).filter((f) => f.endsWith(".json")).sort();
  const bad = [];
  const an = names(a), bn = names(b);
  for (const f of new Set([...an, ...bn])) {
    const pa = path.join(a, f), pb = path.join(b, f);
    if (!fs.existsSync(pa) || !fs.existsSync(pb) || fs.readFileSync(pa, "utf8") !== fs.readFileSync(pb, "utf8")) {
      bad.push(f);
    }
  }
  return bad;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const artifacts = compile();
  if (args.includes("--check")) {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pith-artifacts-"));
    write(artifacts, tmp);
    const bad = diff(tmp, path.join(root, "artifacts"));
    fs.rmSync(tmp, { recursive: true, force: true });
    if (bad.length) {
      console.error(`artifacts differ from a fresh compile: ${bad.join(", ")}\nrun: node contracts/scripts/compile.mjs`);
      process.exit(1);
    }
    console.log(`artifacts up to date (${Object.keys(artifacts).length} contracts, solc ${solc.version()})`);
  } else {
    const i = args.indexOf("--out");
    const dir = i >= 0 ? path.resolve(args[i + 1]) : path.join(root, "artifacts");
    write(artifacts, dir);
    console.log(`wrote ${Object.keys(artifacts).length} artifacts to ${dir} (solc ${solc.version()})`);
  }
}
