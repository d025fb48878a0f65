// Browser-side verification of `simulated` evidence (docs/protocol.md, "Simulated platform"),
// in the order the protocol gives: parse, AK certificate and evidence signature, mr_td
// derivation, chain to the development CA, validity times. Signatures and hashes are
// WebCrypto's (ECDSA P-256 / SHA-256, SHA-384); certificates are decoded with
// @peculiar/asn1-x509. The result classes are pith-attest's error classes.

import { AsnConvert } from "@peculiar/asn1-schema";
import { Certificate, BasicConstraints, id_ce_basicConstraints } from "@peculiar/asn1-x509";
import { ECDSASigValue } from "@peculiar/asn1-ecc";

export type ErrorClass = "malformed" | "bad_signature" | "bad_chain" | "cert_expired" | "not_yet_valid";

export class EvidenceError extends Error {
  constructor(
    readonly kind: ErrorClass,
    message: string,
  ) {
    super(message);
  }
}

export interface SimulatedClaims {
  debug: boolean;
  timestamp: number;
  measurements: Record<string, Uint8Array>;
  reportData: Uint8Array;
  measurementHash: Uint8Array;
}

const MAGIC = "PITHSIM1";
const EVIDENCE_TAG = "pith/simulated-evidence/v1";
const MRTD_TAG = "pith/simulated-mrtd/v1";
const MEASUREMENT_TAG = "pith/measurement/v1/simulated";
const OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1";
const OID_P256 = "1.2.840.10045.3.1.7";
const OID_ECDSA_SHA256 = "1.2.840.10045.4.3.2";
const MR_FIELDS = ["mr_td", "mr_config_id", "mr_owner", "rtmr0", "rtmr1", "rtmr2", "rtmr3", "binary_sha384"] as const;
/// The measurement-hash fields of the simulated platform ("as tdx"; it has no mr_owner_config).
const HASH_FIELDS = ["mr_td", "mr_config_id", "mr_owner", "rtmr0", "rtmr1", "rtmr2", "rtmr3"] as const;

const ascii = (s: string) => new TextEncoder().encode(s);

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

async function digest(alg: "SHA-256" | "SHA-384", data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest(alg, data as BufferSource));
}

/// The byte range of the first element inside a DER SEQUENCE (the TBSCertificate of a
/// certificate), so that its signature is checked over the bytes as signed, not re-encoded.
function firstChild(der: Uint8Array): Uint8Array {
  const header = (at: number): [number, number] => {
    if (at + 2 > der.length) throw new EvidenceError("malformed", "certificate: truncated DER");
    const first = der[at + 1]!;
    if (first < 0x80) return [2, first];
    const n = first & 0x7f;
    if (n === 0 || n > 3 || at + 2 + n > der.length) throw new EvidenceError("malformed", "certificate: bad DER length");
    let len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[at + 2 + i]!;
    return [2 + n, len];
  };
  if (der[0] !== 0x30) throw new EvidenceError("malformed", "certificate: not a SEQUENCE");
  const [outerHead] = header(0);
  const [head, len] = header(outerHead);
  const end = outerHead + head + len;
  if (end > der.length) throw new EvidenceError("malformed", "certificate: truncated TBSCertificate");
  return der.subarray(outerHead, end);
}

interface ParsedCert {
  cert: Certificate;
  tbs: Uint8Array;
  spki: Uint8Array;
  isCa: boolean;
}

function parseCert(der: Uint8Array, what: string): ParsedCert {
  let cert: Certificate;
  try {
    cert = AsnConvert.parse(der, Certificate);
  } catch (e) {
    throw new EvidenceError("malformed", `${what}: not a DER X.509 certificate (${(e as Error).message})`);
  }
  // Exactly one item: re-encoding must give back every byte.
  if (AsnConvert.serialize(cert).byteLength !== der.length) {
    throw new EvidenceError("malformed", `${what}: trailing bytes after the certificate`);
  }
  const spkiInfo = cert.tbsCertificate.subjectPublicKeyInfo;
  if (spkiInfo.algorithm.algorithm !== OID_EC_PUBLIC_KEY) {
    throw new EvidenceError("malformed", `${what}: key is not id-ecPublicKey`);
  }
  const params = spkiInfo.algorithm.parameters;
  if (!params || !equal(new Uint8Array(params), oidDer(OID_P256))) {
    throw new EvidenceError("malformed", `${what}: key is not on P-256`);
  }
  let isCa = false;
  for (const ext of cert.tbsCertificate.extensions ?? []) {
    if (ext.extnID === id_ce_basicConstraints) {
      isCa = AsnConvert.parse(ext.extnValue.buffer, BasicConstraints).cA;
    }
  }
  return { cert, tbs: firstChild(der), spki: new Uint8Array(AsnConvert.serialize(spkiInfo)), isCa };
}

/// DER encoding of an OBJECT IDENTIFIER (to compare the curve parameter).
function oidDer(oid: string): Uint8Array {
  const parts = oid.split(".").map(Number);
  const body: number[] = [parts[0]! * 40 + parts[1]!];
  for (const p of parts.slice(2)) {
    const stack = [p & 0x7f];
    let v = Math.floor(p / 128);
    while (v > 0) {
      stack.unshift((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    body.push(...stack);
  }
  return new Uint8Array([0x06, body.length, ...body]);
}

async function importP256(spki: Uint8Array, what: string, kind: ErrorClass): Promise<CryptoKey> {
  try {
    return await crypto.subtle.importKey("spki", spki as BufferSource, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
  } catch (e) {
    throw new EvidenceError(kind, `${what}: not a valid P-256 public key (${(e as Error).message})`);
  }
}

async function verifyP256(key: CryptoKey, rs: Uint8Array, data: Uint8Array): Promise<boolean> {
  return crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, rs as BufferSource, data as BufferSource);
}

/// A DER ECDSA-Sig-Value as fixed-size r ‖ s (what WebCrypto takes).
function derSigToRs(der: Uint8Array): Uint8Array {
  let sig: ECDSASigValue;
  try {
    sig = AsnConvert.parse(der, ECDSASigValue);
  } catch {
    throw new EvidenceError("bad_chain", "AK certificate signature is not an ECDSA-Sig-Value");
  }
  const fixed = (v: ArrayBuffer) => {
    let b = new Uint8Array(v);
    while (b.length > 32 && b[0] === 0) b = b.subarray(1);
    if (b.length > 32) throw new EvidenceError("bad_chain", "AK certificate signature integer too long");
    const out = new Uint8Array(32);
    out.set(b, 32 - b.length);
    return out;
  };
  return concat(fixed(sig.r), fixed(sig.s));
}

/// PEM (one CERTIFICATE block) or DER → DER.
export function certDer(input: Uint8Array | string): Uint8Array {
  if (typeof input !== "string") return input;
  const m = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/.exec(input);
  if (!m) throw new EvidenceError("bad_chain", "development CA is not a PEM certificate");
  const bin = atob(m[1]!.replace(/\s+/g, ""));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/// `pith_attest::measurement_hash` of simulated evidence (docs/protocol.md, "Measurement hash").
export async function measurementHash(measurements: Record<string, Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [ascii(MEASUREMENT_TAG)];
  for (const name of HASH_FIELDS) {
    const value = measurements[name];
    if (!value) continue;
    const len = new Uint8Array(4);
    new DataView(len.buffer).setUint32(0, value.length);
    parts.push(new Uint8Array([name.length]), ascii(name), len, value);
  }
  return digest("SHA-256", concat(...parts));
}

/// Verify simulated evidence against the development CA at `now`.
export async function verifySimulated(evidence: Uint8Array, devCa: Uint8Array | string, now: Date): Promise<SimulatedClaims> {
  // 1. Parse.
  if (evidence.length < 470 + 1 + 64) throw new EvidenceError("malformed", `evidence is ${evidence.length} bytes, shorter than any valid one`);
  if (new TextDecoder().decode(evidence.subarray(0, 8)) !== MAGIC) throw new EvidenceError("malformed", "no PITHSIM1 magic");
  const view = new DataView(evidence.buffer, evidence.byteOffset, evidence.byteLength);
  if (view.getUint16(8) !== 1) throw new EvidenceError("malformed", `version ${view.getUint16(8)}, not 1`);
  const flags = view.getUint16(10);
  if (flags & 0xfffe) throw new EvidenceError("malformed", "reserved flag bits set");
  const timestamp = Number(view.getBigInt64(12));
  const measurements: Record<string, Uint8Array> = {};
  MR_FIELDS.forEach((name, i) => {
    measurements[name] = evidence.slice(20 + 48 * i, 68 + 48 * i);
  });
  const reportData = evidence.slice(404, 468);
  const n = view.getUint16(468);
  if (n < 1 || n > 4096) throw new EvidenceError("malformed", `AK certificate length ${n} outside 1..=4096`);
  if (evidence.length !== 470 + n + 64) throw new EvidenceError("malformed", `evidence is ${evidence.length} bytes, expected ${470 + n + 64}`);
  const signed = evidence.subarray(0, 470 + n);
  const akDer = evidence.subarray(470, 470 + n);
  const signature = evidence.subarray(470 + n);

  // 2. AK certificate, evidence signature.
  const ak = parseCert(akDer, "AK certificate");
  const akKey = await importP256(ak.spki, "AK certificate", "malformed");
  if (!(await verifyP256(akKey, signature, concat(ascii(EVIDENCE_TAG), signed)))) {
    throw new EvidenceError("bad_signature", "the evidence signature does not verify with the AK certificate's key");
  }

  // 3. mr_td derivation.
  const mrTd = (await digest("SHA-384", concat(ascii(MRTD_TAG), measurements.binary_sha384!, measurements.mr_config_id!)));
  if (!equal(mrTd, measurements.mr_td!)) throw new EvidenceError("malformed", "mr_td is not derived from binary_sha384 and mr_config_id");

  // 4. Chain to the development CA (from the verifier, never from the evidence).
  let ca: ParsedCert;
  try {
    ca = parseCert(certDer(devCa), "development CA");
  } catch (e) {
    throw new EvidenceError("bad_chain", (e as Error).message);
  }
  if (!ca.isCa) throw new EvidenceError("bad_chain", "development CA certificate is not a CA (basicConstraints)");
  if (ak.isCa) throw new EvidenceError("bad_chain", "AK certificate is a CA");
  const issuer = new Uint8Array(AsnConvert.serialize(ak.cert.tbsCertificate.issuer));
  const caSubject = new Uint8Array(AsnConvert.serialize(ca.cert.tbsCertificate.subject));
  if (!equal(issuer, caSubject)) throw new EvidenceError("bad_chain", "AK certificate issuer is not the development CA");
  if (ak.cert.signatureAlgorithm.algorithm !== OID_ECDSA_SHA256) throw new EvidenceError("bad_chain", "AK certificate is not signed with ecdsa-with-SHA256");
  const caKey = await importP256(ca.spki, "development CA", "bad_chain");
  if (!(await verifyP256(caKey, derSigToRs(new Uint8Array(ak.cert.signatureValue)), ak.tbs))) {
    throw new EvidenceError("bad_chain", "AK certificate is not signed by the development CA");
  }

  // 5. Times.
  for (const [what, c] of [["AK certificate", ak], ["development CA", ca]] as const) {
    const v = c.cert.tbsCertificate.validity;
    if (now.getTime() < v.notBefore.getTime().getTime()) throw new EvidenceError("not_yet_valid", `${what} not valid before ${v.notBefore.getTime().toISOString()}`);
    if (now.getTime() > v.notAfter.getTime().getTime()) throw new EvidenceError("cert_expired", `${what} expired at ${v.notAfter.getTime().toISOString()}`);
  }
  if (now.getTime() / 1000 < timestamp) throw new EvidenceError("not_yet_valid", "evidence timestamp is in the future");

  return { debug: (flags & 1) === 1, timestamp, measurements, reportData, measurementHash: await measurementHash(measurements) };
}
