/**
 * Binary HTTP (RFC 9292), known-length form: the plaintext inside Pith's Oblivious HTTP
 * envelopes. Requests carry scheme `https`, authority `pith` and the two reserved fields
 * `pith-nonce` (hex, 16..=32 bytes) and `pith-expiry` (unix seconds); see docs/protocol.md
 * "Requests and responses: Oblivious HTTP".
 *
 * This is framing, not cryptography; it is checked byte for byte against the Rust encoder by
 * the cross-language vectors in testdata/vectors/.
 */
import { Reader, concat, decodeUtf8, fromHex, toHex, utf8, varint } from "./bytes.ts";
import { PithError } from "./errors.ts";

export const NONCE_HEADER = "pith-nonce";
export const EXPIRY_HEADER = "pith-expiry";

/** A plaintext request to a program. */
export interface PlainRequest {
  method: string;
  /** Path and query, starting with `/`. */
  path: string;
  /** Header fields in order; names are sent lower-case. Must not contain `pith-*` envelope fields. */
  headers: [string, string][];
  body: Uint8Array;
  /** 16..=32 random bytes. */
  nonce: Uint8Array;
  /** Unix seconds. */
  expiry: number;
}

/** A plaintext response from a program. */
export interface PlainResponse {
  status: number;
  /** Header fields in order, names lower-case. */
  headers: [string, string][];
  body: Uint8Array;
}

function lenPrefixed(b: Uint8Array): Uint8Array {
  return concat(varint(b.length), b);
}

function fieldSection(fields: [string, string][]): Uint8Array {
  const parts = fields.map(([k, v]) => concat(lenPrefixed(utf8.encode(k)), lenPrefixed(utf8.encode(v))));
  return lenPrefixed(concat(...parts));
}

/** Known-length Binary HTTP encoding of `r`, with the envelope fields appended. */
export function encodeRequest(r: PlainRequest): Uint8Array {
  if (r.nonce.length < 16 || r.nonce.length > 32) throw new PithError("invalid_argument", "nonce must be 16..=32 bytes");
  if (!Number.isSafeInteger(r.expiry) || r.expiry < 0) throw new PithError("invalid_argument", "expiry must be unix seconds");
  const headers: [string, string][] = [];
  for (const [k, v] of r.headers) {
    const name = k.toLowerCase();
    if (name === NONCE_HEADER || name === EXPIRY_HEADER) throw new PithError("invalid_argument", `header ${name} is reserved`);
    headers.push([name, v]);
  }
  headers.push([NONCE_HEADER, toHex(r.nonce).slice(2)], [EXPIRY_HEADER, String(r.expiry)]);
  return concat(
    varint(0),
    lenPrefixed(utf8.encode(r.method)),
    lenPrefixed(utf8.encode("https")),
    lenPrefixed(utf8.encode("pith")),
    lenPrefixed(utf8.encode(r.path)),
    fieldSection(headers),
    lenPrefixed(r.body),
    varint(0),
  );
}

/** Known-length Binary HTTP encoding of a response (used by tests acting as the server). */
export function encodeResponse(r: PlainResponse): Uint8Array {
  if (!Number.isInteger(r.status) || r.status < 200 || r.status > 999) throw new PithError("invalid_argument", "status");
  return concat(varint(1), varint(r.status), fieldSection(r.headers.map(([k, v]) => [k.toLowerCase(), v])), lenPrefixed(r.body), varint(0));
}

function readFields(rd: Reader, what: string): [string, string][] {
  const section = new Reader(rd.bytes(rd.varint()), what);
  const out: [string, string][] = [];
  while (section.remaining > 0) {
    const name = decodeUtf8(section.bytes(section.varint()), `${what} header name`).toLowerCase();
    const value = decodeUtf8(section.bytes(section.varint()), `${what} header value`);
    out.push([name, value]);
  }
  return out;
}

/** Content and trailers; RFC 9292 §3.8 allows a message truncated after any section. */
function readTail(rd: Reader, what: string): Uint8Array {
  const body = rd.remaining > 0 ? rd.bytes(rd.varint()).slice() : new Uint8Array();
  if (rd.remaining > 0) readFields(rd, `${what} trailer`);
  const rest = rd.rest();
  if (rest.some((b) => b !== 0)) throw new PithError("malformed", `${what}: trailing bytes`);
  return body;
}

/** Parse a known-length Binary HTTP response. Trailing bytes other than zero padding are refused. */
export function decodeResponse(bytes: Uint8Array): PlainResponse {
  const rd = new Reader(bytes, "response");
  const framing = rd.varint();
  if (framing !== 1) throw new PithError("malformed", `response: framing indicator ${framing} (only known-length responses are used)`);
  let status = rd.varint();
  while (status >= 100 && status < 200) {
    readFields(rd, "informational response");
    status = rd.varint();
  }
  if (status < 200 || status > 999) throw new PithError("malformed", `response: status ${status}`);
  const headers = readFields(rd, "response");
  const body = readTail(rd, "response");
  return { status, headers, body };
}

/** Parse a known-length Binary HTTP request with its envelope fields (test/server side). */
export function decodeRequest(bytes: Uint8Array): PlainRequest & { scheme: string; authority: string } {
  const rd = new Reader(bytes, "request");
  const framing = rd.varint();
  if (framing !== 0) throw new PithError("malformed", `request: framing indicator ${framing}`);
  const text = (what: string) => decodeUtf8(rd.bytes(rd.varint()), `request ${what}`);
  const method = text("method");
  const scheme = text("scheme");
  const authority = text("authority");
  const path = text("path");
  const headers: [string, string][] = [];
  let nonce: Uint8Array | undefined;
  let expiry: number | undefined;
  for (const [k, v] of readFields(rd, "request")) {
    if (k === NONCE_HEADER) {
      const n = fromHex(v, "pith-nonce");
      if (nonce !== undefined || n.length < 16 || n.length > 32) throw new PithError("malformed", "pith-nonce must appear once, 16..=32 bytes");
      nonce = n;
    } else if (k === EXPIRY_HEADER) {
      if (expiry !== undefined || !/^[0-9]+$/.test(v)) throw new PithError("malformed", "pith-expiry must appear once, a number");
      expiry = Number(v);
    } else headers.push([k, v]);
  }
  const body = readTail(rd, "request");
  if (nonce === undefined) throw new PithError("malformed", "missing pith-nonce");
  if (expiry === undefined) throw new PithError("malformed", "missing pith-expiry");
  return { method, scheme, authority, path, headers, body, nonce, expiry };
}
