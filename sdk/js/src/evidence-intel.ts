/**
 * Intel SGX / TDX (DCAP ECDSA quote v3/v4/v5) verification in the browser or Node, with
 * `@phala/dcap-qvl` (pure JavaScript). A separate entry point (`@pith/sdk/evidence-intel`)
 * so that pages which do not verify Intel evidence do not carry dcap-qvl and its ASN.1 and
 * elliptic-curve libraries.
 *
 * What is checked, in this order:
 * 1. all five collateral parts are present (TCBInfo, QE identity, their TCB Signing chain,
 *    PCK CRL, root CA CRL): otherwise `missing_collateral` (strict, like pith-attest);
 * 2. the quote parses; the root CA CRL is signed by the pinned Intel SGX Root CA and the PCK
 *    CRL by the PCK CA of the quote's certificate chain (WebCrypto), and both are valid at
 *    `now` (thisUpdate ≤ now ≤ nextUpdate). dcap-qvl 0.3.9 reads CRLs only for revoked
 *    serials and checks neither their signature nor their dates, so this module does;
 * 3. dcap-qvl `QuoteVerifier.verify` with the pinned root: PCK chain, TCB Signing chain,
 *    TCBInfo / QE identity signatures and windows, QE report signature and binding, quote
 *    signature, FMSPC / TEE type / QE identity match, TCB level and its convergence with
 *    the QE level; its errors are mapped to pith-attest's error classes.
 *
 * Known differences from pith-attest (docs/adr/0140-typescript-sdk.md): dcap-qvl rejects
 * debug enclaves/TDs, TDs without SEPT_VE_DISABLE and TD 1.5 with an MRSERVICETD
 * (`attributes_rejected`), where pith-attest accepts and reports them; it does not read
 * TCBInfo v2 (`unsupported`); it does not evaluate `tdxModuleIdentities`, so it compares
 * all 16 TEE_TCB_SVN bytes with the platform level and can report a more conservative TCB
 * status (e.g. `OutOfDate` where pith-attest says `UpToDate`).
 */
import { Quote, QuoteVerifier, constants, utils as qvlUtils, type Collateral, type TDReport10 } from "@phala/dcap-qvl";
// dcap-qvl's ASN.1 reader wants Buffer inputs: the `buffer` package in the browser, node:buffer in Node.
import { Buffer } from "buffer";
import { equalBytes, toHex, type Hex } from "./bytes.ts";
import { DerError, parseCertificate, parseCrl, type Certificate } from "./der.ts";
import { detectPlatform, measurementHash, type EvidenceVerdict } from "./evidence.ts";

/** Collateral in the shape dcap-qvl takes (and a PCCS-backed `getCollateral` returns). */
export type IntelCollateral = Collateral;

export interface VerifyIntelOptions {
  /** The collateral for this quote. */
  collateral?: IntelCollateral;
  /** Or a URL answering the collateral as JSON in the same shape (e.g. the gateway's). */
  collateralUrl?: string;
  /** The time to appraise at (default: now). */
  now?: Date;
  /** When given, `report_data` must equal it (64 bytes, or a prefix followed by zeros). */
  expectedReportData?: Uint8Array;
  /** The Intel SGX Root CA (DER) to pin; default: the one dcap-qvl pins (Intel's production root). */
  rootCaDer?: Uint8Array;
  /** `fetch` to use for `collateralUrl` (default: the global one). */
  fetch?: typeof fetch;
}

/** The Intel collateral files as Intel PCS serves them (the corpus layout of testdata/attestation). */
export interface IntelCollateralFiles {
  /** PCS `tcb` response text: `{"tcbInfo":{...},"signature":"<hex>"}`. */
  tcbInfo: string;
  /** PCS `qe/identity` response text: `{"enclaveIdentity":{...},"signature":"<hex>"}`. */
  qeIdentity: string;
  /** TCB Signing certificate then root (PEM). */
  tcbSigningChain: string;
  /** PCK CRL (DER). */
  pckCrl: Uint8Array;
  /** Root CA CRL (DER). */
  rootCaCrl: Uint8Array;
  /** PCK CRL issuer chain (PEM), when known. */
  pckCrlIssuerChain?: string;
}

/**
 * The signed JSON text of a PCS response: the value of `key`, byte for byte as it appears
 * (Intel signs those exact bytes, so it is cut out, never re-serialized), and the signature.
 */
function signedPart(text: string, key: string): { body: string; signature: string } {
  const m = text.match(new RegExp(`^\\s*\\{\\s*"${key}"\\s*:\\s*(\\{[\\s\\S]*\\})\\s*,\\s*"signature"\\s*:\\s*"([0-9a-fA-F]+)"\\s*\\}\\s*$`));
  if (!m) throw new Error(`not a PCS response with "${key}" then "signature"`);
  const body = m[1]!;
  JSON.parse(body); // must be one JSON object
  return { body, signature: m[2]! };
}

/** Convert PCS-shaped collateral files into dcap-qvl's collateral shape. */
export function intelCollateralFromFiles(f: IntelCollateralFiles): IntelCollateral {
  const tcb = signedPart(f.tcbInfo, "tcbInfo");
  const qe = signedPart(f.qeIdentity, "enclaveIdentity");
  return {
    pck_crl_issuer_chain: f.pckCrlIssuerChain ?? "",
    root_ca_crl: Array.from(f.rootCaCrl),
    pck_crl: Array.from(f.pckCrl),
    tcb_info_issuer_chain: f.tcbSigningChain,
    tcb_info: tcb.body,
    tcb_info_signature: tcb.signature,
    qe_identity_issuer_chain: f.tcbSigningChain,
    qe_identity: qe.body,
    qe_identity_signature: qe.signature,
  };
}

class Reject extends Error {
  constructor(
    readonly kind: string,
    message: string,
  ) {
    super(message);
  }
}

/** dcap-qvl's error messages (0.3.9) → pith-attest error classes. First match wins. */
const CLASSES: [RegExp, string][] = [
  [/^Failed to decode (TcbInfo|QeIdentity)/, "malformed"],
  [/^Failed to decode quote|^Unsupported DCAP|must have version|^Failed to extract PCK/, "malformed"],
  [/issue date is in the future/, "not_yet_valid"],
  [/^(TCBInfo|QE Identity) expired/, "collateral_expired"],
  [/^Certificate is expired or not yet valid/, "cert_expired"],
  [/^Certificate is revoked/, "revoked"],
  [/^CaUsedAsEndEntity|^Failed to verify certificate chain|chain is too short/, "bad_chain"],
  [/^Signature is invalid|^QE report hash mismatch|^ISV enclave report signature is invalid/, "bad_signature"],
  [/^Unsupported QE Identity|^QE (MRSIGNER|ISVPRODID|MISCSELECT|ATTRIBUTES) mismatch|^Fmspc mismatch|non-(TDX|SGX) TCB info/, "wrong_collateral"],
  [/^No matching TCB level|^TCB status is invalid|^QE ISVSVN .* below minimum|^No (SGX|TDX) components/, "no_matching_tcb_level"],
  [/^Debug mode is enabled|^SEPT_VE_DISABLE is not enabled|^Reserved bits in TD attributes|^Invalid mr service td/, "attributes_rejected"],
];

function classify(message: string): string {
  for (const [re, kind] of CLASSES) if (re.test(message)) return kind;
  return "unclassified";
}

function bytesOf(v: number[] | string | undefined, what: string): Uint8Array {
  if (v === undefined) return new Uint8Array();
  if (typeof v !== "string") return Uint8Array.from(v);
  if (!/^([0-9a-fA-F]{2})*$/.test(v)) throw new Reject("malformed", `${what} is not hex`);
  const out = new Uint8Array(v.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(v.slice(2 * i, 2 * i + 2), 16);
  return out;
}

async function verifyWith(key: Certificate, sigRaw: Uint8Array, data: Uint8Array): Promise<boolean> {
  const k = await crypto.subtle.importKey("spki", new Uint8Array(key.spki), { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
  return crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, k, new Uint8Array(sigRaw), new Uint8Array(data));
}

/** A CRL must be issued and signed by `issuer` and be current at `now`. */
async function checkCrl(der: Uint8Array, issuer: Certificate, what: string, now: Date): Promise<void> {
  let crl;
  try {
    crl = parseCrl(der);
  } catch (e) {
    throw new Reject("malformed", `${what}: ${e instanceof DerError ? e.message : String(e)}`);
  }
  if (!equalBytes(crl.issuer, issuer.subject)) throw new Reject("wrong_collateral", `${what} is not issued by the expected CA`);
  if (!crl.signedWithEcdsaSha256 || !(await verifyWith(issuer, crl.signatureRaw, crl.tbs))) {
    throw new Reject("bad_signature", `${what} signature does not verify with its issuer's key`);
  }
  if (now < crl.thisUpdate) throw new Reject("not_yet_valid", `${what} is valid from ${crl.thisUpdate.toISOString()}`);
  if (now > crl.nextUpdate) throw new Reject("collateral_expired", `${what} expired at ${crl.nextUpdate.toISOString()} (nextUpdate)`);
}

function cert(der: Uint8Array, what: string): Certificate {
  try {
    return parseCertificate(der);
  } catch (e) {
    throw new Reject("bad_chain", `${what}: ${e instanceof DerError ? e.message : String(e)}`);
  }
}

async function getCollateral(opts: VerifyIntelOptions): Promise<IntelCollateral> {
  if (opts.collateral) return opts.collateral;
  if (!opts.collateralUrl) throw new Reject("missing_collateral", "no collateral given (collateral or collateralUrl)");
  const f = opts.fetch ?? fetch;
  let res: Response;
  try {
    res = await f(opts.collateralUrl);
  } catch (e) {
    throw new Reject("missing_collateral", `collateral fetch failed: ${(e as Error).message}`);
  }
  if (!res.ok) throw new Reject("missing_collateral", `collateral fetch: HTTP ${res.status}`);
  try {
    return (await res.json()) as IntelCollateral;
  } catch (e) {
    throw new Reject("malformed", `collateral is not JSON: ${(e as Error).message}`);
  }
}

const h = (b: Uint8Array): Hex => toHex(b);

async function verifyIntel(evidence: Uint8Array, platform: string, opts: VerifyIntelOptions): Promise<EvidenceVerdict> {
  const now = opts.now ?? new Date();
  const col = await getCollateral(opts);
  for (const k of ["tcb_info", "tcb_info_signature", "tcb_info_issuer_chain", "qe_identity", "qe_identity_signature", "qe_identity_issuer_chain", "pck_crl", "root_ca_crl"] as const) {
    const v = col[k];
    if (v === undefined || v === null || v.length === 0) throw new Reject("missing_collateral", `collateral has no ${k}`);
  }
  let tcbVersion: unknown;
  try {
    tcbVersion = (JSON.parse(col.tcb_info) as { version?: unknown }).version;
  } catch (e) {
    throw new Reject("malformed", `tcb_info is not JSON: ${(e as Error).message}`);
  }
  if (tcbVersion !== 3) throw new Reject("unsupported", `TCBInfo version ${String(tcbVersion)}: dcap-qvl reads version 3 only; use \`pith verify\``);

  let quote: Quote;
  try {
    quote = Quote.parse(Buffer.from(evidence));
  } catch (e) {
    throw new Reject("malformed", `quote: ${(e as Error).message}`);
  }
  const rootDer = Buffer.from(opts.rootCaDer ?? constants.TRUSTED_ROOT_CA_DER);
  const root = cert(rootDer, "Intel SGX Root CA");
  const cd = quote.authData.intoV3().certificationData;
  if (cd.certType !== constants.PCK_CERT_CHAIN) throw new Reject("unsupported", `certification data type ${cd.certType} (only 5, an embedded PCK chain)`);
  const chain = qvlUtils.extractCerts(Buffer.from(cd.body));
  if (chain.length < 2) throw new Reject("bad_chain", "the quote's PCK chain has no PCK CA");
  const pckCa = cert(new Uint8Array(chain[1]!), "PCK CA certificate");
  await checkCrl(bytesOf(col.root_ca_crl, "root_ca_crl"), root, "root CA CRL", now);
  await checkCrl(bytesOf(col.pck_crl, "pck_crl"), pckCa, "PCK CRL", now);

  let status: string;
  try {
    const v = QuoteVerifier.newWithRootCa(rootDer).verify(Buffer.from(evidence), col, Math.floor(now.getTime() / 1000));
    status = v.status;
  } catch (e) {
    const msg = (e as Error).message + ((e as Error).cause ? `: ${((e as Error).cause as Error).message}` : "");
    throw new Reject(classify((e as Error).message), msg);
  }

  const measurements: Record<string, Hex> = {};
  let fields: [string, Uint8Array][];
  let reportData: Uint8Array;
  let debug: boolean;
  const sgx = quote.report.asSgx();
  if (sgx) {
    const prod = Uint8Array.of(sgx.isvProdId & 0xff, sgx.isvProdId >> 8);
    fields = [["mr_enclave", sgx.mrEnclave], ["mr_signer", sgx.mrSigner], ["isv_prod_id", prod]];
    reportData = sgx.reportData;
    debug = (sgx.attributes[0]! & 0x02) !== 0;
  } else {
    const td15 = quote.report.asTd15();
    const td: TDReport10 | null = td15 ? td15.base : quote.report.asTd10();
    if (!td) throw new Reject("malformed", "quote body is neither an SGX nor a TD report");
    fields = [
      ["mr_td", td.mrTd],
      ["mr_config_id", td.mrConfigId],
      ["mr_owner", td.mrOwner],
      ["mr_owner_config", td.mrOwnerConfig],
      ["rtmr0", td.rtMr0],
      ["rtmr1", td.rtMr1],
      ["rtmr2", td.rtMr2],
      ["rtmr3", td.rtMr3],
    ];
    measurements.mr_seam = h(td.mrSeam);
    measurements.tee_tcb_svn = h(td.teeTcbSvn);
    reportData = td.reportData;
    debug = (td.tdAttributes[0]! & 0x01) !== 0;
  }
  for (const [k, v] of fields) measurements[k] = h(v);
  const verdict: EvidenceVerdict = {
    ok: true,
    platform,
    verifiedBy: "browser",
    measurementHash: measurementHash(platform, fields),
    reportData: h(reportData),
    tcbStatus: status,
    debug,
    measurements,
  };
  if (opts.expectedReportData) {
    if (opts.expectedReportData.length > 64) throw new Reject("report_data_mismatch", "expected report_data is longer than 64 bytes");
    const want = new Uint8Array(64);
    want.set(opts.expectedReportData);
    if (!equalBytes(want, reportData)) {
      return { ...verdict, ok: false, error: { kind: "report_data_mismatch", message: `report_data ${h(reportData)} is not the expected ${h(want)}` } };
    }
  }
  return verdict;
}

/**
 * Verify an Intel SGX or TDX quote with its collateral. Never throws for bad evidence or
 * collateral: the verdict says what failed (`error.kind`: `missing_collateral`, `malformed`,
 * `unsupported`, `bad_signature`, `bad_chain`, `wrong_collateral`, `revoked`,
 * `no_matching_tcb_level`, `collateral_expired`, `cert_expired` (a certificate outside its
 * validity, either side), `not_yet_valid`, `attributes_rejected`, `report_data_mismatch`).
 */
export async function verifyIntelEvidence(evidence: Uint8Array, opts: VerifyIntelOptions = {}): Promise<EvidenceVerdict> {
  const platform = detectPlatform(evidence);
  if (platform !== "sgx" && platform !== "tdx") {
    return { ok: false, platform, verifiedBy: "unsupported", error: { kind: "unsupported", message: `${platform} evidence is not an Intel DCAP quote` } };
  }
  try {
    return await verifyIntel(evidence, platform, opts);
  } catch (err) {
    const kind = err instanceof Reject ? err.kind : "malformed";
    return { ok: false, platform, verifiedBy: "browser", error: { kind, message: (err as Error).message } };
  }
}
