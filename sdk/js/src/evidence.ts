/**
 * Attestation evidence verification in the browser or Node, with WebCrypto.
 *
 * Supported: the simulated platform of `pith up` (docs/protocol.md "Simulated platform"):
 * the evidence signature by its attestation key (AK), the AK certificate chained to the
 * network's development CA (given by the caller, never taken from the evidence), the
 * `mr_td` derivation and the validity windows, in the order the Rust verifier
 * (`crates/attest/src/simulated/`) uses, with the same error classes.
 *
 * Hardware evidence (SGX, TDX, SEV-SNP, Nitro, NVIDIA) is recognised but not verified here:
 * the answer is `{ok: false, verifiedBy: "unsupported"}` and the caller should use
 * `pith verify` / `pith-attest`, which verifies all of them to the vendor roots.
 */
import { sha256, sha384 } from "@noble/hashes/sha2";
import { Reader, concat, equalBytes, toHex, utf8, type Hex } from "./bytes.ts";
import { DerError, parseCertificate, pemOrDer, type Certificate } from "./der.ts";

/** The outcome of [`verifyEvidence`]. */
export type EvidenceVerdict = {
  ok: boolean;
  /** Platform text id (`simulated`, `sgx`, `tdx`, `sev-snp`, `nitro`, `nvidia-gpu`, `unknown`). */
  platform: string;
  /** `browser`: checked by this module; `unsupported`: not checked here (see `error`). */
  verifiedBy: "browser" | "unsupported";
  /** `pith_attest::measurement_hash` of the evidence (docs/protocol.md "Measurement hash"). */
  measurementHash?: Hex;
  /** The 64 bytes of `report_data`. */
  reportData?: Hex;
  /** TCB status, for platforms that have one (the simulated platform has none). */
  tcbStatus?: string;
  /** `debug` flag of the evidence. */
  debug?: boolean;
  /** Evidence timestamp (simulated: Unix seconds). */
  timestamp?: number;
  /** Named measurements, hex. */
  measurements?: Record<string, Hex>;
  /**
   * Why it is not ok. `kind` is one of the error classes of pith-attest (`malformed`,
   * `bad_signature`, `bad_chain`, `not_yet_valid`, `cert_expired`) or `report_data_mismatch`,
   * `unsupported`.
   */
  error?: { kind: string; message: string };
};

export interface VerifyEvidenceOptions {
  /** When given, `report_data` must equal it (64 bytes, or a 32-byte prefix followed by zeros). */
  expectedReportData?: Uint8Array;
  /** The time to appraise at (default: now). */
  now?: Date;
  /** The development CA certificate for simulated evidence: DER bytes, or PEM (text or its bytes). */
  devCa?: Uint8Array | string;
}

const MAGIC = utf8.encode("PITHSIM1");
const SIGNED_TAG = utf8.encode("pith/simulated-evidence/v1");
const MRTD_TAG = utf8.encode("pith/simulated-mrtd/v1");
const MEASUREMENT_TAG = "pith/measurement/v1/";
const FIXED = 470;
const MAX_AK_CERT = 4096;
/** The measurement fields of the simulated platform, in hash order ("as tdx"; no mr_owner_config). */
const SIM_FIELDS = ["mr_td", "mr_config_id", "mr_owner", "rtmr0", "rtmr1", "rtmr2", "rtmr3"] as const;

class Reject extends Error {
  constructor(
    readonly kind: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * `pith_attest::measurement_hash`: SHA-256 over the platform tag and the length-prefixed
 * named fields, in the platform's order.
 */
export function measurementHash(platform: string, fields: [string, Uint8Array][]): Hex {
  const parts: Uint8Array[] = [utf8.encode(MEASUREMENT_TAG + platform)];
  for (const [name, value] of fields) {
    const n = utf8.encode(name);
    const len = new Uint8Array(4);
    new DataView(len.buffer).setUint32(0, value.length);
    parts.push(Uint8Array.of(n.length), n, len, value);
  }
  return toHex(sha256(concat(...parts)));
}

/** Which platform the bytes look like (the same cues as `pith_attest::detect`). */
export function detectPlatform(e: Uint8Array): string {
  if (e.length >= 8 && equalBytes(e.subarray(0, 8), MAGIC)) return "simulated";
  if (e.length >= 8) {
    const version = e[0]! | (e[1]! << 8);
    const teeType = e[4]! | (e[5]! << 8) | (e[6]! << 16) | (e[7]! << 24);
    if (version === 3 && teeType === 0) return "sgx";
    if ((version === 4 || version === 5) && teeType === 0x81) return "tdx";
    if (version === 4 && teeType === 0) return "sgx";
  }
  if (e.length === 1184 || (e.length > 1184 && e[0]! <= 5 && e[1] === 0)) return "sev-snp";
  if (e[0] === 0x84 || e[0] === 0xd2) return "nitro";
  return "unknown";
}

async function importP256(spki: Uint8Array): Promise<CryptoKey> {
  try {
    return await crypto.subtle.importKey("spki", new Uint8Array(spki), { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
  } catch (e) {
    throw new Reject("malformed", `P-256 public key does not import: ${(e as Error).message}`);
  }
}

async function ecdsaOk(key: CryptoKey, sigRaw: Uint8Array, data: Uint8Array): Promise<boolean> {
  return crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, new Uint8Array(sigRaw), new Uint8Array(data));
}

function certOf(der: Uint8Array, what: string, kind: string): Certificate {
  try {
    return parseCertificate(der);
  } catch (e) {
    throw new Reject(kind, `${what}: ${e instanceof DerError ? e.message : String(e)}`);
  }
}

async function verifySimulated(e: Uint8Array, opts: VerifyEvidenceOptions): Promise<EvidenceVerdict> {
  // 1. parse
  const rd = new Reader(e, "simulated evidence");
  let f;
  try {
    rd.bytes(8);
    const version = rd.u16();
    if (version !== 1) throw new Reject("malformed", `version ${version}`);
    const flags = rd.u16();
    if (flags & 0xfffe) throw new Reject("malformed", "reserved flag bits set");
    const ts = rd.bytes(8);
    const timestamp = Number(new DataView(ts.buffer, ts.byteOffset, 8).getBigInt64(0));
    const m: Record<string, Uint8Array> = {};
    for (const name of ["mr_td", "mr_config_id", "mr_owner", "rtmr0", "rtmr1", "rtmr2", "rtmr3", "binary_sha384"]) m[name] = rd.bytes(48);
    const reportData = rd.bytes(64);
    const n = rd.u16();
    if (n < 1 || n > MAX_AK_CERT) throw new Reject("malformed", `AK certificate length ${n}`);
    const akDer = rd.bytes(n);
    const sig = rd.bytes(64);
    if (rd.remaining !== 0) throw new Reject("malformed", `${rd.remaining} trailing bytes`);
    f = { debug: (flags & 1) === 1, timestamp, m, reportData, akDer, sig, signedLen: FIXED + n };
  } catch (err) {
    if (err instanceof Reject) throw err;
    throw new Reject("malformed", (err as Error).message);
  }
  // 2. AK certificate and the evidence signature
  const ak = certOf(f.akDer, "AK certificate", "malformed");
  const akKey = await importP256(ak.spki);
  if (!(await ecdsaOk(akKey, f.sig, concat(SIGNED_TAG, e.subarray(0, f.signedLen))))) {
    throw new Reject("bad_signature", "evidence signature does not verify with the AK certificate's key");
  }
  // 3. mr_td derivation
  const mrTd = sha384(concat(MRTD_TAG, f.m.binary_sha384!, f.m.mr_config_id!));
  if (!equalBytes(mrTd, f.m.mr_td!)) throw new Reject("malformed", "mr_td is not SHA-384(tag ‖ binary_sha384 ‖ mr_config_id)");
  // 4. the chain to the development CA given by the verifier
  if (!opts.devCa) throw new Reject("bad_chain", "no development CA given (devCa); simulated evidence cannot be checked without it");
  const ca = certOf(pemOrDer(typeof opts.devCa === "string" ? utf8.encode(opts.devCa) : opts.devCa), "development CA", "bad_chain");
  if (!ca.isCa) throw new Reject("bad_chain", "development CA certificate is not a CA (basicConstraints cA)");
  if (!equalBytes(ak.issuer, ca.subject)) throw new Reject("bad_chain", "AK certificate issuer is not the CA's subject");
  if (!ak.signedWithEcdsaSha256) throw new Reject("bad_chain", "AK certificate is not signed with ecdsa-with-SHA256");
  const caKey = await importP256(ca.spki);
  if (!(await ecdsaOk(caKey, ak.signatureRaw, ak.tbs))) throw new Reject("bad_chain", "AK certificate is not signed by the development CA");
  if (ak.isCa) throw new Reject("bad_chain", "AK certificate is a CA");
  // 5. time
  const now = opts.now ?? new Date();
  for (const [c, what] of [[ca, "development CA"], [ak, "AK certificate"]] as const) {
    if (now < c.notBefore) throw new Reject("not_yet_valid", `${what} is valid from ${c.notBefore.toISOString()}`);
    if (now > c.notAfter) throw new Reject("cert_expired", `${what} expired at ${c.notAfter.toISOString()}`);
  }
  if (now.getTime() / 1000 < f.timestamp) throw new Reject("not_yet_valid", `evidence made at ${f.timestamp}, after ${now.toISOString()}`);

  const measurements: Record<string, Hex> = {};
  for (const [k, v] of Object.entries(f.m)) measurements[k] = toHex(v);
  const verdict: EvidenceVerdict = {
    ok: true,
    platform: "simulated",
    verifiedBy: "browser",
    measurementHash: measurementHash("simulated", SIM_FIELDS.map((k) => [k, f.m[k]!])),
    reportData: toHex(f.reportData),
    debug: f.debug,
    timestamp: f.timestamp,
    measurements,
  };
  if (opts.expectedReportData) {
    const want = new Uint8Array(64);
    if (opts.expectedReportData.length > 64) throw new Reject("report_data_mismatch", "expected report_data is longer than 64 bytes");
    want.set(opts.expectedReportData);
    if (!equalBytes(want, f.reportData)) {
      return { ...verdict, ok: false, error: { kind: "report_data_mismatch", message: `report_data ${toHex(f.reportData)} is not the expected ${toHex(want)}` } };
    }
  }
  return verdict;
}

/**
 * Verify attestation evidence. Never throws for bad evidence: the verdict says what failed.
 * Simulated evidence needs `opts.devCa` (the network's `dev-ca.pem`).
 */
export async function verifyEvidence(evidence: Uint8Array, opts: VerifyEvidenceOptions = {}): Promise<EvidenceVerdict> {
  const platform = detectPlatform(evidence);
  if (platform !== "simulated") {
    return {
      ok: false,
      platform,
      verifiedBy: "unsupported",
      error: { kind: "unsupported", message: `${platform} evidence is not verified in the browser build; use \`pith verify\` (pith-attest)` },
    };
  }
  try {
    return await verifySimulated(evidence, opts);
  } catch (err) {
    const kind = err instanceof Reject ? err.kind : "malformed";
    return { ok: false, platform, verifiedBy: "browser", error: { kind, message: (err as Error).message } };
  }
}
