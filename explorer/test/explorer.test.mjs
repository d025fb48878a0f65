// The explorer in a real headless Chromium (Debian's `chromium`, driven by playwright-core)
// against a real local network (`pith up` on a temp dir): the worker table and the program
// list show what the chain says; "verify" on a worker's attestation passes in the browser;
// the same attestation with one evidence byte flipped (the gateway's answer rewritten by
// playwright's route API, so the product has no test hook) fails; a stored receipt verifies in
// the browser; a screenshot is saved.
//
// Environment: PITH_BIN (the `pith` binary), CHROMIUM (absolute path; default /usr/bin/chromium),
// EXPLORER_TEST_OUT (where the screenshot goes; default a new temp dir).

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFile } from "node:child_process";
import { mkdtemp, mkdir, readFile, rm } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { chromium } from "playwright-core";
import { createPublicClient, http, parseAbi, getAddress } from "viem";

const run = promisify(execFile);
const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const pith = process.env.PITH_BIN ?? join(process.env.CARGO_TARGET_DIR ?? join(process.env.HOME, ".cache/pith-target"), "debug/pith");
const UP_TIMEOUT_MS = 120_000;

const REGISTRY_ABI = parseAbi([
  "struct Worker { address operator; uint8 platform; uint8 tcbStatus; uint64 expiry; bool revoked; bytes32 measurementHash; bytes32 evidenceHash; }",
  "function workerInfo(address worker) view returns (Worker)",
  "function isActiveWorker(address worker) view returns (bool)",
]);
const PROGRAMS_ABI = parseAbi([
  "function programCount() view returns (uint256)",
  "function codeHashOf(uint256 programId) view returns (bytes32)",
  "function ownerOf(uint256 programId) view returns (address)",
]);
const PLATFORM_NAMES = { 1: "sgx", 2: "tdx", 3: "sev-snp", 4: "nitro", 5: "nvidia-gpu", 255: "simulated" };

let up;
let dir;
const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

function startNetwork(dir) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(pith, ["up", "--dir", dir], {
      cwd: repo,
      env: { ...process.env, PATH: `${join(repo, "contracts/node_modules/.bin")}:${process.env.PATH}` },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let transcript = "";
    const timer = setTimeout(() => reject(new Error(`pith up: no ready line within ${UP_TIMEOUT_MS} ms\n${transcript}`)), UP_TIMEOUT_MS);
    const onData = (chunk) => {
      transcript += chunk;
      const line = transcript.split("\n").find((l) => l.startsWith("ready "));
      if (line) {
        clearTimeout(timer);
        const field = (k) => new RegExp(`(?:^| )${k}=(\\S+)`).exec(line)?.[1];
        resolvePromise({ child, line, gateway: field("gateway"), explorer: field("explorer"), rpc: field("rpc"), transcript: () => transcript });
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`pith up exited (${code}) before ready\n${transcript}`));
    });
  });
}

async function pithJson(...args) {
  const { stdout } = await run(pith, [...args, "--dir", dir, "--json"], { cwd: repo, maxBuffer: 16 << 20 });
  return JSON.parse(stdout);
}

test("explorer against a local network in headless Chromium", { timeout: 240_000 }, async () => {
  assert.ok(existsSync(pith), `no pith binary at ${pith} (build it: cargo build -p pith)`);
  dir = await mkdtemp(join(tmpdir(), "pith-explorer-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  up = await startNetwork(dir);
  cleanups.push(
    () =>
      new Promise((r) => {
        up.child.once("exit", r);
        up.child.kill("SIGTERM");
        setTimeout(() => {
          up.child.kill("SIGKILL");
          r();
        }, 15_000).unref();
      }),
  );
  assert.match(up.explorer ?? "", /^http:\/\/127\.0\.0\.1:\d+\/explorer\/$/, `ready line names the explorer: ${up.line}`);
  assert.equal(up.explorer, `${up.gateway}/explorer/`);
  assert.equal(JSON.parse(await readFile(join(dir, "network.json"), "utf8")).explorer_url, up.explorer);

  // A program and two calls, through the CLI as a user would.
  const deployed = await pithJson("deploy", "examples/hello", "--deposit", "10");
  for (const name of ["explorer", "chromium"]) {
    const called = await pithJson("call", deployed.program_id, "--path", `/?name=${name}`);
    assert.equal(called.status, 200);
    assert.equal(called.verified, true);
  }

  // A governance proposal, through the CLI.
  const proposed = await run(pith, ["gov", "propose", "--dir", dir, "--target", "Registry", "--function", "rotateKmsKey()", "--description", "explorer e2e: rotate the KMS key"], { cwd: repo });
  const proposalId = /^proposal (\d+) /m.exec(proposed.stdout)?.[1];
  assert.ok(proposalId, proposed.stdout);

  // The gateway writes receipts in batches: wait until both are stored.
  for (let i = 0; ; i++) {
    const stored = await fetch(`${up.gateway}/explorer/api/receipts`).then((r) => r.json());
    if (stored.length >= 2) break;
    assert.ok(i < 100, "receipts stored within 10 s");
    await new Promise((r) => setTimeout(r, 100));
  }

  // What the chain says, read directly (not through the gateway).
  const network = JSON.parse(await readFile(join(dir, "network.json"), "utf8"));
  const chain = createPublicClient({ transport: http(up.rpc) });
  const registry = network.deployment.contracts.Registry;
  const programs = network.deployment.contracts.Programs;
  const workers = [];
  for (const w of network.workers) {
    const info = await chain.readContract({ address: registry, abi: REGISTRY_ABI, functionName: "workerInfo", args: [w.address] });
    assert.ok(await chain.readContract({ address: registry, abi: REGISTRY_ABI, functionName: "isActiveWorker", args: [w.address] }));
    workers.push({ address: getAddress(w.address), platform: PLATFORM_NAMES[info.platform], measurement: info.measurementHash });
  }
  assert.equal(workers.length, 2);
  const count = await chain.readContract({ address: programs, abi: PROGRAMS_ABI, functionName: "programCount" });
  assert.equal(count, 1n);
  const codeHash = await chain.readContract({ address: programs, abi: PROGRAMS_ABI, functionName: "codeHashOf", args: [1n] });
  assert.equal(codeHash, deployed.code_hash);

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  cleanups.push(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1400, height: 1800 } });
  const consoleErrors = [];
  page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  await page.goto(up.explorer);
  await page.waitForSelector("body[data-loaded=true]", { timeout: 30_000 });

  // The worker table: exactly the registered workers, with the chain's platform.
  const rows = await page.$$eval("#workers-table tbody tr[data-address]", (trs) =>
    trs.map((tr) => ({
      address: tr.querySelector(".address code").textContent,
      platform: tr.querySelector(".platform").textContent,
      measurement: tr.querySelector(".measurement code").title,
      registered: tr.querySelector(".registered").textContent,
      uptime: tr.querySelector(".uptime").textContent,
      status: tr.querySelector(".status").textContent,
    })),
  );
  for (const r of rows) {
    const chainSays = workers.find((w) => w.address === getAddress(r.address));
    assert.equal(r.measurement, chainSays?.measurement, `measurement of ${r.address}`);
    assert.match(r.registered, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/, `registration time of ${r.address}`);
    assert.match(r.uptime, /^\d+\.\d% of \d+ checks/, `uptime of ${r.address}`);
    assert.equal(r.status, "healthy");
  }
  assert.deepEqual(
    rows.map((r) => ({ address: getAddress(r.address), platform: r.platform })).sort((a, b) => a.address.localeCompare(b.address)),
    workers.map((w) => ({ address: w.address, platform: w.platform })).sort((a, b) => a.address.localeCompare(b.address)),
  );

  // The program list: the deployed program with its code hash.
  const listed = await page.$$eval("#programs-table tbody tr[data-id]", (trs) =>
    trs.map((tr) => ({ id: tr.dataset.id, code: tr.querySelector(".code-hash code").textContent, calls: tr.querySelector(".calls").textContent })),
  );
  assert.equal(listed.length, 1);
  assert.equal(listed[0].id, "1");
  assert.equal(listed[0].code, deployed.code_hash);
  assert.equal(Number(listed[0].calls), 2, "both calls' receipts are counted");
  const receipts = await page.$$("#receipts-table tbody tr[data-request]");
  assert.equal(receipts.length, 2);
  assert.match(await page.textContent("#calls-total"), /^2 calls /);

  // The proposal, with its state from the Governor.
  const proposalRow = await page.$eval(`#proposals-table tr[data-proposal="${proposalId}"]`, (tr) => tr.textContent);
  assert.match(proposalRow, /explorer e2e: rotate the KMS key/);
  assert.match(proposalRow, /pending|active/);

  // "verify" on the first worker's attestation: passes, in the browser.
  const first = workers[0].address.toLowerCase();
  const row = `#workers-table tr[data-address="${first}"]`;
  await page.click(`${row} button.verify`);
  await page.waitForSelector(`${row} .verdict[data-state=pass], ${row} .verdict[data-state=fail]`, { timeout: 30_000 });
  const good = await page.$eval(`${row} .verdict`, (v) => ({ state: v.dataset.state, by: v.dataset.verifiedBy, text: v.textContent }));
  assert.equal(good.state, "pass", good.text);
  assert.equal(good.by, "browser");
  assert.match(good.text, /verified in browser/);
  const passed = await page.$$eval(`${row} .verdict li.ok`, (lis) => lis.map((li) => li.dataset.check));
  assert.deepEqual(passed, ["registry_record", "evidence_hash", "attestation", "measurement", "binding"]);

  // The second worker's attestation with one evidence byte flipped on the way to the page.
  const second = workers[1].address.toLowerCase();
  const row2 = `#workers-table tr[data-address="${second}"]`;
  await page.route(`**/explorer/api/workers/*/attestation`, async (route) => {
    const response = await route.fetch();
    const att = await response.json();
    const bytes = Buffer.from(att.evidence.slice(2), "hex");
    bytes[100] ^= 0x01; // inside the signed region (mr_config_id)
    att.evidence = `0x${bytes.toString("hex")}`;
    await route.fulfill({ response, json: att });
  });
  await page.click(`${row2} button.verify`);
  await page.waitForSelector(`${row2} .verdict[data-state=pass], ${row2} .verdict[data-state=fail]`, { timeout: 30_000 });
  const bad = await page.$eval(`${row2} .verdict`, (v) => ({ state: v.dataset.state, text: v.textContent }));
  assert.equal(bad.state, "fail", bad.text);
  const failed = await page.$$eval(`${row2} .verdict li.bad`, (lis) => lis.map((li) => `${li.dataset.check}: ${li.textContent}`));
  assert.ok(failed.some((f) => f.startsWith("evidence_hash")), failed.join("\n"));
  assert.ok(failed.some((f) => f.startsWith("attestation") && /bad_signature/.test(f)), failed.join("\n"));
  await page.unroute(`**/explorer/api/workers/*/attestation`);

  // Evidence the browser cannot check (AWS Nitro, from testdata/) goes to the gateway and is
  // labelled so; a gateway claiming another platform than the Registry's is caught by the
  // browser's own Registry read.
  const nitro = await readFile(join(repo, "testdata/attestation/nitro-a6-fastcrypto/evidence.bin"));
  await page.route(`**/explorer/api/workers/*/attestation`, async (route) => {
    const response = await route.fetch();
    const att = await response.json();
    await route.fulfill({ response, json: { ...att, platform: "nitro", platform_id: 4, evidence: `0x${nitro.toString("hex")}` } });
  });
  const gatewayChecked = page.waitForResponse((r) => r.url().endsWith("/explorer/api/verify-evidence") && r.status() === 200);
  await page.click(`${row} button.verify`);
  await gatewayChecked;
  await page.waitForSelector(`${row} .verdict[data-verified-by=gateway]`, { timeout: 30_000 });
  const byGateway = await page.$eval(`${row} .verdict`, (v) => ({ state: v.dataset.state, text: v.textContent }));
  assert.equal(byGateway.state, "fail", byGateway.text);
  assert.match(byGateway.text, /verified by gateway/);
  const gatewayFailed = await page.$$eval(`${row} .verdict li.bad`, (lis) => lis.map((li) => `${li.dataset.check}: ${li.textContent}`));
  assert.ok(gatewayFailed.some((f) => f.startsWith("attestation") && /cert_expired/.test(f)), gatewayFailed.join("\n"));
  assert.ok(gatewayFailed.some((f) => f.startsWith("registry_record")), gatewayFailed.join("\n"));
  await page.unroute(`**/explorer/api/workers/*/attestation`);
  // An Intel TDX quote (testdata/, real hardware) is verified in the browser with dcap-qvl,
  // using Intel-signed collateral relayed by the gateway's collateral route; the page's clock
  // is set inside the collateral's window. A flipped quote byte fails there too.
  const tdxCase = join(repo, "testdata/attestation/tdx-t10-v5-uptodate");
  const tdx = await readFile(join(tdxCase, "evidence.bin"));
  const { at } = JSON.parse(await readFile(join(tdxCase, "expect.json"), "utf8"));
  const col = async (f) => readFile(join(tdxCase, "collateral", f));
  const files = {
    tcb_info: (await col("tcb_info.json")).toString("utf8"),
    qe_identity: (await col("qe_identity.json")).toString("utf8"),
    tcb_signing_chain: (await col("tcb_signing_chain.pem")).toString("utf8"),
    pck_crl: `0x${(await col("pck_crl.der")).toString("hex")}`,
    pck_crl_issuer_chain: (await col("pck_crl_issuer_chain.pem")).toString("utf8"),
    root_ca_crl: `0x${(await col("root_ca_crl.der")).toString("hex")}`,
  };
  await page.clock.setFixedTime(new Date(at));
  for (const [flip, expectOk] of [[false, true], [true, false]]) {
    const quote = Buffer.from(tdx);
    if (flip) quote[200] ^= 0x01; // inside the signed TD report
    await page.route(`**/explorer/api/workers/*/attestation`, async (route) => {
      const response = await route.fetch();
      const att = await response.json();
      await route.fulfill({ response, json: { ...att, platform: "tdx", platform_id: 2, evidence: `0x${quote.toString("hex")}` } });
    });
    await page.route(`**/explorer/api/workers/*/collateral`, (route) => route.fulfill({ json: files }));
    await page.click(`${row} button.verify`);
    await page.waitForSelector(`${row} .verdict[data-state=pass], ${row} .verdict[data-state=fail]`, { timeout: 30_000 });
    const v = await page.$eval(`${row} .verdict`, (e) => ({ by: e.dataset.verifiedBy, text: e.textContent }));
    assert.equal(v.by, "browser", v.text);
    const attestationOk = await page.$$eval(`${row} .verdict li[data-check=attestation]`, (lis) => lis.map((li) => li.classList.contains("ok")));
    assert.deepEqual(attestationOk, [expectOk], v.text);
    // The Registry says this worker is simulated with other evidence: caught either way.
    assert.match(v.text, /registry_record|evidence_hash/);
    await page.unroute(`**/explorer/api/workers/*/attestation`);
    await page.unroute(`**/explorer/api/workers/*/collateral`);
  }
  await page.clock.setSystemTime(new Date());

  // And back: the genuine attestation passes again.
  await page.click(`${row} button.verify`);
  await page.waitForSelector(`${row} .verdict[data-verified-by=browser][data-state=pass]`, { timeout: 30_000 });

  // A stored receipt, checked in the browser with the SDK (signature, domain, Registry, code).
  const receiptRow = "#receipts-table tbody tr[data-request]";
  await page.click(`${receiptRow} button.verify`);
  await page.waitForSelector(`${receiptRow} .verdict[data-state=pass], ${receiptRow} .verdict[data-state=fail]`, { timeout: 30_000 });
  const receiptVerdict = await page.$eval(`${receiptRow} .verdict`, (v) => ({ state: v.dataset.state, text: v.textContent }));
  assert.equal(receiptVerdict.state, "pass", receiptVerdict.text);
  const receiptChecks = await page.$$eval(`${receiptRow} .verdict li.ok`, (lis) => lis.map((li) => li.dataset.check));
  for (const c of ["receipt_signature", "receipt_domain", "worker_registered", "code_hash"]) assert.ok(receiptChecks.includes(c), `${c} in ${receiptChecks}`);

  const out = process.env.EXPLORER_TEST_OUT ?? (await mkdtemp(join(tmpdir(), "pith-explorer-shot-")));
  await mkdir(out, { recursive: true });
  const shot = join(out, "explorer.png");
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`screenshot: ${shot}`);
  assert.deepEqual(consoleErrors, [], "no errors in the page's console");
});
