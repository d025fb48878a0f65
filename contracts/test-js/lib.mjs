// Shared by the external-client tests: start anvil, deploy the contracts from the checked-in
// artifacts exactly as contracts/README.md describes (local profile), or read a deployment.json
// written by `pith chain up`.
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createPublicClient, createWalletClient, createTestClient, http, parseEther, zeroAddress } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { foundry } from "viem/chains";

const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, "..");

export function artifact(name) {
  return JSON.parse(fs.readFileSync(path.join(root, "artifacts", `${name}.json`), "utf8"));
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/// Start anvil from node_modules on a free loopback port; resolves once it answers.
export async function startAnvil() {
  const port = await freePort();
  const bin = path.join(root, "node_modules", ".bin", "anvil");
  const child = spawn(bin, ["--host", "127.0.0.1", "--port", String(port), "--silent"], { stdio: "ignore" });
  const url = `http://127.0.0.1:${port}`;
  const client = createPublicClient({ transport: http(url) });
  for (let i = 0; i < 100; i++) {
    try {
      await client.getChainId();
      return { url, stop: () => child.kill("SIGTERM"), child };
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  child.kill("SIGKILL");
  throw new Error("anvil did not start");
}

// Fixed, test-only keys (never used outside tests): deterministic addresses and gas figures.
export const keys = {
  deployer: "0x" + "11".repeat(32),
  treasury: "0x" + "12".repeat(32),
  kms: "0x" + "13".repeat(32),
  worker: "0x" + "14".repeat(32),
  operator: "0x" + "15".repeat(32),
  staker: "0x" + "16".repeat(32),
  owner: "0x" + "17".repeat(32),
};
export const accounts = Object.fromEntries(Object.entries(keys).map(([k, v]) => [k, privateKeyToAccount(v)]));

export const SIMULATED = 255;
export const ROLE_KMS = 0;
export const ROLE_WORKER = 1;

export function clients(url) {
  const chain = { ...foundry, rpcUrls: { default: { http: [url] } } };
  const transport = http(url);
  const pub = createPublicClient({ chain, transport });
  const test = createTestClient({ chain, transport, mode: "anvil" });
  const wallet = (name) => createWalletClient({ chain, transport, account: accounts[name] });
  return { chain, pub, test, wallet };
}

/// Deploy and wire everything (README "Deployment", local profile), hand every role to the
/// timelock. Returns { contracts: {Name: address}, ... }.
export async function deploy(url, { workerMeasurement, kmsMeasurement }) {
  const { pub, test, wallet } = clients(url);
  for (const a of Object.values(accounts)) await test.setBalance({ address: a.address, value: parseEther("1000") });
  const d = wallet("deployer");
  const me = accounts.deployer.address;
  const send = async (address, name, functionName, args) => {
    const hash = await d.writeContract({ address, abi: artifact(name).abi, functionName, args });
    const r = await pub.waitForTransactionReceipt({ hash });
    if (r.status !== "success") throw new Error(`${name}.${functionName} failed`);
    return r;
  };
  const create = async (name, args) => {
    const a = artifact(name);
    const hash = await d.deployContract({ abi: a.abi, bytecode: a.bytecode, args });
    const r = await pub.waitForTransactionReceipt({ hash });
    if (r.status !== "success" || !r.contractAddress) throw new Error(`deploy ${name} failed`);
    return r.contractAddress;
  };
  const E = (n) => parseEther(String(n));
  const c = {};
  c.PHA = await create("PHA", [accounts.treasury.address, E(600_000_000), me, E(400_000_000)]);
  c.Registry = await create("Registry", [me, 86_400n]);
  c.Programs = await create("Programs", []);
  c.StakePools = await create("StakePools", [
    me, c.PHA, c.Registry, accounts.treasury.address,
    { minStake: E(1000), minDeposit: E(1), unbondingPeriod: 60n, gracePeriod: 60n, slashWindow: 86_400n,
      slashCapBps: 1000, offlineSlashBps: 100, maxCommissionBps: 5000 },
  ]);
  c.Billing = await create("Billing", [me, c.PHA, c.Registry, c.Programs, c.StakePools, accounts.treasury.address, 60n]);
  c.OracleAnchor = await create("OracleAnchor", [me, c.PHA, c.Registry, c.Programs, c.StakePools, 60n, 500_000, 0n]);
  c.Timelock = await create("Timelock", [1n, [], [zeroAddress], me]);
  c.Governor = await create("PithGovernor", [c.PHA, c.StakePools, c.Timelock, 1, 5, 0n, 4n]);

  await send(c.Registry, "Registry", "setPlatform", [SIMULATED, true, 0]);
  await send(c.Registry, "Registry", "setMeasurement", [SIMULATED, ROLE_WORKER, workerMeasurement, true]);
  await send(c.Registry, "Registry", "setMeasurement", [SIMULATED, ROLE_KMS, kmsMeasurement, true]);
  await send(c.Registry, "Registry", "setKmsCommittee", [[accounts.kms.address], 1]);
  await send(c.Billing, "Billing", "setPrices", [{ perRequest: E(0.001), perCpuMilli: 10n ** 12n, perEgressByte: 10n ** 9n, perAiToken: 10n ** 13n }]);
  await send(c.Billing, "Billing", "setTreasuryFeeBps", [500]);
  await send(c.Billing, "Billing", "setWithdrawDelay", [60n]);
  await send(c.Billing, "Billing", "setEmissionSchedule", [E(100_000), E(0.9999)]);
  await send(c.PHA, "PHA", "approve", [c.Billing, E(400_000_000)]);
  await send(c.Billing, "Billing", "fundEmission", [E(400_000_000)]);

  const tl = artifact("Timelock").abi;
  const PROPOSER = await pub.readContract({ address: c.Timelock, abi: tl, functionName: "PROPOSER_ROLE" });
  const CANCELLER = await pub.readContract({ address: c.Timelock, abi: tl, functionName: "CANCELLER_ROLE" });
  await send(c.Timelock, "Timelock", "grantRole", [PROPOSER, c.Governor]);
  await send(c.Timelock, "Timelock", "grantRole", [CANCELLER, c.Governor]);
  const ADMIN = "0x" + "00".repeat(32);
  for (const name of ["Registry", "StakePools", "Billing", "OracleAnchor"]) {
    await send(c[name], name, "grantRole", [ADMIN, c.Timelock]);
    await send(c[name], name, "renounceRole", [ADMIN, me]);
  }
  await send(c.Timelock, "Timelock", "renounceRole", [ADMIN, me]);
  return { contracts: c, rpc_url: url, chain_id: await pub.getChainId() };
}
