/**
 * A minimal DER reader for the X.509 certificates of the simulated platform (the AK
 * certificate in the evidence and the development CA): it only splits TLVs and finds the
 * few fields the verifier needs. Signatures are checked with WebCrypto; nothing here is
 * cryptography. Every read is bounds-checked and throws `DerError`.
 */

export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DerError";
  }
}

export interface Tlv {
  tag: number;
  /** The value bytes. */
  value: Uint8Array;
  /** The whole encoding (tag, length, value). */
  raw: Uint8Array;
}

/** Read one TLV at `pos` of `buf`. */
export function readTlv(buf: Uint8Array, pos = 0): Tlv & { end: number } {
  if (pos + 2 > buf.length) throw new DerError("truncated TLV");
  const tag = buf[pos]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError("multi-byte tags are not used here");
  let len = buf[pos + 1]!;
  let p = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 3) throw new DerError("bad length");
    if (p + n > buf.length) throw new DerError("truncated length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p + i]!;
    if (len < 0x80 || (n > 1 && buf[p] === 0)) throw new DerError("length not in shortest form");
    p += n;
  }
  if (p + len > buf.length) throw new DerError("truncated value");
  return { tag, value: buf.subarray(p, p + len), raw: buf.subarray(pos, p + len), end: p + len };
}

/** Exactly one TLV spanning all of `buf`. */
export function readOne(buf: Uint8Array, expectTag?: number): Tlv {
  const t = readTlv(buf, 0);
  if (t.end !== buf.length) throw new DerError("trailing bytes after DER item");
  if (expectTag !== undefined && t.tag !== expectTag) throw new DerError(`expected tag 0x${expectTag.toString(16)}, got 0x${t.tag.toString(16)}`);
  return t;
}

/** The children of a constructed value. */
export function children(value: Uint8Array): Tlv[] {
  const out: Tlv[] = [];
  let p = 0;
  while (p < value.length) {
    const t = readTlv(value, p);
    out.push(t);
    p = t.end;
  }
  return out;
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  OID: 0x06,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  CTX0: 0xa0,
  CTX3: 0xa3,
} as const;

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

const OID_EC_PUBLIC_KEY = Uint8Array.of(0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01);
const OID_P256 = Uint8Array.of(0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07);
const OID_ECDSA_SHA256 = Uint8Array.of(0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02);
const OID_BASIC_CONSTRAINTS = Uint8Array.of(0x55, 0x1d, 0x13);

/** The parts of an X.509 certificate the simulated-platform verifier uses. */
export interface Certificate {
  raw: Uint8Array;
  tbs: Uint8Array;
  issuer: Uint8Array;
  subject: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  /** DER SubjectPublicKeyInfo; checked to be id-ecPublicKey on P-256. */
  spki: Uint8Array;
  /** basicConstraints cA. */
  isCa: boolean;
  /** Outer signature algorithm is ecdsa-with-SHA256. */
  signedWithEcdsaSha256: boolean;
  /** The ECDSA signature as fixed-size r ‖ s (64 bytes), for WebCrypto. */
  signatureRaw: Uint8Array;
}

function parseTime(t: Tlv): Date {
  const s = new TextDecoder().decode(t.value);
  let m: RegExpMatchArray | null;
  let year: number;
  if (t.tag === TAG.UTC_TIME && (m = s.match(/^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/))) {
    const yy = Number(m[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if (t.tag === TAG.GENERALIZED_TIME && (m = s.match(/^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/))) {
    year = Number(m[1]);
  } else throw new DerError(`bad time ${JSON.stringify(s)}`);
  return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}

function integerTo32(v: Uint8Array): Uint8Array {
  let b = v;
  while (b.length > 32 && b[0] === 0) b = b.subarray(1);
  if (b.length > 32 || b.length === 0) throw new DerError("ECDSA integer out of range");
  const out = new Uint8Array(32);
  out.set(b, 32 - b.length);
  return out;
}

/** An ECDSA-Sig-Value in a BIT STRING as fixed-size r ‖ s (64 bytes), for WebCrypto. */
function ecdsaRaw(sigT: Tlv): Uint8Array {
  if (sigT.value[0] !== 0) throw new DerError("signature BIT STRING has unused bits");
  const ecdsa = readOne(sigT.value.subarray(1), TAG.SEQUENCE);
  const [r, s, ...extra] = children(ecdsa.value);
  if (!r || !s || extra.length > 0 || r.tag !== TAG.INTEGER || s.tag !== TAG.INTEGER) throw new DerError("bad ECDSA signature");
  const signatureRaw = new Uint8Array(64);
  signatureRaw.set(integerTo32(r.value), 0);
  signatureRaw.set(integerTo32(s.value), 32);
  return signatureRaw;
}

/** The parts of an X.509 CRL (RFC 5280 CertificateList) a verifier needs to check it. */
export interface Crl {
  tbs: Uint8Array;
  issuer: Uint8Array;
  thisUpdate: Date;
  nextUpdate: Date;
  signedWithEcdsaSha256: boolean;
  signatureRaw: Uint8Array;
}

/** Parse a DER CRL signed with ECDSA (Intel's PCK and root CRLs); `nextUpdate` is required. */
export function parseCrl(der: Uint8Array): Crl {
  const crl = readOne(der, TAG.SEQUENCE);
  const [tbsT, algT, sigT, ...more] = children(crl.value);
  if (!tbsT || !algT || !sigT || more.length > 0 || tbsT.tag !== TAG.SEQUENCE || algT.tag !== TAG.SEQUENCE || sigT.tag !== TAG.BIT_STRING) {
    throw new DerError("not a CRL");
  }
  const tbs = children(tbsT.value);
  let i = 0;
  if (tbs[i]?.tag === TAG.INTEGER) i++; // version v2
  const sigAlg = tbs[i++];
  const issuer = tbs[i++];
  const thisUpdate = tbs[i++];
  const nextUpdate = tbs[i++];
  const isTime = (t: Tlv | undefined): t is Tlv => t !== undefined && (t.tag === TAG.UTC_TIME || t.tag === TAG.GENERALIZED_TIME);
  if (!sigAlg || !issuer || issuer.tag !== TAG.SEQUENCE || !isTime(thisUpdate) || !isTime(nextUpdate)) throw new DerError("truncated tbsCertList (nextUpdate is required)");
  const outerAlg = children(algT.value)[0];
  return {
    tbs: tbsT.raw,
    issuer: issuer.raw,
    thisUpdate: parseTime(thisUpdate),
    nextUpdate: parseTime(nextUpdate),
    signedWithEcdsaSha256: outerAlg !== undefined && equal(outerAlg.value, OID_ECDSA_SHA256),
    signatureRaw: ecdsaRaw(sigT),
  };
}

/** Parse a DER X.509 certificate with a P-256 key. */
export function parseCertificate(der: Uint8Array): Certificate {
  const cert = readOne(der, TAG.SEQUENCE);
  const [tbsT, algT, sigT, ...more] = children(cert.value);
  if (!tbsT || !algT || !sigT || more.length > 0 || tbsT.tag !== TAG.SEQUENCE || algT.tag !== TAG.SEQUENCE || sigT.tag !== TAG.BIT_STRING) {
    throw new DerError("not a certificate");
  }
  const tbs = children(tbsT.value);
  let i = 0;
  if (tbs[i]?.tag === TAG.CTX0) i++; // version
  const serial = tbs[i++];
  const sigAlg = tbs[i++];
  const issuer = tbs[i++];
  const validity = tbs[i++];
  const subject = tbs[i++];
  const spki = tbs[i++];
  if (!serial || serial.tag !== TAG.INTEGER || !sigAlg || !issuer || issuer.tag !== TAG.SEQUENCE || !validity || !subject || !spki) {
    throw new DerError("truncated tbsCertificate");
  }
  const [nb, na] = children(validity.value);
  if (!nb || !na) throw new DerError("bad validity");
  // SubjectPublicKeyInfo: id-ecPublicKey with the P-256 curve.
  const [spkiAlg] = children(spki.value);
  const algParts = spkiAlg ? children(spkiAlg.value) : [];
  if (!algParts[0] || !equal(algParts[0].value, OID_EC_PUBLIC_KEY) || !algParts[1] || !equal(algParts[1].value, OID_P256)) {
    throw new DerError("public key is not P-256 id-ecPublicKey");
  }
  let isCa = false;
  for (const t of tbs.slice(i)) {
    if (t.tag !== TAG.CTX3) continue;
    const [exts] = children(t.value);
    for (const ext of exts ? children(exts.value) : []) {
      const parts = children(ext.value);
      if (!parts[0] || !equal(parts[0].value, OID_BASIC_CONSTRAINTS)) continue;
      const octets = parts[parts.length - 1]!;
      const bc = readOne(octets.value, TAG.SEQUENCE);
      const first = children(bc.value)[0];
      isCa = first?.tag === TAG.BOOLEAN && first.value[0] !== 0;
    }
  }
  const outerAlg = children(algT.value)[0];
  const signatureRaw = ecdsaRaw(sigT);
  return {
    raw: cert.raw,
    tbs: tbsT.raw,
    issuer: issuer.raw,
    subject: subject.raw,
    notBefore: parseTime(nb),
    notAfter: parseTime(na),
    spki: spki.raw,
    isCa,
    signedWithEcdsaSha256: outerAlg !== undefined && equal(outerAlg.value, OID_ECDSA_SHA256),
    signatureRaw,
  };
}

/** DER bytes of a PEM `CERTIFICATE` block, or `der` itself when it is not PEM text. */
export function pemOrDer(input: Uint8Array): Uint8Array {
  const text = new TextDecoder().decode(input);
  const m = text.match(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/);
  if (!m) return input;
  const bin = atob(m[1]!.replace(/\s+/g, ""));
  const out = new Uint8Array(bin.length);
  for (let k = 0; k < bin.length; k++) out[k] = bin.charCodeAt(k);
  return out;
}
