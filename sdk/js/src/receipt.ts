/**
 * EIP-712 receipts (signed by the worker that ran a program) and program key certificates
 * (signed by a KMS), as `crates/crypto/src/receipt.rs` and `certify.rs` define them
 * (docs/protocol.md "Receipts (EIP-712)" and "Program key certificate"). Hashing and
 * recovery are viem's.
 */
import { getAddress, hashTypedData, isAddress, keccak256, recoverAddress, type Address } from "viem";
import { secp256k1 } from "@noble/curves/secp256k1";
import { fromHex, type Hex } from "./bytes.ts";
import { PithError } from "./errors.ts";

/** A receipt: the JSON object of the `pith-receipt` header, `pith call --json` and `/v1/receipts`. */
export interface Receipt {
  chainId: number;
  verifyingContract: Address;
  programId: Hex;
  codeHash: Hex;
  requestHash: Hex;
  responseHash: Hex;
  modelHash: Hex;
  worker: Address;
  timestamp: number;
  cpuMicros: number;
  wallMicros: number;
  memoryBytes: number;
  egressBytes: number;
  signature: Hex;
}

/** A KMS certificate over a program's `application/ohttp-keys` body (header `pith-key-certificate`). */
export interface KeyCertificate {
  chainId: number;
  verifyingContract: Address;
  programId: Hex;
  epoch: number;
  keyConfigHash: Hex;
  programAddress: Address;
  notAfter: number;
  kms: Address;
  signature: Hex;
}

export const RECEIPT_DOMAIN_NAME = "Pith Receipt";
export const CERTIFY_DOMAIN_NAME = "Pith KMS";
export const EIP712_VERSION = "1";

export const receiptTypes = {
  Receipt: [
    { name: "programId", type: "bytes32" },
    { name: "codeHash", type: "bytes32" },
    { name: "requestHash", type: "bytes32" },
    { name: "responseHash", type: "bytes32" },
    { name: "modelHash", type: "bytes32" },
    { name: "worker", type: "address" },
    { name: "timestamp", type: "uint64" },
    { name: "cpuMicros", type: "uint64" },
    { name: "wallMicros", type: "uint64" },
    { name: "memoryBytes", type: "uint64" },
    { name: "egressBytes", type: "uint64" },
  ],
} as const;

export const programKeyTypes = {
  ProgramKey: [
    { name: "programId", type: "bytes32" },
    { name: "epoch", type: "uint32" },
    { name: "keyConfigHash", type: "bytes32" },
    { name: "programAddress", type: "address" },
    { name: "notAfter", type: "uint64" },
  ],
} as const;

const RECEIPT_FIELDS = {
  chainId: "u64",
  verifyingContract: "address",
  programId: "b32",
  codeHash: "b32",
  requestHash: "b32",
  responseHash: "b32",
  modelHash: "b32",
  worker: "address",
  timestamp: "u64",
  cpuMicros: "u64",
  wallMicros: "u64",
  memoryBytes: "u64",
  egressBytes: "u64",
  signature: "sig",
} as const;

const CERT_FIELDS = {
  chainId: "u64",
  verifyingContract: "address",
  programId: "b32",
  epoch: "u32",
  keyConfigHash: "b32",
  programAddress: "address",
  notAfter: "u64",
  kms: "address",
  signature: "sig",
} as const;

type FieldKind = "u64" | "u32" | "address" | "b32" | "sig";

function strict<T>(value: unknown, fields: Record<string, FieldKind>, what: string): T {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new PithError("malformed", `${what}: not an object`);
  const obj = value as Record<string, unknown>;
  for (const k of Object.keys(obj)) if (!(k in fields)) throw new PithError("malformed", `${what}: unknown field ${k}`);
  const out: Record<string, unknown> = {};
  for (const [k, kind] of Object.entries(fields)) {
    const v = obj[k];
    const bad = () => new PithError("malformed", `${what}: field ${k} is missing or not a ${kind}`);
    switch (kind) {
      case "u64":
      case "u32":
        // JSON numbers above 2^53 cannot be read exactly here; Pith's values (seconds, micros, bytes, chain ids) stay below.
        if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0 || (kind === "u32" && v > 0xffffffff)) throw bad();
        out[k] = v;
        break;
      case "address":
        if (typeof v !== "string" || !isAddress(v, { strict: false })) throw bad();
        out[k] = getAddress(v);
        break;
      case "b32":
        if (typeof v !== "string" || !/^0x[0-9a-fA-F]{64}$/.test(v)) throw bad();
        out[k] = v.toLowerCase();
        break;
      case "sig":
        if (typeof v !== "string" || !/^(0x)?[0-9a-fA-F]{130}$/.test(v)) throw bad();
        out[k] = (v.startsWith("0x") ? v : `0x${v}`).toLowerCase();
        break;
    }
  }
  return out as T;
}

/** Parse and validate a receipt's JSON form (unknown fields are refused, as in Rust). */
export function parseReceipt(json: unknown): Receipt {
  return strict<Receipt>(json, RECEIPT_FIELDS, "receipt");
}

/** Parse and validate a key certificate's JSON form. */
export function parseKeyCertificate(json: unknown): KeyCertificate {
  return strict<KeyCertificate>(json, CERT_FIELDS, "key certificate");
}

function domain(name: string, chainId: number, registry: Address) {
  return { name, version: EIP712_VERSION, chainId: BigInt(chainId), verifyingContract: registry } as const;
}

/** The EIP-712 signing hash of a receipt. */
export function receiptHash(r: Receipt): Hex {
  return hashTypedData({
    domain: domain(RECEIPT_DOMAIN_NAME, r.chainId, r.verifyingContract),
    types: receiptTypes,
    primaryType: "Receipt",
    message: {
      programId: r.programId,
      codeHash: r.codeHash,
      requestHash: r.requestHash,
      responseHash: r.responseHash,
      modelHash: r.modelHash,
      worker: r.worker,
      timestamp: BigInt(r.timestamp),
      cpuMicros: BigInt(r.cpuMicros),
      wallMicros: BigInt(r.wallMicros),
      memoryBytes: BigInt(r.memoryBytes),
      egressBytes: BigInt(r.egressBytes),
    },
  });
}

/** The EIP-712 signing hash of a key certificate. */
export function keyCertificateHash(c: KeyCertificate): Hex {
  return hashTypedData({
    domain: domain(CERTIFY_DOMAIN_NAME, c.chainId, c.verifyingContract),
    types: programKeyTypes,
    primaryType: "ProgramKey",
    message: { programId: c.programId, epoch: c.epoch, keyConfigHash: c.keyConfigHash, programAddress: c.programAddress, notAfter: BigInt(c.notAfter) },
  });
}

/**
 * Recover the signer of an EIP-712 hash from a 65-byte `r ‖ s ‖ v` signature, with the
 * rules of the Rust side and OpenZeppelin's ECDSA: v ∈ {27, 28}, s in the lower half.
 */
export async function recoverSigner(hash: Hex, signature: Hex): Promise<Address> {
  const sig = fromHex(signature, "signature");
  if (sig.length !== 65) throw new PithError("bad_signature", "not a 65-byte signature");
  const v = sig[64]!;
  if (v !== 27 && v !== 28) throw new PithError("bad_signature", `recovery id v=${v} is not 27 or 28`);
  let parsed;
  try {
    parsed = secp256k1.Signature.fromCompact(sig.subarray(0, 64));
  } catch (e) {
    throw new PithError("bad_signature", "r or s out of range", { cause: e });
  }
  if (parsed.hasHighS()) throw new PithError("bad_signature", "high-s signature");
  try {
    return await recoverAddress({ hash, signature });
  } catch (e) {
    throw new PithError("bad_signature", "signature does not recover", { cause: e });
  }
}

/** Check that a receipt is signed by the worker it names; returns that worker. */
export async function verifyReceiptSignature(r: Receipt): Promise<Address> {
  const signer = await recoverSigner(receiptHash(r), r.signature);
  if (signer !== getAddress(r.worker)) throw new PithError("bad_signature", `receipt signed by ${signer}, names ${r.worker}`);
  return signer;
}

/**
 * Check a key certificate against the served `application/ohttp-keys` bytes and the time;
 * returns the KMS address that signed it. Whether that address is in the Registry's KMS
 * committee is the caller's check ([`PithClient.getProgram`] does it).
 */
export async function verifyKeyCertificateSignature(c: KeyCertificate, ohttpKeys: Uint8Array, nowSecs: number): Promise<Address> {
  if (keccak256(ohttpKeys) !== c.keyConfigHash) throw new PithError("bad_signature", "key configuration does not match its certificate");
  if (nowSecs > c.notAfter) throw new PithError("expired", `key certificate expired at ${c.notAfter}`);
  const signer = await recoverSigner(keyCertificateHash(c), c.signature);
  if (signer !== getAddress(c.kms)) throw new PithError("bad_signature", `key certificate signed by ${signer}, names ${c.kms}`);
  return signer;
}
