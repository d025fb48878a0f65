// The browser-side simulated-evidence verifier (src/simulated.ts), run in Node's WebCrypto
// against evidence made by the real `pith attest quote --simulated` and checked against the
// real `pith attest verify` (the measurement hash must be the same), plus the negative
// cases: flipped bytes, trailing bytes, another network's CA, expired certificates.
//
// Environment: PITH_BIN (the `pith` binary).

import { test, before } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { build } from "esbuild";

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const pith = process.env.PITH_BIN ?? join(process.env.CARGO_TARGET_DIR ?? join(process.env.HOME, ".cache/pith-target"), "debug/pith");

let mod;
let dir;
let evidence;
let pem;
let otherPem;
let expected;

before(async () => {
  const out = await build({ entryPoints: [join(here, "../src/simulated.ts")], bundle: true, format: "esm", platform: "neutral", mainFields: ["module", "main"], write: false, logLevel: "warning" });
  mod = await import(`data:text/javascript;base64,${Buffer.from(out.outputFiles[0].contents).toString("base64")}`);
  dir = await mkdtemp(join(tmpdir(), "pith-explorer-sim-"));
  await run(pith, ["attest", "quote", "--simulated", "--dev-ca-dir", join(dir, "ca"), "--report-data", "0707", "--out", join(dir, "ev.bin")]);
  await run(pith, ["attest", "quote", "--simulated", "--dev-ca-dir", join(dir, "other"), "--out", join(dir, "other.bin")]);
  evidence = new Uint8Array(await readFile(join(dir, "ev.bin")));
  pem = await readFile(join(dir, "ca/dev-ca.pem"), "utf8");
  otherPem = await readFile(join(dir, "other/dev-ca.pem"), "utf8");
  const { stdout } = await run(pith, ["attest", "verify", join(dir, "ev.bin"), "--dev-ca", join(dir, "ca/dev-ca.pem"), "--json"]);
  expected = JSON.parse(stdout);
  assert.equal(expected.verdict, "valid");
});

test("valid evidence verifies with the same measurement hash and report data as pith-attest", async () => {
  const c = await mod.verifySimulated(evidence, pem, new Date());
  assert.equal(Buffer.from(c.measurementHash).toString("hex"), expected.measurement_hash.replace(/^0x/, ""));
  assert.equal(Buffer.from(c.reportData).toString("hex"), "0707" + "00".repeat(62));
  assert.equal(c.debug, false);
  // DER input for the CA works as PEM does.
  await mod.verifySimulated(evidence, mod.certDer(pem), new Date());
  await rm(dir, { recursive: true, force: true });
});

test("every flipped byte class is refused", async () => {
  const kinds = new Set();
  for (let at = 0; at < evidence.length; at += 7) {
    const bad = evidence.slice();
    bad[at] ^= 0x01;
    await assert.rejects(mod.verifySimulated(bad, pem, new Date()), (e) => {
      assert.ok(["malformed", "bad_signature", "bad_chain"].includes(e.kind), `byte ${at}: ${e.kind} ${e.message}`);
      kinds.add(e.kind);
      return true;
    });
  }
  assert.ok(kinds.has("bad_signature") && kinds.has("malformed"));
});

test("trailing, truncated, wrong CA and expired are refused with their class", async () => {
  const reject = (p, kind) => assert.rejects(p, (e) => e.kind === kind || assert.fail(`${e.kind}: ${e.message}`));
  await reject(mod.verifySimulated(new Uint8Array([...evidence, 0]), pem, new Date()), "malformed");
  await reject(mod.verifySimulated(evidence.subarray(0, evidence.length - 1), pem, new Date()), "malformed");
  await reject(mod.verifySimulated(evidence.subarray(0, 100), pem, new Date()), "malformed");
  await reject(mod.verifySimulated(evidence, otherPem, new Date()), "bad_chain");
  await reject(mod.verifySimulated(evidence, "not a certificate", new Date()), "bad_chain");
  await reject(mod.verifySimulated(evidence, pem, new Date(Date.now() + 40 * 86_400_000)), "cert_expired");
  await reject(mod.verifySimulated(evidence, pem, new Date(Date.now() - 86_400_000)), "not_yet_valid");
});
