// Gas of the hot paths, measured as real transactions on anvil (receipt gasUsed, which includes
// the 21,000 base cost and the calldata). Run directly to print the table for bench/RESULTS.md:
//   node contracts/test-js/gas.mjs
// test-js/gas.test.mjs checks the goals with the same measurements.
import { keccak256, toHex, parseEther, zeroAddress } from "viem";
import { fileURLToPath } from "node:url";
import { artifact, startAnvil, deploy, clients, accounts, SIMULATED } from "./lib.mjs";
import { privateKeyToAccount } from "viem/accounts";

const WORKER_MEAS = keccak256(toHex("pith-worker local build"));
const KMS_MEAS = keccak256(toHex("pith-kms local build"));

/// Deterministic pseudo-random bytes (xorshift), like a quote: mostly non-zero.
function quoteBytes(n, seed = 0x9e3779b9) {
  const out = new Uint8Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/// Pre-Prague calldata price of the bytes themselves: 16 per non-zero byte, 4 per zero byte.
function calldataGas(bytes) {
  let g = 0;
  for (const b of bytes) g += b === 0 ? 4 : 16;
  return g;
}

export async function measure() {
  const anvil = await startAnvil();
  try {
    const dep = await deploy(anvil.url, { workerMeasurement: WORKER_MEAS, kmsMeasurement: KMS_MEAS });
    const c = dep.contracts;
    const { pub, test, wallet } = clients(anvil.url);
    const tx = async (who, name, address, functionName, args) => {
      const hash = await wallet(who).writeContract({ address, abi: artifact(name).abi, functionName, args });
      const r = await pub.waitForTransactionReceipt({ hash });
      if (r.status !== "success") throw new Error(`${name}.${functionName} reverted`);
      return r.gasUsed;
    };
    const view = (name, address, functionName, args = []) =>
      pub.readContract({ address, abi: artifact(name).abi, functionName, args });
    const regDomain = { name: "Pith Registry", version: "1", chainId: dep.chain_id, verifyingContract: c.Registry };
    const regTypes = {
      WorkerRegistration: [
        { name: "worker", type: "address" }, { name: "operator", type: "address" },
        { name: "platform", type: "uint8" }, { name: "measurementHash", type: "bytes32" },
        { name: "tcbStatus", type: "uint8" }, { name: "evidenceHash", type: "bytes32" },
        { name: "expiry", type: "uint64" },
      ],
    };
    const register = async (workerAddr, evidence, ttl = 3600n) => {
      const now = (await pub.getBlock()).timestamp;
      const reg = {
        worker: workerAddr, operator: accounts.operator.address, platform: SIMULATED,
        measurementHash: WORKER_MEAS, tcbStatus: 0, evidenceHash: keccak256(evidence), expiry: now + ttl,
      };
      const sig = await accounts.kms.signTypedData({ domain: regDomain, types: regTypes, primaryType: "WorkerRegistration", message: reg });
      return tx("operator", "Registry", c.Registry, "registerWorker", [reg, toHex(evidence), [sig]]);
    };
    const out = { hardfork: (await test.request({ method: "anvil_nodeInfo" })).hardFork };

    // -- registration
    const quote = quoteBytes(5 * 1024);
    const w2 = privateKeyToAccount("0x" + "21".repeat(32)).address;
    const w3 = privateKeyToAccount("0x" + "22".repeat(32)).address;
    out.registerNoEvidence = await register(w2, new Uint8Array(0));
    out.register5k = await register(w3, quote);
    out.evidenceCalldata5k = calldataGas(quote);
    out.register5kMinusEvidenceCalldata = out.register5k - BigInt(out.evidenceCalldata5k);
    out.reattest5k = await register(w3, quote, 7200n);
    out.register64 = await register(accounts.worker.address, quoteBytes(64));

    // -- staking
    const E = (n) => parseEther(String(n));
    await tx("treasury", "PHA", c.PHA, "transfer", [accounts.operator.address, E(100_000)]);
    await tx("treasury", "PHA", c.PHA, "transfer", [accounts.staker.address, E(100_000)]);
    await tx("treasury", "PHA", c.PHA, "transfer", [accounts.owner.address, E(100_000)]);
    await tx("operator", "StakePools", c.StakePools, "createPool", [1000]);
    await tx("operator", "PHA", c.PHA, "approve", [c.StakePools, E(100_000)]);
    await tx("staker", "PHA", c.PHA, "approve", [c.StakePools, E(100_000)]);
    await tx("operator", "StakePools", c.StakePools, "deposit", [accounts.operator.address, E(10_000)]);
    out.depositFirst = await tx("staker", "StakePools", c.StakePools, "deposit", [accounts.operator.address, E(100)]);
    out.depositAgain = await tx("staker", "StakePools", c.StakePools, "deposit", [accounts.operator.address, E(100)]);
    await tx("operator", "StakePools", c.StakePools, "startWorker", [accounts.worker.address, E(1000)]);

    // -- usage batch: 100 entries, each for a different funded program
    const N = 100;
    await tx("owner", "PHA", c.PHA, "approve", [c.Billing, E(100_000)]);
    const code = keccak256(toHex("program code"));
    const cfg = { memoryMib: 0, cpuMillis: 0, wallMillis: 0, egressCount: 0, egressBytes: 0n, outputBytes: 0n, platformMask: 0n, egressAllowListHash: "0x" + "00".repeat(32) };
    for (let i = 1; i <= N; i++) {
      await tx("owner", "Programs", c.Programs, "register", [code, cfg]);
      await tx("owner", "Billing", c.Billing, "deposit", [BigInt(i), E(100)]);
    }
    const usageTypes = {
      UsageBatch: [{ name: "worker", type: "address" }, { name: "nonce", type: "uint64" }, { name: "entries", type: "UsageEntry[]" }],
      UsageEntry: [{ name: "programId", type: "uint256" }, { name: "requests", type: "uint64" }, { name: "cpuMillis", type: "uint64" }, { name: "egressBytes", type: "uint64" }, { name: "aiTokens", type: "uint64" }],
    };
    const usageDomain = { name: "Pith Billing", version: "1", chainId: dep.chain_id, verifyingContract: c.Billing };
    const batch = async (nonce, programs) => {
      const entries = programs.map((p, i) => ({ programId: BigInt(p), requests: 1000n + BigInt(i), cpuMillis: 25_000n, egressBytes: 4096n, aiTokens: 2048n }));
      const msg = { worker: accounts.worker.address, nonce, entries };
      const sig = await accounts.worker.signTypedData({ domain: usageDomain, types: usageTypes, primaryType: "UsageBatch", message: msg });
      return tx("staker", "Billing", c.Billing, "submitUsage", [msg, sig]);
    };
    out.usage1 = await batch(0n, [1]);
    out.usage100distinct = await batch(1n, Array.from({ length: N }, (_, i) => i + 1));
    out.usage100same = await batch(2n, Array.from({ length: N }, () => 1));

    // -- oracle
    const consumer = await (async () => {
      const a = artifact("OracleConsumer");
      const hash = await wallet("staker").deployContract({ abi: a.abi, bytecode: a.bytecode, args: [c.OracleAnchor] });
      return (await pub.waitForTransactionReceipt({ hash })).contractAddress;
    })();
    await tx("staker", "PHA", c.PHA, "approve", [consumer, E(1000)]);
    const oracleDomain = { name: "Pith OracleAnchor", version: "1", chainId: dep.chain_id, verifyingContract: c.OracleAnchor };
    const oracleTypes = { OracleResult: [{ name: "requestId", type: "uint256" }, { name: "programId", type: "uint256" }, { name: "codeHash", type: "bytes32" }, { name: "resultHash", type: "bytes32" }] };
    const ask = async (gasLimit) => {
      await tx("staker", "OracleConsumer", consumer, "ask", [1n, toHex("price of PHA?"), gasLimit, E(1)]);
      return view("OracleConsumer", consumer, "lastRequestId");
    };
    const fulfil = async (id, result) => {
      const msg = { requestId: id, programId: 1n, codeHash: code, resultHash: keccak256(result) };
      const sig = await accounts.worker.signTypedData({ domain: oracleDomain, types: oracleTypes, primaryType: "OracleResult", message: msg });
      return tx("operator", "OracleAnchor", c.OracleAnchor, "fulfil", [id, result, sig]);
    };
    const result = toHex(new TextEncoder().encode("1.2345 USD"));
    // The operator opens its fee account at onboarding (one wei, the one-time slot creation).
    await tx("operator", "PHA", c.PHA, "approve", [c.OracleAnchor, 1n]);
    out.openFeeAccount = await tx("operator", "OracleAnchor", c.OracleAnchor, "openFeeAccount", [accounts.operator.address]);
    out.fulfilFirstNoCallback = await fulfil(await ask(0), result);
    out.fulfilNoCallback = await fulfil(await ask(0), result);
    out.fulfilWithCallback = await fulfil(await ask(200_000), result);
    out.requestViaConsumer = await tx("staker", "OracleConsumer", consumer, "ask", [1n, toHex("price of PHA?"), 200_000, E(1)]);
    return out;
  } finally {
    anvil.stop();
  }
}

export const goals = {
  registerNoEvidence: 200_000n,
  register5kMinusEvidenceCalldata: 200_000n,
  usage100distinct: 1_200_000n,
  usage100same: 1_200_000n,
  fulfilNoCallback: 80_000n,
  fulfilFirstNoCallback: 80_000n,
  depositFirst: 120_000n,
  depositAgain: 120_000n,
};

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const m = await measure();
  console.log(`anvil hardfork: ${m.hardfork}`);
  console.log("| operation | gas (tx total) | goal |\n|---|---:|---:|");
  for (const [k, v] of Object.entries(m)) {
    if (k === "hardfork") continue;
    console.log(`| ${k} | ${Number(v).toLocaleString("en-US")} | ${goals[k] ? "≤ " + Number(goals[k]).toLocaleString("en-US") : ""} |`);
  }
}
