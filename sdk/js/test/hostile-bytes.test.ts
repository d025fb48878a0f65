// Untrusted bytes (gateway answers, evidence) only ever give typed errors or verdicts.
import assert from "node:assert/strict";
import { test } from "node:test";
import { readVectors } from "../scripts/vectors.ts";
import { decodeResponse } from "../src/bhttp.ts";
import { fromHex } from "../src/bytes.ts";
import { PithError } from "../src/errors.ts";
import { verifyEvidence } from "../src/evidence.ts";
import { parseKeyConfigs } from "../src/ohttp.ts";

// a small deterministic generator, so a failure reproduces
function* randomInputs(seed: number, count: number, base?: Uint8Array) {
  let x = seed;
  const next = () => ((x = (x * 1103515245 + 12345) >>> 0), x);
  for (let i = 0; i < count; i++) {
    if (base) {
      const b = base.slice(0, 1 + (next() % base.length));
      for (let k = 0; k < 3; k++) b[next() % b.length] = next() & 0xff;
      yield b;
    } else yield Uint8Array.from({ length: next() % 80 }, () => next() & 0xff);
  }
}

const typed = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof PithError, `not a PithError: ${e}`);
  }
};

test("Binary HTTP responses and key configurations: mutated and random bytes", () => {
  const rust = readVectors("rust.json");
  for (const b of randomInputs(1, 2000, fromHex(rust.response_bhttp))) typed(() => decodeResponse(b));
  for (const b of randomInputs(2, 2000)) typed(() => decodeResponse(b));
  for (const b of randomInputs(3, 2000, fromHex(rust.ohttp_keys))) typed(() => parseKeyConfigs(b));
});

test("evidence: mutated simulated evidence gives a verdict, never a throw", async () => {
  const e = new Uint8Array(534 + 10);
  e.set(new TextEncoder().encode("PITHSIM1"));
  for (const b of randomInputs(4, 300, e)) {
    const v = await verifyEvidence(b);
    assert.equal(v.ok, false);
  }
});
