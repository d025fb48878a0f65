// A whole governance proposal on anvil with the local profile (voting delay 1 block, voting
// period 5 blocks, timelock delay 1 s), driven by viem: the treasury votes a Registry change
// through Governor and Timelock. Shows the local profile runs a proposal in seconds.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { encodeFunctionData, keccak256, toHex } from "viem";
import { artifact, startAnvil, deploy, clients, accounts } from "./lib.mjs";

let anvil;
let dep;

before(async () => {
  anvil = await startAnvil();
  dep = await deploy(anvil.url, { workerMeasurement: keccak256(toHex("w")), kmsMeasurement: keccak256(toHex("k")) });
});

after(() => anvil?.stop());

test("a proposal passes, queues and executes in seconds", async () => {
  const started = Date.now();
  const { pub, test: t, wallet } = clients(anvil.url);
  const c = dep.contracts;
  const gov = artifact("PithGovernor").abi;
  const send = async (who, address, abi, functionName, args) => {
    const hash = await wallet(who).writeContract({ address, abi, functionName, args });
    const r = await pub.waitForTransactionReceipt({ hash });
    assert.equal(r.status, "success", functionName);
    return r;
  };
  const state = async (id) => pub.readContract({ address: c.Governor, abi: gov, functionName: "state", args: [id] });

  await send("treasury", c.PHA, artifact("PHA").abi, "delegate", [accounts.treasury.address]);
  await t.mine({ blocks: 1 });
  const targets = [c.Registry];
  const values = [0n];
  const calldatas = [encodeFunctionData({ abi: artifact("Registry").abi, functionName: "setPlatform", args: [2, true, 1] })];
  const description = "Enable TDX with TCB up to SWHardeningNeeded";
  const descHash = keccak256(toHex(description));
  await send("treasury", c.Governor, gov, "propose", [targets, values, calldatas, description]);
  const id = await pub.readContract({ address: c.Governor, abi: gov, functionName: "hashProposal", args: [targets, values, calldatas, descHash] });
  assert.equal(await state(id), 0); // Pending
  await t.mine({ blocks: 2 });
  assert.equal(await state(id), 1); // Active
  await send("treasury", c.Governor, gov, "castVote", [id, 1]);
  await t.mine({ blocks: 6 });
  assert.equal(await state(id), 4); // Succeeded
  await send("staker", c.Governor, gov, "queue", [targets, values, calldatas, descHash]);
  assert.equal(await state(id), 5); // Queued
  await t.increaseTime({ seconds: 2 });
  await t.mine({ blocks: 1 });
  await send("staker", c.Governor, gov, "execute", [targets, values, calldatas, descHash]);
  assert.equal(await state(id), 7); // Executed
  const tdx = await pub.readContract({ address: c.Registry, abi: artifact("Registry").abi, functionName: "platformConfig", args: [2] });
  assert.deepEqual(tdx, { enabled: true, maxTcbStatus: 1 });
  console.log(`# proposal lifecycle took ${Date.now() - started} ms`);
});

test("the deployer cannot bypass governance", async () => {
  const { pub, wallet } = clients(anvil.url);
  await assert.rejects(
    wallet("deployer").writeContract({
      address: dep.contracts.Registry,
      abi: artifact("Registry").abi,
      functionName: "setPlatform",
      args: [3, true, 0],
    }),
    /AccessControlUnauthorizedAccount/,
  );
  const snp = await pub.readContract({ address: dep.contracts.Registry, abi: artifact("Registry").abi, functionName: "platformConfig", args: [3] });
  assert.equal(snp.enabled, false);
});
