// Cross-language vectors (testdata/vectors/README.md): what Rust encrypted and signed opens
// and verifies here, and ts.json is exactly what the SDK produces now.
import assert from "node:assert/strict";
import { test } from "node:test";
import { makeTsVectors, readVectors } from "../scripts/vectors.ts";
import { decodeRequest, decodeResponse, encodeRequest } from "../src/bhttp.ts";
import { fromHex, toHex } from "../src/bytes.ts";
import { derivePublicKey, openRequest, openResponse, parseKeyConfigs } from "../src/ohttp.ts";
import {
  parseKeyCertificate,
  parseReceipt,
  receiptHash,
  verifyKeyCertificateSignature,
  verifyReceiptSignature,
} from "../src/receipt.ts";
import { PithError } from "../src/errors.ts";

const rust = readVectors("rust.json");

const flip = (hex: string, i: number, bit = 1) => {
  const b = fromHex(hex);
  b[i]! ^= bit;
  return b;
};

test("ts.json is what the SDK produces now (regenerate: npm run vectors)", async () => {
  assert.deepEqual(await makeTsVectors(rust), readVectors("ts.json"));
});

test("the Rust key configuration is the HPKE DeriveKeyPair of the key-tree ikm", async () => {
  const [cfg] = parseKeyConfigs(fromHex(rust.ohttp_keys));
  assert.equal(cfg!.keyId, rust.key_id);
  assert.deepEqual(cfg!.suites, [{ kdfId: 1, aeadId: 1 }, { kdfId: 1, aeadId: 3 }]);
  assert.equal(toHex(await derivePublicKey(fromHex(rust.encryption_ikm))), toHex(cfg!.publicKey));
});

test("Binary HTTP: the SDK encodes the Rust request byte for byte", () => {
  const r = rust.request;
  const bytes = encodeRequest({
    method: r.method,
    path: r.path,
    headers: r.headers,
    body: fromHex(r.body),
    nonce: fromHex(r.nonce),
    expiry: r.expiry,
  });
  assert.equal(toHex(bytes), rust.request_bhttp);
});

test("a request encrypted by Rust opens here, and its response too", async () => {
  const opened = await openRequest(fromHex(rust.encryption_ikm), rust.key_id, fromHex(rust.request_wire));
  assert.equal(toHex(opened.bhttp), rust.request_bhttp);
  const req = decodeRequest(opened.bhttp);
  assert.equal(req.method, "POST");
  assert.equal(req.path, rust.request.path);
  assert.equal(req.authority, "pith");
  assert.deepEqual(req.headers, rust.request.headers);
  assert.equal(toHex(req.nonce), rust.request.nonce);
  const res = openResponse(opened.aeadId, opened.secret, opened.enc, fromHex(rust.response_wire));
  assert.equal(toHex(res), rust.response_bhttp);
  const decoded = decodeResponse(res);
  assert.equal(decoded.status, 201);
  assert.deepEqual(decoded.headers, rust.response.headers);
  assert.equal(toHex(decoded.body), rust.response.body);
});

test("a flipped byte of the Rust request or response does not open", async () => {
  const wire = fromHex(rust.request_wire);
  for (const i of [0, 2, 8, 20, 39, 40, wire.length - 1]) {
    await assert.rejects(openRequest(fromHex(rust.encryption_ikm), rust.key_id, flip(rust.request_wire, i)), PithError, `byte ${i}`);
  }
  const opened = await openRequest(fromHex(rust.encryption_ikm), rust.key_id, wire);
  const res = fromHex(rust.response_wire);
  for (const i of [0, 15, 16, res.length - 1]) {
    assert.throws(() => openResponse(opened.aeadId, opened.secret, opened.enc, flip(rust.response_wire, i)), (e: PithError) => e.kind === "decrypt_failed");
  }
});

test("a receipt signed in Rust verifies here; tampering fails", async () => {
  const r = parseReceipt(rust.receipt);
  assert.equal(receiptHash(r), rust.receipt_signing_hash);
  assert.equal((await verifyReceiptSignature(r)).toLowerCase(), rust.receipt_worker);
  await assert.rejects(verifyReceiptSignature({ ...r, cpuMicros: r.cpuMicros + 1 }), (e: PithError) => e.kind === "bad_signature");
  await assert.rejects(verifyReceiptSignature({ ...r, signature: toHex(flip(r.signature, 5)) }), PithError);
  // v must be 27/28 and s low, as on chain
  await assert.rejects(verifyReceiptSignature({ ...r, signature: toHex(flip(r.signature, 64, 0x04)) }), /recovery id/);
});

test("a key certificate signed in Rust verifies here; other keys, time or fields fail", async () => {
  const c = parseKeyCertificate(rust.key_certificate);
  const keys = fromHex(rust.ohttp_keys);
  assert.equal((await verifyKeyCertificateSignature(c, keys, c.notAfter - 1)).toLowerCase(), rust.kms);
  await assert.rejects(verifyKeyCertificateSignature(c, flip(rust.ohttp_keys, 5), c.notAfter - 1), (e: PithError) => e.kind === "bad_signature");
  await assert.rejects(verifyKeyCertificateSignature(c, keys, c.notAfter + 1), (e: PithError) => e.kind === "expired");
  await assert.rejects(verifyKeyCertificateSignature({ ...c, epoch: c.epoch + 1 }, keys, c.notAfter - 1), PithError);
});
