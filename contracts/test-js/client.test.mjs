// An external client (viem, written independently of the Rust code) reads a Pith deployment:
// PHA supply and balances, Registry views; then registers a worker with a KMS signature made
// by viem's EIP-712 implementation, which checks docs/protocol.md's typed data against the
// contracts. With PITH_DEPLOYMENT=path/to/deployment.json it reads that deployment (from
// `pith chain up`) instead of starting its own anvil; the write tests then only run locally.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { keccak256, toHex, parseEther, getAddress } from "viem";
import { artifact, startAnvil, deploy, clients, accounts, SIMULATED, ROLE_WORKER, ROLE_KMS } from "./lib.mjs";

const WORKER_MEAS = keccak256(toHex("pith-worker local build"));
const KMS_MEAS = keccak256(toHex("pith-kms local build"));
let anvil;
let dep;
let own = false;

before(async () => {
  if (process.env.PITH_DEPLOYMENT) {
    dep = JSON.parse(fs.readFileSync(process.env.PITH_DEPLOYMENT, "utf8"));
  } else {
    anvil = await startAnvil();
    dep = await deploy(anvil.url, { workerMeasurement: WORKER_MEAS, kmsMeasurement: KMS_MEAS });
    own = true;
  }
});

after(() => anvil?.stop());

const read = (name, functionName, args = [], abiName = name) =>
  clients(dep.rpc_url).pub.readContract({
    address: dep.contracts[name],
    abi: artifact(abiName).abi,
    functionName,
    args,
  });

test("deployment manifest has every contract", () => {
  for (const k of ["PHA", "Registry", "Programs", "StakePools", "Billing", "OracleAnchor", "Governor", "Timelock"]) {
    assert.match(dep.contracts[k], /^0x[0-9a-fA-F]{40}$/, k);
  }
});

test("PHA supply and balances", async () => {
  const supply = await read("PHA", "totalSupply");
  assert.ok(supply > 0n);
  if (own) assert.equal(supply, parseEther("1000000000"));
  assert.equal(await read("PHA", "symbol"), "PHA");
  assert.equal(await read("PHA", "decimals"), 18);
  const inBilling = await read("PHA", "balanceOf", [dep.contracts.Billing]);
  assert.ok(inBilling > 0n, "emission reserve is in Billing");
  if (own) {
    assert.equal(await read("PHA", "balanceOf", [accounts.treasury.address]), parseEther("600000000"));
    assert.equal(inBilling, parseEther("400000000"));
    assert.equal(await read("Billing", "emissionReserve"), parseEther("400000000"));
  }
});

test("Registry views", async () => {
  const members = await read("Registry", "kmsMembers");
  const threshold = await read("Registry", "kmsThreshold");
  assert.ok(members.length >= 1 && threshold >= 1 && threshold <= members.length);
  const sim = await read("Registry", "platformConfig", [SIMULATED]);
  assert.equal(sim.enabled, true, "simulated platform enabled on a local network");
  assert.equal(await read("Registry", "isActiveWorker", ["0x000000000000000000000000000000000000dEaD"]), false);
  assert.equal(await read("Registry", "ROLE_WORKER"), ROLE_WORKER);
  if (own) {
    assert.deepEqual(members.map(getAddress), [accounts.kms.address]);
    assert.equal(await read("Registry", "isAllowedMeasurement", [SIMULATED, ROLE_WORKER, WORKER_MEAS]), true);
    assert.equal(await read("Registry", "isAllowedMeasurement", [SIMULATED, ROLE_KMS, WORKER_MEAS]), false);
  }
});

test("every admin role is with the timelock", async () => {
  const ADMIN = "0x" + "00".repeat(32);
  for (const name of ["Registry", "StakePools", "Billing", "OracleAnchor"]) {
    assert.equal(await read(name, "hasRole", [ADMIN, dep.contracts.Timelock]), true, name);
    if (own) assert.equal(await read(name, "hasRole", [ADMIN, accounts.deployer.address]), false, name);
  }
});

test("a worker registers with a KMS signature made by viem", { skip: !process.env.PITH_DEPLOYMENT ? false : "read-only" }, async () => {
  const { pub, wallet } = clients(dep.rpc_url);
  const evidence = toHex(new Uint8Array(64).fill(7));
  const block = await pub.getBlock();
  const reg = {
    worker: accounts.worker.address,
    operator: accounts.operator.address,
    platform: SIMULATED,
    measurementHash: WORKER_MEAS,
    tcbStatus: 0,
    evidenceHash: keccak256(evidence),
    expiry: block.timestamp + 3600n,
  };
  const signature = await accounts.kms.signTypedData({
    domain: { name: "Pith Registry", version: "1", chainId: dep.chain_id, verifyingContract: dep.contracts.Registry },
    types: {
      WorkerRegistration: [
        { name: "worker", type: "address" },
        { name: "operator", type: "address" },
        { name: "platform", type: "uint8" },
        { name: "measurementHash", type: "bytes32" },
        { name: "tcbStatus", type: "uint8" },
        { name: "evidenceHash", type: "bytes32" },
        { name: "expiry", type: "uint64" },
      ],
    },
    primaryType: "WorkerRegistration",
    message: reg,
  });
  const hash = await wallet("operator").writeContract({
    address: dep.contracts.Registry,
    abi: artifact("Registry").abi,
    functionName: "registerWorker",
    args: [reg, evidence, [signature]],
  });
  const receipt = await pub.waitForTransactionReceipt({ hash });
  assert.equal(receipt.status, "success");
  assert.equal(await read("Registry", "isActiveWorker", [accounts.worker.address]), true);
  assert.equal(getAddress(await read("Registry", "operatorOf", [accounts.worker.address])), accounts.operator.address);
});
