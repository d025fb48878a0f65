/**
 * Typed errors of the SDK. Every failure a caller may want to tell apart has its own
 * `kind`; `message` is for people.
 */

/** What went wrong, by class. */
export type PithErrorKind =
  /** Bytes that do not parse (Binary HTTP, OHTTP, key configuration, JSON, hex). */
  | "malformed"
  /** Decryption failed (wrong key, tampered ciphertext). */
  | "decrypt_failed"
  /** A signature does not recover to the expected signer, or is not a valid signature. */
  | "bad_signature"
  /** A certificate or request is outside its validity period. */
  | "expired"
  /** Valid signature, but the signer is not allowed (not in the KMS committee, not registered). */
  | "untrusted_signer"
  /** The gateway answered with an error body or an unexpected status. */
  | "gateway"
  /** A chain read failed. */
  | "chain"
  /** The caller passed something unusable. */
  | "invalid_argument";

/** An error of the Pith SDK, with a stable `kind`. */
export class PithError extends Error {
  readonly kind: PithErrorKind;
  /** HTTP status for `gateway` errors. */
  readonly status?: number;
  /** The gateway's error kind (`{"error": {"kind"}}`), for `gateway` errors. */
  readonly remoteKind?: string;

  constructor(kind: PithErrorKind, message: string, extra?: { status?: number; remoteKind?: string; cause?: unknown }) {
    super(message, extra?.cause === undefined ? undefined : { cause: extra.cause });
    this.name = "PithError";
    this.kind = kind;
    if (extra?.status !== undefined) this.status = extra.status;
    if (extra?.remoteKind !== undefined) this.remoteKind = extra.remoteKind;
  }
}
