#!/usr/bin/env node
// The AgentInbox of examples/agent on a `pith up` network, with viem (from contracts/).
//
//   node examples/agent/inbox.mjs deploy AGENT_ADDRESS      deploy an inbox the agent decides
//   node examples/agent/inbox.mjs post INBOX "some text"     post (as development account 1)
//   node examples/agent/inbox.mjs show INBOX                 posts and their decisions
//
// Options: --dir DIR (the pith up directory, default .pith).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const require = createRequire(join(repo, "contracts/package.json"));
const { createPublicClient, createWalletClient, http, parseEventLogs } = require("viem");
const { privateKeyToAccount } = require("viem/accounts");

const args = process.argv.slice(2);
let dir = ".pith";
const i = args.indexOf("--dir");
if (i >= 0) {
  dir = args[i + 1];
  args.splice(i, 2);
}
const [cmd, a, b] = args;
const network = JSON.parse(readFileSync(join(dir, "network.json"), "utf8"));
const artifact = JSON.parse(readFileSync(join(repo, "contracts/artifacts/AgentInbox.json"), "utf8"));
const chain = { id: network.chain_id, name: "pith-local", nativeCurrency: { name: "ETH", symbol: "ETH", decimals: 18 }, rpcUrls: { default: { http: [network.rpc_url] } } };
const key = readFileSync(join(dir, "keys/dev-1.key"), "utf8").trim();
const account = privateKeyToAccount(key.startsWith("0x") ? key : `0x${key}`);
const pub = createPublicClient({ chain, transport: http(network.rpc_url) });
const wallet = createWalletClient({ account, chain, transport: http(network.rpc_url) });
const LABELS = ["-", "positive", "negative", "neutral"];

if (cmd === "deploy" && a) {
  const hash = await wallet.deployContract({ abi: artifact.abi, bytecode: artifact.bytecode, args: [a] });
  const r = await pub.waitForTransactionReceipt({ hash });
  console.log(r.contractAddress);
} else if (cmd === "post" && a && b !== undefined) {
  const hash = await wallet.writeContract({ address: a, abi: artifact.abi, functionName: "post", args: [b] });
  const r = await pub.waitForTransactionReceipt({ hash });
  const [ev] = parseEventLogs({ abi: artifact.abi, eventName: "Posted", logs: r.logs });
  console.log(`post ${ev.args.id} in block ${r.blockNumber}`);
} else if (cmd === "show" && a) {
  const n = await pub.readContract({ address: a, abi: artifact.abi, functionName: "posts" });
  const decided = await pub.getContractEvents({ address: a, abi: artifact.abi, eventName: "Decided", fromBlock: 0n });
  const by = new Map(decided.map((e) => [e.args.id, e]));
  for (let id = 1n; id <= n; id++) {
    const text = await pub.readContract({ address: a, abi: artifact.abi, functionName: "texts", args: [id] });
    const d = by.get(id);
    const verdict = d ? `${LABELS[d.args.label]} (by ${d.args.byModel ? "the model" : "the rule"}, tx ${d.transactionHash})` : "undecided";
    console.log(`${id}  ${JSON.stringify(text)}  ${verdict}`);
  }
} else {
  console.error("usage: inbox.mjs deploy AGENT | post INBOX TEXT | show INBOX  [--dir DIR]");
  process.exit(2);
}
