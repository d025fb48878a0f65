import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse } from "../src/bhttp.ts";
import { concat } from "../src/bytes.ts";
import { PithError } from "../src/errors.ts";

const req = {
  method: "GET",
  path: "/?q=1",
  headers: [["Accept", "text/plain"]] as [string, string][],
  body: new Uint8Array(),
  nonce: new Uint8Array(16).fill(7),
  expiry: 1_700_000_000,
};

test("request round trip; names lower-cased; envelope fields added", () => {
  const back = decodeRequest(encodeRequest(req));
  assert.deepEqual(back.headers, [["accept", "text/plain"]]);
  assert.equal(back.expiry, req.expiry);
  assert.equal(back.scheme, "https");
});

test("reserved header names and bad nonces are refused", () => {
  assert.throws(() => encodeRequest({ ...req, headers: [["Pith-Nonce", "00"]] }), PithError);
  assert.throws(() => encodeRequest({ ...req, nonce: new Uint8Array(8) }), PithError);
});

test("response round trip, large body (multi-byte lengths)", () => {
  const body = new Uint8Array(70_000).map((_, i) => i & 0xff);
  const r = decodeResponse(encodeResponse({ status: 404, headers: [["x", "y"]], body }));
  assert.equal(r.status, 404);
  assert.deepEqual(r.body, body);
});

test("truncated, trailing and wrong-kind messages are malformed, never a crash", () => {
  const bytes = encodeResponse({ status: 200, headers: [["a", "b"]], body: new Uint8Array([1, 2, 3]) });
  for (let cut = 0; cut < bytes.length - 1; cut++) {
    try {
      decodeResponse(bytes.subarray(0, cut));
    } catch (e) {
      assert.ok(e instanceof PithError && e.kind === "malformed", `cut ${cut}: ${e}`);
    }
  }
  assert.throws(() => decodeResponse(concat(bytes, Uint8Array.of(1))), /trailing/);
  assert.doesNotThrow(() => decodeResponse(concat(bytes, new Uint8Array(4)))); // zero padding
  assert.throws(() => decodeResponse(encodeRequest(req)), /framing/);
});
