/** Small byte helpers (no cryptography here). */
import { PithError } from "./errors.ts";

export type Hex = `0x${string}`;

const HEX = /^(0x)?([0-9a-fA-F]{2})*$/;

/** `0x`-hex (lower case) of `b`. */
export function toHex(b: Uint8Array): Hex {
  let s = "0x";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s as Hex;
}

/** Bytes of `0x`-hex or bare hex; `malformed` on anything else. */
export function fromHex(s: string, what = "hex"): Uint8Array {
  if (typeof s !== "string" || !HEX.test(s)) throw new PithError("malformed", `${what} is not hex`);
  const h = s.startsWith("0x") ? s.slice(2) : s;
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

export const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

/** UTF-8 decoding that refuses invalid sequences (`malformed`). */
export function decodeUtf8(b: Uint8Array, what: string): string {
  try {
    return utf8Strict.decode(b);
  } catch {
    throw new PithError("malformed", `${what} is not UTF-8`);
  }
}

/** base64url without padding (the `pith-receipt` and `pith-key-certificate` headers). */
export function fromBase64Url(s: string, what: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) throw new PithError("malformed", `${what} is not base64url`);
  const b64 = s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4);
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function toBase64Url(b: Uint8Array): string {
  let bin = "";
  for (const x of b) bin += String.fromCharCode(x);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** A cursor over untrusted bytes: every read checks the length and throws `malformed`. */
export class Reader {
  private pos = 0;
  constructor(
    private readonly buf: Uint8Array,
    private readonly what: string,
  ) {}

  get offset(): number {
    return this.pos;
  }
  get remaining(): number {
    return this.buf.length - this.pos;
  }

  bytes(n: number): Uint8Array {
    if (!Number.isSafeInteger(n) || n < 0 || n > this.remaining) {
      throw new PithError("malformed", `${this.what}: truncated (need ${n} bytes at ${this.pos}, have ${this.remaining})`);
    }
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  u8(): number {
    return this.bytes(1)[0]!;
  }
  u16(): number {
    const b = this.bytes(2);
    return (b[0]! << 8) | b[1]!;
  }
  /** QUIC variable-length integer (RFC 9000 §16), as used by Binary HTTP. */
  varint(): number {
    const first = this.u8();
    const len = 1 << (first >> 6);
    let v = first & 0x3f;
    for (let i = 1; i < len; i++) v = v * 256 + this.u8();
    if (!Number.isSafeInteger(v)) throw new PithError("malformed", `${this.what}: integer too large`);
    return v;
  }
  rest(): Uint8Array {
    return this.bytes(this.remaining);
  }
}

/** QUIC variable-length integer encoding (shortest form). */
export function varint(v: number): Uint8Array {
  if (!Number.isSafeInteger(v) || v < 0) throw new PithError("invalid_argument", `varint ${v}`);
  if (v < 0x40) return Uint8Array.of(v);
  if (v < 0x4000) return Uint8Array.of(0x40 | (v >> 8), v & 0xff);
  if (v < 0x40000000) return Uint8Array.of(0x80 | (v >>> 24), (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
  const out = new Uint8Array(8);
  let x = BigInt(v);
  for (let i = 7; i >= 0; i--) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  out[0]! |= 0xc0;
  return out;
}

export function u16be(v: number): Uint8Array {
  return Uint8Array.of((v >> 8) & 0xff, v & 0xff);
}
