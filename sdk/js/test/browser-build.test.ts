// The browser build (esbuild, platform browser, ESM, minified, viem bundled) loads and works:
// it verifies the Rust-signed receipt, the captured simulated evidence, and encrypts a
// request that the SDK's server side opens. Node 20 has the WebCrypto and fetch a browser has.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { test } from "node:test";
import { build } from "esbuild";
import { readVectors, vectorsDir } from "../scripts/vectors.ts";
import { fromHex } from "../src/bytes.ts";
import { openRequest } from "../src/ohttp.ts";

test("the minified browser bundle verifies receipts and evidence and encrypts requests", async () => {
  const out = await build({
    entryPoints: [join(import.meta.dirname, "../src/index.ts")],
    bundle: true,
    format: "esm",
    platform: "browser",
    minify: true,
    write: false,
  });
  const tmp = mkdtempSync(join(tmpdir(), "pith-sdk-bundle-"));
  const file = join(tmp, "pith-sdk.mjs");
  writeFileSync(file, out.outputFiles[0]!.contents);
  const sdk = await import(pathToFileURL(file).href);
  rmSync(tmp, { recursive: true, force: true });
  const rust = readVectors("rust.json");
  assert.equal((await sdk.verifyReceiptSignature(sdk.parseReceipt(rust.receipt))).toLowerCase(), rust.receipt_worker);
  const dir = join(vectorsDir, "simulated-evidence");
  const verdict = JSON.parse(readFileSync(join(dir, "verdict.json"), "utf8"));
  const v = await sdk.verifyEvidence(new Uint8Array(readFileSync(join(dir, "evidence.bin"))), {
    devCa: new Uint8Array(readFileSync(join(dir, "dev-ca.pem"))),
    now: new Date(verdict.at),
  });
  assert.equal(v.ok, true);
  const bhttp = sdk.encodeRequest({ method: "GET", path: "/", headers: [], body: new Uint8Array(), nonce: new Uint8Array(16), expiry: 1 });
  const { wire } = await sdk.encapsulateRequest(fromHex(rust.ohttp_keys), bhttp);
  const opened = await openRequest(fromHex(rust.encryption_ikm), rust.key_id, wire);
  assert.deepEqual(opened.bhttp, bhttp);
});

test("the minified browser bundle of evidence-intel verifies a TDX and an SGX quote (dcap-qvl's browser path)", async () => {
  const out = await build({
    entryPoints: [join(import.meta.dirname, "../src/evidence-intel.ts")],
    bundle: true,
    format: "esm",
    platform: "browser",
    minify: true,
    write: false,
  });
  const tmp = mkdtempSync(join(tmpdir(), "pith-sdk-bundle-"));
  const file = join(tmp, "pith-evidence-intel.mjs");
  writeFileSync(file, out.outputFiles[0]!.contents);
  const m = await import(pathToFileURL(file).href);
  rmSync(tmp, { recursive: true, force: true });
  const corpus = join(vectorsDir, "..", "attestation");
  for (const [name, status] of [["tdx-t1-uptodate", "UpToDate"], ["sgx-s1-confsw-hardening", "ConfigurationAndSWHardeningNeeded"]] as const) {
    const dir = join(corpus, name);
    const c = (f: string) => readFileSync(join(dir, "collateral", f));
    const collateral = m.intelCollateralFromFiles({
      tcbInfo: c("tcb_info.json").toString("utf8"),
      qeIdentity: c("qe_identity.json").toString("utf8"),
      tcbSigningChain: c("tcb_signing_chain.pem").toString("utf8"),
      pckCrl: new Uint8Array(c("pck_crl.der")),
      rootCaCrl: new Uint8Array(c("root_ca_crl.der")),
    });
    const at = new Date(JSON.parse(readFileSync(join(dir, "expect.json"), "utf8")).at);
    const evidence = new Uint8Array(readFileSync(join(dir, "evidence.bin")));
    const v = await m.verifyIntelEvidence(evidence, { collateral, now: at });
    assert.equal(v.ok, true, `${name}: ${JSON.stringify(v.error)}`);
    assert.equal(v.tcbStatus, status);
    const bad = evidence.slice();
    bad[600] = bad[600]! ^ 0xff; // inside the signed body
    const w = await m.verifyIntelEvidence(bad, { collateral, now: at });
    assert.equal(w.ok, false);
    assert.equal(w.error.kind, "bad_signature", w.error.message);
  }
});
