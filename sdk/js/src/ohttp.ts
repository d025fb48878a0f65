/**
 * Oblivious HTTP (RFC 9458) encapsulation of Binary HTTP messages to a program's key, the
 * format of `crates/crypto/src/envelope.rs`: KEM DHKEM(X25519, HKDF-SHA256) (0x0020), KDF
 * HKDF-SHA256 (0x0001), AEAD AES-128-GCM (0x0001) or ChaCha20-Poly1305 (0x0003).
 *
 * HPKE (RFC 9180) is hpke-js (`@hpke/core` with `@hpke/dhkem-x25519`); the response's
 * HKDF and AEAD are `@noble/hashes` and `@noble/ciphers`. Nothing here implements a
 * primitive; this module only lays out the bytes RFC 9458 §4 and §4.4 specify.
 */
import { Aes128Gcm, CipherSuite, type RecipientContext, type SenderContext } from "@hpke/core";
import { DhkemX25519HkdfSha256, HkdfSha256 } from "@hpke/dhkem-x25519";
import { chacha20poly1305 } from "@noble/ciphers/chacha";
import { gcm } from "@noble/ciphers/aes";
import { randomBytes } from "@noble/ciphers/webcrypto";
import { extract, expand } from "@noble/hashes/hkdf";
import { sha256 } from "@noble/hashes/sha2";
import { Reader, concat, u16be, utf8 } from "./bytes.ts";
import { PithError } from "./errors.ts";

export const KEM_X25519_SHA256 = 0x0020;
export const KDF_HKDF_SHA256 = 0x0001;
export const AEAD_AES_128_GCM = 0x0001;
export const AEAD_CHACHA20_POLY1305 = 0x0003;

const REQUEST_LABEL = "message/bhttp request";
const RESPONSE_LABEL = "message/bhttp response";

/** One key configuration (RFC 9458 §3). */
export interface KeyConfig {
  keyId: number;
  kemId: number;
  publicKey: Uint8Array;
  suites: { kdfId: number; aeadId: number }[];
}

/** Parse an `application/ohttp-keys` body: a list of length-prefixed key configurations. */
export function parseKeyConfigs(body: Uint8Array): KeyConfig[] {
  const rd = new Reader(body, "application/ohttp-keys");
  const out: KeyConfig[] = [];
  while (rd.remaining > 0) {
    const one = new Reader(rd.bytes(rd.u16()), "key configuration");
    const keyId = one.u8();
    const kemId = one.u16();
    if (kemId !== KEM_X25519_SHA256) throw new PithError("malformed", `key configuration ${keyId}: KEM 0x${kemId.toString(16)} is not DHKEM(X25519, HKDF-SHA256)`);
    const publicKey = one.bytes(32).slice();
    const suitesBytes = new Reader(one.bytes(one.u16()), "cipher suites");
    const suites = [];
    while (suitesBytes.remaining > 0) suites.push({ kdfId: suitesBytes.u16(), aeadId: suitesBytes.u16() });
    if (suites.length === 0 || one.remaining !== 0) throw new PithError("malformed", `key configuration ${keyId}: bad cipher suite list`);
    out.push({ keyId, kemId, publicKey, suites });
  }
  if (out.length === 0) throw new PithError("malformed", "application/ohttp-keys: empty");
  return out;
}

/** Encode one key configuration as a one-entry `application/ohttp-keys` list (test/server side). */
export function encodeKeyConfigs(configs: KeyConfig[]): Uint8Array {
  return concat(
    ...configs.map((c) => {
      const suites = concat(...c.suites.map((s) => concat(u16be(s.kdfId), u16be(s.aeadId))));
      const one = concat(Uint8Array.of(c.keyId), u16be(c.kemId), c.publicKey, u16be(suites.length), suites);
      return concat(u16be(one.length), one);
    }),
  );
}

function aeadSizes(aeadId: number): { nk: number; nn: number } {
  if (aeadId === AEAD_AES_128_GCM) return { nk: 16, nn: 12 };
  if (aeadId === AEAD_CHACHA20_POLY1305) return { nk: 32, nn: 12 };
  throw new PithError("malformed", `AEAD 0x${aeadId.toString(16)} is not supported`);
}

function suite(aeadId: number): CipherSuite {
  if (aeadId !== AEAD_AES_128_GCM) {
    // ChaCha20-Poly1305 HPKE would need another hpke-js module; every Pith key offers
    // AES-128-GCM first, which is what the Rust client uses too.
    throw new PithError("malformed", `HPKE AEAD 0x${aeadId.toString(16)} is not supported by this client (AES-128-GCM is)`);
  }
  return new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes128Gcm() });
}

function header(keyId: number, aeadId: number): Uint8Array {
  return concat(Uint8Array.of(keyId), u16be(KEM_X25519_SHA256), u16be(KDF_HKDF_SHA256), u16be(aeadId));
}

function info(hdr: Uint8Array): Uint8Array {
  return concat(utf8.encode(REQUEST_LABEL), Uint8Array.of(0), hdr);
}

function aeadFor(aeadId: number, key: Uint8Array, nonce: Uint8Array) {
  return aeadId === AEAD_AES_128_GCM ? gcm(key, nonce) : chacha20poly1305(key, nonce);
}

/** Response keys (RFC 9458 §4.4) from the HPKE exporter secret, `enc` and the response nonce. */
function responseKeys(aeadId: number, secret: Uint8Array, enc: Uint8Array, responseNonce: Uint8Array) {
  const { nk, nn } = aeadSizes(aeadId);
  const prk = extract(sha256, secret, concat(enc, responseNonce));
  return { key: expand(sha256, prk, utf8.encode("key"), nk), nonce: expand(sha256, prk, utf8.encode("nonce"), nn) };
}

async function exportSecret(ctx: SenderContext | RecipientContext, aeadId: number): Promise<Uint8Array> {
  const { nk, nn } = aeadSizes(aeadId);
  return new Uint8Array(await ctx.export(utf8.encode(RESPONSE_LABEL), Math.max(nk, nn)));
}

/** The client's state for one exchange: opens the response. */
export class ClientSession {
  /** @internal */
  constructor(
    private readonly aeadId: number,
    private readonly enc: Uint8Array,
    private readonly secret: Uint8Array,
  ) {}

  /** Open a `message/ohttp-res` body; returns the Binary HTTP response bytes. */
  openResponse(wire: Uint8Array): Uint8Array {
    return openResponse(this.aeadId, this.secret, this.enc, wire);
  }
}

/** Open a `message/ohttp-res` given the exporter secret and `enc` of its request. */
export function openResponse(aeadId: number, secret: Uint8Array, enc: Uint8Array, wire: Uint8Array): Uint8Array {
  const { nk, nn } = aeadSizes(aeadId);
  const n = Math.max(nk, nn);
  if (wire.length < n + 16) throw new PithError("malformed", "oblivious http response: truncated");
  const { key, nonce } = responseKeys(aeadId, secret, enc, wire.subarray(0, n));
  try {
    return aeadFor(aeadId, key, nonce).decrypt(wire.subarray(n));
  } catch (e) {
    throw new PithError("decrypt_failed", "oblivious http response does not open (tampered, or not from this request's context)", { cause: e });
  }
}

/** Options of [`encapsulateRequest`]. */
export interface EncapsulateOptions {
  /**
   * Input keying material for the ephemeral key (HPKE DeriveKeyPair), 32 bytes. Only for
   * reproducible test vectors: a fixed ephemeral key makes every request linkable and
   * must never be used for real traffic.
   */
  dangerFixedEphemeralIkm?: Uint8Array;
}

/**
 * Encapsulate a Binary HTTP request to the newest key of an `application/ohttp-keys` list
 * (the last entry, as the Rust client does). Returns the `message/ohttp-req` bytes and the
 * session that opens the response.
 */
export async function encapsulateRequest(
  ohttpKeys: Uint8Array,
  bhttpRequest: Uint8Array,
  opts: EncapsulateOptions = {},
): Promise<{ wire: Uint8Array; session: ClientSession }> {
  const configs = parseKeyConfigs(ohttpKeys);
  const config = configs[configs.length - 1]!;
  const chosen = config.suites.find((s) => s.kdfId === KDF_HKDF_SHA256 && s.aeadId === AEAD_AES_128_GCM);
  if (!chosen) throw new PithError("malformed", `key configuration ${config.keyId} offers no HKDF-SHA256/AES-128-GCM suite`);
  const s = suite(chosen.aeadId);
  const hdr = header(config.keyId, chosen.aeadId);
  const recipientPublicKey = await s.kem.deserializePublicKey(config.publicKey);
  const params = { recipientPublicKey, info: info(hdr) } as Parameters<CipherSuite["createSenderContext"]>[0];
  if (opts.dangerFixedEphemeralIkm) params.ekm = opts.dangerFixedEphemeralIkm;
  const sender = await s.createSenderContext(params);
  const ct = new Uint8Array(await sender.seal(bhttpRequest));
  const enc = new Uint8Array(sender.enc);
  const secret = await exportSecret(sender, chosen.aeadId);
  return { wire: concat(hdr, enc, ct), session: new ClientSession(chosen.aeadId, enc, secret) };
}

/** What the server side learns from a request (tests and vectors). */
export interface OpenedRequest {
  keyId: number;
  aeadId: number;
  enc: Uint8Array;
  /** The HPKE exporter secret the response is keyed from. */
  secret: Uint8Array;
  bhttp: Uint8Array;
}

/**
 * Server side: open a `message/ohttp-req` with the program key derived from `ikm` (HPKE
 * DeriveKeyPair, as `pith_crypto::envelope::key_config` does). Used by the tests and the
 * cross-language vectors; a client never holds a program key.
 */
export async function openRequest(ikm: Uint8Array, keyId: number, wire: Uint8Array): Promise<OpenedRequest> {
  const rd = new Reader(wire, "oblivious http request");
  const gotKeyId = rd.u8();
  const kemId = rd.u16();
  const kdfId = rd.u16();
  const aeadId = rd.u16();
  if (gotKeyId !== keyId) throw new PithError("decrypt_failed", `request is for key ${gotKeyId}, not ${keyId}`);
  if (kemId !== KEM_X25519_SHA256 || kdfId !== KDF_HKDF_SHA256) throw new PithError("malformed", "unsupported KEM or KDF");
  const s = suite(aeadId);
  const enc = rd.bytes(32).slice();
  const ct = rd.rest();
  const recipientKey = await s.kem.deriveKeyPair(ikm);
  let ctx: RecipientContext;
  let bhttp: Uint8Array;
  try {
    ctx = await s.createRecipientContext({ recipientKey, enc, info: info(header(keyId, aeadId)) });
    bhttp = new Uint8Array(await ctx.open(ct));
  } catch (e) {
    throw new PithError("decrypt_failed", "oblivious http request does not open", { cause: e });
  }
  return { keyId, aeadId, enc, secret: await exportSecret(ctx, aeadId), bhttp };
}

/** Server side: seal a Binary HTTP response on an opened request's context. */
export function sealResponse(opened: OpenedRequest, bhttpResponse: Uint8Array, responseNonce?: Uint8Array): Uint8Array {
  const { nk, nn } = aeadSizes(opened.aeadId);
  const n = responseNonce ?? randomBytes(Math.max(nk, nn));
  if (n.length !== Math.max(nk, nn)) throw new PithError("invalid_argument", "response nonce length");
  const { key, nonce } = responseKeys(opened.aeadId, opened.secret, opened.enc, n);
  return concat(n, aeadFor(opened.aeadId, key, nonce).encrypt(bhttpResponse));
}

/** The X25519 public key HPKE DeriveKeyPair gives for `ikm` (the program's key configuration). */
export async function derivePublicKey(ikm: Uint8Array): Promise<Uint8Array> {
  const s = suite(AEAD_AES_128_GCM);
  const kp = await s.kem.deriveKeyPair(ikm);
  return new Uint8Array(await s.kem.serializePublicKey(kp.publicKey));
}
