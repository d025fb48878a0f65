// Intel SGX / TDX quotes of the real corpus (testdata/attestation/, every sgx-* and tdx-*
// case) verified by the browser verifier (@phala/dcap-qvl + WebCrypto CRL checks) at the
// case's `at` with its collateral, against expect.json and against pith-attest's own verdict
// (`pith attest verify --json`, testdata/vectors/intel-evidence/pith.json, made by make.sh).
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { constants } from "@phala/dcap-qvl";
import { vectorsDir } from "../scripts/vectors.ts";
import { intelCollateralFromFiles, verifyIntelEvidence, type IntelCollateral } from "../src/evidence-intel.ts";

const corpus = join(vectorsDir, "..", "attestation");
const pith = JSON.parse(readFileSync(join(vectorsDir, "intel-evidence", "pith.json"), "utf8")) as Record<string, any>;
const cases = readdirSync(corpus).filter((d) => /^(sgx|tdx)-/.test(d));

/**
 * Cases where dcap-qvl 0.3.9 answers differently from pith-attest, each for a documented
 * reason (src/evidence-intel.ts, ADR 0140): the browser verdict asserted instead.
 */
const DIVERGES: Record<string, { kind?: string; tcbStatus?: string; why: string }> = {
  "sgx-s2-confsw-hardening-2024": { kind: "attributes_rejected", why: "debug enclave: dcap-qvl rejects, pith-attest reports debug" },
  "sgx-s2c-confsw-hardening-2024-08": { kind: "attributes_rejected", why: "debug enclave" },
  "tdx-t9b-uptodate": { kind: "attributes_rejected", why: "debug TD" },
  "tdx-t6-uptodate": { kind: "attributes_rejected", why: "TD without SEPT_VE_DISABLE" },
  "sgx-s3b-swhardening-tcbinfo-v2": { kind: "unsupported", why: "TCBInfo v2" },
  "sgx-s4-outofdate-tcbinfo-v2": { kind: "unsupported", why: "TCBInfo v2" },
  "tdx-t16b-gcp-cos-uptodate-2025-06": { tcbStatus: "OutOfDate", why: "no tdxModuleIdentities evaluation: all 16 TEE_TCB_SVN bytes compared" },
};

function read(dir: string, f: string): Buffer | undefined {
  const p = join(dir, "collateral", f);
  return existsSync(p) ? readFileSync(p) : undefined;
}

/** The corpus collateral in dcap-qvl's shape; an absent file leaves its field empty. */
function collateralOf(dir: string): IntelCollateral {
  const tcbInfo = read(dir, "tcb_info.json")!.toString("utf8");
  const qe = read(dir, "qe_identity.json");
  const chain = read(dir, "tcb_signing_chain.pem")!.toString("utf8");
  const placeholder = '{"enclaveIdentity":{},"signature":"00"}';
  const c = intelCollateralFromFiles({
    tcbInfo,
    qeIdentity: qe ? qe.toString("utf8") : placeholder,
    tcbSigningChain: chain,
    pckCrl: new Uint8Array(read(dir, "pck_crl.der") ?? []),
    rootCaCrl: new Uint8Array(read(dir, "root_ca_crl.der") ?? []),
  });
  if (!qe) c.qe_identity = "";
  return c;
}

const load = (name: string) => {
  const dir = join(corpus, name);
  return {
    dir,
    expect: JSON.parse(readFileSync(join(dir, "expect.json"), "utf8")),
    evidence: new Uint8Array(readFileSync(join(dir, "evidence.bin"))),
    collateral: collateralOf(dir),
  };
};

test("the root dcap-qvl pins is the corpus' Intel SGX Root CA", () => {
  const pinned = readFileSync(join(corpus, "roots", "intel", "Intel_SGX_Root_CA.der"));
  assert.deepEqual(new Uint8Array(constants.TRUSTED_ROOT_CA_DER), new Uint8Array(pinned));
});

test("pith.json covers every Intel case of the corpus", () => {
  assert.equal(cases.length, 33);
  assert.deepEqual(Object.keys(pith).sort(), [...cases].sort());
});

for (const name of cases) {
  test(`corpus ${name}`, async () => {
    const { expect, evidence, collateral } = load(name);
    const rust = pith[name];
    const v = await verifyIntelEvidence(evidence, { collateral, now: new Date(expect.at) });
    assert.equal(v.platform, expect.platform);
    assert.equal(v.verifiedBy, "browser");
    const d = DIVERGES[name];
    if (d?.kind) {
      assert.equal(rust.verdict, "valid", "a divergence is listed only for a case pith-attest accepts");
      assert.equal(v.ok, false);
      assert.equal(v.error?.kind, d.kind, v.error?.message);
      return;
    }
    // pith-attest and expect.json agree (strict: lenient cases fail with missing_collateral)
    const wantValid = expect.verdict === "valid" && !expect.needs_lenient_collateral;
    assert.equal(rust.verdict, wantValid ? "valid" : "invalid");
    if (wantValid) {
      assert.equal(v.ok, true, JSON.stringify(v.error));
      assert.equal(v.measurementHash, `0x${rust.measurement_hash}`);
      assert.equal(v.reportData, `0x${rust.report_data}`);
      assert.equal(v.reportData, `0x${expect.report_data}`);
      assert.equal(v.debug, rust.debug);
      assert.equal(v.tcbStatus, d?.tcbStatus ?? rust.tcb_status);
      if (!d) assert.equal(v.tcbStatus, expect.tcb_status);
      for (const k of ["mr_enclave", "mr_signer", "mr_td", "rtmr0", "rtmr3"]) {
        if (expect.measurements[k]) assert.equal(v.measurements![k], `0x${expect.measurements[k]}`, k);
      }
    } else {
      assert.equal(v.ok, false);
      const want = expect.strict_failure ?? expect.failure;
      assert.equal(want, rust.failure);
      assert.equal(v.error?.kind, want, v.error?.message);
    }
  });
}

const t1 = () => load("tdx-t1-uptodate");
const s1 = () => load("sgx-s1-confsw-hardening");

test("a flipped byte anywhere in the signed quote fails", async () => {
  for (const { evidence, collateral, expect } of [t1(), s1()]) {
    for (const off of [8, 48 + 20, 48 + 200, evidence.length - 2000]) {
      const bad = evidence.slice();
      bad[off] = bad[off]! ^ 0x01;
      const v = await verifyIntelEvidence(bad, { collateral, now: new Date(expect.at) });
      assert.equal(v.ok, false, `offset ${off}`);
      assert.ok(["bad_signature", "bad_chain", "malformed", "wrong_collateral"].includes(v.error!.kind), `${off}: ${v.error!.kind} ${v.error!.message}`);
    }
  }
});

test("collateral after its nextUpdate, or before its issue, fails", async () => {
  const { evidence, collateral, expect } = t1();
  const nextUpdate = new Date(JSON.parse(collateral.tcb_info).nextUpdate);
  const late = await verifyIntelEvidence(evidence, { collateral, now: new Date(nextUpdate.getTime() + 1000) });
  assert.equal(late.ok, false);
  assert.equal(late.error?.kind, "collateral_expired", late.error?.message);
  const ok = await verifyIntelEvidence(evidence, { collateral, now: new Date(expect.at) });
  assert.equal(ok.ok, true);
  const issue = new Date(JSON.parse(collateral.tcb_info).issueDate);
  const early = await verifyIntelEvidence(evidence, { collateral, now: new Date(issue.getTime() - 1000) });
  assert.equal(early.ok, false);
  assert.equal(early.error?.kind, "not_yet_valid", early.error?.message);
});

test("a PCK CRL past its nextUpdate fails even where dcap-qvl would accept it", async () => {
  const { evidence, collateral, expect } = load("sgx-s6-pckcrl-expired-neg");
  const v = await verifyIntelEvidence(evidence, { collateral, now: new Date(expect.at) });
  assert.equal(v.error?.kind, "collateral_expired");
  assert.match(v.error!.message, /PCK CRL/);
});

test("CRLs must be signed by their issuer: swapped or altered CRLs fail", async () => {
  const { evidence, collateral, expect } = t1();
  const now = new Date(expect.at);
  const swapped = await verifyIntelEvidence(evidence, { collateral: { ...collateral, pck_crl: collateral.root_ca_crl }, now });
  assert.equal(swapped.error?.kind, "wrong_collateral", swapped.error?.message);
  const crl = Uint8Array.from(collateral.pck_crl as number[]);
  crl[crl.length - 80] = crl[crl.length - 80]! ^ 0x01; // inside the tbsCertList, before the signature
  const altered = await verifyIntelEvidence(evidence, { collateral: { ...collateral, pck_crl: Array.from(crl) }, now });
  assert.equal(altered.ok, false);
  assert.ok(["bad_signature", "malformed"].includes(altered.error!.kind), altered.error!.message);
});

test("altered TCBInfo text or signature fails; SGX collateral for a TDX quote fails", async () => {
  const { evidence, collateral, expect } = t1();
  const now = new Date(expect.at);
  const text = collateral.tcb_info.replace('"UpToDate"', '"UpToDat\\u0065"');
  assert.notEqual(text, collateral.tcb_info);
  const v1 = await verifyIntelEvidence(evidence, { collateral: { ...collateral, tcb_info: text }, now });
  assert.equal(v1.error?.kind, "bad_signature", v1.error?.message);
  const sig = collateral.tcb_info_signature as string;
  const v2 = await verifyIntelEvidence(evidence, { collateral: { ...collateral, tcb_info_signature: (sig[0] === "0" ? "1" : "0") + sig.slice(1) }, now });
  assert.equal(v2.error?.kind, "bad_signature", v2.error?.message);
  const sgx = s1().collateral;
  const v3 = await verifyIntelEvidence(evidence, { collateral: { ...collateral, tcb_info: sgx.tcb_info, tcb_info_signature: sgx.tcb_info_signature }, now });
  assert.equal(v3.ok, false);
  assert.ok(["wrong_collateral", "not_yet_valid", "collateral_expired"].includes(v3.error!.kind), v3.error!.message);
});

test("every collateral part is required", async () => {
  const { evidence, collateral, expect } = t1();
  for (const k of ["tcb_info", "qe_identity", "pck_crl", "root_ca_crl", "tcb_info_issuer_chain"] as const) {
    const v = await verifyIntelEvidence(evidence, { collateral: { ...collateral, [k]: k.endsWith("crl") ? [] : "" }, now: new Date(expect.at) });
    assert.equal(v.error?.kind, "missing_collateral", k);
  }
  const none = await verifyIntelEvidence(evidence, { now: new Date(expect.at) });
  assert.equal(none.error?.kind, "missing_collateral");
});

test("another root pinned: the chain does not verify", async () => {
  const { evidence, collateral, expect } = t1();
  const other = readFileSync(join(vectorsDir, "simulated-evidence", "dev-ca.pem"), "utf8");
  const b64 = other.match(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END/)![1]!.replace(/\s+/g, "");
  const v = await verifyIntelEvidence(evidence, { collateral, now: new Date(expect.at), rootCaDer: new Uint8Array(Buffer.from(b64, "base64")) });
  assert.equal(v.ok, false);
  assert.ok(["bad_chain", "wrong_collateral", "bad_signature"].includes(v.error!.kind), v.error!.message);
});

test("expectedReportData: match and mismatch", async () => {
  const { evidence, collateral, expect } = t1();
  const rd = new Uint8Array(Buffer.from(expect.report_data, "hex"));
  const ok = await verifyIntelEvidence(evidence, { collateral, now: new Date(expect.at), expectedReportData: rd });
  assert.equal(ok.ok, true);
  rd[63] = rd[63]! ^ 1;
  const bad = await verifyIntelEvidence(evidence, { collateral, now: new Date(expect.at), expectedReportData: rd });
  assert.equal(bad.ok, false);
  assert.equal(bad.error?.kind, "report_data_mismatch");
});

test("collateral from a URL (fetch), and a failing fetch", async () => {
  const { evidence, collateral, expect } = t1();
  const seen: string[] = [];
  const f = (async (url: string) => {
    seen.push(url);
    return new Response(JSON.stringify(collateral), { headers: { "content-type": "application/json" } });
  }) as unknown as typeof fetch;
  const v = await verifyIntelEvidence(evidence, { collateralUrl: "https://gw.example/c", fetch: f, now: new Date(expect.at) });
  assert.equal(v.ok, true, JSON.stringify(v.error));
  assert.deepEqual(seen, ["https://gw.example/c"]);
  const f404 = (async () => new Response("no", { status: 404 })) as unknown as typeof fetch;
  const w = await verifyIntelEvidence(evidence, { collateralUrl: "https://gw.example/c", fetch: f404, now: new Date(expect.at) });
  assert.equal(w.error?.kind, "missing_collateral");
});

test("non-Intel evidence and a truncated quote", async () => {
  const sim = new Uint8Array(readFileSync(join(vectorsDir, "simulated-evidence", "evidence.bin")));
  const v = await verifyIntelEvidence(sim, { collateral: t1().collateral });
  assert.equal(v.verifiedBy, "unsupported");
  assert.equal(v.ok, false);
  const { evidence, collateral, expect } = t1();
  const cut = await verifyIntelEvidence(evidence.subarray(0, 700), { collateral, now: new Date(expect.at) });
  assert.equal(cut.ok, false);
  assert.equal(cut.error?.kind, "malformed", cut.error?.message);
});
