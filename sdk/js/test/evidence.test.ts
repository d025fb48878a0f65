// Simulated evidence captured from a `pith up` network, checked against the Rust
// verifier's verdict (`pith attest verify --json`, verdict.json), plus the negatives.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { vectorsDir } from "../scripts/vectors.ts";
import { fromHex, toHex } from "../src/bytes.ts";
import { verifyEvidence } from "../src/evidence.ts";

const dir = join(vectorsDir, "simulated-evidence");
const evidence = new Uint8Array(readFileSync(join(dir, "evidence.bin")));
const devCa = new Uint8Array(readFileSync(join(dir, "dev-ca.pem")));
const otherCa = new Uint8Array(readFileSync(join(dir, "other-dev-ca.pem")));
const rust = JSON.parse(readFileSync(join(dir, "verdict.json"), "utf8"));
const at = new Date(rust.at);

test("valid simulated evidence: the same facts as pith-attest", async () => {
  const v = await verifyEvidence(evidence, { devCa, now: at });
  assert.equal(v.ok, true, JSON.stringify(v.error));
  assert.equal(v.verifiedBy, "browser");
  assert.equal(v.platform, rust.platform);
  assert.equal(v.measurementHash, `0x${rust.measurement_hash}`);
  assert.equal(v.reportData, `0x${rust.report_data}`);
  assert.equal(v.timestamp, rust.properties.timestamp);
  assert.equal(v.debug, rust.debug);
  for (const [k, val] of Object.entries(rust.measurements)) assert.equal(v.measurements![k], `0x${val}`, k);
});

test("the dev CA may be given as PEM text or as DER", async () => {
  const pem = new TextDecoder().decode(devCa);
  assert.equal((await verifyEvidence(evidence, { devCa: pem, now: at })).ok, true);
  const b64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  const der = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  assert.equal((await verifyEvidence(evidence, { devCa: der, now: at })).ok, true);
  assert.equal((await verifyEvidence(evidence, { devCa: der.subarray(0, der.length - 1), now: at })).error?.kind, "bad_chain");
});

test("expected report_data: equal passes, other fails", async () => {
  const rd = fromHex(rust.report_data);
  assert.equal((await verifyEvidence(evidence, { devCa, now: at, expectedReportData: rd.subarray(0, 32) })).ok, true);
  const other = rd.slice(0, 32);
  other[0]! ^= 1;
  const v = await verifyEvidence(evidence, { devCa, now: at, expectedReportData: other });
  assert.equal(v.ok, false);
  assert.equal(v.error?.kind, "report_data_mismatch");
});

test("every flipped byte of the signed region or signature is rejected", async () => {
  for (let i = 0; i < evidence.length; i += 7) {
    const bad = evidence.slice();
    bad[i]! ^= 0x01;
    const v = await verifyEvidence(bad, { devCa, now: at });
    assert.equal(v.ok, false, `byte ${i}`);
    assert.ok(["bad_signature", "malformed", "unsupported"].includes(v.error!.kind), `byte ${i}: ${v.error!.kind}`);
  }
});

test("trailing or missing bytes are malformed", async () => {
  const longer = new Uint8Array(evidence.length + 1);
  longer.set(evidence);
  assert.equal((await verifyEvidence(longer, { devCa, now: at })).error?.kind, "malformed");
  assert.equal((await verifyEvidence(evidence.subarray(0, 500), { devCa, now: at })).error?.kind, "malformed");
});

test("chain: another dev CA, no CA, or an AK certificate given as CA is bad_chain", async () => {
  assert.equal((await verifyEvidence(evidence, { devCa: otherCa, now: at })).error?.kind, "bad_chain");
  assert.equal((await verifyEvidence(evidence, { now: at })).error?.kind, "bad_chain");
  const n = (evidence[468]! << 8) | evidence[469]!;
  const ak = evidence.subarray(470, 470 + n);
  assert.equal((await verifyEvidence(evidence, { devCa: ak, now: at })).error?.kind, "bad_chain");
});

test("time: before the window is not_yet_valid, after it cert_expired", async () => {
  const [from, to] = rust.window.map((s: string) => new Date(s));
  assert.equal((await verifyEvidence(evidence, { devCa, now: new Date(from.getTime() - 1000) })).error?.kind, "not_yet_valid");
  assert.equal((await verifyEvidence(evidence, { devCa, now: new Date(to.getTime() + 1000) })).error?.kind, "cert_expired");
});

test("hardware evidence is recognised and answered as unsupported, not as valid", async () => {
  const repo = join(vectorsDir, "../attestation");
  const tdx = new Uint8Array(readFileSync(join(repo, "tdx-t10-v5-uptodate/evidence.bin")));
  const v = await verifyEvidence(tdx);
  assert.deepEqual([v.ok, v.platform, v.verifiedBy, v.error?.kind], [false, "tdx", "unsupported", "unsupported"]);
  assert.equal(toHex(new Uint8Array()), "0x");
});
