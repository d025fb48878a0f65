// End to end from Node against a real local network: `pith up` on a temporary directory
// (anvil, KMS, two workers on the simulated platform, gateway), `pith deploy examples/hello`,
// then the SDK: the program's key certificate against the KMS committee on chain, an
// encrypted call, the receipt down to the posted evidence and the dev CA, a stake pool; and
// the negatives: a tampered receipt, a receipt from an unregistered key, a certificate
// signed by a key that is not in the committee, a tampered response.
//
// The `pith` binary: $PITH_BIN, else ${CARGO_TARGET_DIR:-~/.cache/pith-target}/debug/pith.
// Skipped (with a message) when it does not exist.
import assert from "node:assert/strict";
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { createWalletClient, http } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { foundry } from "viem/chains";
import { connect, type PithClient, type Receipt } from "../../src/index.ts";
import { fromBase64Url, toBase64Url } from "../../src/bytes.ts";
import { PithError } from "../../src/errors.ts";
import { programKeyTypes, receiptTypes } from "../../src/receipt.ts";

const repo = resolve(import.meta.dirname, "../../../..");
const pithBin = process.env.PITH_BIN ?? join(process.env.CARGO_TARGET_DIR ?? join(homedir(), ".cache/pith-target"), "debug/pith");
const skip = existsSync(pithBin) ? false : `no pith binary at ${pithBin} (build it with cargo build -p pith)`;
/** A guard against a hang, not a measurement. */
const UP_GUARD_MS = 420_000;

let dir = "";
let up: ChildProcess | undefined;
let pith: PithClient;
let devCa: Uint8Array;
let network: any;

function pithCli(args: string[]): any {
  const out = execFileSync(pithBin, [...args, "--dir", dir, "--json"], { cwd: repo, encoding: "utf8", env: envWithAnvil() });
  return JSON.parse(out);
}

function envWithAnvil(): NodeJS.ProcessEnv {
  return { ...process.env, PATH: `${join(repo, "contracts/node_modules/.bin")}:${process.env.PATH}`, PITH_UP_RESTART_DELAY: "3" };
}

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), "pith-sdk-e2e-"));
  up = spawn(pithBin, ["up", "--dir", dir], { cwd: repo, env: envWithAnvil(), stdio: ["ignore", "pipe", "pipe"] });
  let transcript = "";
  await new Promise<void>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`pith up: no ready line in ${UP_GUARD_MS} ms:\n${transcript}`)), UP_GUARD_MS);
    const onData = (b: Buffer) => {
      transcript += b.toString();
      if (/^ready /m.test(transcript)) {
        clearTimeout(timer);
        ok();
      }
    };
    up!.stdout!.on("data", onData);
    up!.stderr!.on("data", onData);
    up!.on("exit", (code) => {
      clearTimeout(timer);
      fail(new Error(`pith up exited (${code}):\n${transcript}`));
    });
  });
  up.removeAllListeners("exit");
  network = JSON.parse(readFileSync(join(dir, "network.json"), "utf8"));
  devCa = new Uint8Array(readFileSync(join(dir, "dev-ca/dev-ca.pem")));
  const deployed = pithCli(["deploy", "examples/hello", "--deposit", "10"]);
  assert.equal(BigInt(deployed.program_id), 1n);
  // The deployment we trust is the file pith up wrote, not the gateway's copy.
  const deployment = JSON.parse(readFileSync(join(dir, "deployment.json"), "utf8"));
  pith = await connect({ gateway: network.gateway_url, rpcUrl: network.rpc_url, deployment });
});

after(async () => {
  if (up && up.exitCode === null) {
    const exited = new Promise((r) => up!.once("exit", r));
    up.kill("SIGINT");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
    if (up.exitCode === null) up.kill("SIGKILL");
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("program key: certificate checked against the KMS committee on chain", { skip }, async () => {
  const p = await pith.getProgram(1);
  assert.deepEqual([p.kms.toLowerCase()], network.deployment.kms_committee);
  assert.match(p.codeHash, /^0x[0-9a-f]{64}$/);
  assert.equal(p.certificate.programId, p.programId);
});

test("call: encrypted request, decrypted response, receipt verified down to the evidence", { skip }, async () => {
  const { response, receipt, verification } = await pith.call(1, { path: "/?name=sdk" }, { evidence: { devCa, bindingFromWorker: true } });
  assert.equal(response.status, 200);
  assert.equal(response.text(), "hello, sdk\n");
  const names = verification.checks.filter((c) => c.ok).map((c) => c.name);
  assert.ok(verification.ok, JSON.stringify(verification.checks, null, 1));
  for (const n of ["receipt_signature", "receipt_domain", "request_hash", "response_hash", "worker_registered", "code_hash", "evidence_hash", "attestation", "measurement", "policy", "binding"]) {
    assert.ok(names.includes(n), `check ${n} missing`);
  }
  assert.equal(verification.evidence?.platform, "simulated");
  assert.equal(verification.evidence?.measurementHash, network.deployment.local_measurement);
  // The gateway stored the same receipt; it verifies on its own too.
  const stored = await pith.receipt(receipt.requestHash);
  assert.equal(stored.signature, receipt.signature);
  assert.equal((await pith.verifyReceipt(stored)).ok, true);
  // the binding names the worker: another worker's key does not match this evidence
  const v = await pith.verifyReceipt(stored, { evidence: { devCa, encPublicKey: new Uint8Array(32).fill(9) } });
  assert.equal(v.checks.find((c) => c.name === "binding")?.ok, false);
  assert.equal(v.ok, false);
});

test("a tampered receipt fails; so does one signed by a key that is not a registered worker", { skip }, async () => {
  const { receipt } = await pith.call(1, { path: "/?name=t" });
  const tampered: Receipt = { ...receipt, cpuMicros: receipt.cpuMicros + 1 };
  const v = await pith.verifyReceipt(tampered);
  assert.equal(v.ok, false);
  assert.equal(v.checks.find((c) => c.name === "receipt_signature")?.ok, false);

  const rogue = privateKeyToAccount(generatePrivateKey());
  const forged = { ...receipt, worker: rogue.address };
  forged.signature = await rogue.signTypedData({
    domain: { name: "Pith Receipt", version: "1", chainId: BigInt(receipt.chainId), verifyingContract: receipt.verifyingContract },
    types: receiptTypes,
    primaryType: "Receipt",
    message: {
      ...forged,
      timestamp: BigInt(forged.timestamp),
      cpuMicros: BigInt(forged.cpuMicros),
      wallMicros: BigInt(forged.wallMicros),
      memoryBytes: BigInt(forged.memoryBytes),
      egressBytes: BigInt(forged.egressBytes),
    },
  });
  const f = await pith.verifyReceipt(forged);
  assert.equal(f.checks.find((c) => c.name === "receipt_signature")?.ok, true);
  assert.equal(f.checks.find((c) => c.name === "worker_registered")?.ok, false);
  assert.equal(f.ok, false);
});

test("a hostile gateway: a key certificate re-signed by an unregistered key, a tampered response", { skip }, async () => {
  const rogue = privateKeyToAccount(generatePrivateKey());
  const resign: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    const header = res.headers.get("pith-key-certificate");
    if (!header) return res;
    const cert = JSON.parse(new TextDecoder().decode(fromBase64Url(header, "cert")));
    cert.kms = rogue.address.toLowerCase();
    cert.signature = await rogue.signTypedData({
      domain: { name: "Pith KMS", version: "1", chainId: BigInt(cert.chainId), verifyingContract: cert.verifyingContract },
      types: programKeyTypes,
      primaryType: "ProgramKey",
      message: { ...cert, notAfter: BigInt(cert.notAfter) },
    });
    const headers = new Headers(res.headers);
    headers.set("pith-key-certificate", toBase64Url(new TextEncoder().encode(JSON.stringify(cert))));
    return new Response(await res.arrayBuffer(), { status: res.status, headers });
  };
  const hostile = await connect({ gateway: pith.gateway, rpcUrl: network.rpc_url, deployment: pith.deployment, fetch: resign });
  await assert.rejects(hostile.getProgram(1), (e: PithError) => e.kind === "untrusted_signer");

  const flipBody: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    if (!String(input).endsWith("/invoke")) return res;
    const body = new Uint8Array(await res.arrayBuffer());
    body[body.length - 1]! ^= 1;
    return new Response(body, { status: res.status, headers: res.headers });
  };
  const tamper = await connect({ gateway: pith.gateway, rpcUrl: network.rpc_url, deployment: pith.deployment, fetch: flipBody });
  await assert.rejects(tamper.call(1, { path: "/" }), (e: PithError) => e.kind === "decrypt_failed");
});

test("registry and stake: workers read from the chain, their operators' pools", { skip }, async () => {
  const workers = await pith.workers();
  assert.equal(workers.length, 2);
  for (const w of workers) {
    assert.equal(w.active, true);
    assert.equal(w.platform, 255);
    assert.equal(w.measurementHash, network.deployment.local_measurement);
    const pool = await pith.stakePool(w.operator);
    assert.equal(pool.exists, true);
    assert.ok(pool.lockedStake > 0n && pool.totalStake >= pool.lockedStake, `${pool.lockedStake} / ${pool.totalStake}`);
    const ev = await pith.workerEvidence(w.address, { devCa });
    assert.equal(ev.verdict.ok, true);
  }
  const none = await pith.stakePool("0x000000000000000000000000000000000000dEaD");
  assert.equal(none.exists, false);
});

test("oracle: a dapp's request through OracleAnchor, fulfilled by a worker, result checked", { skip }, async () => {
  // dev-4 of the local network plays the dapp (any EOA may request; minFee is 0 locally)
  const key = readFileSync(join(dir, "keys/dev-4.key"), "utf8").trim();
  const account = privateKeyToAccount((key.startsWith("0x") ? key : `0x${key}`) as `0x${string}`);
  const wallet = createWalletClient({ account, chain: { ...foundry, id: pith.deployment.chain_id }, transport: http(network.rpc_url) });
  assert.equal(await pith.oracle.minFee(), 0n);
  const call = pith.oracle.requestCall(1, "ping");
  const { result: requestId } = await pith.chain.simulateContract({ ...call, account });
  const hash = await wallet.writeContract({ ...call, account, chain: wallet.chain });
  await pith.chain.waitForTransactionReceipt({ hash });
  // workers wait rank × 4 s before fulfilling; a guard, not a measurement
  let f = null;
  for (let i = 0; i < 120 && !(f = await pith.oracle.fulfilment(requestId)); i++) await new Promise((r) => setTimeout(r, 500));
  assert.ok(f, `request ${requestId} not fulfilled`);
  assert.equal(new TextDecoder().decode(f.result!), "hello, world\n");
  assert.equal(f.resultOk, true);
  assert.equal(f.workerRegistered, true);
  assert.equal(f.resultHash, pith.oracle.resultHash("hello, world\n"));
  assert.equal((await pith.oracle.requestInfo(requestId)).requester, "0x0000000000000000000000000000000000000000");
  assert.equal(await pith.oracle.fulfilment(requestId + 1000n), null);
});

test("after an upgrade, a receipt of the old code still verifies (code history on chain); a made-up code hash does not", { skip }, async () => {
  const before = await pith.call(1, { path: "/?name=old" });
  assert.equal(before.verification.ok, true);
  const file = join(dir, "upgraded.js");
  writeFileSync(file, 'export default { async fetch() { return new Response("upgraded\\n"); } };\n');
  pithCli(["programs", "upgrade", "1", file]);
  const p = await pith.getProgram(1);
  assert.notEqual(p.codeHash, before.receipt.codeHash);
  const again = await pith.verifyReceipt(before.receipt);
  assert.equal(again.checks.find((c) => c.name === "code_hash")?.ok, true, JSON.stringify(again.checks));
  // a receipt naming code the program never had fails code_hash (signed by a rogue key, so also unregistered)
  const rogue = privateKeyToAccount(generatePrivateKey());
  const other = { ...before.receipt, worker: rogue.address, codeHash: `0x${"ab".repeat(32)}` as const };
  other.signature = await rogue.signTypedData({
    domain: { name: "Pith Receipt", version: "1", chainId: BigInt(other.chainId), verifyingContract: other.verifyingContract },
    types: receiptTypes,
    primaryType: "Receipt",
    message: { ...other, timestamp: BigInt(other.timestamp), cpuMicros: BigInt(other.cpuMicros), wallMicros: BigInt(other.wallMicros), memoryBytes: BigInt(other.memoryBytes), egressBytes: BigInt(other.egressBytes) },
  });
  const v = await pith.verifyReceipt(other);
  assert.equal(v.checks.find((c) => c.name === "code_hash")?.ok, false);
});
