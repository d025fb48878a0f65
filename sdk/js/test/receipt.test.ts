import assert from "node:assert/strict";
import { test } from "node:test";
import { secp256k1 } from "@noble/curves/secp256k1";
import { readVectors } from "../scripts/vectors.ts";
import { fromHex, toHex } from "../src/bytes.ts";
import { PithError } from "../src/errors.ts";
import { parseReceipt, verifyReceiptSignature } from "../src/receipt.ts";

const rust = readVectors("rust.json");

test("receipt JSON is parsed strictly", () => {
  assert.throws(() => parseReceipt({ ...rust.receipt, extra: 1 }), /unknown field extra/);
  assert.throws(() => parseReceipt({ ...rust.receipt, timestamp: "1" }), /timestamp/);
  assert.throws(() => parseReceipt({ ...rust.receipt, worker: "0x12" }), /worker/);
  assert.throws(() => parseReceipt({ ...rust.receipt, codeHash: "0x" + "zz".repeat(32) }), /codeHash/);
  const { signature: _, ...unsigned } = rust.receipt;
  assert.throws(() => parseReceipt(unsigned), /signature/);
  assert.throws(() => parseReceipt(null), PithError);
});

test("the high-s twin of a valid signature is refused (as OpenZeppelin ECDSA does)", async () => {
  const r = parseReceipt(rust.receipt);
  const sig = fromHex(r.signature);
  const s = secp256k1.Signature.fromCompact(sig.subarray(0, 64));
  const high = new secp256k1.Signature(s.r, secp256k1.CURVE.n - s.s).toCompactRawBytes();
  const twin = new Uint8Array(65);
  twin.set(high);
  twin[64] = sig[64] === 27 ? 28 : 27;
  await assert.rejects(verifyReceiptSignature({ ...r, signature: toHex(twin) }), /high-s/);
});
